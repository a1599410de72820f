// `troupe data clean CONFIG [key=value...]`: the data-cleaning pipeline of dataprep/clean_pipeline.h (stages in a YAML
// config: normalize, html, urls, mojibake, whitespace, pii, gopher_quality, gopher_repetition, decontaminate, dedup,
// stats). Prints the stage report, writes the cleaned JSONL and a run log (`--log`, default OUTPUT.log.h5: table
// clean_stages, scalars clean/*, the config text and the corpus statistics as attributes), with a progress bar on
// stderr unless --quiet.
#include <fmt/format.h>

#include <CLI/CLI.hpp>
#include <filesystem>
#include <fstream>
#include <iostream>
#include <iterator>

#include "cli/commands.h"
#include "core/errors.h"
#include "core/run_log.h"
#include "core/run_metadata.h"
#include "dataprep/clean_pipeline.h"

namespace troupe::cli {

void add_data_clean_command(CLI::App& data, int& exit_code) {
  struct Args {
    std::string config, log;
    std::vector<std::string> overrides;
    bool quiet = false;
  };
  auto args = std::make_shared<Args>();
  auto* cmd = data.add_subcommand(
      "clean",
      "Clean text or JSONL documents through the stages of a YAML config (normalisation, markup, PII, quality "
      "filters, decontamination, de-duplication, statistics) with a per-stage report");
  cmd->add_option("config", args->config, "the cleaning config (YAML)")->required()->check(CLI::ExistingFile);
  cmd->add_option("overrides", args->overrides, "key=value overrides (e.g. threads=2 output=out.jsonl)");
  cmd->add_option("--log", args->log, "run log (HDF5) of the report (default: OUTPUT.log.h5)");
  cmd->add_flag("--quiet", args->quiet, "no progress bar");
  cmd->callback([args, &exit_code] {
    namespace fs = std::filesystem;
    const dataprep::CleanConfig config = dataprep::load_clean_config(args->config, args->overrides);
    const fs::path log_file = args->log.empty() ? fs::path(config.output + ".log.h5") : fs::path(args->log);
    if (!log_file.parent_path().empty()) fs::create_directories(log_file.parent_path());
    if (fs::exists(log_file)) fs::remove(log_file);
    std::ifstream in(args->config);
    std::string text((std::istreambuf_iterator<char>(in)), std::istreambuf_iterator<char>());
    for (const auto& o : args->overrides) text += "\n# override: " + o;
    core::RunLog log = core::RunLog::create(log_file, text, core::this_process_metadata());
    dataprep::CleanProgressFn progress;
    if (!args->quiet) {
      progress = [](const dataprep::CleanProgress& p) {
        const double total = static_cast<double>(std::max<int64_t>(p.input_bytes, 1));
        const double frac = p.final_pass ? 1.0 : std::min(1.0, static_cast<double>(p.bytes_read) / total);
        const int filled = static_cast<int>(frac * 30);
        std::cerr << fmt::format("\rclean [{}{}] {:3.0f}%  {} read, {} written{}", std::string(filled, '#'),
                                 std::string(30 - filled, '.'), 100 * frac, p.documents_read, p.documents_written,
                                 p.final_pass ? " (writing the de-duplicated documents)" : "")
                  << std::flush;
      };
    }
    const dataprep::CleanReport report = dataprep::run_clean(config, progress);
    if (!args->quiet) std::cerr << "\n";
    report.write_report(log);
    log.set_attribute("status", "finished");
    log.close();
    std::cout << report.summary();
    std::cout << fmt::format("{} of {} documents kept -> {} (report: {})\n", report.documents_out, report.documents_in,
                             config.output, log_file.string());
    exit_code = 0;
  });
}

}  // namespace troupe::cli
