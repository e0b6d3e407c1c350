// Keeping every frame under the frame limit (codec.h: kMaxFrameBytes): a
// batch message (RESULT, RES_REQ, JOB, SUBMIT) whose items add up to more
// than a budget is split into several messages, each within it. One item
// always fits a frame on its own: a job's spec is at most a 1 MiB
// here-document and some options, a result at most two streams of
// JOB_MAX_OUTPUT_KB (16 MiB each) and its cases' 4 KiB summaries. Without
// the split, two large results to one node made a frame the node refused,
// and the proxy sent it again after every reconnect. Pure.
#pragma once

#include <cstddef>
#include <vector>

#include "protocol/messages.h"

namespace jc::protocol {

// A quarter of the frame limit: a split batch never approaches it, and one
// frame does not hold a connection's writes for long.
constexpr std::size_t kBatchBudgetBytes = 16 * 1024 * 1024;

// About the encoded size of one item (its strings, and a little per field).
std::size_t approx_size(const JobSpec& spec);
std::size_t approx_size(const JobReport& report);

// `m` as one or more messages of the same type, in order; other types of
// message come back alone and unchanged.
std::vector<Message> split_batch(Message m, std::size_t budget = kBatchBudgetBytes);

}  // namespace jc::protocol
