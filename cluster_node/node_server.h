// The cluster node's I/O shell: the client acceptor, the link to the proxy,
// the executor, lookups that wait for the proxy's answer, and the group
// commit (LevelDB write first, then replies and frames that depend on it).
// Everything runs on one io_context thread.
#pragma once

#include "api/callbacks.h"
#include "api/http_server.h"
#include "api/router.h"
#include <set>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

#include "client/conversation.h"
#include "client/lookups.h"
#include "cluster_node/client_session.h"
#include "cluster_node/node_core.h"
#include "cluster_node/proxy_link.h"
#include "protocol/client_tokens.h"
#include "net/listener.h"
#include "net/storage_retry.h"
#include "runner/executor.h"
#include "storage/background_write.h"

namespace jc::node {


using client::JobLimits;

struct NodeConfig {
  // The proxies: one (the arguments), or every replicated one (PROXY_ADDRESSES).
  std::vector<std::pair<std::string, std::string>> proxies;
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
  runner::SlotCpus slot_cpus;       // SLOT_CPUS
  std::string identity;             // the data directory's (NodeCore::data_identity)
  bool allow_network = false;       // JOB_ALLOW_NETWORK
  // The judge0-compatible API (API_PORT); off without a port.
  std::optional<std::uint16_t> api_port;
  std::string api_cors_origins = "*";          // API_CORS_ORIGINS
  std::size_t api_max_body_bytes = 8 << 20;    // API_MAX_BODY_KB
  api::Settings api_settings;                  // from JOB_* and API_*
  std::vector<api::Language> language_table;   // the table (built in, LANGUAGES_FILE over it)
  std::vector<api::Language> languages;        // what this node runs
  NodeOptions core;
};

class NodeServer : public client::Backend {
 public:
  using StatsDone = std::function<void(const protocol::ClusterStats&, bool proxy_up)>;

  NodeServer(boost::asio::io_context& io, NodeConfig config, storage::Store& store);
  Status start();
  void stop();
  // SIGTERM: hands back what has not started, finishes and delivers what
  // runs (at most DRAIN_TIMEOUT), tells the proxy it leaves, then stops and
  // calls `done`.
  void drain(std::function<void()> done);
  std::uint16_t port() const { return port_; }
  std::uint16_t api_port() const { return api_port_; }

  // client::Backend, for the client connections' conversations.
  void submit(protocol::JobSpec spec, std::function<void(const std::string&)> done) override;
  bool offered(const std::string& need) const override { return core_.offered(need); }
  bool available(const std::string& need) const override { return core_.available(need); }
  void lookup(client::LookupRequest request, client::LookupDone done) override;
  void cancel(const std::string& ticket, const std::string& requester,
              client::LookupDone done) override;
  void getall(std::function<void(const std::vector<GetAllEntry>&)> done) override;
  void stats(StatsDone done) override;
  void drain() override {
    drain([] {});
  }
  bool proxy_connected() const override { return core_.connected(); }
  bool storage_full() const override { return storage_retry_.failing(); }
  bool queue_full(std::size_t adding) const override { return core_.queue_full(adding); }
  std::uint64_t max_queue() const override { return core_.max_queue(); }
  const protocol::ClientTokens& tokens() const override { return config_.tokens; }
  const JobLimits& limits() const override { return config_.job_limits; }
  TimeMs now() const override;

 private:
  void on_accept(boost::asio::ip::tcp::socket socket, const std::string& address,
                 const std::string& peer);
  void on_proxy_message(protocol::Message&& m);
  void on_proxy_closed();
  // What the lookup book needs of this node now.
  client::NodeView view();
  // Arms and disarms the book's timers and sends its questions.
  void apply(const client::LookupBook::Effects& fx);
  // The core's new knowledge of tickets, to the lookups that wait for it.
  void answer_lookups(const std::vector<protocol::JobReport>& reports);
  void start_jobs();
  void on_job_done(const std::string& ticket, protocol::JobResult result);
  void schedule_info();
  void schedule_requests();
  void schedule_sweep(TimeMs after_ms);
  void schedule_flush();
  // The group commit (node_commit.cpp).
  void flush();
  // What a commit holds back until it is written.
  struct Held {
    std::vector<std::function<void()>> replies;  // tickets to clients, getall
    std::vector<protocol::Message> messages;     // the core's, for the proxy
    // Reads: they wait for no write, only for the SUBMITs they follow.
    std::vector<std::string> requests;     // RequestOfRes
    std::vector<protocol::Message> shell;  // CANCEL, STATS
    std::vector<protocol::JobReport> reports;    // to the lookups that wait
    std::vector<protocol::JobReport> settled;    // NodeEvents::settled_here
    std::uint64_t link_epoch = 0;
    bool synced = false;
  };
  // off_loop: this turn's write goes to the writer thread.
  Held hold_turn(bool off_loop);
  void send_reads(Held& turn);
  // The questions asked since the last commit, at once.
  void send_reads_asked();
  void written(Held turn);
  void not_written(Held turn, const Status& s);
  void schedule_callbacks();
  void send_callbacks();

  boost::asio::io_context& io_;
  NodeConfig config_;
  NodeCore core_;
  std::shared_ptr<spdlog::logger> log_;
  net::Listener listener_;
  boost::asio::steady_timer info_timer_;
  boost::asio::steady_timer request_timer_;
  // A synced commit for acknowledgements that wait for one (NodeCore::wants_sync).
  boost::asio::steady_timer ack_sync_timer_;
  bool ack_sync_armed_ = false;
  // Sends the results a busy node held back (NodeCore::results_due), on the
  // steady clock: a step of the wall clock neither holds them nor hurries them.
  boost::asio::steady_timer results_timer_;
  bool results_timer_armed_ = false;
  void arm_results_timer();
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
  client::LookupBook lookups_;
  std::unordered_map<std::uint64_t, std::unique_ptr<boost::asio::steady_timer>> lookup_timers_;
  std::vector<std::string> to_request_;
  std::vector<protocol::Message> shell_outbox_;  // sent after the core's
  // Reports and NodeEvents::settled_here of turns not committed yet (and
  // of a commit that failed): shown after the next.
  std::vector<protocol::JobReport> reports_, settled_;
  // The core's messages that a failed write held back: they leave first
  // after the next.
  std::vector<protocol::Message> unsent_;
  // One more each time the proxy link drops: what a write held back for
  // an earlier connection is not sent on a later one.
  std::uint64_t link_epoch_ = 0;
  // Busy turns' synced writes (node_commit.cpp), and those that give no
  // client its ticket; smaller ones that do are made in place: a turn or
  // two of an idle node (a job's submit and result stage about five
  // writes), where handing the write over and back would add to the job's
  // latency more than the loop gains.
  static constexpr std::size_t kInPlaceBelow = 16;
  Held flight_;  // what the write in flight holds back
  std::unique_ptr<storage::BackgroundWrite> writer_;
  std::unordered_map<std::uint64_t,
                     std::pair<StatsDone, std::unique_ptr<boost::asio::steady_timer>>>
      stats_waiters_;
  std::uint64_t next_stats_id_ = 1;
  std::vector<std::function<void()>> after_commit_;
  net::StorageRetry storage_retry_;
  std::uint16_t port_ = 0;
  std::uint16_t api_port_ = 0;
  std::unique_ptr<api::Router> api_router_;
  std::unique_ptr<api::HttpServer> api_server_;
  // Callbacks owed (NodeCore::callbacks()): sent a few at once, looked at
  // every kCallbackPeriod.
  std::unique_ptr<api::CallbackSender> callback_sender_;
  boost::asio::steady_timer callback_timer_;
  std::set<std::string> callbacks_in_flight_;
  static constexpr std::size_t kCallbacksAtOnce = 16;
  TimeMs proxy_lost_at_ = 0;
  std::unique_ptr<boost::asio::steady_timer>
      drain_timer_;  // since when the proxy is away (or since start)
  bool flush_scheduled_ = false;
  bool stopping_ = false;
  bool ever_joined_ = false;  // the proxy welcomed this node since it started
};

}  // namespace jc::node
