// Implementation of core/logging.h.
#include "core/logging.h"

#include <spdlog/sinks/basic_file_sink.h>
#include <spdlog/sinks/stdout_color_sinks.h>
#include <spdlog/spdlog.h>

#include "core/errors.h"

namespace troupe::core {

void init_logging(const std::string& level, const std::optional<std::filesystem::path>& file, const std::string& tag) {
  std::vector<spdlog::sink_ptr> sinks;
  sinks.push_back(std::make_shared<spdlog::sinks::stderr_color_sink_mt>());
  if (file) {
    try {
      sinks.push_back(std::make_shared<spdlog::sinks::basic_file_sink_mt>(file->string(), /*truncate=*/false));
    } catch (const spdlog::spdlog_ex& e) {
      throw IoError("cannot open log file " + file->string() + ": " + e.what());
    }
  }
  auto logger = std::make_shared<spdlog::logger>("troupe", sinks.begin(), sinks.end());
  const std::string prefix = tag.empty() ? "" : "[" + tag + "] ";
  logger->set_pattern("%Y-%m-%d %H:%M:%S.%e %^%-5l%$ " + prefix + "%v");
  auto lvl = spdlog::level::from_str(level);
  logger->set_level(lvl);
  logger->flush_on(spdlog::level::warn);
  spdlog::set_default_logger(logger);
}

void flush_logging() {
  if (auto logger = spdlog::default_logger()) logger->flush();
}

}  // namespace troupe::core
