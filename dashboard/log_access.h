// Reading a run log that may be live: RunLogReader opens without file locking, and a read that races the writer's
// flush can throw IoError; with_log retries the whole read a few times. Not a cache: each call reopens the file.
#pragma once

#include <filesystem>
#include <functional>

#include "core/run_log.h"

namespace troupe::dashboard {

// Opens `file` and runs `body` on it; on IoError reopens and runs it again, up to 5 attempts 5 ms apart (a flush
// takes well under a millisecond), then rethrows the last error.
void with_log(const std::filesystem::path& file, const std::function<void(const core::RunLogReader&)>& body);

}  // namespace troupe::dashboard
