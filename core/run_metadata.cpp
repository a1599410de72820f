#include "core/run_metadata.h"

#include "core/build_info.h"
#include "core/runtime.h"

namespace troupe::core {

RunMetadata this_process_metadata() {
  RunMetadata meta;
  meta.git_sha = git_sha();
  meta.hostname = hostname();
  meta.start_time = utc_timestamp();
  meta.versions["troupe"] = troupe_version();
  return meta;
}

}  // namespace troupe::core
