// Membership: what the proxy (the leader, with replicated proxies) knows of
// each node: its connection, slots, the jobs it holds, its last INFO and its
// rate of results. Volatile: rebuilt from HELLOs and the job records after a
// start or a take-over; the job records (the job book) are the durable part.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>

#include "common/hash_maps.h"
#include "common/time.h"
#include "protocol/messages.h"
#include "reverse_proxy/node_rates.h"

namespace jc::proxy {

struct NodeEntry {
  bool connected = false;
  std::uint32_t slots = 0;
  std::string address;
  std::string api_address;  // its judge0-compatible API, "" without one
  std::string sandbox;  // protections of its run jobs, from HELLO
  std::string cpus;     // "pinned" or "shared", from HELLO
  std::set<std::string> offers;  // what it runs, from HELLO ("lang:71", "label:gpu")
  // The tickets of the jobs it holds, kept inline (no heap block a job).
  TicketSet held;
  protocol::Info info;
  TimeMs last_heard = 0;
  TimeMs lost_since = 0;  // when it disconnected (or the proxy started)
  bool draining = false;  // takes no new jobs; leaves once it delivered the rest
  std::uint64_t finished = 0;
  NodeRate rate;  // its results per second, for its adaptive prefetch

  // up, suspect (quiet past half NODE_TIMEOUT), draining, dead, left.
  std::string state(TimeMs now, TimeMs node_timeout_ms) const {
    if (!connected) return draining ? "left" : "dead";
    if (draining) return "draining";
    if (now - last_heard > node_timeout_ms / 2) return "suspect";
    return "up";
  }
};

using NodeTable = std::map<std::string, NodeEntry>;

}  // namespace jc::proxy
