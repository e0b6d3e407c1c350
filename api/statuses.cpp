#include "api/statuses.h"

#include <fmt/format.h>

namespace jc::api {

std::string_view description(Status s) {
  switch (s) {
    case Status::kInQueue: return "In Queue";
    case Status::kProcessing: return "Processing";
    case Status::kAccepted: return "Accepted";
    case Status::kWrongAnswer: return "Wrong Answer";
    case Status::kTimeLimitExceeded: return "Time Limit Exceeded";
    case Status::kCompilationError: return "Compilation Error";
    case Status::kSigsegv: return "Runtime Error (SIGSEGV)";
    case Status::kSigxfsz: return "Runtime Error (SIGXFSZ)";
    case Status::kSigfpe: return "Runtime Error (SIGFPE)";
    case Status::kSigabrt: return "Runtime Error (SIGABRT)";
    case Status::kNzec: return "Runtime Error (NZEC)";
    case Status::kOther: return "Runtime Error (Other)";
    case Status::kInternalError: return "Internal Error";
    case Status::kExecFormatError: return "Exec Format Error";
  }
  return "Internal Error";
}

const std::vector<Status>& all_statuses() {
  static const std::vector<Status> kAll = [] {
    std::vector<Status> v;
    for (int id = 1; id <= 14; ++id) v.push_back(static_cast<Status>(id));
    return v;
  }();
  return kAll;
}

Status runtime_error_for_signal(int signal) {
  switch (signal) {
    case 11: return Status::kSigsegv;
    case 25: return Status::kSigxfsz;
    case 8: return Status::kSigfpe;
    case 6: return Status::kSigabrt;
    default: return Status::kOther;
  }
}

Outcome outcome_of(const protocol::CaseResult& run) {
  Outcome o;
  const std::string& v = run.verdict;
  if (run.signal != 0) {
    o.exit_signal = run.signal;
  } else {
    o.exit_code = run.exit_code;
  }
  if (v == "ACCEPTED" || v.empty()) {
    o.status = Status::kAccepted;
  } else if (v == "WRONG_ANSWER") {
    o.status = Status::kWrongAnswer;
  } else if (v == "TIME_LIMIT_EXCEEDED") {
    o.status = Status::kTimeLimitExceeded;
    o.message = "Time limit exceeded";
  } else if (v == "COMPILE_ERROR") {
    o.status = Status::kCompilationError;
  } else if (v == "MEMORY_LIMIT_EXCEEDED") {
    // judge0 (isolate's cgroup limit) sees a program killed by SIGKILL.
    o.status = Status::kOther;
    o.message = "Memory limit exceeded";
  } else if (v == "OUTPUT_LIMIT_EXCEEDED") {
    // judge0's stdout is a file under max_file_size: SIGXFSZ.
    o.status = Status::kSigxfsz;
    o.message = "Output limit exceeded";
  } else if (v == "CANCELLED") {
    o.status = Status::kInternalError;
    o.message = "Cancelled";
  } else if (v == "RUNTIME_ERROR") {
    if (run.exit_code < 0) {
      // The node could not start the run: the cluster's fault.
      o.status = Status::kInternalError;
      o.message = "The run could not be started";
      o.exit_code.reset();
    } else if (run.signal != 0) {
      o.status = runtime_error_for_signal(run.signal);
      o.message = fmt::format("Caught fatal signal {}", run.signal);
    } else if (run.exit_code == 126 &&
               run.stderr_data.find("Exec format error") != std::string::npos) {
      o.status = Status::kExecFormatError;
      o.message = "Exec format error";
    } else {
      o.status = Status::kNzec;
      o.message = fmt::format("Exited with error status {}", run.exit_code);
    }
  } else {
    o.status = Status::kInternalError;
    o.message = v;
  }
  return o;
}

}  // namespace jc::api
