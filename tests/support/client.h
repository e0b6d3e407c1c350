// A line client for integration tests: what `nc` does, with a deadline on
// every read so that a broken node fails the test instead of hanging it.
#pragma once

#include <chrono>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace jc::test {

class Client {
 public:
  // Connects to host:port (an IPv4 address), retrying until the deadline.
  // `from`: the source address (127.0.0.2 is another loopback address:
  // another client to a per-address limit), "" for the kernel's choice.
  explicit Client(std::uint16_t port,
                  std::chrono::milliseconds connect_timeout = std::chrono::seconds(10),
                  const std::string& host = "127.0.0.1", const std::string& from = "");
  ~Client();
  Client(const Client&) = delete;
  Client& operator=(const Client&) = delete;

  bool connected() const { return fd_ >= 0; }
  bool send(std::string_view bytes);
  // send() with a deadline: false when the peer has not taken every byte
  // within `timeout` (a stopped peer with full buffers), instead of blocking.
  bool send_within(std::string_view bytes, std::chrono::milliseconds timeout);
  // One line without its "\n"; nullopt on timeout or close.
  std::optional<std::string> line(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Sends `cmd` + "\n" and returns the reply's first line ("" on failure).
  std::string command(const std::string& cmd,
                      std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // A reply whose first line is "Word: N" followed by N lines.
  std::vector<std::string> multi(const std::string& cmd,
                                 std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Everything up to and including `end` (an HTTP head and its blank line);
  // nullopt on timeout or close.
  std::optional<std::string> until(std::string_view end,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // Exactly n bytes (a framed block); nullopt on timeout or close.
  std::optional<std::string> bytes(std::size_t n,
                                   std::chrono::milliseconds timeout = std::chrono::seconds(15));
  // As until() and bytes(), as views into the client's buffer, valid until
  // its next read (a benchmark's client, which shares the machine, copies nothing).
  std::optional<std::string_view> until_view(std::string_view end, std::chrono::milliseconds timeout);
  std::optional<std::string_view> bytes_view(std::size_t n, std::chrono::milliseconds timeout);
  // Everything until the peer closes (an HTTP/1.0 response); nullopt on timeout.
  std::optional<std::string> until_close(std::chrono::milliseconds timeout = std::chrono::seconds(15));
  void shutdown_write();
  // True when the peer closes within the timeout (reading and dropping data).
  bool closed_by_peer(std::chrono::milliseconds timeout);

 private:
  bool fill(std::chrono::steady_clock::time_point deadline);
  int fd_ = -1;
  std::string buffer_;
  std::size_t read_ = 0;  // buffer_'s bytes before this were handed out
};

}  // namespace jc::test
