// The cluster picture as JSON: one shape for the proxy's /api/state and a
// node's `stats` in JSON mode, so a script can use either.
#pragma once

#include <nlohmann/json.hpp>

#include "protocol/messages.h"

namespace jc::protocol {

// Every field of ClusterStats, the nodes with their state ("up"/"down"),
// and `time_ms` (the proxy's clock when it answered).
nlohmann::json cluster_state_json(const ClusterStats& s, std::int64_t time_ms);
// How many of its nodes are connected.
std::size_t connected_count(const ClusterStats& s);

}  // namespace jc::protocol
