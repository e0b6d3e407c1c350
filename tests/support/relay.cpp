#include "tests/support/relay.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <stdexcept>

namespace jc::test {

namespace {

int connect_loopback(std::uint16_t port) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return -1;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return -1;
  }
  return fd;
}

}  // namespace

Relay::Relay(std::uint16_t target_port) : target_port_(target_port) {
  listen_fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
  socklen_t len = sizeof addr;
  if (listen_fd_ < 0 || ::bind(listen_fd_, reinterpret_cast<sockaddr*>(&addr), len) != 0 ||
      ::listen(listen_fd_, 16) != 0 ||
      ::getsockname(listen_fd_, reinterpret_cast<sockaddr*>(&addr), &len) != 0) {
    throw std::runtime_error("relay: cannot listen on loopback");
  }
  port_ = ntohs(addr.sin_port);
  accept_thread_ = std::thread([this] { accept_loop(); });
}

Relay::~Relay() {
  stop_ = true;
  accept_thread_.join();  // then nobody adds to threads_
  for (auto& t : threads_) t.join();
  ::close(listen_fd_);
}

std::string Relay::seen() const {
  std::lock_guard lock(mu_);
  return seen_;
}

void Relay::tamper_next(std::size_t min_bytes) {
  tampered_ = false;
  tamper_min_ = min_bytes;
}

void Relay::accept_loop() {
  while (!stop_) {
    pollfd p{listen_fd_, POLLIN, 0};
    if (::poll(&p, 1, 100) <= 0) continue;
    int client = ::accept4(listen_fd_, nullptr, nullptr, SOCK_CLOEXEC);
    if (client < 0) continue;
    if (cut_) {
      ::close(client);
      continue;
    }
    int target = connect_loopback(target_port_);
    if (target < 0) {
      ::close(client);
      continue;
    }
    ++connections_;
    threads_.emplace_back([this, client, target] { pump(client, target); });
  }
}

// Copies both ways until either side closes; then closes both.
void Relay::pump(int client, int target) {
  char buf[65536];
  while (!stop_ && !cut_) {
    pollfd p[2] = {{client, POLLIN, 0}, {target, POLLIN, 0}};
    if (::poll(p, 2, 100) <= 0) continue;
    bool done = false;
    for (int i = 0; i < 2 && !done; ++i) {
      if ((p[i].revents & (POLLIN | POLLHUP | POLLERR)) == 0) continue;
      ssize_t n = ::recv(p[i].fd, buf, sizeof buf, 0);
      if (n <= 0) {
        done = true;
        break;
      }
      auto size = static_cast<std::size_t>(n);
      {
        std::lock_guard lock(mu_);
        seen_.append(buf, size);
      }
      bool from_target = i == 1;
      std::size_t min = tamper_min_.load();
      if (from_target && min != 0 && size >= min && tamper_min_.compare_exchange_strong(min, 0)) {
        buf[size / 2] ^= 0x20;
        tampered_ = true;
      }
      int to = from_target ? client : target;
      std::size_t sent = 0;
      while (sent < size) {
        ssize_t w = ::send(to, buf + sent, size - sent, MSG_NOSIGNAL);
        if (w <= 0) {
          done = true;
          break;
        }
        sent += static_cast<std::size_t>(w);
      }
    }
    if (done) break;
  }
  ::close(client);
  ::close(target);
}

}  // namespace jc::test
