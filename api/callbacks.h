// Callbacks (judge0's callback_url): a PUT of the finished submission, as
// judge0 sends it, to a URL the submitter gave. That URL is the submitter's
// to choose, so it must not make the node a way into the network it sits
// in: a callback reaches only public addresses, unless CALLBACK_ALLOW (CIDR
// ranges) names others, and never the node's own ports on its own host.
// Literal addresses (and "localhost") are checked at submission (a 422);
// names, once resolved, at each try (so a name that resolves to a private
// address later does not pass either).
//
// The checks are pure; CallbackSender does the HTTP (Boost.Beast, TLS with
// the system's certificates for https), each step under a deadline, never
// blocking the event loop: a slow or silent receiver costs a socket and a
// timer, and only as many as are sent at once. Runs on the node's thread.
#pragma once

#include <boost/asio/ip/address.hpp>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <string_view>
#include <vector>

#include "net/asio.h"

namespace jc::api {

struct Url {
  bool tls = false;
  std::string host;  // without brackets for IPv6
  std::string port;
  std::string target;  // path and query, "/" at least
};
// An http:// or https:// URL with a host (at most 2048 characters), or nullopt.
std::optional<Url> parse_url(std::string_view text);

struct Cidr {
  boost::asio::ip::address network;
  unsigned prefix = 0;
};
// "10.0.0.0/8,fd00::/8" (CALLBACK_ALLOW); nullopt when one is not a range.
std::optional<std::vector<Cidr>> parse_cidrs(std::string_view text);
bool in_ranges(const boost::asio::ip::address& a, const std::vector<Cidr>& ranges);
// Whether a callback may go to `a`: a public address, or one `allow` names.
// Loopback, link-local, private (RFC 1918, unique local, shared 100.64/10),
// unspecified, multicast and broadcast addresses are not public.
bool reachable(const boost::asio::ip::address& a, const std::vector<Cidr>& allow);
// At submission: "" when the URL may be used, else why not (a 422's words).
std::string check_callback_url(std::string_view url, const std::vector<Cidr>& allow);

class CallbackSender {
 public:
  // "" when the receiver answered 2xx, else what went wrong.
  using Done = std::function<void(const std::string& failure)>;
  static constexpr std::chrono::seconds kDeadline{10};  // for the whole exchange
  static constexpr std::size_t kMaxAnswerBytes = 64 * 1024;

  CallbackSender(boost::asio::io_context& io, std::vector<Cidr> allow,
                 std::set<std::uint16_t> own_ports);
  ~CallbackSender();
  void put(const std::string& url, std::string body, Done done);

  struct Context;  // shared with the exchanges in flight (callbacks.cpp)

 private:
  boost::asio::io_context& io_;
  std::shared_ptr<Context> context_;
};

}  // namespace jc::api
