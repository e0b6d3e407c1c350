// The Raft library's state-machine callbacks over a replication::StateMachine,
// and the framing of entries. Used by RaftLog and by the tests that run the
// library's deterministic fixture (raft/fixture.h) on the same code.
#pragma once

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>

#include "replication/peer_transport.h"  // the library's headers, with C linkage
#include "replication/raft_log.h"

namespace jc::replication {

struct FsmGlue {
  struct raft_fsm fsm {};
  StateMachine* machine = nullptr;
  struct raft* raft = nullptr;  // set once the raft instance exists (for the applied index)
  std::uint64_t snapshots_taken = 0;
  // The snapshot being taken: its index, and the work that serializes the
  // store's read view (on the library's thread pool when asynchronous).
  Index snapshot_index = 0;
  std::function<std::string()> snapshot_work;
  std::chrono::steady_clock::time_point snapshot_started;
  std::size_t snapshot_bytes = 0;
  long long snapshot_ms = 0;
};
// fsm.data points at `glue`, which must stay where it is. async_snapshots:
// serialize snapshots on the library's thread pool (its io must be of
// version 2); else on the loop (the fixture's io is of version 0).
void init_glue(FsmGlue& glue, StateMachine& machine, bool async_snapshots);

// An entry travels framed: its length in 8 bytes, the payload, zeros up to a
// multiple of 8. The library (0.15) pads entries to 8 bytes when it decodes
// a batch of them from the network but not when it encodes them, so an entry
// of another length would shift the ones after it in the same message.
std::size_t framed_size(std::size_t payload);
void frame_entry(char* out, std::string_view payload);
std::optional<std::string_view> unframe(const struct raft_buffer* buf);

}  // namespace jc::replication
