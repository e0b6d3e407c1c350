#include "replication/raft_log.h"

#include <poll.h>
#include <sys/stat.h>

#include <cstring>
#include <filesystem>
#include <optional>

#include "replication/fsm_glue.h"
#include "replication/peer_transport.h"

namespace jc::replication {

namespace asio = boost::asio;
using boost::system::error_code;

std::string_view role_name(Role role) {
  switch (role) {
    case Role::follower:
      return "follower";
    case Role::candidate:
      return "candidate";
    case Role::leader:
      return "leader";
    case Role::unavailable:
      break;
  }
  return "unavailable";
}


struct RaftLog::Impl {
  Impl(asio::io_context& io, RaftConfig config, StateMachine& machine, RaftLog& owner)
      : io(io),
        config(std::move(config)),
        machine(machine),
        owner(owner),
        log(log::get("raft")),
        backend(io),
        timer(io) {
    uv_loop_init(&loop);
    transport = std::make_unique<PeerTransport>(io, &loop, [this] { kick(); });
  }

  ~Impl() {
    // stop() released the library; a loop never started closes at once.
    if (!loop_closed) uv_loop_close(&loop);
  }

  // -- the libuv loop, driven from Asio ----------------------------------

  // Posts one run of the loop (coalesced): after every call into the library,
  // since libuv finishes writes from its pending queue, which does not make
  // its epoll descriptor readable.
  void kick() {
    if (kicked || stopped) return;
    kicked = true;
    asio::post(io, [this] {
      kicked = false;
      run();
    });
  }

  // Runs what is due on the loop, then waits (in Asio) for its descriptor or
  // its next timer. Asio registers descriptors edge-triggered, so readiness
  // is checked here too before waiting: an event left in libuv's epoll set
  // would otherwise never wake it.
  void run() {
    if (stopped) return;
    last_run = std::chrono::steady_clock::now();
    uv_run(&loop, UV_RUN_NOWAIT);
    hand_over_if_stuck();
    poll_status();
    if (stopped) return;
    int timeout = uv_backend_timeout(&loop);
    struct pollfd p {
      uv_backend_fd(&loop), POLLIN, 0
    };
    bool ready = ::poll(&p, 1, 0) > 0;
    if (timeout == 0 || ready) {
      kick();
      return;
    }
    if (!waiting) {
      waiting = true;
      backend.async_wait(asio::posix::stream_descriptor::wait_read, [this](const error_code& ec) {
        waiting = false;
        if (!ec) kick();
      });
    }
    timer.cancel();
    if (timeout > 0) {
      timer.expires_after(std::chrono::milliseconds(timeout));
      timer.async_wait([this](const error_code& ec) {
        if (!ec) kick();
      });
    }
  }

  // A leader whose store refuses writes cannot apply what it commits, so
  // nothing it proposes completes: it hands leadership to another proxy
  // (outside the library's callbacks), and catches up as a follower once
  // its disk has room.
  void hand_over_if_stuck() {
    if (machine.behind()) hand_over("this proxy cannot write applied entries to its store");
  }

  void hand_over(const char* why) {
    if (!started || stopped || transferring) return;
    if (raft_state(&raft) != RAFT_LEADER) return;
    transfer = {};
    transfer.data = this;
    if (raft_transfer(&raft, &transfer, 0, [](struct raft_transfer* req) {
          static_cast<Impl*>(req->data)->transferring = false;
        }) == 0) {
      transferring = true;
      log->warn("handing leadership over: {}", why);
      kick();
    }
  }

  // -- status --------------------------------------------------------------

  LogStatus status() const {
    LogStatus s;
    if (!started) return s;
    auto* r = const_cast<struct raft*>(&raft);
    switch (raft_state(r)) {
      case RAFT_FOLLOWER:
        s.role = Role::follower;
        // The election timer restarts at every contact with the leader.
        if (raft.io != nullptr) {
          const raft_time now = raft.io->time(raft.io);
          if (now > raft.election_timer_start) s.leader_silent_ms = now - raft.election_timer_start;
        }
        break;
      case RAFT_CANDIDATE:
        s.role = Role::candidate;
        break;
      case RAFT_LEADER:
        s.role = Role::leader;
        break;
      default:
        s.role = Role::unavailable;
    }
    s.term = raft.current_term;
    raft_id id = 0;
    const char* address = nullptr;
    raft_leader(r, &id, &address);
    s.leader_id = id;
    if (address != nullptr) s.leader = address;
    s.last = raft_last_index(r);
    s.applied = raft_last_applied(r);
    for (std::size_t i = 0; i < config.peers.size(); ++i) {
      PeerStatus p;
      p.id = i + 1;
      p.address = config.peers[i];
      // The leader's progress is in the same order as its configuration,
      // which is PROXY_PEERS (bootstrapped so, never changed).
      if (s.role == Role::leader && raft.leader_state.progress != nullptr &&
          i < raft.configuration.n) {
        p.match = raft.leader_state.progress[i].match_index;
        p.recent = raft.leader_state.progress[i].recent_recv;
      }
      if (p.id == config.id) {
        p.match = s.last;
        p.recent = true;
      }
      s.peers.push_back(std::move(p));
    }
    return s;
  }

  void poll_status() {
    if (!started || stopped) return;
    int state = raft_state(&raft);
    raft_id id = 0;
    const char* address = nullptr;
    raft_leader(&raft, &id, &address);
    std::uint64_t term = raft.current_term;
    if (state == last_state && id == last_leader && term == last_term) return;
    last_state = state;
    last_leader = id;
    last_term = term;
    // Never inside the library: the owner may call propose() or barrier().
    asio::post(io, [this] {
      if (stopped) return;
      if (owner.on_status) owner.on_status(status());
    });
  }

  // -- members ---------------------------------------------------------------

  asio::io_context& io;
  RaftConfig config;
  StateMachine& machine;
  RaftLog& owner;
  std::shared_ptr<spdlog::logger> log;
  uv_loop_t loop{};
  bool loop_closed = false;
  std::unique_ptr<PeerTransport> transport;
  struct raft_io raft_io {};
  FsmGlue glue;
  struct raft raft {};
  asio::posix::stream_descriptor backend;
  asio::steady_timer timer;
  bool kicked = false;
  std::chrono::steady_clock::time_point last_run;
  bool transferring = false;
  struct raft_transfer transfer {};
  bool waiting = false;
  bool started = false;
  bool stopped = false;
  bool closed = false;
  int last_state = -1;
  raft_id last_leader = 0;
  std::uint64_t last_term = 0;
};

namespace {

// A request in flight carries its callback and is freed when the library
// calls back. That happens inside the library: the owner's follow-up
// (another propose) is posted, to run after the library's call returned.
template <class Req>
struct Request {
  Req req{};
  std::function<void(bool)> done;
  asio::io_context* io = nullptr;

  static Request* make(std::function<void(bool)> done, asio::io_context& io) {
    auto* r = new Request;
    r->done = std::move(done);
    r->io = &io;
    r->req.data = r;
    return r;
  }
  static void finish(Req* req, int status) {
    auto* r = static_cast<Request*>(req->data);
    if (r->done) asio::post(*r->io, [done = std::move(r->done), ok = status == 0] { done(ok); });
    delete r;
  }
};

}  // namespace

RaftLog::RaftLog(asio::io_context& io, RaftConfig config, StateMachine& machine)
    : impl_(std::make_unique<Impl>(io, std::move(config), machine, *this)) {}

RaftLog::~RaftLog() { stop(); }

PeerTransport& RaftLog::transport() { return *impl_->transport; }

Status RaftLog::start() {
  Impl& m = *impl_;
  std::error_code ec;
  std::filesystem::create_directories(m.config.dir, ec);
  if (ec) return Status::IoError("cannot create " + m.config.dir + ": " + ec.message());
  ::chmod(m.config.dir.c_str(), 0700);
  if (m.config.id == 0 || m.config.id > m.config.peers.size()) {
    return Status::InvalidArgument("this proxy is not among PROXY_PEERS");
  }
  int rv = raft_uv_init(&m.raft_io, &m.loop, m.config.dir.c_str(), m.transport->get());
  if (rv != 0) {
    return Status::IoError(fmt::format("cannot open the Raft log in {}: {}", m.config.dir,
                                       m.raft_io.errmsg));
  }
  raft_uv_set_connect_retry_delay(&m.raft_io, 200);
  // 0.15's libuv back-end implements async_work (for snapshots serialized
  // off the loop) but still says it is of version 1, so raft_init refuses a
  // state machine that uses it; upstream's fix is this one line
  // (canonical/raft 269e541, "uv: set io version to 2", in 0.16).
  if (m.raft_io.version < 2 && m.raft_io.async_work != nullptr) m.raft_io.version = 2;
  init_glue(m.glue, m.machine, m.raft_io.version >= 2);
  m.glue.raft = &m.raft;
  const std::string& self = m.config.peers[m.config.id - 1];
  rv = raft_init(&m.raft, &m.raft_io, &m.glue.fsm, m.config.id, self.c_str());
  m.raft.data = &m;
  if (rv != 0) {
    std::string why = raft_errmsg(&m.raft);
    raft_uv_close(&m.raft_io);
    return Status::IoError("cannot start Raft: " + why);
  }
  struct raft_configuration conf;
  raft_configuration_init(&conf);
  for (std::size_t i = 0; i < m.config.peers.size(); ++i) {
    raft_configuration_add(&conf, i + 1, m.config.peers[i].c_str(), RAFT_VOTER);
  }
  rv = raft_bootstrap(&m.raft, &conf);
  raft_configuration_close(&conf);
  if (rv != 0 && rv != RAFT_CANTBOOTSTRAP) {
    return Status::IoError(fmt::format("cannot bootstrap the Raft log in {}: {}", m.config.dir,
                                       raft_errmsg(&m.raft)));
  }
  raft_set_election_timeout(&m.raft, m.config.election_timeout_ms);
  raft_set_heartbeat_timeout(&m.raft, m.config.heartbeat_ms);
  raft_set_pre_vote(&m.raft, true);
  // A follower busy with its own snapshot drops an InstallSnapshot; the
  // leader sends it again after this long (the library's default, 30 s,
  // left a proxy that came back far behind waiting that long).
  raft_set_install_snapshot_timeout(&m.raft, 5000);
  raft_set_snapshot_threshold(&m.raft, m.config.snapshot_threshold);
  raft_set_snapshot_trailing(&m.raft, m.config.snapshot_trailing);
  rv = raft_start(&m.raft);
  if (rv != 0) {
    return Status::IoError(fmt::format("cannot start Raft from {}: {}", m.config.dir,
                                       raft_errmsg(&m.raft)));
  }
  m.started = true;
  m.backend.assign(::dup(uv_backend_fd(&m.loop)));
  m.kick();
  return Status::Ok();
}

void RaftLog::stop() {
  Impl& m = *impl_;
  if (m.stopped) return;
  m.stopped = true;
  error_code ignored;
  m.timer.cancel();
  m.backend.close(ignored);
  if (m.started) {
    m.closed = false;
    raft_close(&m.raft, [](struct raft* r) { static_cast<Impl*>(r->data)->closed = true; });
    // The library's handles close on its loop; nothing here waits for Asio.
    while (!m.closed) uv_run(&m.loop, UV_RUN_ONCE);
    raft_uv_close(&m.raft_io);
  }
  // Closing handles (timers, pipes) finish in a few more turns.
  for (int i = 0; i < 1000 && uv_loop_alive(&m.loop); ++i) uv_run(&m.loop, UV_RUN_NOWAIT);
  m.transport->shutdown();
  if (uv_loop_close(&m.loop) == 0) m.loop_closed = true;
}

std::optional<Index> RaftLog::propose(std::string_view entry, std::function<void(bool)> done) {
  Impl& m = *impl_;
  if (!m.started || m.stopped || raft_state(&m.raft) != RAFT_LEADER) return std::nullopt;
  auto* request = Request<struct raft_apply>::make(std::move(done), m.io);
  struct raft_buffer buf;
  buf.len = framed_size(entry.size());
  buf.base = raft_malloc(buf.len);
  if (buf.base == nullptr) {
    delete request;
    return std::nullopt;
  }
  frame_entry(static_cast<char*>(buf.base), entry);
  // raft_apply appends at the end of the leader's log.
  Index index = raft_last_index(&m.raft) + 1;
  // One buffer per call: with several, the callback fires at the first.
  int rv = raft_apply(&m.raft, &request->req, &buf, 1, [](struct raft_apply* req, int status, void*) {
    Request<struct raft_apply>::finish(req, status);
  });
  if (rv != 0) {
    raft_free(buf.base);
    delete request;
    m.log->debug("propose refused: {}", raft_strerror(rv));
    return std::nullopt;
  }
  m.kick();
  return index;
}

bool RaftLog::barrier(std::function<void(bool)> done) {
  Impl& m = *impl_;
  if (!m.started || m.stopped || raft_state(&m.raft) != RAFT_LEADER) return false;
  auto* request = Request<struct raft_barrier>::make(std::move(done), m.io);
  int rv = raft_barrier(&m.raft, &request->req, &Request<struct raft_barrier>::finish);
  if (rv != 0) {
    delete request;
    return false;
  }
  m.kick();
  return true;
}

LogStatus RaftLog::status() const { return impl_->status(); }

void RaftLog::hand_over(const char* why) { impl_->hand_over(why); }

void RaftLog::pump() { impl_->kick(); }

void RaftLog::pump_if_late() {
  Impl& m = *impl_;
  if (!m.started || m.stopped) return;
  if (std::chrono::steady_clock::now() - m.last_run < std::chrono::milliseconds(10)) return;
  m.run();
}

}  // namespace jc::replication
