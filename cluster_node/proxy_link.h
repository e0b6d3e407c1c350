// The node's connection to the reverse proxy: connects (re-resolving the host
// each time, so a proxy container that appears late is found), reconnects
// with capped exponential backoff and jitter, and hands frames to its owner.
// The handshake itself (HELLO / WELCOME) is the owner's business.
//
// With replicated proxies (PROXY_ADDRESSES) it holds every address: a lost
// link tries the next one, and a proxy that does not lead names the leader
// (follow()), which is dialled at once. It keeps every address's name
// looked up and dials from the last answer (proxy_ips.h), so a DNS that
// stops answering when a proxy dies does not keep the node from the new
// leader; a name without an answer gets half a second before the next
// address.
// Runs on the node's io_context thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <random>
#include <string>
#include <vector>

#include "cluster_node/proxy_ips.h"
#include "common/log.h"
#include "net/asio.h"
#include "net/frame_connection.h"
#include "net/name_resolvers.h"

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
  // Replicated proxies: looks `host` up for address k (its index in
  // `addresses`; addresses.size() for a leader's name not among them),
  // calling `done` on the link's io_context. The default looks each name
  // up on a thread of its own (net::DetachedLookups); tests give their own.
  using Lookup = std::function<void(std::size_t k, const std::string& host,
                                    const std::string& port, net::NameResolvers::Done done)>;
  ProxyLink(boost::asio::io_context& io, std::vector<Address> addresses, Handlers handlers,
            std::optional<net::TlsLink> tls = std::nullopt, Lookup lookup = {});
  ~ProxyLink();
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
  // Replicated proxies: dials `target` (address k) from its last answer,
  // or looks it up first and waits for at most ProxyIps::kLookupPatienceMs.
  void connect_replicated(const Address& target, std::size_t k);
  void lookup(std::size_t k, const Address& target);
  void looked_up(std::size_t k, const Address& target, const boost::system::error_code& ec,
                 const boost::asio::ip::tcp::resolver::results_type& results);
  // Every ProxyIps::kLookupPatienceMs: the names whose answer is old are
  // looked up again.
  void refresh_names();
  void dial(const Address& target, std::optional<std::size_t> k,
            const boost::asio::ip::tcp::resolver::results_type& results);
  void retry_later();
  void retry_soon();
  static constexpr int kMaxReplicatedBackoffMs = 400;
  static constexpr std::chrono::milliseconds kConnectTimeout{10'000};
  static constexpr std::chrono::milliseconds kReplicatedConnectTimeout{1'000};
  // A proxy this node lost less than kSuspectMs ago may be dead: its old IP
  // answers no SYN. A live one on the cluster's network accepts in far less
  // than kSuspectConnectTimeout, so a dial to it, sent there by a follower
  // that has not noticed the death yet, costs that at most. The same holds
  // for IPs of a name the DNS last said is gone (ProxyIps::gone).
  static constexpr std::int64_t kSuspectMs = 3'000;
  static constexpr std::chrono::milliseconds kSuspectConnectTimeout{250};

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
  boost::asio::ip::tcp::resolver resolver_;  // one proxy: looked up at every dial
  boost::asio::steady_timer retry_timer_;
  // Replicated proxies.
  std::unique_ptr<net::DetachedLookups> lookups_;  // the default lookup_
  Lookup lookup_;
  ProxyIps ips_;
  boost::asio::steady_timer refresh_timer_;
  boost::asio::steady_timer patience_timer_;
  struct Waiting {
    std::size_t k;
    Address target;
  };
  std::optional<Waiting> waiting_;  // a dial waiting for a name's answer
  std::vector<std::int64_t> lost_at_;  // per address: when its link last ended (steady ms)
  std::vector<bool> literal_;          // per address: given as an IP
  std::shared_ptr<net::FrameConnection> conn_;
  int backoff_ms_ = kMinBackoffMs;
  std::mt19937 jitter_{std::random_device{}()};
  bool stopped_ = false;
  bool logged_unreachable_ = false;
};

}  // namespace jc::node
