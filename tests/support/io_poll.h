// Runs an io_context in short slices until a condition holds or a deadline
// passes: how in-process tests on loopback sockets wait, never on a fixed
// sleep.
#pragma once

#include <chrono>

#include "net/asio.h"

namespace jc::test {

// True once `done()` holds; false if `limit` passed first.
template <class Pred>
bool run_io_until(boost::asio::io_context& io, Pred done, std::chrono::milliseconds limit) {
  auto deadline = std::chrono::steady_clock::now() + limit;
  while (!done()) {
    if (std::chrono::steady_clock::now() >= deadline) return false;
    io.restart();
    io.run_for(std::chrono::milliseconds(10));
  }
  return true;
}

}  // namespace jc::test
