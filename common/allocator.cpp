// jemalloc's options for the two servers, read before main(); MALLOC_CONF
// in the environment overrides them.
//
// One arena: an event loop makes and frees nearly everything, but threads
// that work for it allocate too (LevelDB's memtable grows on whichever
// thread writes; a single proxy's commits are written on a thread of their
// own, reverse_proxy/commit_path.h). With an arena per thread, as jemalloc
// gives by default, pages freed in one arena are not reused by another: the
// proxy's peak RSS during `jc_bench --only e2e` was 86 to 94 MB with its
// commit writer, 79 MB with one arena, at the same throughput
// (docs/benchmarks.md, step 9). Each thread keeps its own cache of small
// allocations, so the loop does not contend for the arena's lock.
//
// Freed pages stay with the arena for jemalloc's default 10 s. Returning
// them sooner from jemalloc's background thread (background_thread:true,
// dirty_decay_ms:100) lowered the four processes' peak RSS during
// `jc_bench --only e2e` by 7 MB, or by 18 MB with 4 MB memtables, and cost
// 5 to 7 % more CPU a job, pages freed and touched again faulting anew:
// not kept (docs/benchmarks.md, step 18).
extern "C" {
// NOLINTNEXTLINE: the name and type jemalloc looks for.
const char* malloc_conf = "narenas:1";
}
