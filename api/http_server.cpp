#include "api/http_server.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/steady_timer.hpp>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/log.h"

namespace jc::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

// One connection. Requests are read ahead of their answers (HTTP/1.1
// pipelining: a client may send many before reading one), at most
// HttpServer::kMaxPipelined of them or kMaxPipelinedBytes of bodies
// unanswered, and the answers are written in the order of the requests.
// One timer bounds what the client owes: a whole request within
// kRequestTimeout of the connection or of the last answer (while nothing is
// pending), and the reading of each answer. While the node works on an
// answer (a durable submit, a wait) nothing is timed.
class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::ip::tcp::socket socket, Router& router, std::size_t max_body,
          std::shared_ptr<HttpServer::AddressCounts> open, std::string address, std::string peer)
      : socket_(std::move(socket)),
        timer_(socket_.get_executor()),
        router_(router),
        max_body_(max_body),
        open_(std::move(open)),
        address_(std::move(address)),
        peer_(std::move(peer)) {
    ++(*open_)[address_];
  }
  ~Session() {
    auto it = open_->find(address_);
    if (it != open_->end() && --it->second == 0) open_->erase(it);
  }

  void start() { do_read(); }

 private:
  struct Slot {
    std::optional<HttpResponse> answer;
    bool keep_alive = false;
    unsigned version = 11;
    std::size_t bytes = 0;  // the request's body, held until answered
  };

  void do_read() {
    if (reading_ || closed_ || stop_reading_) return;
    if (!slots_.empty() && (slots_.size() >= HttpServer::kMaxPipelined ||
                            pending_bytes_ >= HttpServer::kMaxPipelinedBytes)) {
      return;  // resumed as answers go out
    }
    reading_ = true;
    parser_.emplace();
    parser_->header_limit(HttpServer::kMaxHeaderBytes);
    parser_->body_limit(max_body_);
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
    update_timer();
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (closed_) return;
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::eof || ec == asio::error::connection_reset) {
      // The client is done sending: answer what it asked, then close.
      stop_reading_ = true;
      if (slots_.empty()) return close();
      return update_timer();
    }
    if (ec == http::error::body_limit) {
      return answer_error(413, fmt::format("the body is over the limit of {} bytes", max_body_));
    }
    if (ec == http::error::header_limit) return answer_error(431, "the headers are too large");
    if (ec) return answer_error(400, "malformed HTTP request");
    auto& req = parser_->get();
    HttpRequest request;
    request.method = std::string(req.method_string());
    request.target = std::string(req.target());
    request.body = std::move(req.body());
    request.auth_token = std::string(req["X-Auth-Token"]);
    request.auth_user = std::string(req["X-Auth-User"]);
    request.authorization = std::string(req[http::field::authorization]);
    request.origin = std::string(req[http::field::origin]);
    request.peer = peer_;
    Slot slot;
    slot.keep_alive = req.keep_alive();
    slot.version = req.version();
    slot.bytes = request.body.size();
    if (!slot.keep_alive) stop_reading_ = true;
    pending_bytes_ += slot.bytes;
    slots_.push_back(std::move(slot));
    const std::uint64_t seq = first_seq_ + slots_.size() - 1;
    // The answer may come now (most GETs) or later (a submit after its
    // durable write, a wait).
    router_.handle(request, [self = shared_from_this(), seq](HttpResponse r) {
      self->answered(seq, std::move(r));
    });
    do_read();
    update_timer();
  }

  // A request that cannot be read: its answer, after those before it, ends
  // the connection.
  void answer_error(int status, const std::string& message) {
    stop_reading_ = true;
    Slot slot;
    slot.answer.emplace();
    slot.answer->status = status;
    slot.answer->body = nlohmann::json{{"error", message}}.dump();
    slots_.push_back(std::move(slot));
    flush();
    update_timer();
  }

  void answered(std::uint64_t seq, HttpResponse r) {
    if (closed_ || seq < first_seq_ || seq - first_seq_ >= slots_.size()) return;
    slots_[seq - first_seq_].answer = std::move(r);
    flush();
  }

  // Writes the oldest answer once it is there.
  void flush() {
    if (writing_ || closed_ || slots_.empty() || !slots_.front().answer) return;
    Slot& front = slots_.front();
    HttpResponse& r = *front.answer;
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), front.version);
    res->set(http::field::server, "jobcluster");
    if (!r.body.empty() || r.status != 204) res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : r.headers) res->set(name, value);
    res->keep_alive(front.keep_alive);
    res->body() = std::move(r.body);
    res->prepare_payload();
    writing_ = true;
    http::async_write(socket_, *res, [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
      self->on_written(ec, res->keep_alive());
    });
    update_timer();
  }

  void on_written(beast::error_code ec, bool keep_alive) {
    writing_ = false;
    if (closed_) return;
    if (ec || !keep_alive) return close();
    pending_bytes_ -= slots_.front().bytes;
    slots_.pop_front();
    ++first_seq_;
    if (slots_.empty() && stop_reading_ && !reading_) return close();
    flush();
    do_read();
    update_timer();
  }

  // Timed while waiting for a request with nothing pending, and while
  // writing (each answer afresh).
  void update_timer() {
    if (closed_) return;
    if (!writing_ && !(reading_ && slots_.empty())) {
      timer_.cancel();
      return;
    }
    timer_.expires_after(HttpServer::kRequestTimeout);  // cancels the wait before
    timer_.async_wait([self = shared_from_this()](beast::error_code ec) {
      if (ec) return;  // re-armed or cancelled
      self->close();
    });
  }

  void close() {
    if (closed_) return;
    closed_ = true;
    timer_.cancel();
    beast::error_code ignored;
    socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    socket_.close(ignored);
  }

  asio::ip::tcp::socket socket_;
  asio::steady_timer timer_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Router& router_;
  std::size_t max_body_;
  std::shared_ptr<HttpServer::AddressCounts> open_;
  std::string address_;
  std::string peer_;
  std::deque<Slot> slots_;  // the unanswered requests, oldest first
  std::uint64_t first_seq_ = 0;
  std::size_t pending_bytes_ = 0;
  bool reading_ = false, writing_ = false, stop_reading_ = false, closed_ = false;
};

}  // namespace

HttpServer::HttpServer(asio::io_context& io, Router& router, std::size_t max_body_bytes)
    : listener_(io, log::get("api")),
      router_(router),
      max_body_(max_body_bytes),
      open_(std::make_shared<AddressCounts>()) {}

std::size_t HttpServer::total() const {
  std::size_t n = 0;
  for (const auto& [address, count] : *open_) n += count;
  return n;
}

std::uint16_t HttpServer::listen(const std::string& address, std::uint16_t port) {
  return listener_.listen(
      address, port, "for the judge0-compatible API",
      [this](asio::ip::tcp::socket socket, const std::string& address, const std::string& peer) {
        auto it = open_->find(address);
        std::size_t mine = it == open_->end() ? 0 : it->second;
        if (mine >= kMaxPerAddress || total() >= kMaxConnections) {
          log::get("api")->debug("refused peer={} reason=\"{} open, {} from this address\"", peer,
                                 total(), mine);
          return;
        }
        std::make_shared<Session>(std::move(socket), router_, max_body_, open_, address, peer)
            ->start();
      });
}

void HttpServer::close() { listener_.close(); }

}  // namespace jc::api
