#include "cluster_node/proxy_link.h"

#include <algorithm>
#include <charconv>
#include <limits>

#include <fmt/format.h>

namespace jc::node {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// The proxy sends RES_REQ every REQUEST_RESULT_PERIOD at most; silence much
// longer than that means a dead link that TCP did not report.
constexpr std::chrono::milliseconds kProxyIdleTimeout{60'000};
// Replicated proxies, until the WELCOME: a healthy proxy challenges at once
// and answers a HELLO at once (welcome, refusal, or the leader's name).
// Silence this long is a proxy stalled or cut off, and another one may lead:
// the node tries the next rather than wait a minute on this one.
constexpr std::chrono::milliseconds kReplicatedHandshakeTimeout{5'000};
}  // namespace

ProxyLink::ProxyLink(asio::io_context& io, std::vector<Address> addresses, Handlers handlers,
                     std::optional<net::TlsLink> tls, Lookup lookup)
    : io_(io),
      addresses_(std::move(addresses)),
      handlers_(std::move(handlers)),
      tls_(std::move(tls)),
      log_(log::get("link")),
      resolver_(io),
      retry_timer_(io),
      lookup_(std::move(lookup)),
      ips_(addresses_.size()),
      refresh_timer_(io),
      patience_timer_(io),
      lost_at_(addresses_.size(), std::numeric_limits<std::int64_t>::min() / 2),
      literal_(addresses_.size(), false) {
  // An address given as an IP needs no look-up, now or later.
  for (std::size_t k = 0; k < addresses_.size(); ++k) {
    error_code ec;
    auto ip = asio::ip::make_address(addresses_[k].host, ec);
    unsigned short port = 0;
    const auto& p = addresses_[k].port;
    if (ec || std::from_chars(p.data(), p.data() + p.size(), port).ec != std::errc()) continue;
    literal_[k] = true;
    ips_.resolved(k, {asio::ip::tcp::endpoint(ip, port)}, steady_ms(), false);
  }
  if (replicated() && !lookup_) {
    lookups_ = std::make_unique<net::DetachedLookups>(io_);
    lookup_ = [this](std::size_t, const std::string& host, const std::string& port,
                     net::NameResolvers::Done done) {
      lookups_->resolve(host, port, std::move(done));
    };
  }
}

ProxyLink::~ProxyLink() = default;

void ProxyLink::start() {
  if (replicated()) refresh_names();
  connect();
}

void ProxyLink::stop() {
  stopped_ = true;
  retry_timer_.cancel();
  refresh_timer_.cancel();
  patience_timer_.cancel();
  resolver_.cancel();
  if (conn_) conn_->close("node shutting down");
}

void ProxyLink::send(const protocol::Message& m) {
  if (connected()) conn_->send(m);
}

void ProxyLink::follow(const std::string& leader) {
  following_ = true;
  backoff_ms_ = kMinBackoffMs;
  hint_.reset();
  if (leader.empty()) return;  // an election: the next address, after the short backoff
  auto colon = leader.rfind(':');
  if (colon == std::string::npos) return;
  hint_ = Address{leader.substr(0, colon), leader.substr(colon + 1)};
}

void ProxyLink::joined(std::int64_t heartbeat_ms) {
  backoff_ms_ = kMinBackoffMs;
  if (!conn_) return;
  conn_->set_idle_timeout(heartbeat_ms > 0
                              ? std::chrono::milliseconds(std::max<std::int64_t>(1000, 4 * heartbeat_ms))
                              : kProxyIdleTimeout);
}

void ProxyLink::connect() {
  if (stopped_) return;
  Address target;
  std::size_t k = addresses_.size();  // a named leader not among the addresses
  if (hint_) {
    target = *hint_;
    hint_.reset();
    for (std::size_t i = 0; i < addresses_.size(); ++i) {
      if (addresses_[i].host == target.host && addresses_[i].port == target.port) k = i;
    }
  } else {
    k = next_ % addresses_.size();
    target = addresses_[k];
    next_ = (next_ + 1) % addresses_.size();
  }
  current_text_ = target.text();
  if (replicated()) {
    connect_replicated(target, k);
    return;
  }
  const std::string host_ = target.host;
  const std::string port_ = target.port;
  resolver_.async_resolve(
      host_, port_, [this, host_, port_](const error_code& ec, asio::ip::tcp::resolver::results_type results) {
        if (stopped_) return;
        if (ec) {
          if (!logged_unreachable_)
            log_->warn("cannot resolve proxy {}:{}: {}", host_, port_, ec.message());
          logged_unreachable_ = true;
          retry_later();
          return;
        }
        dial(Address{host_, port_}, std::nullopt, results);
      });
}

void ProxyLink::connect_replicated(const Address& target, std::size_t k) {
  if (k < addresses_.size() && !ips_.dial(k).empty()) {
    const auto& known = ips_.dial(k);
    dial(target, k,
         asio::ip::tcp::resolver::results_type::create(known.begin(), known.end(), target.host,
                                                       target.port));
    return;
  }
  waiting_ = Waiting{k, target};
  if (k >= addresses_.size() || ips_.start_lookup(k, steady_ms(), true)) lookup(k, target);
  patience_timer_.expires_after(std::chrono::milliseconds(ProxyIps::kLookupPatienceMs));
  patience_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopped_ || !waiting_) return;
    if (!logged_unreachable_) {
      log_->warn("no answer for proxy {} within {} ms: trying the next address",
                 waiting_->target.text(), ProxyIps::kLookupPatienceMs);
    }
    logged_unreachable_ = true;
    waiting_.reset();
    retry_later();
  });
}

void ProxyLink::lookup(std::size_t k, const Address& target) {
  lookup_(k, target.host, target.port,
          [this, k, target](const error_code& ec, asio::ip::tcp::resolver::results_type results) {
            if (!stopped_) looked_up(k, target, ec, results);
          });
}

void ProxyLink::looked_up(std::size_t k, const Address& target, const error_code& ec,
                          const asio::ip::tcp::resolver::results_type& results) {
  ProxyIps::Endpoints endpoints;
  if (!ec) {
    for (const auto& entry : results) endpoints.push_back(entry.endpoint());
  }
  if (k < addresses_.size()) {
    if (ec == asio::error::host_not_found) {
      ips_.gone(k, steady_ms());
    } else {
      ips_.resolved(k, endpoints, steady_ms(), ec || endpoints.empty());
    }
  }
  if (ec && !logged_unreachable_) {
    log_->warn("cannot resolve proxy {}: {}", target.text(), ec.message());
  }
  if (!waiting_ || waiting_->k != k || waiting_->target.text() != target.text()) return;
  waiting_.reset();
  patience_timer_.cancel();
  const ProxyIps::Endpoints& known = k < addresses_.size() ? ips_.dial(k) : endpoints;
  if (known.empty()) {
    logged_unreachable_ = true;
    retry_later();
    return;
  }
  dial(target, k,
       asio::ip::tcp::resolver::results_type::create(known.begin(), known.end(), target.host,
                                                     target.port));
}

void ProxyLink::refresh_names() {
  if (stopped_) return;
  const TimeMs now = steady_ms();
  for (std::size_t k = 0; k < addresses_.size(); ++k) {
    if (literal_[k] && !ips_.dial(k).empty()) continue;
    if (ips_.start_lookup(k, now)) lookup(k, addresses_[k]);
  }
  refresh_timer_.expires_after(std::chrono::milliseconds(ProxyIps::kLookupPatienceMs));
  refresh_timer_.async_wait([this](const error_code& ec) {
    if (!ec) refresh_names();
  });
}

void ProxyLink::dial(const Address& target, std::optional<std::size_t> k,
                     const asio::ip::tcp::resolver::results_type& results) {
  const std::string host_ = target.host;
  const std::string port_ = target.port;
  auto socket = std::make_shared<asio::ip::tcp::socket>(io_);
  // A host cut off by the network answers no SYN: without a deadline
  // the connect waits for the kernel's (minutes), while another proxy
  // may lead already.
  auto deadline = std::make_shared<asio::steady_timer>(io_);
  const bool suspect = k && *k < lost_at_.size() &&
                       (steady_ms() - lost_at_[*k] < kSuspectMs || ips_.doubtful(*k));
  deadline->expires_after(!replicated() ? kConnectTimeout
                          : suspect     ? kSuspectConnectTimeout
                                        : kReplicatedConnectTimeout);
  deadline->async_wait([socket](const error_code& ec) {
    if (ec) return;
    error_code ignored;
    socket->close(ignored);
  });
  asio::async_connect(
      *socket, results,
      [this, socket, deadline, host_, port_, k](const error_code& ec2,
                                                const asio::ip::tcp::endpoint& ep) {
        deadline->cancel();
        if (stopped_) return;
        if (ec2) {
          if (!logged_unreachable_) {
            log_->warn("proxy unreachable at {}:{}: {} (retrying with backoff)", host_, port_,
                       ec2.message());
          }
          logged_unreachable_ = true;
          // The IPs kept for its name may be old (a proxy back elsewhere).
          if (k && *k < addresses_.size()) ips_.connect_failed(*k);
          retry_later();
          return;
        }
        logged_unreachable_ = false;
        std::string peer = fmt::format("{}:{}", ep.address().to_string(), ep.port());
        log_->info("connected to proxy peer={}", peer);
        // Until the WELCOME sets the leader's heartbeat-based timeout.
        auto idle = replicated() ? kReplicatedHandshakeTimeout : kProxyIdleTimeout;
        if (tls_) {
          net::TlsLink tls = *tls_;
          if (tls.verify_host.empty()) tls.verify_host = host_;
          conn_ = std::make_shared<net::FrameConnection>(std::move(*socket), peer, idle,
                                                         std::move(tls));
        } else {
          conn_ = std::make_shared<net::FrameConnection>(std::move(*socket), peer, idle);
        }
        heard_ = false;
        // The proxy the node chose: a large result still arriving from
        // it is a sign of life.
        conn_->count_partial_frames();
        auto conn = conn_;
        conn_->start(
            [this, conn](protocol::Message&& m) {
              // A proxy that challenged is alive: its WELCOME may wait
              // for a log entry to commit, so the minute applies again.
              if (!heard_ && replicated()) conn->set_idle_timeout(kProxyIdleTimeout);
              heard_ = true;
              handlers_.on_message(std::move(m));
            },
            [this, conn, k](const std::string& reason) {
              if (stopped_) return;
              if (following_) {
                // Sent on by a proxy that does not lead: not a loss.
                following_ = false;
                if (conn_ == conn) conn_.reset();
                handlers_.on_closed();
                retry_soon();
                return;
              }
              if (k && *k < lost_at_.size()) lost_at_[*k] = steady_ms();
              if (!heard_ && !tls_) {
                log_->warn(
                    "lost the proxy before its first frame reason=\"{}\" (a proxy "
                    "with CLUSTER_SECRET or TLS_* speaks TLS only: set the same on "
                    "this node)",
                    reason);
              } else {
                log_->warn("lost the proxy reason=\"{}\"", reason);
              }
              if (conn_ == conn) conn_.reset();
              handlers_.on_closed();
              retry_later();
            });
        handlers_.on_connected();
      });
}

void ProxyLink::retry_soon() {
  if (stopped_) return;
  // The leader a proxy named: at once. No leader yet (an election): the
  // next address after a short pause.
  retry_timer_.expires_after(std::chrono::milliseconds(hint_ ? 0 : kMinBackoffMs));
  retry_timer_.async_wait([this](const error_code& ec) {
    if (!ec) connect();
  });
}

void ProxyLink::retry_later() {
  if (stopped_) return;
  // Replicated proxies: another one may lead by now; the pauses stay short.
  int max_backoff = addresses_.size() > 1 ? kMaxReplicatedBackoffMs : kMaxBackoffMs;
  backoff_ms_ = std::min(backoff_ms_, max_backoff);
  std::uniform_int_distribution<int> spread(-backoff_ms_ / 5, backoff_ms_ / 5);
  int delay = backoff_ms_ + spread(jitter_);
  backoff_ms_ = std::min(backoff_ms_ * 2, max_backoff);
  retry_timer_.expires_after(std::chrono::milliseconds(delay));
  retry_timer_.async_wait([this](const error_code& ec) {
    if (!ec) connect();
  });
}

}  // namespace jc::node
