// The proxy's HTTP API as pure functions of its state: GET /metrics
// (Prometheus text format), GET /api/state (the cluster picture `stats`
// gives on nc, as JSON), GET /api/jobs/<ticket> (a job's full record), and
// GET / (a self-contained page that shows /api/state, refreshed every
// second). No sockets here: http_server.cpp serves what this returns.
#pragma once

#include <array>
#include <cstdint>
#include <deque>
#include <string>

#include "protocol/client_tokens.h"
#include "reverse_proxy/proxy_core.h"

namespace jc::proxy {

// Durations of dispatch rounds, in the buckets /metrics reports.
struct RoundHistogram {
  static constexpr std::array<double, 8> kBounds{0.0001, 0.0005, 0.001, 0.005,
                                                 0.01,   0.05,   0.1,   0.5};
  std::array<std::uint64_t, kBounds.size()> counts{};  // cumulative per bound
  std::uint64_t count = 0;
  double sum = 0;
  void observe(double seconds);
};

// One sample a second of the totals, the last five minutes: the page draws
// throughput and queue length from it.
struct History {
  struct Sample {
    TimeMs at = 0;
    std::uint64_t finished = 0;
    std::uint64_t queue = 0;
  };
  static constexpr std::size_t kSamples = 300;
  std::deque<Sample> samples;
  void record(TimeMs at, std::uint64_t finished, std::uint64_t queue) {
    samples.push_back({at, finished, queue});
    if (samples.size() > kSamples) samples.pop_front();
  }
};

struct HttpReply {
  int status = 200;
  std::string content_type = "text/plain; charset=utf-8";
  std::string body;
  bool ask_for_token = false;  // 401: send WWW-Authenticate: Bearer
};

// Replicated proxies: this proxy's view of the log (absent with one proxy).
struct ReplicationInfo {
  std::string self;    // its PROXY_PEERS entry
  std::string role;    // leader, follower, candidate, unavailable
  std::string leader;  // "" while none is known
  std::uint64_t term = 0;
  std::uint64_t last = 0;     // its last log index
  std::uint64_t applied = 0;  // the last index applied to its store
  std::uint64_t elections_won = 0;
  std::vector<protocol::ProxyStatus> proxies;  // as the leader sees them (leader only)
};

// One request. With CLIENT_TOKENS, /api/jobs/<ticket> needs the header
// `Authorization: Bearer <token>` (`authorization` is its value, "" when
// absent) of the job's owner or of a name in ADMIN_NAMES; another name's job
// is answered as an unknown ticket. /metrics, /api/state and / show no
// job's content and stay open. A job whose result is not durable yet is
// shown running. A replicated proxy that does not lead
// (`core` null) shows the proxies and the leader, and sends job questions
// to the leader (503 naming it).
HttpReply handle_http(const std::string& method, const std::string& target,
                      const std::string& authorization, const protocol::ClientTokens& tokens,
                      const ProxyCore* core, const RoundHistogram& rounds, const History& history,
                      TimeMs now, const ReplicationInfo* replication = nullptr);

}  // namespace jc::proxy
