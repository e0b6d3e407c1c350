#include "replication/peer_transport.h"

#include <sys/socket.h>
#include <unistd.h>

#include <array>
#include <deque>

#include "protocol/messages.h"

namespace jc::replication {

namespace asio = boost::asio;
using boost::system::error_code;

// One link: the library's uv_pipe_t on one end of a socketpair, this on the
// other, relaying bytes to and from PEER_DATA frames. Whichever side ends
// first ends the other: the library then dials again after its retry delay.
struct PeerTransport::Link : std::enable_shared_from_this<Link> {
  Link(asio::io_context& io, std::shared_ptr<net::FrameConnection> c)
      : local(io), conn(std::move(c)), keepalive(io) {}

  void start() {
    auto self = shared_from_this();
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
      self->conn->send(protocol::PeerData{std::string(self->buffer.data(), n)});
      self->sent_since_beat = true;
      self->read();
    });
  }

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
}

PeerTransport::~PeerTransport() { *alive_ = false; }

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
  // Dialled from an Asio handler, never from inside the library's call.
  asio::post(self->io_, [self, alive = self->alive_, req, address = std::string(address)] {
    if (!*alive || !self->connecting_.count(req)) return;
    self->dial_(address, [self, alive, req](std::shared_ptr<net::FrameConnection> conn,
                                            const std::string& why) {
      if (!*alive || self->connecting_.erase(req) == 0) {  // cancelled by close()
        if (conn) conn->close("proxy link no longer wanted");
        return;
      }
      uv_stream_s* stream = conn ? self->bridge(conn) : nullptr;
      if (stream == nullptr) {
        self->log_->debug("cannot reach a peer proxy: {}", why);
        req->cb(req, nullptr, RAFT_NOCONNECTION);
      } else {
        req->cb(req, stream, 0);
      }
      self->kick_();
    });
  });
  return 0;
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
  uv_stream_s* stream = bridge(conn);
  if (stream == nullptr) {
    conn->close("cannot bridge a peer link");
    return;
  }
  accept_cb_(transport_.get(), id, address.c_str(), stream);
  kick_();
}

uv_stream_s* PeerTransport::bridge(std::shared_ptr<net::FrameConnection> conn) {
  int fds[2];
  if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_NONBLOCK | SOCK_CLOEXEC, 0, fds) != 0) {
    log_->error("socketpair for a peer link failed: {}", std::strerror(errno));
    return nullptr;
  }
  // The library closes the stream and frees it with raft_free.
  auto* pipe = static_cast<uv_pipe_t*>(raft_malloc(sizeof(uv_pipe_t)));
  if (pipe == nullptr) {
    ::close(fds[0]);
    ::close(fds[1]);
    return nullptr;
  }
  if (uv_pipe_init(loop_, pipe, 0) != 0) {
    raft_free(pipe);
    ::close(fds[0]);
    ::close(fds[1]);
    return nullptr;
  }
  if (int rv = uv_pipe_open(pipe, fds[1]); rv != 0) {
    log_->error("uv_pipe_open for a peer link failed: {}", uv_strerror(rv));
    uv_close(reinterpret_cast<uv_handle_t*>(pipe), [](uv_handle_t* h) { raft_free(h); });
    ::close(fds[0]);
    ::close(fds[1]);
    return nullptr;
  }
  auto link = std::make_shared<Link>(io_, std::move(conn));
  error_code ec;
  link->local.assign(asio::local::stream_protocol(), fds[0], ec);
  if (ec) {
    ::close(fds[0]);
    uv_close(reinterpret_cast<uv_handle_t*>(pipe), [](uv_handle_t* h) { raft_free(h); });
    return nullptr;
  }
  link->start();
  return reinterpret_cast<uv_stream_s*>(pipe);
}

}  // namespace jc::replication
