// A process-wide progress counter. Code that completes a unit of real work ticks it: a decoding step, a minibatch
// forward/backward, a collective, a request served. A worker's heartbeat (distributed/heartbeat.h) publishes the
// count next to its own beat number, so that whoever waits on the worker can tell three states apart: dead (the
// process is gone), frozen (beats stop: SIGSTOP, a whole-process deadlock) and stuck (beats go on but the count
// stands still while the worker owes a reply: an infinite loop, a collective waiting on a lost peer, a dropped
// socket). Ticking is one relaxed atomic increment, cheap enough for every decoding step.
#pragma once

#include <cstdint>

namespace troupe::core {

void progress_tick();
uint64_t progress_count();

}  // namespace troupe::core
