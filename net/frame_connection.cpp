#include "net/frame_connection.h"

#include <algorithm>
#include <cstring>

#include "common/counters.h"
#include "common/log.h"

namespace jc::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// Reads start small (read_chunk_: a quiet node's connection costs the proxy
// little) and double, up to this, while reads fill the buffer.
constexpr std::size_t kMaxReadChunk = 64 * 1024;
// Over TLS an asynchronous read gives one record (16 KiB at most) per turn of
// the event loop, and each turn ends in a group commit: so what the socket
// already holds is read at once, without waiting, up to this much per turn.
constexpr std::size_t kMaxTlsReadPerTurn = 512 * 1024;
}  // namespace

FrameConnection::FrameConnection(asio::ip::tcp::socket socket, std::string peer,
                                 std::chrono::milliseconds idle_timeout)
    : plain_(std::move(socket)),
      ready_(true),
      deadline_(plain_->get_executor()),
      peer_(std::move(peer)),
      idle_timeout_(idle_timeout) {
  error_code ignored;
  plain_->set_option(asio::ip::tcp::no_delay(true), ignored);
}

FrameConnection::FrameConnection(asio::ip::tcp::socket socket, std::string peer,
                                 std::chrono::milliseconds idle_timeout, TlsLink tls)
    : tls_(std::make_unique<TlsStream>(std::move(socket), *tls.context)),
      tls_link_(std::move(tls)),
      deadline_(tls_->get_executor()),
      peer_(std::move(peer)),
      idle_timeout_(idle_timeout) {
  error_code ignored;
  tls_->next_layer().set_option(asio::ip::tcp::no_delay(true), ignored);
  // For the reads that take what is there without waiting (do_read).
  tls_->next_layer().non_blocking(true, ignored);
}

void FrameConnection::start(OnMessage on_message, OnClose on_close) {
  on_message_ = std::move(on_message);
  on_close_ = std::move(on_close);
  last_heard_ = std::chrono::steady_clock::now();
  arm_deadline();
  if (tls_) {
    handshake();
  } else {
    do_read();
  }
}

// The handshake runs under the idle deadline armed by start(): a peer that
// opens a connection and stalls the handshake is closed like a silent one.
void FrameConnection::handshake() {
  SSL* ssl = tls_->native_handle();
  const std::string& host = tls_link_.verify_host;
  if (tls_link_.role == TlsRole::client && tls_link_.mode == TlsSettings::Mode::certificates &&
      !host.empty()) {
    error_code not_ip;
    asio::ip::make_address(host, not_ip);
    if (not_ip) {
      SSL_set_tlsext_host_name(ssl, host.c_str());
      SSL_set1_host(ssl, host.c_str());
    } else {
      X509_VERIFY_PARAM_set1_ip_asc(SSL_get0_param(ssl), host.c_str());
    }
  }
  auto type = tls_link_.role == TlsRole::server ? asio::ssl::stream_base::server
                                                : asio::ssl::stream_base::client;
  tls_->async_handshake(type, [self = shared_from_this()](const error_code& ec) {
    if (self->closed_) return;
    if (ec) {
      std::string why = describe_tls_failure(ec, self->tls_link_.mode);
      long verify = SSL_get_verify_result(self->tls_->native_handle());
      if (verify != X509_V_OK) {
        why += std::string(": the peer's certificate: ") + X509_verify_cert_error_string(verify);
      }
      self->close(why);
      return;
    }
    self->ready_ = true;
    self->last_heard_ = std::chrono::steady_clock::now();
    self->do_read();
    self->do_write();
  });
}

// One timer wait per idle period, not one per read: a read only notes the
// time, and the wait, when it ends, closes or waits for the rest of the
// period. (Re-arming on every read was a timerfd_settime system call per
// frame, 5% of a node's CPU in the end-to-end benchmark.)
void FrameConnection::arm_deadline() {
  deadline_.expires_at(last_heard_ + idle_timeout_);
  deadline_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->closed_) return;
    if (self->paused_) self->last_heard_ = std::chrono::steady_clock::now();
    // Bytes waiting in the socket were sent while this process could not
    // read them (it was stopped, or starved of CPU, and this wait ended
    // first on resuming): the peer spoke, whatever the clock says.
    boost::system::error_code waiting_ec;
    if (self->ready_ && self->socket().available(waiting_ec) > 0 && !waiting_ec) {
      self->last_heard_ = std::chrono::steady_clock::now();
    }
    if (std::chrono::steady_clock::now() - self->last_heard_ >= self->idle_timeout_) {
      std::string ms = std::to_string(self->idle_timeout_.count());
      self->close(self->ready_ ? "no message within " + ms + " ms"
                               : "no TLS handshake within " + ms +
                                     " ms (a peer without CLUSTER_SECRET or TLS_* speaks "
                                     "plaintext)");
    } else {
      self->arm_deadline();
    }
  });
}

void FrameConnection::set_idle_timeout(std::chrono::milliseconds t) {
  idle_timeout_ = t;
  if (!closed_ && on_message_) arm_deadline();  // replaces the wait of the old period
}

void FrameConnection::do_read() {
  if (paused_) return;  // resume() reads again
  if (reading_) return;  // a read is outstanding, or a turn of on_read posted
  reading_ = true;
  // Room for a read of read_chunk_, or for the rest of the frame in
  // progress when that is more. A large frame's rest is read into the room
  // made for it without growing past it: that would copy the whole frame
  // (tens of megabytes for a large result) to a new buffer.
  std::size_t want = std::max(inbox_used_ + read_chunk_, frame_end_);
  bool large_frame_fits = frame_end_ > inbox_used_ && inbox_.size() >= frame_end_;
  if (inbox_.size() < want && !large_frame_fits) inbox_.resize(want);
  auto buffer = asio::buffer(inbox_.data() + inbox_used_, inbox_.size() - inbox_used_);
  auto handler = [self = shared_from_this()](const error_code& ec, std::size_t n) {
    self->on_read(ec, n);
  };
  if (tls_) {
    bool budget_left = turn_budget_.count() == 0 ||
                       std::chrono::steady_clock::now() - turn_started_ < turn_budget_;
    if (tls_read_this_turn_ < kMaxTlsReadPerTurn && budget_left) {
      // A record already received (or a whole one in the socket): now. The
      // engine keeps a partial record across a would_block.
      error_code ec;
      std::size_t n = tls_->read_some(buffer, ec);
      if (ec != asio::error::would_block) {
        tls_read_this_turn_ += n;
        same_turn_ = true;
        on_read(ec, n);
        return;
      }
    }
    tls_read_this_turn_ = 0;
    tls_->async_read_some(buffer, std::move(handler));
  } else {
    plain_->async_read_some(buffer, std::move(handler));
  }
}

void FrameConnection::on_read(const error_code& ec, std::size_t n) {
  reading_ = false;
  if (closed_) return;
  if (ec) {
    bool eof = ec == asio::error::eof || ec == asio::ssl::error::stream_truncated;
    close(eof ? "peer closed the connection" : ec.message());
    return;
  }
  // A read that filled the buffer: the next ones may be larger.
  if (n > 0 && inbox_used_ + n == inbox_.size() && read_chunk_ < kMaxReadChunk) read_chunk_ *= 2;
  inbox_used_ += n;
  counters::add(counters::get().link_bytes_in, n);
  if (partial_frames_count_ && n > 0) last_heard_ = std::chrono::steady_clock::now();
  std::size_t offset = 0;
  bool yielded = false;
  if (!std::exchange(same_turn_, false) && turn_budget_.count() > 0) {
    turn_started_ = std::chrono::steady_clock::now();
  }
  while (!closed_ && !paused_ && !yielded) {
    auto result = protocol::decode(std::string_view(inbox_.data() + offset, inbox_used_ - offset),
                                   max_frame_);
    if (std::holds_alternative<protocol::NeedMore>(result)) break;
    if (auto* err = std::get_if<protocol::DecodeError>(&result)) {
      log::get("net")->warn(
          "protocol error peer={} reason=\"{}\" sample=\"{}\"", peer_, err->reason,
          protocol::escape_sample(std::string_view(inbox_.data() + offset, inbox_used_ - offset)));
      close("protocol error: " + err->reason);
      return;
    }
    auto& done = std::get<protocol::Complete>(result);
    offset += done.consumed;
    counters::add(counters::get().frames_in);
    last_heard_ = std::chrono::steady_clock::now();
    in_handler_ = true;
    on_message_(std::move(done.message));
    in_handler_ = false;
    if (rebound_) {
      if (!closed_) {
        on_message_ = std::move(rebound_->first);
        on_close_ = std::move(rebound_->second);
      }
      rebound_.reset();
    }
    yielded = turn_budget_.count() > 0 &&
              std::chrono::steady_clock::now() - turn_started_ >= turn_budget_;
  }
  if (closed_) return;
  // Keep the unread tail at the front; grow only up to one frame.
  if (offset > 0) {
    std::memmove(inbox_.data(), inbox_.data() + offset, inbox_used_ - offset);
    inbox_used_ -= offset;
  }
  // A buffer grown for a large frame goes back to its small size once that
  // frame is consumed (before the room for the next one is made).
  if (inbox_.size() > 4 * kMaxReadChunk && inbox_used_ < kMaxReadChunk) {
    inbox_.resize(kMaxReadChunk);
    inbox_.shrink_to_fit();
  }
  frame_end_ = 0;
  if (inbox_used_ >= protocol::kFrameHeaderBytes) {
    // The declared length is checked by decode(); make room for the frame.
    frame_end_ = protocol::kFrameHeaderBytes +
                 protocol::frame_payload_length(std::string_view(inbox_.data(), inbox_used_));
    if (frame_end_ > inbox_.size()) inbox_.resize(frame_end_);
  }
  if (yielded && !paused_) {
    post_turn();  // the frames left in the buffer, then reads again
    return;
  }
  do_read();
}

void FrameConnection::post_turn() {
  reading_ = true;
  asio::post(socket().get_executor(), [self = shared_from_this()] {
    if (self->closed_) return;
    self->reading_ = false;
    if (!self->paused_) self->on_read(error_code(), 0);
  });
}

void FrameConnection::send(const protocol::Message& m) {
  if (closed_) return;
  const std::size_t before = outgoing_.size();
  protocol::encode(m, outgoing_);
  counters::add(counters::get().frames_out);
  counters::add(counters::get().link_bytes_out, outgoing_.size() - before);
  if (writing_.empty()) do_write();
}

void FrameConnection::do_write() {
  if (!ready_ || !writing_.empty() || closed_) return;
  if (outgoing_.empty()) {
    if (close_when_flushed_) close("closed after flush");
    return;
  }
  writing_.swap(outgoing_);  // writing_ was empty, so outgoing_ now is
  auto handler = [self = shared_from_this()](const error_code& ec, std::size_t n) {
    self->on_write(ec, n);
  };
  if (tls_) {
    asio::async_write(*tls_, asio::buffer(writing_), std::move(handler));
  } else {
    asio::async_write(*plain_, asio::buffer(writing_), std::move(handler));
  }
}

void FrameConnection::on_write(const error_code& ec, std::size_t) {
  writing_.clear();
  if (closed_) return;
  if (ec) {
    close("write failed: " + ec.message());
    return;
  }
  do_write();
}

void FrameConnection::resume() {
  if (!paused_) return;
  paused_ = false;
  last_heard_ = std::chrono::steady_clock::now();  // the pause was not the peer's silence
  // From inside this connection's own handler, its loop simply goes on
  // (and reads again after it). Before the TLS handshake ends, its end
  // starts the reads.
  if (in_handler_ || closed_ || reading_ || !ready_ || !on_message_) return;
  // The frames already read first, from a turn of their own: resume() may
  // be called from inside the owner's handlers.
  post_turn();
}

void FrameConnection::close_after_flush() {
  close_when_flushed_ = true;
  if (writing_.empty()) do_write();
}

void FrameConnection::close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  deadline_.cancel();
  // Over TLS too, the TCP connection simply ends: frames carry their own
  // lengths, so a cut is seen as a partial frame, never as a short one.
  socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket().close(ignored);
  if (on_close_) {
    auto cb = std::move(on_close_);
    on_close_ = nullptr;
    cb(reason);
  }
  on_message_ = nullptr;
}

void FrameConnection::rebind(OnMessage on_message, OnClose on_close) {
  if (in_handler_) {
    rebound_.emplace(std::move(on_message), std::move(on_close));
    return;
  }
  on_message_ = std::move(on_message);
  on_close_ = std::move(on_close);
}

}  // namespace jc::net
