#include "net/frame_connection.h"

#include <algorithm>
#include <cstring>

#include "common/log.h"

namespace jc::net {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
// Reads start small (read_chunk_: a quiet node's connection costs the proxy
// little) and double, up to this, while reads fill the buffer.
constexpr std::size_t kMaxReadChunk = 64 * 1024;
}  // namespace

FrameConnection::FrameConnection(asio::ip::tcp::socket socket, std::string peer,
                                 std::chrono::milliseconds idle_timeout)
    : socket_(std::move(socket)),
      deadline_(socket_.get_executor()),
      peer_(std::move(peer)),
      idle_timeout_(idle_timeout) {
  error_code ignored;
  socket_.set_option(asio::ip::tcp::no_delay(true), ignored);
}

void FrameConnection::start(OnMessage on_message, OnClose on_close) {
  on_message_ = std::move(on_message);
  on_close_ = std::move(on_close);
  last_heard_ = std::chrono::steady_clock::now();
  arm_deadline();
  do_read();
}

// One timer wait per idle period, not one per read: a read only notes the
// time, and the wait, when it ends, closes or waits for the rest of the
// period. (Re-arming on every read was a timerfd_settime system call per
// frame, 5% of a node's CPU in the end-to-end benchmark.)
void FrameConnection::arm_deadline() {
  deadline_.expires_at(last_heard_ + idle_timeout_);
  deadline_.async_wait([self = shared_from_this()](const error_code& ec) {
    if (ec || self->closed_) return;
    if (std::chrono::steady_clock::now() - self->last_heard_ >= self->idle_timeout_) {
      self->close("no message within " + std::to_string(self->idle_timeout_.count()) + " ms");
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
  // Room for a read of read_chunk_, or for the rest of the frame in
  // progress when that is more. A large frame's rest is read into the room
  // made for it without growing past it: that would copy the whole frame
  // (tens of megabytes for a large result) to a new buffer.
  std::size_t want = std::max(inbox_used_ + read_chunk_, frame_end_);
  bool large_frame_fits = frame_end_ > inbox_used_ && inbox_.size() >= frame_end_;
  if (inbox_.size() < want && !large_frame_fits) inbox_.resize(want);
  socket_.async_read_some(
      asio::buffer(inbox_.data() + inbox_used_, inbox_.size() - inbox_used_),
      [self = shared_from_this()](const error_code& ec, std::size_t n) { self->on_read(ec, n); });
}

void FrameConnection::on_read(const error_code& ec, std::size_t n) {
  if (closed_) return;
  if (ec) {
    close(ec == asio::error::eof ? "peer closed the connection" : ec.message());
    return;
  }
  // A read that filled the buffer: the next ones may be larger.
  if (inbox_used_ + n == inbox_.size() && read_chunk_ < kMaxReadChunk) read_chunk_ *= 2;
  inbox_used_ += n;
  if (partial_frames_count_ && n > 0) last_heard_ = std::chrono::steady_clock::now();
  std::size_t offset = 0;
  while (!closed_) {
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
    last_heard_ = std::chrono::steady_clock::now();
    on_message_(std::move(done.message));
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
  do_read();
}

void FrameConnection::send(const protocol::Message& m) {
  if (closed_) return;
  protocol::encode(m, outgoing_);
  if (writing_.empty()) do_write();
}

void FrameConnection::do_write() {
  if (outgoing_.empty()) {
    if (close_when_flushed_) close("closed after flush");
    return;
  }
  writing_.swap(outgoing_);  // writing_ was empty, so outgoing_ now is
  asio::async_write(
      socket_, asio::buffer(writing_),
      [self = shared_from_this()](const error_code& ec, std::size_t n) { self->on_write(ec, n); });
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

void FrameConnection::close_after_flush() {
  close_when_flushed_ = true;
  if (writing_.empty()) do_write();
}

void FrameConnection::close(const std::string& reason) {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  deadline_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  if (on_close_) {
    auto cb = std::move(on_close_);
    on_close_ = nullptr;
    cb(reason);
  }
  on_message_ = nullptr;
}

}  // namespace jc::net
