// What a node's shell does after each call into its core
// (NodeServer::flush), for unit tests of the core: commit the stage (synced
// when acknowledgements wait for that), then take what leaves. Results
// stored by an unsynced write are acknowledged by a second turn, whose
// commit is synced.
#pragma once

#include <doctest/doctest.h>

#include <vector>

#include "cluster_node/node_core.h"

namespace jc::test {

inline std::vector<protocol::Message> node_turn(node::NodeCore& core) {
  std::vector<protocol::Message> out;
  for (int turn = 0; turn < 2; ++turn) {
    if (core.wants_sync()) core.staged().require_barrier();
    const bool synced = core.staged().commit_syncs();
    REQUIRE(core.staged().commit().ok());
    core.committed(synced);
    for (auto& m : core.take_outbox()) out.push_back(std::move(m));
    if (!core.wants_sync()) break;
  }
  return out;
}

}  // namespace jc::test
