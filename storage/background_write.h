// A stage written on a thread of its own while the event loop goes on: the
// loop parses, stages and sends the next turn during the fsync of this one.
// One write at a time; what is staged meanwhile goes in the next. Both
// servers commit their busy turns this way (reverse_proxy/commit_path.h,
// cluster_node/node_server.cpp); small ones are written in place, where
// handing a write over and back would cost its job more than the loop gains.
//
// Reads see the flight (Staged::lift_in_place) until it lands; the writer
// reads its operations in place meanwhile, which nothing changes until then.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>

#include "common/status.h"
#include "common/work_threads.h"
#include "storage/staged.h"

namespace jc::storage {

class BackgroundWrite {
 public:
  // Runs a function on the event loop (asio::post).
  using Post = std::function<void(std::function<void()>)>;
  // Called on the event loop once the write is made: the stage has then
  // forgotten the flight (Status ok) or staged it again under what came
  // since (Staged::unlift: nothing of it is durable).
  using Landed = std::function<void(const Status&)>;

  explicit BackgroundWrite(Post post);
  // Waits for a write in flight; its Landed is not called.
  ~BackgroundWrite();
  BackgroundWrite(const BackgroundWrite&) = delete;
  BackgroundWrite& operator=(const BackgroundWrite&) = delete;

  bool writing() const { return writing_; }
  // Lifts what `staged` holds (synced if it asks) and writes it on the
  // writer thread. `staged` outlives the write. Not while writing().
  void start(Staged& staged, Landed landed);
  // Blocks until the write in flight is made, and lands it here (a server
  // that stops). Nothing when none is.
  void finish();

 private:
  void land();

  Post post_;
  std::unique_ptr<WorkThreads> writer_;
  Staged* staged_ = nullptr;
  Landed landed_;
  bool writing_ = false;
  bool sync_ = false;
  // One more at each landing: the writer's completion of a write that
  // finish() landed already finds another number and leaves result_ alone.
  std::uint64_t generation_ = 0;
  std::optional<Status> result_;  // the writer's answer, not yet landed
};

}  // namespace jc::storage
