#include "api/http_server.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

#include "common/log.h"

namespace jc::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

class Session : public std::enable_shared_from_this<Session> {
 public:
  Session(asio::ip::tcp::socket socket, Router& router, std::size_t max_body,
          std::shared_ptr<HttpServer::AddressCounts> open, std::string address, std::string peer)
      : stream_(std::move(socket)),
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

  void do_read() {
    parser_.emplace();
    parser_->header_limit(HttpServer::kMaxHeaderBytes);
    parser_->body_limit(max_body_);
    stream_.expires_after(HttpServer::kRequestTimeout);
    http::async_read(stream_, buffer_, *parser_,
                     [self = shared_from_this()](beast::error_code ec, std::size_t) {
                       self->on_read(ec);
                     });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec == http::error::end_of_stream || ec == asio::error::operation_aborted) return close();
    if (ec == beast::error::timeout) return close();
    if (ec == http::error::body_limit) {
      return write_error(413, fmt::format("the body is over the limit of {} bytes", max_body_));
    }
    if (ec == http::error::header_limit) return write_error(431, "the headers are too large");
    if (ec) return write_error(400, "malformed HTTP request");
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
    keep_alive_ = req.keep_alive();
    version_ = req.version();
    // No deadline while the node works on the answer (a wait may be long);
    // the answer's write gets one.
    stream_.expires_never();
    router_.handle(request, [self = shared_from_this()](HttpResponse r) {
      self->write(std::move(r), self->keep_alive_);
    });
  }

  void write_error(int status, const std::string& message) {
    HttpResponse r;
    r.status = status;
    r.body = nlohmann::json{{"error", message}}.dump();
    version_ = 11;
    write(std::move(r), false);
  }

  void write(HttpResponse r, bool keep_alive) {
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(r.status), version_);
    res->set(http::field::server, "jobcluster");
    if (!r.body.empty() || r.status != 204) res->set(http::field::content_type, r.content_type);
    res->set(http::field::cache_control, "no-store");
    for (const auto& [name, value] : r.headers) res->set(name, value);
    res->keep_alive(keep_alive);
    res->body() = std::move(r.body);
    res->prepare_payload();
    stream_.expires_after(HttpServer::kRequestTimeout);
    http::async_write(stream_, *res,
                      [self = shared_from_this(), res](beast::error_code ec, std::size_t) {
                        if (ec || !res->keep_alive()) return self->close();
                        self->do_read();
                      });
  }

  void close() {
    beast::error_code ignored;
    stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
    stream_.socket().close(ignored);
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  Router& router_;
  std::size_t max_body_;
  std::shared_ptr<HttpServer::AddressCounts> open_;
  std::string address_;
  std::string peer_;
  bool keep_alive_ = true;
  unsigned version_ = 11;
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
            ->do_read();
      });
}

void HttpServer::close() { listener_.close(); }

}  // namespace jc::api
