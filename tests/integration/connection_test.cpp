// net::FrameConnection's backpressure on real loopback sockets: a paused
// connection hands no frame to its owner and is not closed as idle; resumed,
// it hands over every frame in order, the ones already read first.
#include <doctest/doctest.h>

#include <chrono>
#include <memory>
#include <string>
#include <thread>
#include <vector>

#include "net/asio.h"
#include "net/frame_connection.h"
#include "net/tls.h"
#include "protocol/codec.h"
#include "protocol/messages.h"

namespace {

namespace asio = boost::asio;
using namespace std::chrono_literals;

// Runs the io_context until `done` holds or the deadline passes.
template <class Pred>
bool run_until(asio::io_context& io, Pred done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.restart();
    io.run_for(10ms);
  }
  return true;
}

}  // namespace

TEST_CASE("connection: a paused connection holds its frames and stays open, and resumed hands them over in order") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  asio::ip::tcp::socket server = acceptor.accept();

  // A short idle deadline: the pause lasts several of them.
  auto conn = std::make_shared<jc::net::FrameConnection>(std::move(server), "test", 100ms);
  std::vector<std::string> got;
  std::string closed;
  conn->start(
      [&](jc::protocol::Message&& m) {
        got.push_back(std::get<jc::protocol::PeerData>(m).bytes);
        // Paused from inside the handler, as the proxy does.
        if (got.size() == 1) conn->pause();
      },
      [&](const std::string& why) { closed = why; });

  // Many frames in one write: they arrive together, most of them in the
  // same read as the first.
  constexpr int kFrames = 500;
  std::string wire;
  for (int i = 0; i < kFrames; ++i) {
    jc::protocol::encode(jc::protocol::PeerData{"frame " + std::to_string(i)}, wire);
  }
  asio::write(client, asio::buffer(wire));

  REQUIRE(run_until(io, [&] { return !got.empty(); }, 5s));
  CHECK(conn->paused());
  // Four idle deadlines pass: nothing more is handed over, nothing closes.
  run_until(io, [] { return false; }, 400ms);
  CHECK(got.size() == 1);
  CHECK(closed.empty());
  CHECK(conn->open());

  conn->resume();
  REQUIRE(run_until(io, [&] { return got.size() == kFrames; }, 5s));
  for (int i = 0; i < kFrames; ++i) CHECK(got[i] == "frame " + std::to_string(i));
  CHECK(closed.empty());

  // Resumed, the idle deadline applies again.
  REQUIRE(run_until(io, [&] { return !closed.empty(); }, 5s));
  CHECK(closed.find("no message within") != std::string::npos);
}

TEST_CASE("connection: pause and resume from outside a handler, with reads outstanding") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  asio::ip::tcp::socket server = acceptor.accept();
  auto conn = std::make_shared<jc::net::FrameConnection>(std::move(server), "test", 10s);
  std::vector<std::string> got;
  conn->start([&](jc::protocol::Message&& m) { got.push_back(std::get<jc::protocol::PeerData>(m).bytes); },
              [](const std::string&) {});
  auto send = [&](const std::string& text) {
    std::string wire;
    jc::protocol::encode(jc::protocol::PeerData{text}, wire);
    asio::write(client, asio::buffer(wire));
  };
  send("one");
  REQUIRE(run_until(io, [&] { return got.size() == 1; }, 5s));
  // A read is outstanding now; the frame it completes with is held in the
  // buffer, and nothing is left in the socket.
  conn->pause();
  send("two");
  run_until(io, [] { return false; }, 200ms);
  CHECK(got.size() == 1);
  // Resumed, paused and resumed again before the posted turn runs: the
  // frame already read comes out once, with nothing more sent.
  conn->resume();
  conn->pause();
  conn->resume();
  REQUIRE(run_until(io, [&] { return got.size() == 2; }, 5s));
  send("three");
  REQUIRE(run_until(io, [&] { return got.size() == 3; }, 5s));
  run_until(io, [] { return false; }, 100ms);
  CHECK(got == std::vector<std::string>{"one", "two", "three"});
}

TEST_CASE("connection: frames already read are handed over on resume, and a pause undone in the handler loses none") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  asio::ip::tcp::socket server = acceptor.accept();
  auto conn = std::make_shared<jc::net::FrameConnection>(std::move(server), "test", 10s);
  std::vector<std::string> got;
  conn->start(
      [&](jc::protocol::Message&& m) {
        got.push_back(std::get<jc::protocol::PeerData>(m).bytes);
        if (got.size() == 1) conn->pause();  // the rest of this read waits
        if (got.size() == 3) {
          conn->pause();  // undone before the handler returns: nothing waits
          conn->resume();
        }
      },
      [](const std::string&) {});
  // Small enough for the first read (4 KiB): all of it is in the buffer,
  // none in the socket, when the first frame pauses the connection.
  constexpr int kFrames = 40;
  std::string wire;
  for (int i = 0; i < kFrames; ++i) {
    jc::protocol::encode(jc::protocol::PeerData{"f" + std::to_string(i)}, wire);
  }
  REQUIRE(wire.size() < 4096);
  asio::write(client, asio::buffer(wire));
  REQUIRE(run_until(io, [&] { return !got.empty(); }, 5s));
  run_until(io, [] { return false; }, 200ms);
  CHECK(got.size() == 1);
  conn->resume();
  REQUIRE(run_until(io, [&] { return got.size() == kFrames; }, 5s));
  run_until(io, [] { return false; }, 100ms);
  REQUIRE(got.size() == kFrames);
  for (int i = 0; i < kFrames; ++i) CHECK(got[i] == "f" + std::to_string(i));
  // Still reading: a frame sent now arrives.
  std::string more;
  jc::protocol::encode(jc::protocol::PeerData{"after"}, more);
  asio::write(client, asio::buffer(more));
  REQUIRE(run_until(io, [&] { return got.size() == kFrames + 1; }, 5s));
  CHECK(got.back() == "after");
}

TEST_CASE("connection: with a turn budget, a burst of frames lets other handlers run between them") {
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket client(io);
  client.connect(acceptor.local_endpoint());
  asio::ip::tcp::socket server = acceptor.accept();
  auto conn = std::make_shared<jc::net::FrameConnection>(std::move(server), "test", 10s);
  conn->set_turn_budget(std::chrono::microseconds(1));
  std::vector<std::string> got;
  std::size_t seen_by_other = 0;
  conn->start(
      [&](jc::protocol::Message&& m) {
        got.push_back(std::get<jc::protocol::PeerData>(m).bytes);
        // Another handler, queued behind this turn: without the budget it
        // would run only after every frame of this read.
        if (got.size() == 1) asio::post(io, [&] { seen_by_other = got.size(); });
      },
      [](const std::string&) {});
  constexpr int kFrames = 100;
  std::string wire;
  for (int i = 0; i < kFrames; ++i) {
    jc::protocol::encode(jc::protocol::PeerData{"b" + std::to_string(i)}, wire);
  }
  REQUIRE(wire.size() < 4096);  // one read
  asio::write(client, asio::buffer(wire));
  REQUIRE(run_until(io, [&] { return got.size() == kFrames; }, 5s));
  CHECK(seen_by_other >= 1);
  CHECK(seen_by_other < kFrames);
  for (int i = 0; i < kFrames; ++i) CHECK(got[i] == "b" + std::to_string(i));
}

TEST_CASE("connection: over TLS too, the turn budget counts every record read in the turn") {
  auto settings = jc::net::make_tls_settings("connection-test-secret-0123456789", "", "", "");
  auto server_ctx = jc::net::make_tls_context(settings, jc::net::TlsRole::server);
  auto client_ctx = jc::net::make_tls_context(settings, jc::net::TlsRole::client);
  asio::io_context io;
  asio::ip::tcp::acceptor acceptor(io, {asio::ip::make_address("127.0.0.1"), 0});
  asio::ip::tcp::socket client_socket(io);
  client_socket.connect(acceptor.local_endpoint());
  asio::ip::tcp::socket server_socket = acceptor.accept();
  auto server = std::make_shared<jc::net::FrameConnection>(
      std::move(server_socket), "server", 10s,
      jc::net::TlsLink{server_ctx, jc::net::TlsRole::server, settings.mode, ""});
  auto client = std::make_shared<jc::net::FrameConnection>(
      std::move(client_socket), "client", 10s,
      jc::net::TlsLink{client_ctx, jc::net::TlsRole::client, settings.mode, "127.0.0.1"});
  server->set_turn_budget(2ms);
  std::vector<std::size_t> sizes;
  std::size_t seen_by_other = 0;
  server->pause();  // until every frame is in the socket: records then are read at once
  server->start(
      [&](jc::protocol::Message&& m) {
        sizes.push_back(std::get<jc::protocol::PeerData>(m).bytes.size());
        std::this_thread::sleep_for(500us);  // a handler's work: four fit in the budget
        if (sizes.size() == 1) asio::post(io, [&] { seen_by_other = sizes.size(); });
      },
      [](const std::string&) {});
  client->start([](jc::protocol::Message&&) {}, [](const std::string&) {});
  // 20 frames of 20 KB: each spans two TLS records, 400 KB in all.
  constexpr int kFrames = 20;
  for (int i = 0; i < kFrames; ++i) {
    client->send(jc::protocol::PeerData{std::string(20000, static_cast<char>('a' + i))});
  }
  run_until(io, [] { return false; }, 500ms);  // the handshake, then the client's writes
  CHECK(sizes.empty());
  server->resume();
  REQUIRE(run_until(io, [&] { return sizes.size() == kFrames && seen_by_other > 0; }, 10s));
  // The other handler ran after about four frames, not after all of them.
  CHECK(seen_by_other < kFrames / 2);
}
