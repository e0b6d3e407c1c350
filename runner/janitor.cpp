#include "runner/janitor.h"

namespace jc::runner {

WorkThreads& Janitor::instance() {
  static WorkThreads janitor(1, WorkThreads::AtStop::kFinish, "jc-janitor");
  return janitor;
}

}  // namespace jc::runner
