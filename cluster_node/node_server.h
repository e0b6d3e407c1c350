// The cluster node's I/O shell: the client acceptor, the link to the proxy,
// the executor, lookups that wait for the proxy's answer, and the group
// commit (LevelDB write first, then replies and frames that depend on it).
// Everything runs on one io_context thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "cluster_node/client_session.h"
#include "cluster_node/node_core.h"
#include "cluster_node/proxy_link.h"
#include "protocol/client_tokens.h"
#include "net/listener.h"
#include "net/storage_retry.h"
#include "runner/executor.h"

namespace jc::node {


// Limits of run jobs: the defaults a job gets, and the most it may ask for.
struct JobLimits {
  protocol::Limits defaults{10'000, 10'000, 256, 1024, 64};
  // Output: a result is stored and copied by the node, the proxy and the
  // client's node, on their event loops: 2 x 4 MiB costs each about half a
  // second here, 2 x 16 MiB seconds, long enough for a busy node to miss
  // NODE_TIMEOUT. 4 MiB is also the most JOB_MAX_OUTPUT_KB allows; an
  // expected output is at most a 1 MiB here-document anyway.
  protocol::Limits maxima{300'000, 300'000, 4096, 4096, 4096};
};

struct NodeConfig {
  std::string proxy_host;
  std::string proxy_port;
  std::string bind_address = "0.0.0.0";
  std::string advertise_host = "localhost";  // how clients reach this node, for `stats`
  std::uint16_t client_port = 9000;
  std::string data_dir;
  TimeMs info_period_ms = 500;
  TimeMs request_result_period_ms = 1000;
  std::size_t max_clients = 10000;
  std::size_t max_clients_per_address = 256;  // MAX_CLIENTS_PER_ADDRESS
  TimeMs client_idle_timeout_ms = 300'000;    // CLIENT_IDLE_TIMEOUT
  JobLimits job_limits;
  std::string work_dir;  // run jobs' working directories where no private tmpfs can be had
  std::vector<std::string> readonly_paths;  // JOB_READONLY_PATHS
  std::uint32_t job_processes = 256;        // JOB_PROCESSES
  std::string job_user = "nobody";
  std::string secret;               // CLUSTER_SECRET
  protocol::ClientTokens tokens;    // CLIENT_TOKENS, ADMIN_NAMES (off when empty)
  net::TlsSettings tls;             // from CLUSTER_SECRET or TLS_CERT / TLS_KEY / TLS_CA
  TimeMs proxy_grace_ms = 30'000;   // PROXY_GRACE_PERIOD; 0 = always wait for the proxy
  TimeMs drain_timeout_ms = 8'000;  // DRAIN_TIMEOUT: under docker stop's 10 s
  std::uint32_t job_uid_base = 0;   // 0: every job runs as job_user
  NodeOptions core;
};

class NodeServer {
 public:
  using LookupDone = std::function<void(const protocol::JobReport&, bool unreachable)>;
  using StatsDone = std::function<void(const protocol::ClusterStats&, bool proxy_up)>;

  NodeServer(boost::asio::io_context& io, NodeConfig config, storage::Store& store);
  Status start();
  void stop();
  // SIGTERM: hands back what has not started, finishes and delivers what
  // runs (at most DRAIN_TIMEOUT), tells the proxy it leaves, then stops and
  // calls `done`.
  void drain(std::function<void()> done);
  std::uint16_t port() const { return port_; }

  // For client sessions.
  void submit(protocol::JobSpec spec, std::function<void(const std::string&)> done);
  // wait=false answers with the first thing known; wait=true only with a
  // final result, or what is known when `seconds` pass.
  void lookup(const std::string& ticket, bool wait, std::optional<double> seconds, LookupDone done);
  // Answered after the pending commit, so it lists jobs submitted just before.
  void getall(std::function<void(const std::vector<GetAllEntry>&)> done);
  void stats(StatsDone done);
  // Fills a run job's limits from the node's defaults; an error when it asks
  // for more than this node's maximum.
  std::string apply_limits(protocol::JobSpec& spec) const;
  // Cancels through the proxy; `done` gets the formatted reply. With a
  // `requester` (CLIENT_TOKENS, not an admin), another name's job is
  // neither cancelled nor shown: it answers as an unknown ticket.
  void cancel(const std::string& ticket, const std::optional<std::string>& requester, bool json,
              std::function<void(const std::string&)> done);
  const protocol::ClientTokens& tokens() const { return config_.tokens; }
  // The storage refuses writes: submits get ERR storage full.
  bool storage_full() const { return storage_retry_.failing(); }

 private:
  struct PendingLookup {
    bool wait = false;
    // Asks again while the proxy does not know the ticket (kUnknownGrace):
    // a `wait`, or an `r`/`status` of a ticket shaped as nodes issue them,
    // which may still be on its way to the proxy from the node that gave it.
    bool patient = false;
    LookupDone done;
    std::unique_ptr<boost::asio::steady_timer> timer;
    TimeMs unknown_since = 0;  // a wait the proxy said it does not know (yet)
    // What the proxy last said of the ticket (not final): the answer of a
    // `wait` whose seconds run out.
    std::optional<protocol::JobReport> last_known;
    bool proxy_answered = false;  // the proxy said something of it, "unknown" included
  };

  void on_accept(boost::asio::ip::tcp::socket socket, const std::string& address,
                 const std::string& peer);
  void on_proxy_message(protocol::Message&& m);
  void on_proxy_closed();
  // lookup(); `cancelling`: the answer is the proxy's report after it acted
  // on the client's cancel, not this node's record.
  void start_lookup(const std::string& ticket, bool wait, std::optional<double> seconds,
                    bool cancelling, LookupDone done);
  void answer_lookups(const protocol::JobReport& report);
  // What this node may say of a ticket without the proxy: its final result,
  // or a state only it can know (a job the proxy never acknowledged);
  // anything else might be behind what another node already showed, so it
  // becomes "cannot check now" (state unknown, answered as unreachable).
  protocol::JobReport without_proxy(protocol::JobReport local) const;
  void expire_lookup(const std::string& ticket, PendingLookup* which);
  void start_jobs();
  void on_job_done(const std::string& ticket, protocol::JobResult result);
  void schedule_info();
  void schedule_requests();
  void schedule_sweep(TimeMs after_ms);
  void schedule_flush();
  void flush();

  boost::asio::io_context& io_;
  NodeConfig config_;
  NodeCore core_;
  std::shared_ptr<spdlog::logger> log_;
  net::Listener listener_;
  boost::asio::steady_timer info_timer_;
  boost::asio::steady_timer request_timer_;
  // Removes expired jobs (RESULT_TTL); the ranges they held are compacted
  // once the removal is committed.
  boost::asio::steady_timer sweep_timer_;
  protocol::CompactionPlan compactions_;
  ProxyLink link_;
  runner::Executor executor_;
  std::vector<std::weak_ptr<ClientSession>> sessions_;
  std::shared_ptr<ClientSession::AddressCounts> address_counts_ =
      std::make_shared<ClientSession::AddressCounts>();
  TimeMs refused_logged_at_ = 0;
  std::size_t refused_since_log_ = 0;
  std::unordered_map<std::string, std::vector<std::unique_ptr<PendingLookup>>> lookups_;
  std::vector<std::string> to_request_;
  std::vector<protocol::Message> shell_outbox_;  // sent after the core's
  std::unordered_map<std::uint64_t,
                     std::pair<StatsDone, std::unique_ptr<boost::asio::steady_timer>>>
      stats_waiters_;
  std::uint64_t next_stats_id_ = 1;
  std::vector<std::function<void()>> after_commit_;
  net::StorageRetry storage_retry_;
  std::uint16_t port_ = 0;
  TimeMs proxy_lost_at_ = 0;
  std::unique_ptr<boost::asio::steady_timer>
      drain_timer_;  // since when the proxy is away (or since start)
  bool flush_scheduled_ = false;
  bool stopping_ = false;
  bool ever_joined_ = false;  // the proxy welcomed this node since it started
};

}  // namespace jc::node
