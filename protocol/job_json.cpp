#include "protocol/job_json.h"

#include <algorithm>

namespace jc::protocol {

using nlohmann::json;

// 2026-11-29T23:10:00.123Z: one word, for key=value replies.
std::string iso_time(TimeMs t) {
  std::string s = format_time(t);
  std::replace(s.begin(), s.end(), ' ', 'T');
  return s + "Z";
}

json job_json(const JobReport& r) {
  json j = {{"ticket", r.ticket},
            {"state", std::string(to_string(r.state))},
            {"node", r.node.empty() ? json(nullptr) : json(r.node)},
            {"attempts", r.attempts}};
  if (r.queue_position >= 0) j["queue_position"] = r.queue_position;
  if (r.estimated_wait_ms >= 0) j["estimated_wait_ms"] = r.estimated_wait_ms;
  if (r.state == JobState::kQueued) {
    j["priority"] = r.priority;
    if (r.not_before_ms > 0) j["not_before"] = iso_time(r.not_before_ms);
    if (!r.waiting_for.empty()) j["waiting_for"] = r.waiting_for;
  }
  if (r.has_result) {
    const auto& res = r.result;
    j["result"] = shown_text(res, r.ticket);
    if (res.start_ms > 0) j["wall_ms"] = res.end_ms - res.start_ms;
    if (res.is_run) {
      j["exit_code"] = res.exit_code;
      j["signal"] = res.signal;
      j["stdout"] = res.stdout_data;
      j["stderr"] = res.stderr_data;
      j["stdout_truncated"] = res.stdout_truncated;
      j["stderr_truncated"] = res.stderr_truncated;
      j["cpu_ms"] = res.cpu_ms;
      j["peak_kb"] = res.peak_kb;
      j["sandbox"] = res.sandbox.empty() ? json(nullptr) : json(res.sandbox);
      j["verdict"] = res.verdict.empty() ? json(nullptr) : json(res.verdict);
      if (!res.cases.empty()) {
        json cases = json::array();
        for (const auto& c : res.cases) {
          cases.push_back({{"name", c.name},
                           {"verdict", c.verdict},
                           {"exit_code", c.exit_code},
                           {"signal", c.signal},
                           {"wall_ms", c.wall_ms},
                           {"cpu_ms", c.cpu_ms},
                           {"peak_kb", c.peak_kb},
                           {"stdout", c.stdout_data},
                           {"stderr", c.stderr_data}});
        }
        j["cases"] = cases;
        j["passed"] = res.passed;
      }
    }
  }
  return j;
}

}  // namespace jc::protocol
