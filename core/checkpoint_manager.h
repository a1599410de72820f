// Atomic, versioned, verified checkpoints on disk: <root>/step_<N>/ directories, a `latest`
// pointer, pruning, and recovery that skips half-written or corrupted checkpoints.
// Not what a checkpoint holds (core/checkpoint_state.h), and not multi-writer safe: one process
// (rank 0) saves into a root.
#pragma once

#include <cstdint>
#include <filesystem>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "core/checkpoint_state.h"

namespace troupe::core {

// Version of the manifest format. load() rejects any other version with DataError.
inline constexpr uint32_t kManifestVersion = 1;
// First field of manifest.bin, before the version: identifies the file.
inline constexpr std::string_view kManifestMagic = "troupe-checkpoint";

struct CheckpointOptions {
  std::filesystem::path root;  // holds step_<N>/ and `latest`; created on the first save
  int keep_last = 3;           // complete checkpoints kept after each save; 0 keeps all
  // Progress observer, called after each file is written and fsynced, with the path it was
  // written at (inside the temporary directory for checkpoint files, then <root>/latest).
  // Runs on the saving thread; an exception from it aborts the save.
  std::function<void(const std::filesystem::path&)> on_file_written;

  void validate() const;  // ConfigError: empty root or keep_last < 0
};

// Layout of one checkpoint directory step_<N>/ (N zero-padded to 8 digits):
//   <group>.pt          one torch OutputArchive per tensor group
//   <name>.optim.pt     one per optimizer (Optimizer::save)
//   rng.bin             torch generator + named std engines, when the state has any
//   manifest.json       the manifest for people (cereal JSON); not read back
//   manifest.bin        the manifest (cereal portable binary), written last: magic, version,
//                       step, creation time, extra state, group/optimizer/engine names and every
//                       file above with its byte size and CRC-32
class CheckpointManager {
 public:
  explicit CheckpointManager(CheckpointOptions options);

  // Writes `state` into a temporary directory `.tmp-step_N-<pid>`, fsyncs every file and the
  // directory, renames it to step_N (atomically swapping out an existing step_N), points
  // `latest` at it (write-temp + rename), then prunes to keep_last. Returns the step directory.
  // A crash at any point leaves every earlier complete checkpoint intact.
  // Cost: each file's bytes are built in memory once before writing (one extra copy of the
  // largest tensor group), plus one fsync per file. IoError on file-system failures, DataError
  // on an invalid state (bad names, undefined tensors, negative step).
  std::filesystem::path save(const CheckpointState& state);

  // The complete checkpoint with the highest step: manifest readable with a known version, every
  // file present with matching size and CRC-32. Broken ones are skipped with a warning; .tmp-*
  // directories are ignored; `latest` is not consulted. nullopt when none qualifies.
  std::optional<CheckpointState> load_latest() const;

  // Loads and verifies one step directory. DataError naming the directory and file on any
  // inconsistency (missing manifest, unknown version, size or CRC mismatch, unreadable archive).
  CheckpointState load(const std::filesystem::path& step_dir) const;

  // Steps whose manifest reads and whose files all exist with the listed sizes, ascending.
  // Cheap (stat only); CRC-32 is checked only by load(), which reads every byte.
  std::vector<int64_t> complete_steps() const;

  // Deletes leftover .tmp-* entries under root (from crashed saves or prunes). Call only when no
  // other process is saving into this root, e.g. at startup.
  void remove_stale_temporaries() const;

  std::filesystem::path step_dir(int64_t step) const;  // <root>/step_<N, 8 digits>
  std::optional<std::string> latest_hint() const;      // contents of `latest`, if present
  const CheckpointOptions& options() const { return options_; }

 private:
  void write_checkpoint_dir(const CheckpointState& state, const std::filesystem::path& dir) const;
  void publish(const std::filesystem::path& tmp_dir, const std::filesystem::path& final_dir) const;
  void write_latest(const std::string& dir_name) const;
  void prune(int64_t just_saved) const;
  std::vector<std::pair<int64_t, std::filesystem::path>> step_dirs() const;

  CheckpointOptions options_;
};

}  // namespace troupe::core
