// A TCP listener shared by the proxy (nodes) and the node (clients): binds,
// logs the one "listening on ADDRESS:PORT" line scripts wait for, hands each
// accepted socket to its owner, and after a failed accept (out of file
// descriptors, most likely) waits 100 ms instead of spinning.
// Runs on the owner's io_context thread.
#pragma once

#include <functional>
#include <memory>
#include <string>

#include "common/log.h"
#include "net/asio.h"

namespace jc::net {

class Listener {
 public:
  // address: the peer's IP; peer: "IP:port", for logs.
  using OnAccept = std::function<void(boost::asio::ip::tcp::socket socket,
                                      const std::string& address, const std::string& peer)>;

  Listener(boost::asio::io_context& io, std::shared_ptr<spdlog::logger> log);
  // Binds and starts accepting; throws boost::system::system_error when the
  // address cannot be bound. Returns the bound port (useful with port 0).
  std::uint16_t listen(const std::string& address, std::uint16_t port, const std::string& what,
                       OnAccept on_accept);
  void close();

 private:
  void do_accept();

  boost::asio::ip::tcp::acceptor acceptor_;
  boost::asio::steady_timer retry_timer_;
  std::shared_ptr<spdlog::logger> log_;
  OnAccept on_accept_;
  bool closed_ = false;
};

}  // namespace jc::net
