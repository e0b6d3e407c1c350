// A node that is not one: a test program speaking the node protocol to a
// proxy the way an attacker's script would (its own HELLO, results it was
// never given), to show what the proxy refuses. Blocking socket, a deadline
// on every read.
#pragma once

#include <chrono>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>

#include "protocol/messages.h"

struct ssl_st;

namespace jc::test {

class RogueNode {
 public:
  // Connects to 127.0.0.1:port, or to `host` from source address `from`
  // when given (to come from an address that is not loopback).
  // With `tls_secret`, the link is TLS keyed by that secret (as a node with
  // CLUSTER_SECRET speaks it): tls_ok() says whether the handshake passed.
  explicit RogueNode(std::uint16_t port, const std::string& host = "127.0.0.1",
                     const std::string& from = "", const std::string& tls_secret = "");
  ~RogueNode();
  RogueNode(const RogueNode&) = delete;
  RogueNode& operator=(const RogueNode&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool tls_ok() const { return ssl_ != nullptr; }
  // Waits for CHALLENGE, sends HELLO as `node_id` (with the proof of
  // `secret` when not empty), returns WELCOME (nullopt: none came).
  std::optional<protocol::Welcome> join(const std::string& node_id, const std::string& secret = "");
  bool send(const protocol::Message& m);
  // The next message of type T (others are skipped), within the timeout.
  template <class T>
  std::optional<T> next(std::chrono::milliseconds timeout = std::chrono::seconds(10)) {
    auto deadline = std::chrono::steady_clock::now() + timeout;
    while (auto m = read(deadline)) {
      if (auto* t = std::get_if<T>(&*m)) return std::move(*t);
    }
    return std::nullopt;
  }

 private:
  std::optional<protocol::Message> read(std::chrono::steady_clock::time_point deadline);
  bool write_all(const std::string& bytes);
  int fd_ = -1;
  std::shared_ptr<void> context_;  // the TLS context, when TLS
  ssl_st* ssl_ = nullptr;
  std::string buffer_;
};

}  // namespace jc::test
