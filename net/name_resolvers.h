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

}  // namespace jc::net
