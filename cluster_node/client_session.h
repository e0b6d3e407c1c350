// One client connection's socket: reads bytes into its Conversation
// (client/conversation.h, where the client protocol is decided) and writes
// what it answers, one async_write at a time. Reading pauses while too much
// is owed (backpressure); after the client closes its sending side every
// command read is still answered, then the connection closes. Closes a
// connection idle for CLIENT_IDLE_TIMEOUT. Runs on the node's io_context
// thread; keeps itself alive with shared_from_this() in every handler, and
// through the Conversation's callbacks while a reply is owed.
#pragma once

#include <chrono>
#include <memory>
#include <optional>
#include <string>
#include <unordered_map>

#include "client/conversation.h"
#include "net/asio.h"

namespace jc::node {

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  // Connections open per client address, shared by the sessions of a node:
  // each counts itself in for its lifetime.
  using AddressCounts = std::unordered_map<std::string, std::size_t>;

  ClientSession(boost::asio::ip::tcp::socket socket, client::Backend& backend, std::string peer,
                std::string address, std::shared_ptr<AddressCounts> counts,
                std::chrono::milliseconds idle_timeout);
  ~ClientSession();
  void start();
  void close();
  // Refuse with one error line and close (too many connections).
  void refuse(const std::string& reply);

 private:
  void do_read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  // Writes what the conversation answered; closes once it has finished.
  void pump();
  void do_write();
  void arm_idle_timer(std::chrono::steady_clock::time_point at);

  boost::asio::ip::tcp::socket socket_;
  std::string peer_;
  std::string address_;
  std::shared_ptr<AddressCounts> counts_;
  std::chrono::milliseconds idle_timeout_;
  std::chrono::steady_clock::time_point last_heard_;
  boost::asio::steady_timer idle_timer_;
  std::optional<client::Conversation> conversation_;
  std::string inbox_;
  std::string outgoing_;
  std::string writing_;
  bool reading_ = false;
  bool refused_ = false;
  bool closed_ = false;
};

}  // namespace jc::node
