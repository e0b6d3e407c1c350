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

}  // namespace jc::net
