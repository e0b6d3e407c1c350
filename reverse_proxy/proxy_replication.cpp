// Replicated proxies: following the log's leadership (taking over, stepping
// down, handing over), heartbeats to nodes, the links to peer proxies
// (their PEER_HELLO, dialling them) and what the status pages show of the
// replication.
#include "reverse_proxy/proxy_server.h"

#include <algorithm>
#include <charconv>
#include <mutex>

#include <fmt/format.h>

#include "protocol/auth.h"
#include "protocol/codec.h"
#include "replication/peer_transport.h"

namespace jc::proxy {

namespace asio = boost::asio;
using boost::system::error_code;
using std::chrono::milliseconds;

namespace {

using detail::is_loopback;

}  // namespace

void ProxyServer::on_log_status(const replication::LogStatus& st) {
  if (stopping_) return;
  log_->info("raft role={} term={} leader={}", replication::role_name(st.role), st.term,
             st.leader.empty() ? "-" : st.leader);
  if (st.role == replication::Role::leader) {
    if (term_ == st.term && (core_ || taking_over_)) return;
    if (core_ || taking_over_) step_down("a new term began", false);
    take_over(st.term);
  } else if (core_ || taking_over_) {
    step_down(st.leader.empty() ? "no longer the leader"
                                : "no longer the leader (the leader is " + st.leader + ")");
  }
}

void ProxyServer::take_over(std::uint64_t term) {
  // The core is loaded from the store once every entry of earlier terms is
  // applied here: a barrier commits an entry of this term after them.
  taking_over_ = true;
  term_ = term;
  std::uint64_t generation = ++generation_;
  auto started = std::chrono::steady_clock::now();
  bool ok = raft_->barrier([this, generation, term, started](bool ok) {
    if (generation != generation_) return;
    taking_over_ = false;
    if (!ok) {
      term_ = 0;
      log_->info("lost leadership before taking over term={}", term);
      return;
    }
    if (machine_->behind()) {
      term_ = 0;
      raft_->hand_over("this proxy's store refuses writes (a full disk?)");
      return;
    }
    ProxyOptions options = config_.core;
    // A new id for every leadership: nodes then send again what the
    // previous leader did not acknowledge, and ask again what they wait for.
    options.proxy_id = fmt::format("{}#{}", config_.peers[config_.self - 1], term);
    options.proxies = config_.peers;
    options.heartbeat_ms = config_.node_heartbeat_ms;
    core_ = std::make_unique<ProxyCore>(store_, options);
    core_->replication_stats = [this](protocol::ClusterStats& s) { fill_replication_stats(s); };
    if (Status s = core_->recover(now_ms()); !s.ok()) {
      log_->error("cannot load the job book to lead: {}", s.to_string());
      core_.reset();
      term_ = 0;
      return;
    }
    ++elections_won_;
    auto ms = std::chrono::duration_cast<milliseconds>(std::chrono::steady_clock::now() - started);
    log_->info("leading term={} (took over in {} ms, applied index {})", term, ms.count(),
               machine_->applied());
    core_->staged().landed();
    start_leading_timers();
    kick_dispatch();
    schedule_flush();
  });
  if (!ok) {
    taking_over_ = false;
    term_ = 0;
  }
}

void ProxyServer::step_down(const std::string& why, bool hand_over) {
  ++generation_;
  bool was_leading = core_ != nullptr;
  taking_over_ = false;
  term_ = 0;
  commit_->abandon();
  core_.reset();
  dispatch_timer_.cancel();
  exchange_timer_.cancel();
  delay_timer_.cancel();
  delay_timer_at_ = 0;
  sweep_timer_.cancel();
  heartbeat_timer_.cancel();
  // Nodes go to the new leader; what they sent here and was not
  // acknowledged they send there.
  std::vector<std::shared_ptr<net::FrameConnection>> closing;
  for (auto& [id, session] : sessions_) closing.push_back(session.conn);
  sessions_.clear();
  by_node_.clear();
  for (auto& conn : closing) conn->close(why);
  if (was_leading) log_->warn("stepped down: {}", why);
  // Still the leader as far as the log goes (a local write failed, the log
  // refused an entry): another proxy must serve, or no one would.
  if (hand_over) raft_->hand_over(why.c_str());
}

// Replicated proxies, every 500 ms: write what the store refused before,
// and hand leadership over if this proxy leads without serving (its core
// could not be loaded) for more than a second.
void ProxyServer::upkeep() {
  if (stopping_ || !raft_) return;
  if (machine_->behind()) machine_->retry();
  auto st = raft_->status();
  bool idle_leader = st.role == replication::Role::leader && !core_ && !taking_over_;
  TimeMs now = now_ms();
  // Every peer's name is kept looked up while DNS answers: when a proxy
  // dies, the survivors dial each other and check each other's PEER_HELLO
  // from these answers, not from a DNS that may then not answer for tens
  // of seconds (seen with podman's, after a container is killed).
  if (now - peer_names_refreshed_ >= PeerAddresses::kFreshMs / 2) {
    peer_names_refreshed_ = now;
    for (std::size_t k = 0; k < config_.peers.size(); ++k) {
      if (k + 1 != config_.self) resolve_peer(k);
    }
  }
  if (!idle_leader) {
    idle_leader_since_ = 0;
  } else if (idle_leader_since_ == 0) {
    idle_leader_since_ = now;
  } else if (now - idle_leader_since_ > 1000) {
    raft_->hand_over("this proxy leads the log but cannot serve");
    idle_leader_since_ = now;
  }
  upkeep_timer_.expires_after(milliseconds(500));
  upkeep_timer_.async_wait([this](const error_code& ec) {
    if (!ec) upkeep();
  });
}

void ProxyServer::send_heartbeats() {
  if (!core_ || stopping_) return;
  protocol::Heartbeat beat{term_};
  for (auto& [id, session] : sessions_) {
    if (!session.node_id.empty()) session.conn->send(beat);
  }
  heartbeat_timer_.expires_after(milliseconds(config_.node_heartbeat_ms));
  heartbeat_timer_.async_wait([this](const error_code& ec) {
    if (!ec) send_heartbeats();
  });
}

std::string ProxyServer::leader_hint() const {
  if (!raft_) return "";
  auto st = raft_->status();
  // A follower that has not heard its leader for a few heartbeats names
  // none: the leader may have just died, and a node sent there would spend
  // its connect's limit on it while the others elect (seen in the compose
  // loop: followers named the killed leader for about 0.3 s).
  if (st.role == replication::Role::follower && st.leader_silent_ms > 3 * raft_heartbeat_ms()) {
    return "";
  }
  return st.leader;
}

void ProxyServer::on_peer_hello(std::uint64_t id, protocol::PeerHello& hello) {
  auto it = sessions_.find(id);
  Session& s = it->second;
  std::string why;
  if (hello.version != protocol::kProtocolVersion) {
    why = fmt::format("peer proxy speaks protocol {} (this one {})", hello.version,
                      protocol::kProtocolVersion);
  } else if (loopback_only() && !is_loopback(s.address)) {
    why = "protected mode: peer proxies from loopback addresses only; set the same CLUSTER_SECRET "
          "on every proxy";
  } else if (hello.id == 0 || hello.id > config_.peers.size() ||
             config_.peers[hello.id - 1] != hello.address || hello.id == config_.self) {
    why = fmt::format("peer proxy {} '{}' is not another entry of PROXY_PEERS", hello.id,
                      protocol::escape_sample(hello.address));
  } else if (!config_.core.secret.empty() &&
             !protocol::verify_join_proof(config_.core.secret, s.nonce, "proxy:" + hello.address,
                                          hello.auth)) {
    why = "peer proxy failed to prove CLUSTER_SECRET";
  } else {
    // A node knows the secret (or holds a certificate of the same CA) too:
    // a proxy must also come from the address its PROXY_PEERS entry names.
    switch (peer_address_check(hello.id - 1, s.address)) {
      case PeerAddresses::Verdict::kMatches:
        break;
      case PeerAddresses::Verdict::kRefresh:
        resolve_peer(hello.id - 1);  // in the background
        break;
      case PeerAddresses::Verdict::kDiffers:
        why = fmt::format("peer proxy {} connects from {}, not from its PROXY_PEERS address {}",
                          hello.id, s.address, config_.peers[hello.id - 1]);
        break;
      case PeerAddresses::Verdict::kResolve:
        // The peer sends the library's bytes right behind its PEER_HELLO:
        // they wait, unread, for the answer.
        std::size_t k = hello.id - 1;
        s.conn->pause();
        parked_hellos_[k].emplace_back(id, std::move(hello));
        // A paused connection keeps no deadline: the park has its own, past
        // what a DNS server that does not answer costs (glibc: 5 s a query,
        // tried again): closed earlier, a link would be redialled only to
        // wait for the same answer.
        auto deadline = std::make_shared<asio::steady_timer>(
            io_, std::max(milliseconds(config_.handshake_timeout_ms), kPeerLookupPatience));
        deadline->async_wait([this, k, id, deadline](const error_code& ec) {
          if (ec || stopping_) return;
          auto& parked = parked_hellos_[k];
          auto it = std::find_if(parked.begin(), parked.end(),
                                 [id](const auto& p) { return p.first == id; });
          if (it == parked.end()) return;
          parked.erase(it);
          if (auto s = sessions_.find(id); s != sessions_.end()) {
            s->second.conn->close("no answer in time for the peer proxy's name");
          }
        });
        resolve_peer(k);
        return;
    }
  }
  if (!why.empty()) {
    log_->warn("refused peer proxy peer={} reason=\"{}\"", s.conn->peer(), why);
    s.conn->close(why);
    return;
  }
  auto conn = s.conn;
  sessions_.erase(it);
  conn->set_max_frame(protocol::kMaxFrameBytes);
  conn->set_idle_timeout(milliseconds(std::max<TimeMs>(5000, 20 * config_.election_timeout_ms)));
  conn->count_partial_frames();
  log_->debug("peer proxy link from {} ({})", hello.address, conn->peer());
  // The relay resumes a connection paused for a look-up: the frames behind
  // the PEER_HELLO go to the library's link.
  raft_->transport().accept(hello.id, hello.address, std::move(conn));
}

namespace {
// The form PeerAddresses keeps IPs in: v4-mapped IPv6 as IPv4, and every
// loopback address as one word (a name may resolve to ::1 and the peer come
// from 127.0.0.1).
std::string normal_ip(asio::ip::address a) {
  if (a.is_v6() && a.to_v6().is_v4_mapped()) {
    a = asio::ip::make_address_v4(asio::ip::v4_mapped, a.to_v6());
  }
  return a.is_loopback() ? std::string("loopback") : a.to_string();
}

std::string peer_host(const std::string& entry) {
  std::string host = entry.substr(0, entry.rfind(':'));
  if (!host.empty() && host.front() == '[') host = host.substr(1, host.size() - 2);
  return host;
}
}  // namespace

PeerAddresses::Verdict ProxyServer::peer_address_check(std::size_t k, const std::string& ip) {
  error_code ec;
  auto from = asio::ip::make_address(ip, ec);
  if (ec) return PeerAddresses::Verdict::kDiffers;
  auto literal = asio::ip::make_address(peer_host(config_.peers[k]), ec);
  if (!ec) {
    return normal_ip(literal) == normal_ip(from) ? PeerAddresses::Verdict::kMatches
                                                 : PeerAddresses::Verdict::kDiffers;
  }
  return peer_ips_.check(k, normal_ip(from), now_ms());
}

void ProxyServer::resolve_peer(std::size_t k) {
  error_code literal;
  asio::ip::make_address(peer_host(config_.peers[k]), literal);
  if (!literal) return;  // an IP: nothing to look up
  if (!peer_ips_.start_resolving(k)) return;  // one look-up at a time; its answer serves all
  resolvers_->resolve(
      k, peer_host(config_.peers[k]), "", io_,
      [this, k](const error_code& ec, asio::ip::tcp::resolver::results_type results) {
        if (stopping_) return;
        std::vector<std::string> ips;
        if (!ec) {
          std::vector<asio::ip::address> addresses;
          for (const auto& entry : results) {
            ips.push_back(normal_ip(entry.endpoint().address()));
            addresses.push_back(entry.endpoint().address());
          }
          std::lock_guard lock(dial_ips_mu_);
          dial_ips_[k] = std::move(addresses);
        } else {
          log_->warn("cannot resolve peer proxy {}: {}", config_.peers[k], ec.message());
        }
        peer_ips_.resolved(k, std::move(ips), now_ms(), static_cast<bool>(ec));
        auto parked = std::move(parked_hellos_[k]);
        parked_hellos_.erase(k);
        for (auto& [id, hello] : parked) {
          // Sessions closed meanwhile (their park timed out) are gone.
          auto s = sessions_.find(id);
          if (s != sessions_.end() && s->second.node_id.empty()) on_peer_hello(id, hello);
        }
      });
}

// Runs on the peer links' thread (replication::PeerTransport): it reads
// only what does not change after start (config_, the TLS context), and
// creates everything on `io`.
void ProxyServer::dial_peer(
    const std::string& address, asio::io_context& io,
    std::function<void(std::shared_ptr<net::FrameConnection>, const std::string&)> done) {
  auto colon = address.rfind(':');
  if (colon == std::string::npos) {
    done(nullptr, "bad peer address " + address);
    return;
  }
  std::string host = address.substr(0, colon);
  std::string port = address.substr(colon + 1);
  auto entry = static_cast<std::size_t>(
      std::find(config_.peers.begin(), config_.peers.end(), address) - config_.peers.begin());
  auto shared_done = std::make_shared<decltype(done)>(std::move(done));
  auto dial = [this, &io, host, entry, shared_done](const error_code& ec,
                                                    asio::ip::tcp::resolver::results_type results) {
    if (ec) {
      (*shared_done)(nullptr, "cannot resolve: " + ec.message());
      return;
    }
    auto socket = std::make_shared<asio::ip::tcp::socket>(io);
    // A peer cut off by the network answers no SYN, and the library does
    // not dial again while a connect is pending: give up after a second.
    auto deadline = std::make_shared<asio::steady_timer>(io);
    deadline->expires_after(milliseconds(std::max<unsigned>(1000, config_.election_timeout_ms)));
    deadline->async_wait([socket](const error_code& ec) {
      if (ec) return;
      error_code ignored;
      socket->close(ignored);
    });
    asio::async_connect(*socket, results, [this, socket, deadline, host, entry, shared_done](
                                              const error_code& ec2,
                                              const asio::ip::tcp::endpoint& ep) {
      deadline->cancel();
      if (ec2) {
        // The IPs kept for it may be old (a peer restarted elsewhere): the
        // next dial looks the name up.
        std::lock_guard lock(dial_ips_mu_);
        dial_ips_.erase(entry);
        (*shared_done)(nullptr, ec2.message());
        return;
      }
      std::string peer = fmt::format("{}:{}", ep.address().to_string(), ep.port());
      error_code ignored;  // no exception on the links' thread
      socket->set_option(asio::ip::tcp::no_delay(true), ignored);
      auto timeout = milliseconds(config_.handshake_timeout_ms);
      auto conn = peer_tls_context_
                      ? std::make_shared<net::FrameConnection>(
                            std::move(*socket), peer, timeout,
                            net::TlsLink{peer_tls_context_, net::TlsRole::client, config_.tls.mode,
                                         host})
                      : std::make_shared<net::FrameConnection>(std::move(*socket), peer, timeout);
      auto answered = std::make_shared<bool>(false);
      std::weak_ptr<net::FrameConnection> weak = conn;
      conn->start(
          [this, weak, shared_done, answered](protocol::Message&& m) {
            auto conn = weak.lock();
            if (!conn || *answered) return;
            auto* challenge = std::get_if<protocol::Challenge>(&m);
            if (challenge == nullptr) {
              conn->close("a peer proxy's first frame was not CHALLENGE");
              return;
            }
            *answered = true;
            protocol::PeerHello hello;
            hello.id = config_.self;
            hello.address = config_.peers[config_.self - 1];
            if (!config_.core.secret.empty()) {
              hello.auth =
                  protocol::join_proof(config_.core.secret, challenge->nonce, "proxy:" + hello.address);
            }
            conn->send(hello);
            conn->set_max_frame(protocol::kMaxFrameBytes);
            conn->set_idle_timeout(
                milliseconds(std::max<TimeMs>(5000, 20 * config_.election_timeout_ms)));
            conn->count_partial_frames();
            (*shared_done)(conn, "");
          },
          [shared_done, answered](const std::string& reason) {
            if (*answered) return;
            *answered = true;
            (*shared_done)(nullptr, reason);
          });
    });
  };
  // The peer's IPs as last looked up (upkeep keeps them): no DNS at the
  // moment a proxy died, when it may not answer.
  std::vector<asio::ip::tcp::endpoint> known;
  if (entry < config_.peers.size()) {
    std::lock_guard lock(dial_ips_mu_);
    if (auto it = dial_ips_.find(entry); it != dial_ips_.end()) {
      unsigned short number = 0;
      std::from_chars(port.data(), port.data() + port.size(), number);
      for (const auto& a : it->second) known.emplace_back(a, number);
    }
  }
  if (!known.empty()) {
    asio::post(io, [dial, results = asio::ip::tcp::resolver::results_type::create(
                                known.begin(), known.end(), host, port)] {
      dial(error_code(), results);
    });
    return;
  }
  // On the entry's own thread: a dead peer's name never holds up a dial to
  // a live one.
  resolvers_->resolve(entry, host, port, io, dial);
}

void ProxyServer::fill_replication_stats(protocol::ClusterStats& s) const {
  auto info = replication_info();
  s.proxies = info.proxies;
  s.leader = info.leader;
  s.term = info.term;
}

ReplicationInfo ProxyServer::replication_info() const {
  ReplicationInfo info;
  if (!raft_) return info;
  auto st = raft_->status();
  info.self = config_.peers[config_.self - 1];
  info.role = std::string(replication::role_name(st.role));
  info.leader = st.leader;
  info.term = st.term;
  info.last = st.last;
  info.applied = st.applied;
  info.elections_won = elections_won_;
  for (const auto& p : st.peers) {
    protocol::ProxyStatus ps;
    ps.address = p.address;
    if (p.id == config_.self) {
      ps.role = info.role;
    } else if (st.role == replication::Role::leader) {
      ps.role = p.recent ? "follower" : "unreachable";
    } else {
      ps.role = p.address == st.leader ? "leader" : "-";
    }
    ps.match = p.match;
    ps.lag = st.role == replication::Role::leader && st.last > p.match ? st.last - p.match : 0;
    info.proxies.push_back(std::move(ps));
  }
  return info;
}

}  // namespace jc::proxy
