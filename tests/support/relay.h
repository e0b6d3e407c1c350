// A man in the middle for integration tests: a TCP relay on loopback that
// forwards every connection to a target port, keeps a copy of every byte it
// carried, and can flip one byte in the target's next chunk (as an attacker
// rewriting a frame would). One thread per connection, blocking sockets
// polled with a short timeout so that the destructor ends them.
#pragma once

#include <atomic>
#include <cstdint>
#include <memory>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

namespace jc::test {

class Relay {
 public:
  explicit Relay(std::uint16_t target_port);
  ~Relay();
  Relay(const Relay&) = delete;
  Relay& operator=(const Relay&) = delete;

  std::uint16_t port() const { return port_; }
  // Every byte carried so far, both directions, in the order read.
  std::string seen() const;
  // Flips one byte in the middle of the next chunk from the target that is
  // at least `min_bytes` long; tampered() says when it has.
  void tamper_next(std::size_t min_bytes);
  bool tampered() const { return tampered_.load(); }
  int connections() const { return connections_.load(); }
  // Cut: every connection ends and new ones are closed at once, as a
  // partition between the two ends would; cut(false) carries them again.
  void cut(bool on) { cut_ = on; }

 private:
  void accept_loop();
  void pump(int client, int target);

  std::uint16_t target_port_;
  std::uint16_t port_ = 0;
  int listen_fd_ = -1;
  std::atomic<bool> stop_{false};
  std::atomic<bool> cut_{false};
  std::atomic<std::size_t> tamper_min_{0};  // 0: off
  std::atomic<bool> tampered_{false};
  std::atomic<int> connections_{0};
  mutable std::mutex mu_;
  std::string seen_;
  std::vector<std::thread> threads_;  // the pumps; started by accept_thread_ only
  std::thread accept_thread_;
};

}  // namespace jc::test
