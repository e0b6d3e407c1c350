#include "net/name_resolvers.h"

namespace jc::net {

namespace asio = boost::asio;

NameResolvers::NameResolvers(std::size_t entries) {
  for (std::size_t k = 0; k < entries; ++k) {
    auto e = std::make_unique<Entry>();
    e->work.emplace(e->io.get_executor());
    e->thread = std::thread([io = &e->io] { io->run(); });
    entries_.push_back(std::move(e));
  }
}

NameResolvers::~NameResolvers() { stop(); }

void NameResolvers::resolve(std::size_t k, const std::string& host, const std::string& port,
                            asio::io_context& home, Done done) {
  if (k >= entries_.size()) {
    asio::post(home, [done = std::move(done)] {
      done(asio::error::host_not_found, asio::ip::tcp::resolver::results_type{});
    });
    return;
  }
  Entry& e = *entries_[k];
  // On the entry's thread, where its resolver lives; a stopped entry drops it.
  asio::post(e.io, [&e, &home, host, port, done = std::move(done)]() mutable {
    e.resolver.async_resolve(
        host, port,
        [&home, done = std::move(done)](const boost::system::error_code& ec,
                                        asio::ip::tcp::resolver::results_type results) mutable {
          asio::post(home, [done = std::move(done), ec, results = std::move(results)] {
            done(ec, results);
          });
        });
  });
}

void NameResolvers::stop() {
  for (auto& e : entries_) {
    if (!e->thread.joinable()) continue;
    e->work.reset();
    e->io.stop();
    e->thread.join();
  }
}

DetachedLookups::~DetachedLookups() {
  std::lock_guard lock(shared_->mu);
  shared_->alive = false;
}

void DetachedLookups::resolve(const std::string& host, const std::string& port,
                              NameResolvers::Done done) {
  auto work = [shared = shared_, host, port, done]() mutable {
    asio::io_context io;
    asio::ip::tcp::resolver resolver(io);
    boost::system::error_code ec;
    auto results = resolver.resolve(host, port, ec);  // getaddrinfo, on this thread
    std::lock_guard lock(shared->mu);
    if (!shared->alive) return;
    asio::post(shared->home, [shared, ec, results = std::move(results), done = std::move(done)] {
      if (shared->alive) done(ec, results);  // on home's thread, as the destructor
    });
  };
  try {
    std::thread(std::move(work)).detach();
  } catch (const std::system_error&) {
    // No thread to be had: the look-up fails now, and is tried again later.
    asio::post(shared_->home, [shared = shared_, done = std::move(done)] {
      if (shared->alive) done(asio::error::no_memory, {});
    });
  }
}

}  // namespace jc::net
