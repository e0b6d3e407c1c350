// The balancing decision of a dispatch round, as a pure function.
//
// Rule (INTERFACE.md section 4): while there are more queued jobs than free
// slots every node gets a full set of slots; otherwise the numbers of jobs the
// nodes hold differ by at most one. Jobs go first to free slots (water-filling
// on the number each node holds, lowest first), and only when every slot is
// taken to a small prefetch per node, also water-filled, so that a node never
// idles between a result and its next job, and no node gets a pile that a
// node joining later would miss. A node's prefetch is the larger of the
// global one (DISPATCH_PREFETCH) and its own (NodeLoad::prefetch: what it
// finishes in DISPATCH_PREFETCH_MS, see ProxyCore).
#pragma once

#include <cstddef>
#include <cstdint>
#include <vector>

namespace jc::proxy {

struct NodeLoad {
  std::uint32_t slots = 0;
  std::uint32_t held = 0;      // dispatched to it and not finished
  std::uint32_t prefetch = 0;  // its own prefetch, when larger than the global one
};

// Whether a job may be a node's `extra`-th job (1-based) beyond its slots and
// DISPATCH_PREFETCH, the room its adaptive prefetch gives: only a sleep job
// (the one kind whose length is known) short enough that the extras add at
// most `prefetch_ms` of work per slot. A node whose last jobs were fast thus
// never gets a pile of long ones, and a run job never rides on the rate.
bool fits_adaptive_prefetch(std::uint32_t extra, bool known_length, std::uint64_t job_ms,
                            std::uint32_t slots, std::int64_t prefetch_ms);

// How many jobs each node gets in this round (same order as `nodes`).
// `rotation` breaks ties between equally loaded nodes so that no node is
// always the first to get the odd job.
std::vector<std::uint32_t> plan_dispatch(const std::vector<NodeLoad>& nodes, std::size_t queued,
                                         std::size_t max_jobs, std::uint32_t prefetch,
                                         std::size_t rotation);

}  // namespace jc::proxy
