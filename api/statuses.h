// judge0's submission statuses (ids 1 to 14, with its descriptions), and the
// status of a jobcluster job in judge0's terms: what a judge0 client reads
// from `status`, `exit_code`, `exit_signal` and `message`. What judge0
// cannot say (a memory or output limit, a cancel) keeps judge0's nearest
// status and is said exactly in the added `verdict` and in `message`.
// Pure.
#pragma once

#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/job.h"

namespace jc::api {

enum class Status : int {
  kInQueue = 1,
  kProcessing = 2,
  kAccepted = 3,
  kWrongAnswer = 4,
  kTimeLimitExceeded = 5,
  kCompilationError = 6,
  kSigsegv = 7,
  kSigxfsz = 8,
  kSigfpe = 9,
  kSigabrt = 10,
  kNzec = 11,
  kOther = 12,
  kInternalError = 13,
  kExecFormatError = 14,
};

std::string_view description(Status s);
// Every status, in id order (GET /statuses).
const std::vector<Status>& all_statuses();

// judge0's runtime error for a program ended by `signal` (isolate_job.rb:
// 11, 25, 8 and 6 have their own; any other is "Other").
Status runtime_error_for_signal(int signal);

// One run's outcome in judge0's terms.
struct Outcome {
  Status status = Status::kInQueue;
  std::optional<int> exit_code;    // the program's, when it exited
  std::optional<int> exit_signal;  // the signal that ended it
  std::string message;             // judge0's `message`: what ended it, in words ("" for none)
};

// A judged run (a case, or the check step) from its verdict and figures.
Outcome outcome_of(const protocol::CaseResult& run);

}  // namespace jc::api
