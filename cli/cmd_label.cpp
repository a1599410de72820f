// `troupe label --input IN --output OUT --labeller NAME`: a terminal UI to collect human preferences after
// InstructGPT's labelling guidelines (a 1-7 rating and flags per response, then a ranking with ties), appending one
// record per prompt to OUT (dataprep/label_record.h) and resuming where this labeller stopped. Registration and the
// event loop only: the session is cli/label_app.h, the terminal cli/label_terminal.h.
#include <fcntl.h>
#include <fmt/format.h>
#include <unistd.h>

#include <CLI/CLI.hpp>
#include <cerrno>
#include <cstring>
#include <iostream>
#include <set>

#include "cli/commands.h"
#include "cli/label_app.h"
#include "cli/label_terminal.h"
#include "core/errors.h"
#include "dataprep/label_record.h"

namespace troupe::cli {
namespace {

constexpr int kKeyWaitMs = 200;  // how often the loop looks at the signal and resize flags while no key comes

struct LabelArgs {
  std::string input, output, labeller;
};

void check_args(const LabelArgs& a) {
  if (a.labeller.empty()) throw ConfigError("--labeller: expected a non-empty name");
  for (unsigned char c : a.labeller) {
    if (c < 0x20 || c == 0x7f) throw ConfigError("--labeller: the name has a control character");
  }
  // Fail before the screen opens when OUT cannot be appended to (creates it empty).
  const int fd = ::open(a.output.c_str(), O_WRONLY | O_APPEND | O_CREAT | O_CLOEXEC, 0644);
  if (fd < 0) throw IoError(fmt::format("--output {}: cannot open for appending: {}", a.output, std::strerror(errno)));
  ::close(fd);
}

std::set<std::string> already_done(const std::string& output, const std::string& labeller) {
  std::set<std::string> done;
  for (const auto& r : dataprep::read_label_records(output)) {
    if (r.labeller == labeller) done.insert(r.id);
  }
  return done;
}

// The key loop; returns the signal that stopped it, or 0.
int run_session(LabelApp& app) {
  Terminal term;
  bool dirty = true;
  while (!app.finished()) {
    if (Terminal::stop_signal() != 0) return Terminal::stop_signal();
    if (Terminal::take_resized()) dirty = true;
    if (dirty) {
      const auto [rows, cols] = term.size();
      term.write(app.render(rows, cols));
      dirty = false;
    }
    if (const auto key = term.read_key(kKeyWaitMs)) {
      app.handle(*key);
      dirty = true;
    }
  }
  return 0;
}

int label(const LabelArgs& a) {
  check_args(a);
  auto items = dataprep::read_label_items(a.input);
  LabelApp app(std::move(items), already_done(a.output, a.labeller), {a.output, a.labeller});
  if (app.done() == app.total()) {
    std::cout << fmt::format("all {} prompts of {} are already labelled by {} in {}\n", app.total(), a.input,
                             a.labeller, a.output);
    return 0;
  }
  const int signal = run_session(app);  // the terminal is restored when this returns or throws
  std::cout << fmt::format("{} records written this session ({} skipped); {}/{} prompts done by {} -> {}\n",
                           app.submitted(), app.skipped(), app.done(), app.total(), a.labeller, a.output);
  if (app.interrupted()) {
    std::cerr << "troupe label: stopped by Ctrl-C; the judgement of the open prompt was not saved\n";
    return 130;
  }
  if (signal != 0) {
    std::cerr << fmt::format("troupe label: stopped by signal {}; the judgement of the open prompt was not saved\n",
                             signal);
    return 128 + signal;
  }
  return 0;
}

}  // namespace

void add_label_command(CLI::App& app, int& exit_code) {
  auto args = std::make_shared<LabelArgs>();
  auto* cmd = app.add_subcommand(
      "label",
      "Label preferences in the terminal (InstructGPT guidelines: rate each response 1-7, flag it, rank them with "
      "ties); appends one JSONL record per prompt and resumes where the labeller stopped");
  cmd->add_option("--input", args->input, "prompts and responses (JSONL: id, prompt, responses)")
      ->required()
      ->check(CLI::ExistingFile);
  cmd->add_option("--output", args->output, "records are appended here (JSONL)")->required();
  cmd->add_option("--labeller", args->labeller, "your name, stored in every record")->required();
  cmd->callback([args, &exit_code] { exit_code = label(*args); });
}

}  // namespace troupe::cli
