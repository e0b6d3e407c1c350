#include "api/http_server.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/asio/steady_timer.hpp>
#include <charconv>
#include <cstring>
#include <deque>
#include <nlohmann/json.hpp>
#include <optional>

#include "common/log.h"

namespace jc::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
using namespace std::string_view_literals;

namespace {

// An answer's head, gathered in a buffer on the stack and appended to the
// answers at once: it is a dozen short pieces, and a string append each
// cost a call and a capacity check, for every request.
class Head {
 public:
  explicit Head(std::string& out) : out_(out) {}
  ~Head() { out_.append(buffer_, used_); }
  Head(const Head&) = delete;
  Head& operator=(const Head&) = delete;
  [[gnu::always_inline]] Head& operator<<(std::string_view piece) {
    if (piece.size() > sizeof buffer_ - used_) {
      out_.append(buffer_, used_);
      used_ = 0;
      if (piece.size() > sizeof buffer_) {
        out_.append(piece);
        return *this;
      }
    }
    std::memcpy(buffer_ + used_, piece.data(), piece.size());
    used_ += piece.size();
    return *this;
  }
  Head& operator<<(std::size_t number) {  // in decimal, without fmt's format parsing
    char digits[24];
    auto end = std::to_chars(digits, digits + sizeof digits, number).ptr;
    return *this << std::string_view(digits, static_cast<std::size_t>(end - digits));
  }

 private:
  std::string& out_;
  char buffer_[512];
  std::size_t used_ = 0;
};

// A request parser that keeps only what the router reads: the request
// line, four headers and the body. Beast's request_parser would keep every
// field in a list allocated per request; this is Beast's own extension
// point for that (a basic_parser that implements its callbacks).
class RequestParser : public http::basic_parser<true> {
 public:
  HttpRequest request;  // all but the peer
  http::verb verb = http::verb::unknown;
  unsigned version = 11;

 private:
  void on_request_impl(http::verb method, beast::string_view method_str, beast::string_view target,
                       int v, beast::error_code&) override {
    verb = method;
    request.method.assign(method_str.data(), method_str.size());
    request.target.assign(target.data(), target.size());
    version = static_cast<unsigned>(v);
  }
  void on_response_impl(int, beast::string_view, int, beast::error_code&) override {}
  // The first of each header counts, as a look-up in Beast's fields gives.
  void on_field_impl(http::field name, beast::string_view name_string, beast::string_view value,
                     beast::error_code&) override {
    auto first = [&value](bool& seen, std::string& to) {
      if (seen) return;
      seen = true;
      to.assign(value.data(), value.size());
    };
    switch (name) {
      case http::field::authorization: first(authorization_, request.authorization); break;
      case http::field::origin: first(origin_, request.origin); break;
      case http::field::unknown:
        if (beast::iequals(name_string, "X-Auth-Token")) {
          first(token_, request.auth_token);
        } else if (beast::iequals(name_string, "X-Auth-User")) {
          first(user_, request.auth_user);
        }
        break;
      default: break;
    }
  }
  void on_header_impl(beast::error_code&) override {}
  // The base has checked the length against the body limit.
  void on_body_init_impl(const boost::optional<std::uint64_t>& length, beast::error_code&) override {
    if (length) request.body.reserve(static_cast<std::size_t>(*length));
  }
  std::size_t on_body_impl(beast::string_view body, beast::error_code&) override {
    request.body.append(body.data(), body.size());
    return body.size();
  }
  void on_chunk_header_impl(std::uint64_t, beast::string_view, beast::error_code&) override {}
  std::size_t on_chunk_body_impl(std::uint64_t, beast::string_view body, beast::error_code&) override {
    request.body.append(body.data(), body.size());
    return body.size();
  }
  void on_finish_impl(beast::error_code&) override {}

  bool token_ = false, user_ = false, authorization_ = false, origin_ = false;
};

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

  void start() {
    // Beast reads at most the buffer's free capacity (512 bytes at first):
    // room for a pipelined burst lets one read, and one durable write of
    // the node, take many requests.
    buffer_.reserve(HttpServer::kReadBytes);
    do_read();
  }

 private:
  struct Slot {
    std::optional<HttpResponse> answer;
    bool keep_alive = false;
    bool head = false;   // a HEAD request: its answer has no body
    bool heavy = false;  // its answer may be large (a GET, a wait=true)
    unsigned version = 11;
    std::size_t bytes = 0;         // the request's body, held until answered
    std::size_t answer_bytes = 0;  // its answer's body, held until written
  };

  // Whether another request may be taken before earlier ones are answered
  // and written: bounded in number, in the bodies and answers held, and in
  // requests whose answers may be large.
  bool room() const {
    return slots_.empty() || (slots_.size() < HttpServer::kMaxPipelined &&
                              pending_bytes_ < HttpServer::kMaxPipelinedBytes &&
                              answer_bytes_ < HttpServer::kMaxHeldAnswerBytes &&
                              heavy_ < HttpServer::kMaxPipelinedHeavy);
  }

  void new_parser() {
    parser_.emplace();
    parser_->header_limit(HttpServer::kMaxHeaderBytes);
    parser_->body_limit(max_body_);
    parser_->eager(true);
  }

  void do_read() {
    if (reading_ || closed_ || stop_reading_ || !room()) return;  // resumed as answers go out
    if (!parser_) new_parser();  // else one begun from the buffer goes on
    reading_ = true;
    http::async_read(socket_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
    update_timer();
  }

  void on_read(beast::error_code ec) {
    reading_ = false;
    if (closed_) return;
    if (ec) return on_error(ec);
    take();
    // Requests already in the buffer are taken in this same turn, so that
    // a pipelined burst of submits shares the node's next durable write
    // instead of one write each.
    while (!stop_reading_ && !closed_ && room() && buffer_.size() > 0) {
      new_parser();
      // put() stops after the header, and after each piece of a body.
      std::size_t used = 0;
      beast::error_code pec;
      do {
        used = parser_->put(buffer_.data(), pec);
        buffer_.consume(used);
      } while (!pec && !parser_->is_done() && used > 0);
      if (pec && pec != http::error::need_more) return on_error(pec);
      if (!parser_->is_done()) break;  // the rest comes by async_read
      take();
    }
    do_read();
    update_timer();
  }

  void on_error(beast::error_code ec) {
    parser_.reset();
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted ||
        ec == asio::error::eof || ec == asio::error::connection_reset) {
      // The client is done sending: answer what it asked, then close.
      stop_reading_ = true;
      if (slots_.empty() && !writing_) return close();
      return update_timer();
    }
    if (ec == http::error::body_limit) {
      return answer_error(413, fmt::format("the body is over the limit of {} bytes", max_body_));
    }
    if (ec == http::error::header_limit) return answer_error(431, "the headers are too large");
    answer_error(400, "malformed HTTP request");
  }

  // The parser's whole request, to the router.
  void take() {
    HttpRequest request = std::move(parser_->request);
    request.peer = peer_;
    Slot slot;
    slot.keep_alive = parser_->keep_alive();  // from the parse, not another look-up
    slot.version = parser_->version;
    slot.bytes = request.body.size();
    slot.head = parser_->verb == http::verb::head;
    slot.heavy = parser_->verb != http::verb::post || request.target.find("wait=true") != std::string::npos;
    heavy_ += slot.heavy ? 1 : 0;
    parser_.reset();
    if (!slot.keep_alive) stop_reading_ = true;
    pending_bytes_ += slot.bytes;
    slots_.push_back(std::move(slot));
    const std::uint64_t seq = first_seq_ + slots_.size() - 1;
    // The answer may come now (most GETs) or later (a submit after its
    // durable write, a wait).
    router_.handle(std::move(request), [self = shared_from_this(), seq](HttpResponse r) {
      self->answered(seq, std::move(r));
    });
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
    Slot& slot = slots_[seq - first_seq_];
    slot.answer_bytes = r.body.size();
    answer_bytes_ += slot.answer_bytes;
    slot.answer = std::move(r);
    flush();
  }

  // One answer as bytes on the wire. The head is written here rather than
  // by Beast's serializer (a third of the cost of a pipelined submit's
  // answer); the reason phrases are Beast's.
  static void serialize(const Slot& slot, HttpResponse& r, std::string& out) {
    auto reason = http::obsolete_reason(static_cast<http::status>(r.status));
    {
      Head head(out);
      head << (slot.version == 10 ? "HTTP/1.0 "sv : "HTTP/1.1 "sv) << static_cast<std::size_t>(r.status)
           << " "sv << std::string_view(reason.data(), reason.size()) << "\r\nServer: jobcluster\r\n"sv;
      // The content type is a literal (a line break cannot be in it); the
      // router's headers echo what a client sent at most (an Origin, which
      // the parser has checked), and a line break would end the head.
      if (!r.body.empty() || r.status != 204) head << "Content-Type: "sv << r.content_type << "\r\n"sv;
      head << "Cache-Control: no-store\r\n"sv;
      auto header = [&head](std::string_view name, std::string_view value) {
        if (value.find_first_of("\r\n"sv) != std::string_view::npos) return;
        head << name << ": "sv << value << "\r\n"sv;
      };
      for (const auto& [name, value] : r.headers) header(name, value);
      // As Beast's keep_alive(): HTTP/1.1 says only a close, 1.0 only a keep-alive.
      if (slot.version == 10 && slot.keep_alive) head << "Connection: keep-alive\r\n"sv;
      if (slot.version != 10 && !slot.keep_alive) head << "Connection: close\r\n"sv;
      // No Content-Length on a 204 or 304 (RFC 9110); a HEAD answer says the
      // length and sends no body.
      if (r.status != 204 && r.status != 304) head << "Content-Length: "sv << r.body.size() << "\r\n"sv;
      head << "\r\n"sv;
    }
    if (!slot.head) out.append(r.body);
  }

  // Writes the answers that are there, oldest first, up to the first that
  // is not: one write for a burst answered by one durable commit.
  void flush() {
    if (writing_ || closed_) return;
    std::string& out = out_;  // empty: kept between writes for its room
    std::size_t count = 0;
    bool last = false;
    for (auto& slot : slots_) {
      if (!slot.answer || out.size() >= HttpServer::kReadBytes * 4) break;
      serialize(slot, *slot.answer, out);
      ++count;
      if (!slot.keep_alive) {
        last = true;
        break;
      }
    }
    if (count == 0) return;
    writing_ = true;
    asio::async_write(socket_, asio::buffer(out),
                      [self = shared_from_this(), count, last](beast::error_code ec, std::size_t) {
                        self->on_written(ec, count, last);
                      });
    update_timer();
  }

  void on_written(beast::error_code ec, std::size_t count, bool last) {
    writing_ = false;
    out_.clear();
    // A burst's room is kept for the next; a connection that goes quiet
    // does not hold it.
    if (out_.capacity() > HttpServer::kReadBytes && slots_.size() <= count) std::string().swap(out_);
    if (closed_) return;
    if (ec || last) return close();
    for (std::size_t i = 0; i < count; ++i) {
      pending_bytes_ -= slots_.front().bytes;
      answer_bytes_ -= slots_.front().answer_bytes;
      heavy_ -= slots_.front().heavy ? 1 : 0;
      slots_.pop_front();
      ++first_seq_;
    }
    write_timed_ = false;  // the next write gets its own deadline
    if (slots_.empty() && stop_reading_ && !reading_) return close();
    flush();
    do_read();
    update_timer();
  }

  // Timed while waiting for a request with nothing pending (from when it
  // began to wait), and while writing (each write from its start: requests
  // read meanwhile do not extend it).
  void update_timer() {
    if (closed_) return;
    const bool idle = !writing_ && reading_ && slots_.empty();
    if (!writing_ && !idle) {
      timer_.cancel();
      write_timed_ = idle_timed_ = false;
      return;
    }
    if (writing_ ? write_timed_ : idle_timed_) return;  // the deadline running holds
    write_timed_ = writing_;
    idle_timed_ = idle;
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
  std::optional<RequestParser> parser_;
  Router& router_;
  std::size_t max_body_;
  std::shared_ptr<HttpServer::AddressCounts> open_;
  std::string address_;
  std::string peer_;
  std::deque<Slot> slots_;  // the unanswered requests, oldest first
  std::string out_;         // the answers being written
  std::uint64_t first_seq_ = 0;
  std::size_t pending_bytes_ = 0, answer_bytes_ = 0, heavy_ = 0;
  bool write_timed_ = false, idle_timed_ = false;
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
