// Serves the proxy's HTTP API (http_api.h) with Boost.Beast on STATUS_PORT:
// one session per connection, keep-alive, a deadline on every read, small
// request limits (these are GET requests), and at most kMaxConnections at
// once. Runs on the proxy's io_context thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "net/listener.h"
#include "reverse_proxy/http_api.h"

namespace jc::proxy {

class HttpServer {
 public:
  using Handler = std::function<HttpReply(const std::string& method, const std::string& target,
                                          const std::string& authorization)>;
  static constexpr std::size_t kMaxConnections = 64;

  HttpServer(boost::asio::io_context& io, Handler handler);
  std::uint16_t listen(const std::string& address, std::uint16_t port);
  void close();

 private:
  net::Listener listener_;
  std::shared_ptr<Handler> handler_;
  std::shared_ptr<std::size_t> open_;  // sessions alive, shared with them
};

}  // namespace jc::proxy
