// The Raft library's links between proxies, over the proxies' node port and
// its protections (TLS with CLUSTER_SECRET or certificates, the join proof,
// protected mode) instead of the library's own plaintext TCP port.
//
// The library reads and writes a libuv stream. Each link is a socketpair:
// one end is that stream (a uv_pipe_t), the other an Asio socket whose bytes
// travel as PEER_DATA frames on a net::FrameConnection. The library's own
// wire format is unchanged inside them.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <set>
#include <string>

#include <uv.h>

// The library's headers (0.15) do not declare C linkage themselves.
extern "C" {
#include <raft.h>
#include <raft/uv.h>
}

#include "common/log.h"
#include "net/asio.h"
#include "net/frame_connection.h"

namespace jc::replication {

class PeerTransport {
 public:
  // Opens a link to the proxy at `address`: TCP (TLS when configured), its
  // CHALLENGE read and PEER_HELLO sent. `done` gets the connection, or null
  // and the reason.
  using Dial = std::function<void(
      const std::string& address,
      std::function<void(std::shared_ptr<net::FrameConnection>, const std::string&)> done)>;

  PeerTransport(boost::asio::io_context& io, uv_loop_s* loop, std::function<void()> kick);
  ~PeerTransport();

  void set_dial(Dial dial) { dial_ = std::move(dial); }
  // A link another proxy opened, its PEER_HELLO checked: given to the library.
  void accept(std::uint64_t id, const std::string& address,
              std::shared_ptr<net::FrameConnection> conn);

  raft_uv_transport* get() { return transport_.get(); }

 private:
  struct Link;
  static int init(raft_uv_transport* t, raft_id id, const char* address);
  static int listen(raft_uv_transport* t, raft_uv_accept_cb cb);
  static int connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id, const char* address,
                     raft_uv_connect_cb cb);
  static void close(raft_uv_transport* t, raft_uv_transport_close_cb cb);
  // The library's end of a new link, bridged to `conn`; null on failure.
  struct uv_stream_s* bridge(std::shared_ptr<net::FrameConnection> conn);

  boost::asio::io_context& io_;
  uv_loop_s* loop_;
  std::function<void()> kick_;
  std::unique_ptr<raft_uv_transport> transport_;
  Dial dial_;
  raft_uv_accept_cb accept_cb_ = nullptr;
  std::set<raft_uv_connect*> connecting_;
  bool closed_ = false;
  std::shared_ptr<spdlog::logger> log_;
  std::shared_ptr<bool> alive_;
};

}  // namespace jc::replication
