// One JSON shape for a job, shared by the nodes' JSON replies (`r`,
// `status`, `wait` in `format json`) and the proxy's /api/jobs/<ticket>
// (which adds what only the proxy records). Pure.
#pragma once

#include <nlohmann/json.hpp>
#include <string>

#include "common/time.h"
#include "protocol/job.h"

namespace jc::protocol {

// ticket, state, node (null when none), attempts; while queued priority,
// not_before, queue_position and estimated_wait_ms (when known); when final
// result and wall_ms, and for a run job its exit, signal, outputs, limits'
// figures, sandbox, verdict and cases.
nlohmann::json job_json(const JobReport& r);

// 2026-11-29T23:10:00.123Z: one word, for key=value replies and JSON.
std::string iso_time(TimeMs t);

}  // namespace jc::protocol
