#include "reverse_proxy/admission.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "protocol/auth.h"

namespace jc::proxy {

std::optional<std::string> join_refusal(const protocol::Hello& hello, const std::string& nonce,
                                        const JoinRules& rules, bool id_connected,
                                        std::size_t connected) {
  if (hello.version != protocol::kProtocolVersion) {
    return fmt::format("protocol version {} is not {}", hello.version, protocol::kProtocolVersion);
  }
  if (!protocol::is_valid_node_id(hello.node_id)) {
    return "node id must be 1 to 64 characters of [A-Za-z0-9._-]";
  }
  if (hello.slots == 0) return "a node needs at least one slot";
  if (!rules.secret.empty() &&
      (nonce.empty() ||
       !protocol::verify_join_proof(rules.secret, nonce, hello.node_id, hello.auth))) {
    return hello.auth.empty() ? "this cluster needs CLUSTER_SECRET and the node gave no proof"
                              : "wrong CLUSTER_SECRET proof";
  }
  if (id_connected) return fmt::format("node id {} is already connected", hello.node_id);
  if (connected >= rules.max_nodes) {
    return fmt::format("MAX_NUM_NODES={} nodes are already connected", rules.max_nodes);
  }
  return std::nullopt;
}

std::string plain_sandbox(const std::string& sandbox) {
  bool plain = sandbox.size() <= 64 && std::all_of(sandbox.begin(), sandbox.end(), [](char c) {
                 return (c >= 'a' && c <= 'z') || c == ',';
               });
  return plain ? sandbox : "?";
}

std::string plain_cpus(const std::string& cpus) {
  return cpus == "pinned" || cpus == "shared" ? cpus : "?";
}

std::set<std::string> plain_offers(const std::vector<std::string>& offers) {
  // Short words of a plain alphabet, at most a few thousand.
  std::set<std::string> out;
  for (const auto& o : offers) {
    bool plain = !o.empty() && o.size() <= 100 && std::all_of(o.begin(), o.end(), [](char c) {
                   return std::isalnum(static_cast<unsigned char>(c)) || c == ':' || c == '.' ||
                          c == '_' || c == '-' || c == '+';
                 });
    if (plain && out.size() < 4096) out.insert(o);
  }
  return out;
}

std::string plain_api_address(const std::string& address) {
  return address.size() <= 300 ? address : "";
}

bool queue_full(bool was_full, std::uint64_t queued, std::uint64_t max) {
  if (max == 0) return false;
  const std::uint64_t low = max - max / 10;
  return was_full ? queued >= low : queued >= max;
}

}  // namespace jc::proxy
