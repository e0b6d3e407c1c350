#include "cluster_node/client_session.h"

#include "common/log.h"

namespace jc::node {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
}  // namespace

ClientSession::ClientSession(asio::ip::tcp::socket socket, client::Backend& backend,
                             std::string peer, std::string address,
                             std::shared_ptr<AddressCounts> counts,
                             std::chrono::milliseconds idle_timeout)
    : socket_(std::move(socket)),
      peer_(std::move(peer)),
      address_(std::move(address)),
      counts_(std::move(counts)),
      idle_timeout_(idle_timeout),
      last_heard_(std::chrono::steady_clock::now()),
      idle_timer_(socket_.get_executor()) {
  ++(*counts_)[address_];
  conversation_.emplace(
      backend, peer_, [this]() -> std::shared_ptr<void> { return shared_from_this(); },
      [this] {
        pump();
        do_read();
      });
}

ClientSession::~ClientSession() {
  auto it = counts_->find(address_);
  if (it != counts_->end() && --it->second == 0) counts_->erase(it);
}

void ClientSession::start() {
  do_read();
  arm_idle_timer(last_heard_ + idle_timeout_);
}

void ClientSession::arm_idle_timer(std::chrono::steady_clock::time_point at) {
  idle_timer_.expires_at(at);
  idle_timer_.async_wait([weak = weak_from_this()](const error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->closed_ || self->conversation_->stopped_reading()) return;
    auto due = self->last_heard_ + self->idle_timeout_;
    bool idle = self->conversation_->idle() && self->outgoing_.empty() && self->writing_.empty();
    if (std::chrono::steady_clock::now() < due || !idle) {
      // Heard from since, or a reply is still owed (a `wait`): look again later.
      self->arm_idle_timer(std::max(due, std::chrono::steady_clock::now() + self->idle_timeout_ / 4));
      return;
    }
    log::get("client")->debug("closing idle client peer={}", self->peer_);
    self->conversation_->idle_timeout(self->idle_timeout_);
    self->pump();
  });
}

void ClientSession::refuse(const std::string& reply) {
  outgoing_ = reply;
  refused_ = true;
  do_write();
}

void ClientSession::close() {
  if (closed_) return;
  closed_ = true;
  conversation_->close();
  error_code ignored;
  idle_timer_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
}

void ClientSession::do_read() {
  if (closed_ || refused_ || reading_ || conversation_->stopped_reading() ||
      conversation_->backlogged(outgoing_.size() + writing_.size())) {
    return;
  }
  reading_ = true;
  inbox_.resize(kReadChunk);
  socket_.async_read_some(asio::buffer(inbox_),
                          [self = shared_from_this()](const error_code& ec, std::size_t n) {
                            // reading_ stays set while on_read() parses inbox_: a reply completed
                            // synchronously must not start the next read into the buffer being
                            // parsed (Asio may read speculatively at once).
                            self->on_read(ec, n);
                          });
}

void ClientSession::on_read(const error_code& ec, std::size_t n) {
  if (closed_) {
    reading_ = false;
    return;
  }
  if (n > 0) last_heard_ = std::chrono::steady_clock::now();
  if (ec) {
    reading_ = false;
    if (ec != asio::error::eof && ec != asio::error::operation_aborted) {
      log::get("client")->debug("read failed peer={} error=\"{}\"", peer_, ec.message());
    }
    if (conversation_->mid_line()) log::get("client")->debug("client left mid-line peer={}", peer_);
    conversation_->end_of_input();  // answer what was read, then close
    pump();
    return;
  }
  conversation_->feed(std::string_view(inbox_.data(), n));
  reading_ = false;
  pump();
  do_read();
}

void ClientSession::pump() {
  if (closed_) return;
  outgoing_ += conversation_->take_output();
  if (writing_.empty()) do_write();
}

void ClientSession::do_write() {
  if (closed_) return;
  if (outgoing_.empty()) {
    if (refused_ || conversation_->finished()) close();
    return;
  }
  writing_.swap(outgoing_);
  outgoing_.clear();
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this()](const error_code& ec, std::size_t) {
                      self->writing_.clear();
                      if (ec) {
                        self->close();
                        return;
                      }
                      self->do_write();
                      self->do_read();
                    });
}

}  // namespace jc::node
