// A node's link to replicated proxies (cluster_node/proxy_link.h) on real
// loopback sockets, with a name service the test controls: a proxy name
// nobody answers costs the node a second, not the DNS's timeout; when a
// proxy dies and the DNS stops answering (podman's did, for every name, just
// after a container was killed) the node reaches another proxy from the
// answers it kept; an IP that refuses is dropped and the name looked up
// again. The proxies here accept and say nothing: the handshake is
// NodeServer's business, not the link's.
#include <doctest/doctest.h>

#include <chrono>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <vector>

#include "cluster_node/proxy_link.h"
#include "net/asio.h"
#include "tests/support/io_poll.h"

namespace proxy_link_test {

namespace asio = boost::asio;
using namespace std::chrono_literals;
using asio::ip::tcp;
using jc::node::ProxyLink;

// A proxy that accepts connections and keeps them.
class SilentProxy {
 public:
  explicit SilentProxy(asio::io_context& io)
      : io_(io), acceptor_(io, tcp::endpoint(asio::ip::address_v4::loopback(), 0)) {
    accept();
  }
  tcp::endpoint endpoint() const { return acceptor_.local_endpoint(); }
  std::size_t accepted() const { return accepted_.size(); }
  // kill -9: the port refuses, the links see their connection end.
  void die() {
    boost::system::error_code ignored;
    acceptor_.close(ignored);
    for (auto& s : accepted_) s->close(ignored);
  }

 private:
  void accept() {
    auto socket = std::make_shared<tcp::socket>(io_);
    acceptor_.async_accept(*socket, [this, socket](const boost::system::error_code& ec) {
      if (ec) return;
      accepted_.push_back(socket);
      accept();
    });
  }
  asio::io_context& io_;
  tcp::acceptor acceptor_;
  std::vector<std::shared_ptr<tcp::socket>> accepted_;
};

// Answers names from a table; a name not in it (or mapped to nothing) is
// never answered, as a DNS server that drops the query.
class FakeDns {
 public:
  explicit FakeDns(asio::io_context& io) : io_(io) {}
  std::map<std::string, std::optional<tcp::endpoint>> answers;
  int lookups = 0;
  ProxyLink::Lookup lookup() {
    return [this](std::size_t, const std::string& host, const std::string& port,
                  jc::net::NameResolvers::Done done) {
      ++lookups;
      auto it = answers.find(host);
      if (it == answers.end() || !it->second) {
        unanswered_.push_back(std::move(done));  // kept, never called
        return;
      }
      std::vector<tcp::endpoint> eps{*it->second};
      asio::post(io_, [done = std::move(done),
                       results = tcp::resolver::results_type::create(eps.begin(), eps.end(),
                                                                     host, port)] {
        done({}, results);
      });
    };
  }

 private:
  asio::io_context& io_;
  std::vector<jc::net::NameResolvers::Done> unanswered_;
};

struct LinkCounts {
  int connected = 0;
  int closed = 0;
};

ProxyLink make_link(asio::io_context& io, std::vector<std::string> names, FakeDns& dns,
                    LinkCounts& counts) {
  std::vector<ProxyLink::Address> addresses;
  for (auto& n : names) addresses.push_back({n, "8080"});
  return ProxyLink(io, std::move(addresses),
                   ProxyLink::Handlers{[&counts] { ++counts.connected; },
                                       [](jc::protocol::Message&&) {},
                                       [&counts] { ++counts.closed; }},
                   std::nullopt, dns.lookup());
}

}  // namespace proxy_link_test

using namespace proxy_link_test;

TEST_CASE("proxy link: a proxy name the DNS never answers holds the node up for about a "
          "second, then it tries the next address") {
  asio::io_context io;
  SilentProxy b(io);
  FakeDns dns(io);
  dns.answers["proxy-b"] = b.endpoint();  // proxy-a: never answered
  LinkCounts counts;
  auto link = make_link(io, {"proxy-a", "proxy-b"}, dns, counts);
  link.start();
  // Without a limit on the wait the link would wait for proxy-a forever.
  CHECK(jc::test::run_io_until(io, [&] { return b.accepted() == 1 && counts.connected == 1; }, 10s));
  CHECK(link.current() == "proxy-b:8080");
  link.stop();
}

TEST_CASE("proxy link: when its proxy dies and the DNS answers nothing, the node dials another "
          "proxy from the answer it kept") {
  asio::io_context io;
  SilentProxy a(io), b(io), c(io);
  FakeDns dns(io);
  dns.answers["proxy-a"] = a.endpoint();
  dns.answers["proxy-b"] = b.endpoint();
  dns.answers["proxy-c"] = c.endpoint();
  LinkCounts counts;
  auto link = make_link(io, {"proxy-a", "proxy-b", "proxy-c"}, dns, counts);
  link.start();
  // Every name is looked up at the start, not only the one dialled.
  REQUIRE(jc::test::run_io_until(io, [&] { return a.accepted() == 1 && dns.lookups >= 3; }, 10s));
  for (auto& [name, answer] : dns.answers) answer.reset();  // the DNS goes silent
  a.die();
  REQUIRE(jc::test::run_io_until(io, [&] { return counts.closed == 1; }, 10s));
  // A node that looked the name up at each dial would wait here for good.
  CHECK(jc::test::run_io_until(io, [&] { return b.accepted() + c.accepted() == 1; }, 10s));
  CHECK(counts.connected == 2);
  link.stop();
}

TEST_CASE("proxy link: a kept IP that refuses is dropped, and the name is looked up again (a "
          "proxy back elsewhere)") {
  asio::io_context io;
  SilentProxy old_a(io), new_a(io);
  FakeDns dns(io);
  dns.answers["proxy-a"] = old_a.endpoint();  // proxy-b: never answered
  LinkCounts counts;
  auto link = make_link(io, {"proxy-a", "proxy-b"}, dns, counts);
  link.start();
  REQUIRE(jc::test::run_io_until(io, [&] { return old_a.accepted() == 1; }, 10s));
  // proxy-a restarts with a new IP (here: a new port); the DNS knows it.
  dns.answers["proxy-a"] = new_a.endpoint();
  old_a.die();
  CHECK(jc::test::run_io_until(io, [&] { return new_a.accepted() >= 1; }, 15s));
  CHECK(link.current() == "proxy-a:8080");
  link.stop();
}
