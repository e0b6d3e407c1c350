// The proxy's admission rules, pure: which nodes may join, what of their
// HELLO is kept, and when the cluster's queue counts as full (MAX_QUEUE).
#pragma once

#include <cstdint>
#include <optional>
#include <set>
#include <string>
#include <vector>

#include "protocol/messages.h"

namespace jc::proxy {

struct JoinRules {
  std::string secret;  // CLUSTER_SECRET: nodes must prove it; empty = open cluster
  std::uint32_t max_nodes = 64;
};

// Why `hello` may not join (nullopt: it may). `nonce`: the challenge its
// connection was sent; `id_connected`: a node of that id is connected;
// `connected`: how many are.
std::optional<std::string> join_refusal(const protocol::Hello& hello, const std::string& nonce,
                                        const JoinRules& rules, bool id_connected,
                                        std::size_t connected);

// What a node says of itself reaches every node's stats, the dashboard and
// the API: only plain words are kept.
std::string plain_sandbox(const std::string& sandbox);  // "full", "user,cgroup", else "?"
std::string plain_cpus(const std::string& cpus);        // "pinned" or "shared", else "?"
std::set<std::string> plain_offers(const std::vector<std::string>& offers);
std::string plain_api_address(const std::string& address);

// MAX_QUEUE with hysteresis: full at `max` queued jobs, and again with room
// under nine tenths of it. 0: no limit.
bool queue_full(bool was_full, std::uint64_t queued, std::uint64_t max);

}  // namespace jc::proxy
