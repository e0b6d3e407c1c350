// One background thread for slow clean-ups that must never hold up the
// node's event loop: the last close of a job's mount namespace (which frees
// its tmpfs, as long as the job made it big), the removal of working
// directories on disk, and of runs' and jobs' cgroups (each rmdir can wait
// milliseconds on a busy host). Work is done in the order given, so a run's
// cgroup goes before its job's; at exit what is left is still done.
#pragma once

#include "common/work_threads.h"

namespace jc::runner {

struct Janitor {
  // Made at its first use.
  static WorkThreads& instance();
};

}  // namespace jc::runner
