#include "tests/support/client.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cerrno>
#include <charconv>
#include <utility>

#include "tests/support/process.h"

namespace jc::test {

Client::Client(std::uint16_t port, std::chrono::milliseconds connect_timeout,
               const std::string& host, const std::string& from) {
  eventually(
      [&] {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        if (!from.empty()) {
          sockaddr_in src{};
          src.sin_family = AF_INET;
          inet_pton(AF_INET, from.c_str(), &src.sin_addr);
          if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof(src)) != 0) {
            ::close(fd);
            return false;
          }
        }
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
        if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0) {
          int one = 1;
          setsockopt(fd, IPPROTO_TCP, TCP_NODELAY, &one, sizeof(one));
          fd_ = fd;
          return true;
        }
        ::close(fd);
        return false;
      },
      connect_timeout, std::chrono::milliseconds(50));
}

Client::~Client() {
  if (fd_ >= 0) ::close(fd_);
}

bool Client::send(std::string_view bytes) {
  while (!bytes.empty() && fd_ >= 0) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno == EAGAIN) {
        pollfd p{fd_, POLLOUT, 0};
        ::poll(&p, 1, 1000);
        continue;
      }
      return false;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return bytes.empty();
}

bool Client::send_within(std::string_view bytes, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (!bytes.empty() && fd_ >= 0) {
    ssize_t n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL | MSG_DONTWAIT);
    if (n < 0) {
      if (errno == EINTR) continue;
      if (errno != EAGAIN && errno != EWOULDBLOCK) return false;
      auto left =
          std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
      if (left <= 0) return false;
      pollfd p{fd_, POLLOUT, 0};
      ::poll(&p, 1, static_cast<int>(left));
      continue;
    }
    bytes.remove_prefix(static_cast<std::size_t>(n));
  }
  return bytes.empty();
}

bool Client::fill(std::chrono::steady_clock::time_point deadline) {
  if (fd_ < 0) return false;
  auto left =
      std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now()).count();
  if (left <= 0) return false;
  pollfd p{fd_, POLLIN, 0};
  int r = ::poll(&p, 1, static_cast<int>(left));
  if (r <= 0) return false;
  char buf[65536];
  ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
  if (n <= 0) return false;
  if (read_ > 0 && read_ >= buffer_.size() / 2) {  // drop what was read, now and then
    buffer_.erase(0, read_);
    read_ = 0;
  }
  buffer_.append(buf, static_cast<std::size_t>(n));
  return true;
}

std::optional<std::string> Client::line(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (true) {
    auto nl = buffer_.find('\n', read_);
    if (nl != std::string::npos) {
      std::string l = buffer_.substr(read_, nl - read_);
      read_ = nl + 1;
      if (!l.empty() && l.back() == '\r') l.pop_back();
      return l;
    }
    if (!fill(deadline)) return std::nullopt;
  }
}

std::optional<std::string_view> Client::until_view(std::string_view end,
                                                   std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  std::size_t from = read_;
  while (true) {
    auto at = buffer_.find(end, from);
    if (at != std::string::npos) {
      std::string_view out = std::string_view(buffer_).substr(read_, at + end.size() - read_);
      read_ = at + end.size();
      return out;
    }
    from = buffer_.size() - std::min(buffer_.size() - read_, end.size());
    std::size_t before = read_;
    if (!fill(deadline)) return std::nullopt;
    from -= before - read_;  // fill() may have dropped what was read
  }
}

std::optional<std::string> Client::until(std::string_view end, std::chrono::milliseconds timeout) {
  auto view = until_view(end, timeout);
  if (!view) return std::nullopt;
  return std::string(*view);
}

std::string Client::command(const std::string& cmd, std::chrono::milliseconds timeout) {
  if (!send(cmd + "\n")) return "";
  return line(timeout).value_or("");
}

std::vector<std::string> Client::multi(const std::string& cmd, std::chrono::milliseconds timeout) {
  std::vector<std::string> out;
  std::string head = command(cmd, timeout);
  out.push_back(head);
  auto colon = head.find(": ");
  if (colon == std::string::npos) return out;
  std::size_t n = 0;
  std::string_view rest(head);
  rest.remove_prefix(colon + 2);
  std::from_chars(rest.data(), rest.data() + rest.size(), n);
  for (std::size_t i = 0; i < n; ++i) {
    auto l = line(timeout);
    if (!l) break;
    out.push_back(*l);
  }
  return out;
}

std::optional<std::string_view> Client::bytes_view(std::size_t n, std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (buffer_.size() - read_ < n) {
    if (!fill(deadline)) return std::nullopt;
  }
  std::string_view out = std::string_view(buffer_).substr(read_, n);
  read_ += n;
  return out;
}

std::optional<std::string> Client::bytes(std::size_t n, std::chrono::milliseconds timeout) {
  auto view = bytes_view(n, timeout);
  if (!view) return std::nullopt;
  return std::string(*view);
}

std::optional<std::string> Client::until_close(std::chrono::milliseconds timeout) {
  if (!closed_by_peer(timeout)) return std::nullopt;
  buffer_.erase(0, std::exchange(read_, 0));
  return std::exchange(buffer_, {});
}

void Client::shutdown_write() {
  if (fd_ >= 0) ::shutdown(fd_, SHUT_WR);
}

bool Client::closed_by_peer(std::chrono::milliseconds timeout) {
  auto deadline = Clock::now() + timeout;
  while (Clock::now() < deadline) {
    pollfd p{fd_, POLLIN, 0};
    int r = ::poll(&p, 1, 50);
    if (r <= 0) continue;
    char buf[65536];
    ssize_t n = ::recv(fd_, buf, sizeof(buf), 0);
    if (n == 0 || (n < 0 && errno != EINTR && errno != EAGAIN)) return true;
    if (n > 0) buffer_.append(buf, static_cast<std::size_t>(n));
  }
  return false;
}

}  // namespace jc::test
