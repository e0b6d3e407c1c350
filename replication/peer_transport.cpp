#include "replication/peer_transport.h"

#include <pthread.h>
#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <deque>
#include <utility>

#include "protocol/messages.h"

namespace jc::replication {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// A descriptor closed with its owner unless released.
struct OwnedFd {
  explicit OwnedFd(int fd) : fd(fd) {}
  ~OwnedFd() {
    if (fd >= 0) ::close(fd);
  }
  OwnedFd(const OwnedFd&) = delete;
  OwnedFd& operator=(const OwnedFd&) = delete;
  int release() { return std::exchange(fd, -1); }
  int fd;
};
}  // namespace

// One link: the library's uv_pipe_t on one end of a socketpair, this on the
// other, relaying bytes to and from PEER_DATA frames. Whichever side ends
// first ends the other: the library then dials again after its retry delay.
struct PeerTransport::Link : std::enable_shared_from_this<Link> {
  Link(asio::io_context& io, std::shared_ptr<net::FrameConnection> c)
      : local(io), conn(std::move(c)), keepalive(io) {}

  void start() {
    auto self = shared_from_this();
    if (!conn->open()) {
      // Closed while it waited for the relay (a failed write): the
      // library reads EOF on its end and dials again.
      end();
      return;
    }
    conn->rebind(
        [self](protocol::Message&& m) {
          if (auto* data = std::get_if<protocol::PeerData>(&m)) {
            self->write(std::move(data->bytes));
          } else {
            self->conn->close(fmt::format("unexpected {} on a proxy link",
                                          protocol::message_name(m)));
          }
        },
        [self](const std::string&) { self->end(); });
    conn->resume();  // a dialled link waited, paused, until now
    read();
    beat();
  }

  // The library writes on a link in one direction only (each server dials
  // its own links to send): an empty PEER_DATA every second keeps the other
  // direction alive for the connection's idle deadline, which then tells a
  // silent peer from a quiet one.
  void beat() {
    auto self = shared_from_this();
    keepalive.expires_after(std::chrono::seconds(1));
    keepalive.async_wait([self](const error_code& ec) {
      if (ec || self->ended) return;
      if (!self->sent_since_beat) self->conn->send(protocol::PeerData{});
      self->sent_since_beat = false;
      self->beat();
    });
  }

  void read() {
    auto self = shared_from_this();
    local.async_read_some(asio::buffer(buffer), [self](const error_code& ec, std::size_t n) {
      if (ec) {
        self->conn->close("the Raft library closed the link");
        self->end();
        return;
      }
      // Whatever else the library has written goes in the same frame, read
      // now rather than one buffer per turn of a busy event loop (a leader
      // sending entries would otherwise move 64 KiB per turn).
      std::string bytes(self->buffer.data(), n);
      while (bytes.size() < kMaxFrameData) {
        error_code more;
        std::size_t got = self->local.read_some(asio::buffer(self->buffer), more);
        if (more || got == 0) break;  // would_block: the socketpair is empty
        bytes.append(self->buffer.data(), got);
      }
      self->conn->send(protocol::PeerData{std::move(bytes)});
      self->sent_since_beat = true;
      self->read();
    });
  }
  static constexpr std::size_t kMaxFrameData = 4 << 20;

  void write(std::string bytes) {
    if (ended || bytes.empty()) return;  // empty: a keepalive
    writes.push_back(std::move(bytes));
    if (!writing) do_write();
  }

  void do_write() {
    writing = true;
    auto self = shared_from_this();
    asio::async_write(local, asio::buffer(writes.front()),
                      [self](const error_code& ec, std::size_t) {
                        self->writing = false;
                        // Ended meanwhile: the queue is dropped with the link.
                        if (self->ended) return;
                        if (ec) {
                          self->conn->close("the Raft library closed the link");
                          self->end();
                          return;
                        }
                        self->writes.pop_front();
                        if (!self->writes.empty()) self->do_write();
                      });
  }

  void end() {
    if (ended) return;
    ended = true;
    error_code ignored;
    keepalive.cancel();
    local.close(ignored);  // the library reads EOF and lets its stream go
    // The queue stays until the link goes: a write in flight still points
    // into its front.
  }

  asio::local::stream_protocol::socket local;
  std::shared_ptr<net::FrameConnection> conn;
  std::array<char, 64 * 1024> buffer{};
  std::deque<std::string> writes;
  bool writing = false;
  bool ended = false;
  asio::steady_timer keepalive;
  bool sent_since_beat = false;
};

PeerTransport::PeerTransport(asio::io_context& io, uv_loop_s* loop, std::function<void()> kick)
    : io_(io),
      loop_(loop),
      kick_(std::move(kick)),
      transport_(std::make_unique<raft_uv_transport>()),
      log_(log::get("raft")),
      alive_(std::make_shared<bool>(true)) {
  *transport_ = raft_uv_transport{};
  transport_->impl = this;
  transport_->init = &PeerTransport::init;
  transport_->listen = &PeerTransport::listen;
  transport_->connect = &PeerTransport::connect;
  transport_->close = &PeerTransport::close;
  net_work_.emplace(net_io_.get_executor());
  net_thread_ = std::thread([this] {
    pthread_setname_np(pthread_self(), "jc-peer-links");
    try {
      net_io_.run();
    } catch (const std::exception& e) {
      // As on the proxy's own loop (run_server): say why, then stop.
      log_->critical("fatal on the peer links' thread: {}", e.what());
      log_->flush();
      std::_Exit(1);
    }
  });
}

PeerTransport::~PeerTransport() {
  *alive_ = false;
  shutdown();
}

void PeerTransport::shutdown() {
  if (!net_thread_.joinable()) return;
  net_work_.reset();
  net_io_.stop();
  net_thread_.join();
  // The links left on net_io_ end with it (their handlers are destroyed
  // when this transport is).
}

int PeerTransport::init(raft_uv_transport*, raft_id, const char*) { return 0; }

int PeerTransport::listen(raft_uv_transport* t, raft_uv_accept_cb cb) {
  static_cast<PeerTransport*>(t->impl)->accept_cb_ = cb;
  return 0;
}

int PeerTransport::connect(raft_uv_transport* t, raft_uv_connect* req, raft_id, const char* address,
                           raft_uv_connect_cb cb) {
  auto* self = static_cast<PeerTransport*>(t->impl);
  if (self->closed_ || !self->dial_) return RAFT_NOCONNECTION;
  req->cb = cb;
  self->connecting_.insert(req);
  std::uint64_t dial_id = ++self->next_dial_;
  // Dialled on the links' thread (never from inside the library's call);
  // the outcome comes back to this thread as plain values, and the
  // connection stays there, paused, until its relay starts.
  asio::post(self->net_io_, [self, alive = self->alive_, req, dial_id,
                             address = std::string(address)] {
    self->dial_(address, self->net_io_,
                [self, alive, req, dial_id](std::shared_ptr<net::FrameConnection> conn,
                                            const std::string& why) {
                  bool ok = conn != nullptr;
                  if (ok) {
                    conn->pause();  // its frames wait for the relay
                    self->dialled_[dial_id] = std::move(conn);
                  }
                  asio::post(self->io_, [self, alive, req, dial_id, ok, why] {
                    if (!*alive) return;
                    self->dialled(req, dial_id, ok, why);
                  });
                });
  });
  return 0;
}

void PeerTransport::dialled(raft_uv_connect* req, std::uint64_t dial_id, bool ok,
                            const std::string& why) {
  auto drop = [this, ok, dial_id] {
    if (!ok) return;
    asio::post(net_io_, [this, dial_id] {
      auto it = dialled_.find(dial_id);
      if (it == dialled_.end()) return;
      it->second->close("proxy link no longer wanted");
      dialled_.erase(it);
    });
  };
  if (connecting_.erase(req) == 0) {  // cancelled by close()
    drop();
    return;
  }
  int other_end = -1;
  uv_stream_s* stream = ok ? library_end(&other_end) : nullptr;
  if (stream == nullptr) {
    drop();
    log_->debug("cannot reach a peer proxy: {}", ok ? "cannot bridge the link" : why);
    req->cb(req, nullptr, RAFT_NOCONNECTION);
    kick_();
    return;
  }
  // The descriptor is closed if this never runs (a shutdown first).
  auto fd = std::make_shared<OwnedFd>(other_end);
  asio::post(net_io_, [this, dial_id, fd] {
    auto it = dialled_.find(dial_id);
    if (it == dialled_.end()) return;  // closed with `fd`: the library reads EOF and dials again
    auto conn = std::move(it->second);
    dialled_.erase(it);
    relay(net_io_, fd->release(), std::move(conn));
  });
  req->cb(req, stream, 0);
  kick_();
}

void PeerTransport::close(raft_uv_transport* t, raft_uv_transport_close_cb cb) {
  auto* self = static_cast<PeerTransport*>(t->impl);
  self->closed_ = true;
  self->accept_cb_ = nullptr;
  auto pending = std::move(self->connecting_);
  self->connecting_.clear();
  for (auto* req : pending) req->cb(req, nullptr, RAFT_CANCELED);
  cb(t);
}

void PeerTransport::accept(std::uint64_t id, const std::string& address,
                           std::shared_ptr<net::FrameConnection> conn) {
  if (closed_ || accept_cb_ == nullptr) {
    conn->close("this proxy is not taking peer links");
    return;
  }
  int other_end = -1;
  uv_stream_s* stream = library_end(&other_end);
  if (stream == nullptr) {
    conn->close("cannot bridge a peer link");
    return;
  }
  relay(io_, other_end, std::move(conn));
  accept_cb_(transport_.get(), id, address.c_str(), stream);
  kick_();
}

uv_stream_s* PeerTransport::library_end(int* other_end) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    log_->error("socketpair for a peer link failed: {}", std::strerror(errno));
    return nullptr;
  }
  OwnedFd ours(fds[0]), library(fds[1]);  // closed on every failure below
  // The library closes the stream and frees it with raft_free.
  auto* pipe = static_cast<uv_pipe_t*>(raft_malloc(sizeof(uv_pipe_t)));
  if (pipe == nullptr) return nullptr;
  if (uv_pipe_init(loop_, pipe, 0) != 0) {
    raft_free(pipe);
    return nullptr;
  }
  if (int rv = uv_pipe_open(pipe, library.fd); rv != 0) {
    log_->error("uv_pipe_open for a peer link failed: {}", uv_strerror(rv));
    uv_close(reinterpret_cast<uv_handle_t*>(pipe), [](uv_handle_t* h) { raft_free(h); });
    return nullptr;
  }
  library.release();  // the pipe's now
  *other_end = ours.release();
  return reinterpret_cast<uv_stream_s*>(pipe);
}

void PeerTransport::relay(asio::io_context& io, int other_end,
                          std::shared_ptr<net::FrameConnection> conn) {
  auto link = std::make_shared<Link>(io, std::move(conn));
  error_code ec;
  link->local.assign(asio::local::stream_protocol(), other_end, ec);
  if (!ec) link->local.non_blocking(true, ec);  // for the reads that drain it
  if (ec) {
    // The library reads EOF on its end and dials again.
    if (!link->local.is_open()) ::close(other_end);
    link->conn->close("cannot relay a peer link: " + ec.message());
    return;
  }
  link->start();
}

}  // namespace jc::replication
