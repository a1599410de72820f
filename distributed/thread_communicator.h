// N ranks of a group as threads of one process: distributed::Communicator over shared memory, so every user of
// collectives (the trainer, the PPO roles, the group relay) can be tested per rank count in one process before the
// mpirun tests. Each collective copies the ranks' inputs and meets at a barrier with a deadline: a rank that does
// not arrive (a dead thread, a rank calling a different collective) is a TimeoutError or ProtocolError naming the
// rank and the collective, and the group is broken from then on (later calls fail at once). Any device: inputs are
// read where they are, results written in place. Not for speed.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <vector>

#include "distributed/communicator.h"

namespace troupe::distributed {

// `size` communicators of one group; hand communicator r to the thread playing rank r.
std::vector<std::unique_ptr<distributed::Communicator>> make_thread_group(
    int size, std::chrono::milliseconds timeout = std::chrono::seconds(60));

// Rank `rank` of the thread group called `name` with `size` ranks, for threads of one process that find each other
// by name (e.g. the roles of an inproc PPO run forming a weight-broadcast group): the first to join makes the
// group, every rank takes its communicator once, and the name is free again once all have. ConfigError for a rank
// outside [0, size), a size that differs from the group's, or a rank taken twice.
std::unique_ptr<distributed::Communicator> join_thread_group(
    const std::string& name, int rank, int size, std::chrono::milliseconds timeout = std::chrono::seconds(60));

}  // namespace troupe::distributed
