// The Raft library's links between proxies, over the proxies' node port and
// its protections (TLS with CLUSTER_SECRET or certificates, the join proof,
// protected mode) instead of the library's own plaintext TCP port.
//
// The library reads and writes a libuv stream. Each link is a socketpair:
// one end is that stream (a uv_pipe_t), the other an Asio socket whose bytes
// travel as PEER_DATA frames on a net::FrameConnection. The library's own
// wire format is unchanged inside them.
//
// The library sends (entries, heartbeats) only on the links it dials, so
// those links, from the dial to the end, run on a thread of their own: a
// leader's entries then never wait behind its nodes' traffic on the proxy's
// event loop (over TLS, each 16-KiB record of a write took a whole turn of
// it, and a burst of submits cost the leadership). Links another proxy
// dialled carry its answers to this one and stay on the proxy's loop. The
// two threads share only the socketpairs' descriptors and posted ids.
#pragma once

#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <set>
#include <string>
#include <thread>

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
  // Runs on the links' thread, with `io` its io_context: everything it
  // creates is on `io`, and `done` is called there.
  using Dial = std::function<void(
      const std::string& address, boost::asio::io_context& io,
      std::function<void(std::shared_ptr<net::FrameConnection>, const std::string&)> done)>;

  PeerTransport(boost::asio::io_context& io, uv_loop_s* loop, std::function<void()> kick);
  ~PeerTransport();

  void set_dial(Dial dial) { dial_ = std::move(dial); }
  // A link another proxy opened, its PEER_HELLO checked: given to the library.
  void accept(std::uint64_t id, const std::string& address,
              std::shared_ptr<net::FrameConnection> conn);

  raft_uv_transport* get() { return transport_.get(); }
  // Ends the links' thread and every link on it (after the library closed).
  void shutdown();

 private:
  struct Link;
  static int init(raft_uv_transport* t, raft_id id, const char* address);
  static int listen(raft_uv_transport* t, raft_uv_accept_cb cb);
  static int connect(raft_uv_transport* t, raft_uv_connect* req, raft_id id, const char* address,
                     raft_uv_connect_cb cb);
  static void close(raft_uv_transport* t, raft_uv_transport_close_cb cb);
  // A dial ended (on this thread): the library gets its stream, or why not.
  void dialled(raft_uv_connect* req, std::uint64_t dial_id, bool ok, const std::string& why);
  // The library's end of a new link: a socketpair whose other end is
  // `*other_end`; null on failure.
  struct uv_stream_s* library_end(int* other_end);
  // The relay between `other_end` and `conn`, on `io` (conn's own).
  static void relay(boost::asio::io_context& io, int other_end,
                    std::shared_ptr<net::FrameConnection> conn);

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

  // The dialled links' thread. Connections dialled and not yet relayed wait
  // in `dialled_` (touched on that thread only), by id.
  boost::asio::io_context net_io_;
  std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> net_work_;
  std::thread net_thread_;
  std::map<std::uint64_t, std::shared_ptr<net::FrameConnection>> dialled_;
  std::uint64_t next_dial_ = 0;
};

}  // namespace jc::replication
