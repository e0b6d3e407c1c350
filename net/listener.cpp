#include "net/listener.h"

#include <fmt/format.h>

namespace jc::net {

namespace asio = boost::asio;
using boost::system::error_code;

Listener::Listener(asio::io_context& io, std::shared_ptr<spdlog::logger> log)
    : acceptor_(io), retry_timer_(io), log_(std::move(log)) {}

std::uint16_t Listener::listen(const std::string& address, std::uint16_t port,
                               const std::string& what, OnAccept on_accept) {
  on_accept_ = std::move(on_accept);
  asio::ip::tcp::endpoint ep(asio::ip::make_address(address), port);
  acceptor_.open(ep.protocol());
  acceptor_.set_option(asio::ip::tcp::acceptor::reuse_address(true));
  acceptor_.bind(ep);
  acceptor_.listen(asio::socket_base::max_listen_connections);
  std::uint16_t bound = acceptor_.local_endpoint().port();
  log_->info("listening on {}:{} {}", address, bound, what);
  do_accept();
  return bound;
}

void Listener::close() {
  closed_ = true;
  error_code ignored;
  acceptor_.close(ignored);
  retry_timer_.cancel();
}

void Listener::do_accept() {
  acceptor_.async_accept([this](const error_code& ec, asio::ip::tcp::socket socket) {
    if (closed_) return;
    if (ec) {
      log_->warn("accept failed: {}", ec.message());
      retry_timer_.expires_after(std::chrono::milliseconds(100));
      retry_timer_.async_wait([this](const error_code& e) {
        if (!e && !closed_) do_accept();
      });
      return;
    }
    error_code peer_ec;
    auto ep = socket.remote_endpoint(peer_ec);
    std::string address = peer_ec ? "?" : ep.address().to_string();
    std::string peer = peer_ec ? "?" : fmt::format("{}:{}", address, ep.port());
    on_accept_(std::move(socket), address, peer);
    do_accept();
  });
}

}  // namespace jc::net
