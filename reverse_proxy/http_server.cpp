#include "reverse_proxy/http_server.h"

#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <optional>

namespace jc::proxy {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;

namespace {

class HttpSession : public std::enable_shared_from_this<HttpSession> {
 public:
  HttpSession(asio::ip::tcp::socket socket, std::shared_ptr<HttpServer::Handler> handler,
              std::shared_ptr<HttpServer::AddressCounts> open, std::string address)
      : stream_(std::move(socket)),
        handler_(std::move(handler)),
        open_(std::move(open)),
        address_(std::move(address)) {
    ++(*open_)[address_];
  }
  ~HttpSession() {
    auto it = open_->find(address_);
    if (it != open_->end() && --it->second == 0) open_->erase(it);
  }

  void do_read() {
    parser_.emplace();
    parser_->header_limit(8 * 1024);
    parser_->body_limit(4 * 1024);
    stream_.expires_after(HttpServer::kRequestTimeout);
    http::async_read(
        stream_, buffer_, *parser_,
        [self = shared_from_this()](beast::error_code ec, std::size_t) { self->on_read(ec); });
  }

 private:
  void on_read(beast::error_code ec) {
    if (ec) {
      // end_of_stream is a normal close; anything else (timeout, a request
      // over the limits, garbage) closes this connection only.
      beast::error_code ignored;
      stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
      return;
    }
    auto& req = parser_->get();
    HttpReply reply = (*handler_)(std::string(req.method_string()), std::string(req.target()),
                                  std::string(req[http::field::authorization]));
    auto res = std::make_shared<http::response<http::string_body>>(
        static_cast<http::status>(reply.status), req.version());
    res->set(http::field::server, "jobcluster");
    res->set(http::field::content_type, reply.content_type);
    res->set(http::field::cache_control, "no-store");
    if (reply.ask_for_token) res->set(http::field::www_authenticate, "Bearer");
    res->keep_alive(req.keep_alive());
    res->body() = std::move(reply.body);
    res->prepare_payload();
    http::async_write(
        stream_, *res, [self = shared_from_this(), res](beast::error_code wec, std::size_t) {
          if (wec || !res->keep_alive()) {
            beast::error_code ignored;
            self->stream_.socket().shutdown(asio::ip::tcp::socket::shutdown_send, ignored);
            return;
          }
          self->do_read();
        });
  }

  beast::tcp_stream stream_;
  beast::flat_buffer buffer_;
  std::optional<http::request_parser<http::string_body>> parser_;
  std::shared_ptr<HttpServer::Handler> handler_;
  std::shared_ptr<HttpServer::AddressCounts> open_;
  std::string address_;
};

}  // namespace

HttpServer::HttpServer(asio::io_context& io, Handler handler)
    : listener_(io, log::get("http")),
      handler_(std::make_shared<Handler>(std::move(handler))),
      open_(std::make_shared<AddressCounts>()) {}

std::size_t HttpServer::total() const {
  std::size_t n = 0;
  for (const auto& [address, count] : *open_) n += count;
  return n;
}

std::uint16_t HttpServer::listen(const std::string& address, std::uint16_t port) {
  return listener_.listen(
      address, port, "for status (dashboard, /metrics, /api)",
      [this](asio::ip::tcp::socket socket, const std::string& address, const std::string& peer) {
        auto it = open_->find(address);
        std::size_t mine = it == open_->end() ? 0 : it->second;
        if (mine >= kMaxPerAddress || total() >= kMaxConnections) {
          log::get("http")->debug("refused peer={} reason=\"{} open, {} from this address\"",
                                  peer, total(), mine);
          return;  // the socket closes as it goes out of scope
        }
        std::make_shared<HttpSession>(std::move(socket), handler_, open_, address)->do_read();
      });
}

void HttpServer::close() { listener_.close(); }

}  // namespace jc::proxy
