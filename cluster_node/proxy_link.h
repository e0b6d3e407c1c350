// The node's connection to the reverse proxy: connects (re-resolving the host
// each time, so a proxy container that appears late is found), reconnects
// with capped exponential backoff and jitter, and hands frames to its owner.
// The handshake itself (HELLO / WELCOME) is the owner's business.
// Runs on the node's io_context thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>

#include "common/log.h"
#include "net/asio.h"
#include "net/frame_connection.h"

namespace jc::node {

class ProxyLink {
 public:
  struct Handlers {
    std::function<void()> on_connected;  // send HELLO now
    std::function<void(protocol::Message&&)> on_message;
    std::function<void()> on_closed;
  };

  // `tls`: the client side of TLS, or none for a plaintext link.
  ProxyLink(boost::asio::io_context& io, std::string host, std::string port, Handlers handlers,
            std::optional<net::TlsLink> tls = std::nullopt);
  void start();
  void stop();
  void send(const protocol::Message& m);
  bool connected() const { return conn_ && conn_->open(); }
  // Called once the proxy accepted the handshake: the next loss retries fast.
  void reset_backoff() { backoff_ms_ = kMinBackoffMs; }
  // A refused handshake: wait the longest backoff before trying again.
  void refused() { backoff_ms_ = kMaxBackoffMs; }

 private:
  static constexpr int kMinBackoffMs = 100;
  static constexpr int kMaxBackoffMs = 5000;

  void connect();
  void retry_later();

  boost::asio::io_context& io_;
  std::string host_;
  std::string port_;
  Handlers handlers_;
  std::optional<net::TlsLink> tls_;
  bool heard_ = false;  // a frame came on the current connection
  std::shared_ptr<spdlog::logger> log_;
  boost::asio::ip::tcp::resolver resolver_;
  boost::asio::steady_timer retry_timer_;
  std::shared_ptr<net::FrameConnection> conn_;
  int backoff_ms_ = kMinBackoffMs;
  std::mt19937 jitter_{std::random_device{}()};
  bool stopped_ = false;
  bool logged_unreachable_ = false;
};

}  // namespace jc::node
