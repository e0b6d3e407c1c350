#include "replication/fsm_glue.h"

#include <chrono>
#include <cstdlib>
#include <cstring>
#include <functional>

#include <fmt/format.h>

namespace jc::replication {

namespace {
constexpr std::size_t kFrameHeader = 8;
}  // namespace

std::size_t framed_size(std::size_t payload) {
  return (kFrameHeader + payload + 7) / 8 * 8;
}

void frame_entry(char* out, std::string_view payload) {
  std::uint64_t n = payload.size();
  for (int i = 0; i < 8; ++i) out[i] = static_cast<char>(n >> (8 * (7 - i)));
  std::memcpy(out + kFrameHeader, payload.data(), payload.size());
  std::memset(out + kFrameHeader + payload.size(), 0,
              framed_size(payload.size()) - kFrameHeader - payload.size());
}

std::optional<std::string_view> unframe(const struct raft_buffer* buf) {
  if (buf->len < kFrameHeader) return std::nullopt;
  const auto* p = static_cast<const unsigned char*>(buf->base);
  std::uint64_t n = 0;
  for (std::size_t i = 0; i < 8; ++i) n = (n << 8) | p[i];
  if (n > buf->len - kFrameHeader) return std::nullopt;
  return std::string_view(reinterpret_cast<const char*>(p) + kFrameHeader, n);
}


namespace {

[[noreturn]] void stop_process(const std::string& why) {
  auto log = log::get("raft");
  log->critical("{}; stopping this proxy (the other proxies go on; fix the cause and start it "
                "again: it replays the log from where its store stopped)",
                why);
  log->flush();
  std::_Exit(3);
}

int fsm_apply(struct raft_fsm* fsm, const struct raft_buffer* buf, void** result) {
  auto* self = static_cast<FsmGlue*>(fsm->data);
  *result = nullptr;
  Index index = raft_last_applied(self->raft) + 1;
  auto payload = unframe(buf);
  if (!payload) {
    stop_process(fmt::format(
        "log entry index={} is not framed as this build frames entries ({} bytes; a newer "
        "version?)",
        index, buf->len));
  }
  Status s = self->machine->apply(index, *payload);
  if (!s.ok()) {
    // Returning an error would leave this proxy running but out of the
    // cluster for good (0.15 turns it unavailable): stop, saying why.
    stop_process(fmt::format("cannot apply log entry index={}: {}", index, s.to_string()));
  }
  return 0;
}

// Serializes the snapshot begun by fsm_snapshot into one buffer of the
// library's.
int to_buffers(FsmGlue* self, struct raft_buffer* bufs[], unsigned* n_bufs) {
  std::string bytes = self->snapshot_work();
  self->snapshot_work = nullptr;  // releases the store's read view
  auto* array = static_cast<struct raft_buffer*>(raft_malloc(sizeof(struct raft_buffer)));
  if (array == nullptr) return RAFT_NOMEM;
  array->len = bytes.size();
  array->base = raft_malloc(bytes.size() == 0 ? 1 : bytes.size());
  if (array->base == nullptr) {
    raft_free(array);
    return RAFT_NOMEM;
  }
  std::memcpy(array->base, bytes.data(), bytes.size());
  *bufs = array;
  *n_bufs = 1;
  ++self->snapshots_taken;
  // Logged by the finalize, on the loop (this may run on a pool thread).
  self->snapshot_bytes = bytes.size();
  self->snapshot_ms = std::chrono::duration_cast<std::chrono::milliseconds>(
                          std::chrono::steady_clock::now() - self->snapshot_started)
                          .count();
  return 0;
}

// On the loop. With asynchronous snapshots it only takes the store's read
// view (cheap); fsm_snapshot_async serializes it on the library's thread
// pool while entries go on being applied. Otherwise (the fixture) it does
// everything here.
int fsm_snapshot(struct raft_fsm* fsm, struct raft_buffer* bufs[], unsigned* n_bufs) {
  auto* self = static_cast<FsmGlue*>(fsm->data);
  *bufs = nullptr;
  *n_bufs = 0;
  if (self->snapshot_work) return RAFT_BUSY;
  self->snapshot_started = std::chrono::steady_clock::now();
  self->snapshot_index = raft_last_applied(self->raft);
  self->snapshot_work = self->machine->snapshot(self->snapshot_index);
  if (!self->snapshot_work) return RAFT_BUSY;
  if (self->fsm.version >= 3) return 0;
  return to_buffers(self, bufs, n_bufs);
}

// On a thread of the library's pool, between fsm_snapshot and the
// finalize, both on the loop.
int fsm_snapshot_async(struct raft_fsm* fsm, struct raft_buffer* bufs[], unsigned* n_bufs) {
  auto* self = static_cast<FsmGlue*>(fsm->data);
  if (!self->snapshot_work) return RAFT_BUSY;
  return to_buffers(self, bufs, n_bufs);
}

int fsm_snapshot_finalize(struct raft_fsm* fsm, struct raft_buffer* bufs[], unsigned* n_bufs) {
  // After the pool's work (or instead of it, when the library gave up).
  auto* self = static_cast<FsmGlue*>(fsm->data);
  self->snapshot_work = nullptr;
  if (*bufs != nullptr) {
    log::get("raft")->info("snapshot index={} bytes={} serialized in {} ms", self->snapshot_index,
                           self->snapshot_bytes, self->snapshot_ms);
    for (unsigned i = 0; i < *n_bufs; ++i) raft_free((*bufs)[i].base);
    raft_free(*bufs);
  }
  *bufs = nullptr;
  *n_bufs = 0;
  return 0;
}

int fsm_restore(struct raft_fsm* fsm, struct raft_buffer* buf) {
  auto* self = static_cast<FsmGlue*>(fsm->data);
  Status s = self->machine->restore(
      std::string_view(static_cast<const char*>(buf->base), buf->len));
  if (!s.ok()) stop_process("cannot restore a snapshot: " + s.to_string());
  raft_free(buf->base);  // the library handed it over
  return 0;
}

}  // namespace

void init_glue(FsmGlue& glue, StateMachine& machine, bool async_snapshots) {
  glue.machine = &machine;
  glue.fsm.version = async_snapshots ? 3 : 2;
  glue.fsm.data = &glue;
  if (async_snapshots) glue.fsm.snapshot_async = &fsm_snapshot_async;
  glue.fsm.apply = &fsm_apply;
  glue.fsm.snapshot = &fsm_snapshot;
  glue.fsm.restore = &fsm_restore;
  glue.fsm.snapshot_finalize = &fsm_snapshot_finalize;
}

}  // namespace jc::replication
