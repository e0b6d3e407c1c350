// One TCP connection that carries protocol frames, used by the proxy for each
// node and by a node for its link to the proxy.
//
// Reads are decoded incrementally (protocol::decode); a frame that breaks the
// protocol closes this connection with a logged reason. Writes are coalesced:
// frames queued while a write is in flight go out together in the next one,
// so there is one async_write at a time. A deadline closes the connection
// after `idle_timeout` without a whole frame from the peer: bytes trickled
// in do not keep it open, until the owner admits the peer
// (count_partial_frames): then a large frame still arriving does.
// Over TLS (net/tls.h) the handshake runs first, under the same deadline;
// frames sent before it ends wait for it.
// Runs on the owner's io_context thread; keeps itself alive with
// shared_from_this() in every handler.
#pragma once

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>

#include "net/asio.h"
#include "net/tls.h"
#include "protocol/codec.h"

namespace jc::net {

// How one connection speaks TLS.
struct TlsLink {
  std::shared_ptr<boost::asio::ssl::context> context;
  TlsRole role = TlsRole::client;
  TlsSettings::Mode mode = TlsSettings::Mode::psk;
  // A client with certificates: the name (or address) the server's
  // certificate must carry.
  std::string verify_host;
};

class FrameConnection : public std::enable_shared_from_this<FrameConnection> {
 public:
  using OnMessage = std::function<void(protocol::Message&&)>;
  using OnClose = std::function<void(const std::string& reason)>;

  FrameConnection(boost::asio::ip::tcp::socket socket, std::string peer,
                  std::chrono::milliseconds idle_timeout);
  // The same over TLS.
  FrameConnection(boost::asio::ip::tcp::socket socket, std::string peer,
                  std::chrono::milliseconds idle_timeout, TlsLink tls);

  // Starts reading; handlers run on the io_context thread.
  void start(OnMessage on_message, OnClose on_close);
  void send(const protocol::Message& m);
  // Hands the connection to another owner: later frames and the close go to
  // these handlers.
  // Called from inside a message handler, it takes effect once that returns.
  void rebind(OnMessage on_message, OnClose on_close);
  // Sends what is queued, then closes.
  void close_after_flush();
  void close(const std::string& reason);
  void set_idle_timeout(std::chrono::milliseconds t);
  // Largest frame accepted from the peer (protocol::kMaxFrameBytes unless set).
  void set_max_frame(std::size_t bytes) { max_frame_ = bytes; }
  // For a peer that proved who it is: a frame in progress counts as a sign
  // of life (a result of tens of megabytes may take longer than the idle
  // timeout to arrive from a busy peer).
  void count_partial_frames() { partial_frames_count_ = true; }
  // Backpressure: pause() stops handing frames to the owner, and reading
  // from the socket, so that TCP pushes back on the peer; frames already
  // read wait in the buffer. resume() goes on (from a later turn). A
  // paused connection is not idle: its deadline waits too.
  void pause() { paused_ = true; }
  // Fairness: a turn of the event loop hands over frames for at most this
  // long (then at least one), and the rest waits for a later turn, behind
  // the other connections' handlers. Zero (the default): whatever was read.
  void set_turn_budget(std::chrono::microseconds budget) { turn_budget_ = budget; }
  void resume();
  bool paused() const { return paused_; }
  const std::string& peer() const { return peer_; }
  bool open() const { return !closed_; }
  bool encrypted() const { return tls_ != nullptr; }

 private:
  using TlsStream = boost::asio::ssl::stream<boost::asio::ip::tcp::socket>;
  boost::asio::ip::tcp::socket& socket() { return tls_ ? tls_->next_layer() : *plain_; }
  void handshake();
  void do_read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  void do_write();
  void on_write(const boost::system::error_code& ec, std::size_t n);
  void arm_deadline();
  // A later turn of on_read over what is buffered (it then reads again).
  void post_turn();

  std::optional<boost::asio::ip::tcp::socket> plain_;  // or
  std::unique_ptr<TlsStream> tls_;
  TlsLink tls_link_;
  bool ready_ = false;  // the TLS handshake is over (or there is none)
  std::size_t tls_read_this_turn_ = 0;
  boost::asio::steady_timer deadline_;
  std::string peer_;
  std::chrono::milliseconds idle_timeout_;
  std::chrono::steady_clock::time_point last_heard_;  // the last whole frame (or part of one)
  bool partial_frames_count_ = false;
  std::size_t max_frame_ = protocol::kMaxFrameBytes;
  OnMessage on_message_;
  OnClose on_close_;
  bool in_handler_ = false;
  std::optional<std::pair<OnMessage, OnClose>> rebound_;  // rebind() from inside a handler
  std::string inbox_;
  std::size_t inbox_used_ = 0;
  std::size_t read_chunk_ = 4 * 1024;  // grows while reads fill it
  std::size_t frame_end_ = 0;          // where the frame being read ends in inbox_, or 0
  std::string outgoing_;
  std::string writing_;
  bool closed_ = false;
  bool close_when_flushed_ = false;
  bool paused_ = false;
  bool reading_ = false;  // a read is outstanding, or a turn of on_read is posted
  std::chrono::microseconds turn_budget_{0};
  // When this turn began: a TLS record read at once (do_read) continues it.
  std::chrono::steady_clock::time_point turn_started_;
  bool same_turn_ = false;
};

}  // namespace jc::net
