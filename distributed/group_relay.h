// Requests inside a role's data-parallel group: rank 0 talks to the controller over ZeroMQ and relays every
// request to the other ranks of its group through the group's communicator (one broadcast of the encoded
// message); all ranks then run the same handler, whose collectives (all-reduced gradients, gathered rows) keep
// them in step. Only rank 0's reply goes back. Not a transport between roles (distributed/transport.h).
#pragma once

#include <chrono>

#include "distributed/communicator.h"
#include "distributed/message.h"
#include "distributed/transport.h"

namespace troupe::distributed {

// Root: sends `message` to every other rank. Others: receive_request returns it. Cost: the message is encoded
// once and broadcast as two collectives (sizes, then bytes).
void broadcast_request(distributed::Communicator& comm, const Message& message);
Message receive_request(distributed::Communicator& comm);

// The worker loop of one rank of a group. Rank 0 serves `server` (others pass nullptr) and relays each request
// before handling it; while idle it relays a heartbeat every `keepalive`, so the others' receive never reaches the
// communicator's deadline unless rank 0 is gone. Ends on kShutdown (relayed to all) or options.should_stop.
void serve_group(distributed::Communicator& comm, Server* server, const Handler& handler, const ServeOptions& options,
                 std::chrono::milliseconds keepalive = std::chrono::seconds(5));

}  // namespace troupe::distributed
