// The node's connection to the reverse proxy: connects (re-resolving the host
// each time, so a proxy container that appears late is found), reconnects
// with capped exponential backoff and jitter, and hands frames to its owner.
// The handshake itself (HELLO / WELCOME) is the owner's business.
//
// With replicated proxies (PROXY_ADDRESSES) it holds every address: a lost
// link tries the next one, and a proxy that does not lead names the leader
// (follow()), which is dialled at once.
// Runs on the node's io_context thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

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
  struct Address {
    std::string host;
    std::string port;
    std::string text() const { return host + ":" + port; }
  };
  ProxyLink(boost::asio::io_context& io, std::vector<Address> addresses, Handlers handlers,
            std::optional<net::TlsLink> tls = std::nullopt);
  void start();
  void stop();
  void send(const protocol::Message& m);
  bool connected() const { return conn_ && conn_->open(); }
  // The proxy accepted the handshake: the next loss retries fast, and the
  // link's silence timeout becomes a few missed heartbeats (a replicated
  // leader's `heartbeat_ms`: one cut off by the network is silent, and the
  // node looks for the new one), or a minute without heartbeats.
  void joined(std::int64_t heartbeat_ms);
  // A refused handshake: wait the longest backoff before trying again.
  void refused() { backoff_ms_ = kMaxBackoffMs; }
  // A proxy that does not lead named the leader ("" while an election runs):
  // the next attempt goes there (or to the next address), soon.
  void follow(const std::string& leader);
  const std::string& current() const { return current_text_; }
  bool replicated() const { return addresses_.size() > 1; }

 private:
  static constexpr int kMinBackoffMs = 100;
  static constexpr int kMaxBackoffMs = 5000;

  void connect();
  void retry_later();
  void retry_soon();
  static constexpr int kMaxReplicatedBackoffMs = 400;
  static constexpr std::chrono::milliseconds kConnectTimeout{10'000};
  static constexpr std::chrono::milliseconds kReplicatedConnectTimeout{1'000};

  boost::asio::io_context& io_;
  std::vector<Address> addresses_;
  std::size_t next_ = 0;              // the address tried next
  std::optional<Address> hint_;       // the leader a proxy named
  bool following_ = false;            // the link ends because a proxy sent the node on
  std::string current_text_;
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
