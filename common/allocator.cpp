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
// Freed pages go back to the kernel within about 20 ms, from jemalloc's
// own background thread (one for the arena; it blocks every signal). With
// its default, 10 s and only when a thread allocates, a burst's freed
// memtables and batches stayed resident beside what was allocated after
// them: peak RSS during `jc_bench --only e2e` fell from 193-197 MB to
// 165-175 MB for the four processes, with 4 MB memtables
// (storage/leveldb_store.cpp), at the same throughput. Purging on the
// freeing thread instead (dirty_decay_ms:0) cost a fifth of it
// (docs/benchmarks.md, step 18).
extern "C" {
// NOLINTNEXTLINE: the name and type jemalloc looks for.
const char* malloc_conf = "narenas:1,background_thread:true,dirty_decay_ms:20";
}
