#include "tests/support/rogue_node.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <poll.h>
#include <sys/socket.h>
#include <unistd.h>

#include <openssl/ssl.h>
#include <sys/time.h>

#include "net/tls.h"
#include "protocol/auth.h"
#include "protocol/codec.h"

namespace jc::test {

RogueNode::RogueNode(std::uint16_t port, const std::string& host, const std::string& from,
                     const std::string& tls_secret) {
  int fd = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
  if (fd < 0) return;
  if (!from.empty()) {
    sockaddr_in src{};
    src.sin_family = AF_INET;
    ::inet_pton(AF_INET, from.c_str(), &src.sin_addr);
    if (::bind(fd, reinterpret_cast<sockaddr*>(&src), sizeof src) != 0) {
      ::close(fd);
      return;
    }
  }
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = htons(port);
  ::inet_pton(AF_INET, host.c_str(), &addr.sin_addr);
  if (::connect(fd, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
    ::close(fd);
    return;
  }
  fd_ = fd;
  if (tls_secret.empty()) return;
  auto settings = net::make_tls_settings(tls_secret, "", "", "");
  auto context = net::make_tls_context(settings, net::TlsRole::client);
  context_ = context;
  timeval tv{10, 0};  // a handshake that hangs fails the test, not the run
  ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
  SSL* ssl = SSL_new(context->native_handle());
  SSL_set_fd(ssl, fd_);
  if (SSL_connect(ssl) == 1) {
    ssl_ = ssl;
  } else {
    SSL_free(ssl);
  }
}

RogueNode::~RogueNode() {
  if (ssl_ != nullptr) SSL_free(ssl_);
  if (fd_ >= 0) ::close(fd_);
}

bool RogueNode::write_all(const std::string& frame) {
  if (ssl_ != nullptr) {
    return SSL_write(ssl_, frame.data(), static_cast<int>(frame.size())) ==
           static_cast<int>(frame.size());
  }
  std::size_t done = 0;
  while (done < frame.size()) {
    ssize_t n = ::send(fd_, frame.data() + done, frame.size() - done, MSG_NOSIGNAL);
    if (n <= 0) return false;
    done += static_cast<std::size_t>(n);
  }
  return true;
}

bool RogueNode::send(const protocol::Message& m) {
  if (fd_ < 0) return false;
  return write_all(protocol::encode(m));
}

std::optional<protocol::Message> RogueNode::read(std::chrono::steady_clock::time_point deadline) {
  while (fd_ >= 0) {
    auto result = protocol::decode(buffer_);
    if (auto* done = std::get_if<protocol::Complete>(&result)) {
      buffer_.erase(0, done->consumed);
      return std::move(done->message);
    }
    if (std::holds_alternative<protocol::DecodeError>(result)) return std::nullopt;
    auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
                    deadline - std::chrono::steady_clock::now())
                    .count();
    if (left <= 0) return std::nullopt;
    pollfd p{fd_, POLLIN, 0};
    bool buffered = ssl_ != nullptr && SSL_pending(ssl_) > 0;
    if (!buffered && ::poll(&p, 1, static_cast<int>(left)) <= 0) return std::nullopt;
    char chunk[65536];
    ssize_t n = ssl_ != nullptr ? SSL_read(ssl_, chunk, sizeof chunk)
                                : ::recv(fd_, chunk, sizeof chunk, 0);
    if (n <= 0) return std::nullopt;
    buffer_.append(chunk, static_cast<std::size_t>(n));
  }
  return std::nullopt;
}

std::optional<protocol::Welcome> RogueNode::join(const std::string& node_id,
                                                 const std::string& secret) {
  auto challenge = next<protocol::Challenge>();
  if (!challenge) return std::nullopt;
  protocol::Hello h;
  h.node_id = node_id;
  h.slots = 1;
  h.client_address = "127.0.0.1:1";
  if (!secret.empty()) h.auth = protocol::join_proof(secret, challenge->nonce, node_id);
  if (!send(h)) return std::nullopt;
  return next<protocol::Welcome>();
}

}  // namespace jc::test
