// Serves the judge0-compatible API (api/router.h) with Boost.Beast on
// API_PORT: HTTP/1.1 with keep-alive and pipelining (requests are read
// ahead of their answers, which may come later: a durable submit, a wait;
// the answers go out in the order of the requests).
//
// Limits, so that nobody can starve the others: a request's headers at most
// kMaxHeaderBytes, its body at most the body limit (413 above, and the
// connection is closed); a request must arrive whole within kRequestTimeout
// of the connection or of the previous answer (a trickled header, or an idle
// keep-alive connection, is closed then); at most kMaxConnections at once
// and kMaxPerAddress from one address. Garbage gets a 400 and a close.
//
// Runs on the node's io_context thread.
#pragma once

#include <chrono>
#include <memory>
#include <string>
#include <unordered_map>

#include "api/router.h"
#include "net/listener.h"

namespace jc::api {

class HttpServer {
 public:
  static constexpr std::size_t kMaxConnections = 1024;
  static constexpr std::size_t kMaxPerAddress = 64;
  static constexpr std::size_t kMaxHeaderBytes = 16 * 1024;
  static constexpr std::chrono::seconds kRequestTimeout{30};
  // Requests of one connection read ahead of their answers, and the bytes
  // of their bodies: past either, the next is read once answers go out.
  static constexpr std::size_t kMaxPipelined = 4096;
  static constexpr std::size_t kMaxPipelinedBytes = 1 << 20;
  // Answers held for a client that has not read them yet, past which no
  // further request is read; and requests whose answer may be large (a GET,
  // a wait=true) unanswered at once.
  static constexpr std::size_t kMaxHeldAnswerBytes = 4 << 20;
  static constexpr std::size_t kMaxPipelinedHeavy = 16;
  static constexpr std::size_t kReadBytes = 64 * 1024;  // read at once, at most
  using AddressCounts = std::unordered_map<std::string, std::size_t>;

  HttpServer(boost::asio::io_context& io, Router& router, std::size_t max_body_bytes);
  std::uint16_t listen(const std::string& address, std::uint16_t port);
  void close();

 private:
  net::Listener listener_;
  Router& router_;
  std::size_t max_body_;
  std::shared_ptr<AddressCounts> open_;
  std::size_t total() const;
};

}  // namespace jc::api
