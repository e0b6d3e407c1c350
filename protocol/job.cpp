#include "protocol/job.h"

#include <fmt/format.h>

#include <algorithm>
#include <cctype>

#include "common/time.h"

namespace jc::protocol {

std::string_view to_string(JobState s) {
  switch (s) {
    case JobState::kQueued:
      return "QUEUED";
    case JobState::kRunning:
      return "RUNNING";
    case JobState::kDone:
      return "DONE";
    case JobState::kFailed:
      return "FAILED";
    case JobState::kTimeout:
      return "TIMEOUT";
    case JobState::kCancelled:
      return "CANCELLED";
    case JobState::kUnknown:
      return "UNKNOWN";
    case JobState::kExpired:
      return "EXPIRED";
  }
  return "UNKNOWN";
}

std::optional<JobState> next_state(JobState current, JobEvent event, JobState outcome) {
  if (is_final(current) || current == JobState::kUnknown || current == JobState::kExpired) {
    return std::nullopt;
  }
  switch (event) {
    case JobEvent::kDispatch:
      return current == JobState::kQueued ? std::optional(JobState::kRunning) : std::nullopt;
    case JobEvent::kFinish:
      // A result can overtake the bookkeeping (a node that still ran a job the
      // proxy had queued again): it is final either way.
      return is_final(outcome) ? std::optional(outcome) : std::nullopt;
    case JobEvent::kNodeLost:
      return current == JobState::kRunning ? std::optional(JobState::kQueued) : std::nullopt;
    case JobEvent::kGiveUp:
      return JobState::kFailed;
    case JobEvent::kCancel:
      // A queued job ends at once; a running one ends when its node reports.
      return current == JobState::kQueued ? std::optional(JobState::kCancelled) : std::nullopt;
  }
  return std::nullopt;
}

std::string JobSpec::describe() const {
  if (kind == JobKind::kSleep) return fmt::format("sleep {}", sleep_ms);
  std::string cmd = command.size() > 60 ? command.substr(0, 57) + "..." : command;
  for (char& c : cmd) {
    if (c == '\n' || c == '\r') c = ' ';
  }
  return "run " + cmd;
}

std::string_view to_string(JobEvent e) {
  switch (e) {
    case JobEvent::kDispatch:
      return "dispatch";
    case JobEvent::kFinish:
      return "finish";
    case JobEvent::kNodeLost:
      return "node-lost";
    case JobEvent::kGiveUp:
      return "give-up";
    case JobEvent::kCancel:
      return "cancel";
  }
  return "?";
}

std::optional<std::string> advance(JobState& state, JobEvent event, JobState outcome) {
  auto next = next_state(state, event, outcome);
  if (!next) {
    std::string why = "refused transition from=" + std::string(to_string(state)) +
                      " event=" + std::string(to_string(event));
    if (event == JobEvent::kFinish) why += " outcome=" + std::string(to_string(outcome));
    return why;
  }
  state = *next;
  return std::nullopt;
}

JobResult cancelled_before_run(JobKind kind) {
  JobResult r;
  r.state = JobState::kCancelled;
  r.verdict = "CANCELLED";
  r.text = "cancelled before it ran";
  r.is_run = kind == JobKind::kRun;
  return r;
}

std::string shown_text(const JobResult& r, std::string_view ticket) {
  if (r.sleep_ms < 0 || !r.text.empty()) return r.text;
  return fmt::format("Executed Job[{}] for {} milliseconds from {} to {} on node {}", ticket,
                     r.sleep_ms, time_text(r.start_ms).view(), time_text(r.end_ms).view(), r.node);
}

bool is_valid_node_id(std::string_view id) {
  return !id.empty() && id.size() <= 64 && std::all_of(id.begin(), id.end(), [](char c) {
    return std::isalnum(static_cast<unsigned char>(c)) || c == '-' || c == '_' || c == '.';
  });
}

bool is_valid_ticket(std::string_view t) {
  if (t.empty() || t.size() > kMaxTicketLength) return false;
  for (char c : t) {
    bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
              c == '_' || c == '-';
    if (!ok) return false;
  }
  return true;
}

}  // namespace jc::protocol
