#include "storage/background_write.h"

#include <utility>

namespace jc::storage {

BackgroundWrite::BackgroundWrite(Post post)
    : post_(std::move(post)),
      writer_(std::make_unique<WorkThreads>(1, WorkThreads::AtStop::kFinish, "jc-commit")) {}

// The writer first: a write it makes reads the stage's operations, and its
// completion, posted after the writer stopped, does nothing.
BackgroundWrite::~BackgroundWrite() { writer_.reset(); }

void BackgroundWrite::start(Staged& staged, Landed landed) {
  staged_ = &staged;
  landed_ = std::move(landed);
  sync_ = staged.commit_syncs();
  const WriteBatch::Ops& ops = staged.lift_in_place();
  writing_ = true;
  writer_->post([this, &ops, sync = sync_, store = &staged.store(), alive = writer_->alive(),
                 generation = generation_] {
    result_ = store->write_ops(ops, sync);
    post_([this, alive, generation] {
      if (!alive.expired() && generation == generation_) land();
    });
  });
}

void BackgroundWrite::finish() {
  if (!writing_) return;
  writer_->drain();
  land();
}

void BackgroundWrite::land() {
  if (!result_) return;
  const Status s = *std::exchange(result_, std::nullopt);
  writing_ = false;
  ++generation_;
  if (s.ok()) {
    staged_->landed();
  } else {
    staged_->unlift(sync_);
  }
  // It may start the next write.
  std::exchange(landed_, {})(s);
}

}  // namespace jc::storage
