// Cluster membership proof: when CLUSTER_SECRET is set, a node proves it
// knows the secret by answering the proxy's random challenge with
// HMAC-SHA256(secret, "jobcluster-join|" nonce "|" node_id). The secret
// never crosses the wire, and a recorded proof is useless for another
// challenge. Pure functions over OpenSSL's HMAC.
#pragma once

#include <string>
#include <string_view>

namespace jc::protocol {

// Hex of the proof.
std::string join_proof(std::string_view secret, std::string_view nonce, std::string_view node_id);
// Constant-time comparison with the expected proof.
bool verify_join_proof(std::string_view secret, std::string_view nonce, std::string_view node_id,
                       std::string_view proof);
// 32 random bytes, hex-encoded.
std::string random_nonce();
// 66 random bits as 11 characters of [A-Za-z0-9_-] (base64url), from the
// same cryptographic source: the part of a ticket nobody can guess.
std::string random_ticket_part();

}  // namespace jc::protocol
