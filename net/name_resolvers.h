// Name look-ups of a list of addresses (a proxy's PROXY_PEERS, a node's
// PROXY_ADDRESSES), each entry on a thread of its own.
//
// asio resolves on one background thread per io_context, one name after
// another: a name nobody answers (a proxy's container just killed leaves
// its name unanswered for seconds, again and again) would hold up every
// other look-up behind it: on a proxy the links between the proxies that
// are alive, and so the election; on a node its way to the new leader.
// Here each entry's look-ups wait only for each other.
//
// resolve() may be called from any thread; `done` runs on `home`. stop()
// (the owner's destructor, before its peer links' thread ends) joins the
// threads: no `done` runs after it, and later calls do nothing.
#pragma once

#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

#include "net/asio.h"

namespace jc::net {

class NameResolvers {
 public:
  using Done = std::function<void(const boost::system::error_code&,
                                  boost::asio::ip::tcp::resolver::results_type)>;

  explicit NameResolvers(std::size_t entries);
  ~NameResolvers();
  NameResolvers(const NameResolvers&) = delete;
  NameResolvers& operator=(const NameResolvers&) = delete;

  // Looks `host` up (with `port`, "" for none) on entry k's thread.
  void resolve(std::size_t k, const std::string& host, const std::string& port,
               boost::asio::io_context& home, Done done);
  void stop();

 private:
  struct Entry {
    boost::asio::io_context io;
    boost::asio::ip::tcp::resolver resolver{io};
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work;
    std::thread thread;
  };
  std::vector<std::unique_ptr<Entry>> entries_;
};

// Look-ups each on a thread of its own, started and left to finish: a
// query a DNS server drops holds only its own thread (getaddrinfo waits out
// its timeouts, 5 s and more), and the caller may ask again meanwhile; a
// second query often gets through where podman's DNS dropped the first.
// `done` runs on `home`, and never once the owner is gone: its destructor
// (on `home`'s thread) cuts the look-ups still running off.
class DetachedLookups {
 public:
  explicit DetachedLookups(boost::asio::io_context& home)
      : shared_(std::make_shared<Shared>(home)) {}
  ~DetachedLookups();
  DetachedLookups(const DetachedLookups&) = delete;
  DetachedLookups& operator=(const DetachedLookups&) = delete;

  void resolve(const std::string& host, const std::string& port, NameResolvers::Done done);

 private:
  struct Shared {
    explicit Shared(boost::asio::io_context& io) : home(io) {}
    std::mutex mu;
    boost::asio::io_context& home;
    bool alive = true;
  };
  std::shared_ptr<Shared> shared_;
};

}  // namespace jc::net
