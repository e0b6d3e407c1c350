// Serves the proxy's HTTP API (http_api.h) with Boost.Beast on STATUS_PORT:
// one session per connection, keep-alive, small request limits (these are
// GET requests). So that one address cannot starve the others (/metrics
// above all): at most kMaxConnections at once and kMaxPerAddress from one
// address, and a request must arrive whole within kRequestTimeout of the
// connection or of the previous reply (a header trickled in, or an idle
// keep-alive connection, is closed then). Runs on the proxy's io_context
// thread.
#pragma once

#include <chrono>
#include <functional>
#include <unordered_map>
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
  static constexpr std::size_t kMaxPerAddress = 8;
  static constexpr std::chrono::seconds kRequestTimeout{10};
  using AddressCounts = std::unordered_map<std::string, std::size_t>;

  HttpServer(boost::asio::io_context& io, Handler handler);
  std::uint16_t listen(const std::string& address, std::uint16_t port);
  void close();

 private:
  net::Listener listener_;
  std::shared_ptr<Handler> handler_;
  std::shared_ptr<AddressCounts> open_;  // sessions alive per address, shared with them
  std::size_t total() const;
};

}  // namespace jc::proxy
