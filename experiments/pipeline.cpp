// Implementation of experiments/pipeline.h.
#include "experiments/pipeline.h"

#include <fmt/format.h>
#include <spdlog/spdlog.h>

#include <algorithm>
#include <chrono>
#include <csignal>
#include <fstream>
#include <iostream>
#include <nlohmann/json.hpp>
#include <set>
#include <thread>

#include "core/errors.h"
#include "core/logging.h"
#include "core/run_session.h"
#include "core/runtime.h"
#include "core/signals.h"
#include "core/subprocess.h"

namespace troupe::experiments {

namespace fs = std::filesystem;
using Clock = std::chrono::steady_clock;

void PipelineConfig::validate(core::ConfigValidator& v) const {
  v.nested("run", run);
  v.nested("runtime", runtime);
  v.nested("checkpoint", checkpoint);
  v.require(!stages.empty(), "stages", std::string("[]"), "at least one stage");
  std::set<std::string> names;
  for (const auto& s : stages) {
    const bool ok_name = !s.name.empty() && s.name.find_first_not_of(
                                                "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ"
                                                "0123456789_-") == std::string::npos;
    v.require(ok_name, "stages", s.name, "stage names of letters, digits, '_' and '-'");
    v.require(names.insert(s.name).second, "stages", s.name, "unique stage names");
    v.require(!s.command.empty(), "stages", s.name, "a non-empty command for every stage");
  }
  for (const auto& [name, options] : stage_options) {
    v.require(names.count(name) == 1, "stage_options", name, "the name of a stage");
    for (const auto& [key, value] : options)
      v.require(!key.empty() && key.find('=') == std::string::npos, "stage_options." + name, key,
                "an option (--name) or a key path without '='");
  }
  for (const auto& s : stages) stage_command(*this, s);  // an option with nothing to replace fails here, up front
}

std::vector<std::string> stage_command(const PipelineConfig& c, const PipelineStage& stage) {
  std::vector<std::string> command = stage.command;
  const auto it = c.stage_options.find(stage.name);
  if (it == c.stage_options.end()) return command;
  for (const auto& [key, value] : it->second) {
    if (key[0] != '-') {
      command.push_back(key + "=" + value);
      continue;
    }
    const auto at = std::find(command.begin(), command.end(), key);
    if (at == command.end()) {
      command.push_back(key);
      command.push_back(value);
    } else if (at + 1 == command.end()) {
      throw ConfigError("stage_options." + stage.name + "." + key + ": the stage's command ends with " + key +
                        ", so there is no value to replace");
    } else {
      *(at + 1) = value;
    }
  }
  return command;
}

namespace {

std::string substitute(std::string s, const std::string& run_dir) {
  const std::string key = "${run}";
  for (size_t at; (at = s.find(key)) != std::string::npos;) s.replace(at, key.size(), run_dir);
  return s;
}

// Copies what was appended to `file` since `offset` to stdout.
void echo_new_output(const fs::path& file, std::streamoff& offset) {
  std::ifstream in(file, std::ios::binary);
  if (!in) return;
  in.seekg(0, std::ios::end);
  const std::streamoff end = in.tellg();
  if (end <= offset) return;
  in.seekg(offset);
  std::string chunk(static_cast<size_t>(end - offset), '\0');
  in.read(chunk.data(), static_cast<std::streamsize>(chunk.size()));
  std::cout << chunk << std::flush;
  offset = end;
}

std::string cell(const nlohmann::json& v) {
  if (v.is_string()) return v.get<std::string>();
  if (v.is_number_float()) return fmt::format("{:.4f}", v.get<double>());
  return v.dump();
}

// Prints the JSON table at `file` and logs it as table "summary" (one row per entry, step = row number).
void report_summary(const fs::path& file, core::RunLog& log) {
  std::ifstream in(file);
  if (!in) throw IoError("summary: " + file.string() + " was not written by any stage");
  nlohmann::json j;
  try {
    in >> j;
  } catch (const nlohmann::json::exception& e) {
    throw DataError("summary: " + file.string() + ": invalid JSON: " + e.what());
  }
  if (!j.contains("columns") || !j["columns"].is_array() || !j.contains("rows") || !j["rows"].is_array())
    throw DataError("summary: " + file.string() + ": expected {\"columns\": [...], \"rows\": [[...], ...]}");
  const auto& cols = j["columns"];
  std::vector<size_t> width;
  for (const auto& c : cols) width.push_back(std::max<size_t>(10, cell(c).size()));
  for (const auto& r : j["rows"])
    for (size_t i = 0; i < r.size() && i < width.size(); ++i) width[i] = std::max(width[i], cell(r[i]).size());
  std::string text;
  auto line = [&](const nlohmann::json& r) {
    for (size_t i = 0; i < width.size(); ++i) {
      if (i == 1 && cols[i] == "path") continue;  // paths make the terminal table unreadable; they are in the log
      text += fmt::format("{:<{}}  ", i < r.size() ? cell(r[i]) : "", width[i]);
    }
    text += "\n";
  };
  line(cols);
  int64_t step = 0;
  for (const auto& r : j["rows"]) {
    line(r);
    std::map<std::string, std::string> row;
    for (size_t i = 0; i < cols.size() && i < r.size(); ++i) row[cell(cols[i])] = cell(r[i]);
    log.log_table_row("summary", ++step, row);
  }
  std::cout << "\nsummary (" << file.string() << "):\n" << text << std::flush;
}

int run_pipeline(const PipelineConfig& c, const std::string& resolved_yaml, const std::string& command_line,
                 const fs::path& stage_cwd) {
  core::RunSession session(session_options(c, resolved_yaml, command_line));
  // Absolute: stages run in the config's directory, not ours.
  const fs::path run_dir = fs::absolute(session.directory().path()).lexically_normal();
  const fs::path stage_dir = run_dir / "stages";
  fs::create_directories(stage_dir);
  const fs::path exe = core::current_executable();
  const auto start = Clock::now();
  int64_t index = 0;
  try {
    for (const auto& stage : c.stages) {
      ++index;
      const fs::path done = stage_dir / (stage.name + ".done");
      const fs::path log_file = stage_dir / (stage.name + ".log");
      if (fs::exists(done)) {
        std::cout << fmt::format("== stage {}/{} {}: done earlier, skipped\n", index, c.stages.size(), stage.name);
        session.log().log_table_row("stages", index, {{"stage", stage.name}, {"status", "skipped (done earlier)"}});
        continue;
      }
      std::vector<std::string> argv{exe.string()};
      std::string shown = "troupe";
      for (const auto& a : stage_command(c, stage)) {
        argv.push_back(substitute(a, run_dir.string()));
        shown += " " + argv.back();
      }
      std::cout << fmt::format("== stage {}/{} {}: {}\n", index, c.stages.size(), stage.name, shown) << std::flush;
      spdlog::info("pipeline stage {} ({}): {}", index, stage.name, shown);
      std::error_code ec;
      fs::remove(log_file, ec);
      const auto t0 = Clock::now();
      // Relative paths in a stage's command are relative to the pipeline config (its working directory); the stage
      // has its own process group (a terminal's Ctrl-C reaches only us, and we forward it) and gets SIGTERM, so that
      // it checkpoints, if we die.
      core::SubprocessOptions options = core::output_to_file(argv, log_file, /*append=*/true);
      options.cwd = stage_cwd;
      options.parent_death_signal = SIGTERM;
      options.new_process_group = true;
      core::Subprocess child(std::move(options));
      std::streamoff offset = 0;
      std::optional<int> status;
      bool forwarded = false;
      while (!(status = child.wait_for(std::chrono::milliseconds(200)))) {
        echo_new_output(log_file, offset);
        if (core::stop_requested() && !forwarded) {
          child.signal(core::stop_signal());
          forwarded = true;
        }
      }
      echo_new_output(log_file, offset);
      const double seconds = std::chrono::duration<double>(Clock::now() - t0).count();
      session.log().log_scalars(index, {{"pipeline/stage_seconds", seconds}, {"pipeline/exit_status", *status}});
      session.log().log_table_row("stages", index,
                                  {{"stage", stage.name},
                                   {"command", shown},
                                   {"status", *status == 0 ? "ok" : "exit " + std::to_string(*status)},
                                   {"seconds", fmt::format("{:.1f}", seconds)}});
      if (*status != 0) {
        const std::string msg = fmt::format("stage {} ({}) exited with status {} after {:.1f} s; its log: {}", index,
                                            stage.name, *status, seconds, log_file.string());
        std::cerr << "troupe: " << msg << "\n";
        session.log().log_event(index, "stage_failed", msg);
        const bool stopped = forwarded || *status > 128;
        session.finish(stopped ? core::RunStatus::Interrupted : core::RunStatus::Failed, index, msg);
        return *status;
      }
      std::ofstream(done) << fmt::format("{:.1f}\n", seconds);
      std::cout << fmt::format("== stage {}/{} {}: ok in {:.1f} s\n", index, c.stages.size(), stage.name, seconds);
      if (core::stop_requested()) {
        session.finish(core::RunStatus::Interrupted, index, "stopped by signal after stage " + stage.name);
        return 128 + core::stop_signal();
      }
    }
    if (!c.summary.empty()) report_summary(substitute(c.summary, run_dir.string()), session.log());
  } catch (const std::exception& e) {
    session.finish(core::RunStatus::Failed, index, e.what());
    throw;
  }
  const double total = std::chrono::duration<double>(Clock::now() - start).count();
  std::cout << fmt::format("pipeline {}: {} stages in {:.1f} s ({})\n", c.run.name, c.stages.size(), total,
                           run_dir.string());
  session.log().log_scalars(index, {{"pipeline/total_seconds", total}});
  session.finish(core::RunStatus::Finished, index, "");
  return 0;
}

}  // namespace

ExperimentKind pipeline_kind() {
  ExperimentKind kind =
      make_kind<PipelineConfig>("pipeline", "troupe commands run one after another under one run directory",
                                [](const PipelineConfig& c, const std::string& yaml, const std::string& command_line) {
                                  return run_pipeline(c, yaml, command_line, fs::current_path());
                                });
  // Stage commands run in the directory of the file that lists them, so that their relative paths (stage configs,
  // data files) mean the same from any working directory, as every path inside a config does.
  kind.run = [](const core::ConfigNode& tree, const std::string& command_line) {
    auto bound = core::bind_config<PipelineConfig>(tree);
    const auto it = bound.origins.find("stages");
    const fs::path cwd = it != bound.origins.end() && it->second.kind == core::Origin::Kind::File
                             ? fs::absolute(it->second.file).parent_path()
                             : fs::current_path();
    return run_pipeline(bound.value, core::emit_config(bound.value, nullptr, {}), command_line, cwd);
  };
  return kind;
}

}  // namespace troupe::experiments
