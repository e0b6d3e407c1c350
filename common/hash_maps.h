// Hash maps for the books that hold an entry per job (tickets and their
// state, on the proxy and on the nodes). abseil's Swiss tables: open
// addressing with a byte of each key's hash beside the slots, so a lookup
// probes a few bytes, compares keys only when that byte matches, and finds
// its bucket with a mask, where std::unordered_map follows a chain of
// nodes and divides by a prime for every node it passes (perf put one such
// lookup at 6 % of a node's time; docs/benchmarks.md, step 10).
//
// Keys of type std::string are also looked up by std::string_view without
// a copy.
#pragma once

#include <absl/container/flat_hash_map.h>
#include <absl/container/flat_hash_set.h>
#include <absl/container/node_hash_map.h>

#include "common/inline_key.h"

namespace jc {

// Entries live in the table itself: an insert may move every one of them,
// so hold no pointer, reference or iterator across an insert.
template <class K, class V>
using FlatMap = absl::flat_hash_map<K, V>;
template <class K>
using FlatSet = absl::flat_hash_set<K>;

// Each entry allocated on its own: pointers and references to keys and
// values stay valid until the entry is erased (as std::unordered_map's);
// iterators do not survive an insert. Also for books that grow to a burst's
// size (one entry per job waiting): a flat table grows by doubling, and the
// arrays it leaves stay with the allocator, 5 MB more RSS per node in
// `jc_bench --only e2e`.
template <class K, class V>
using NodeMap = absl::node_hash_map<K, V>;

// Keyed by ticket, kept inline (common/inline_key.h): no heap block a
// ticket; looked up by any string without a copy.
template <class V>
using TicketMap = absl::flat_hash_map<InlineKey, V, InlineKeyHash, InlineKeyEq>;
using TicketSet = absl::flat_hash_set<InlineKey, InlineKeyHash, InlineKeyEq>;
template <class V>
using TicketNodeMap = absl::node_hash_map<InlineKey, V, InlineKeyHash, InlineKeyEq>;

}  // namespace jc
