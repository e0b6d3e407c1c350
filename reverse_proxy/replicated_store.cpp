#include "reverse_proxy/replicated_store.h"

#include <zstd.h>

#include <algorithm>

#include <fmt/format.h>

namespace jc::proxy {

namespace {

void put_u32(std::string& out, std::uint32_t v) {
  for (int i = 3; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}
void put_u64(std::string& out, std::uint64_t v) {
  for (int i = 7; i >= 0; --i) out.push_back(static_cast<char>(v >> (8 * i)));
}

// Reads from a byte string; every read checks what is left.
struct Reader {
  std::string_view in;
  bool ok = true;
  std::uint64_t uint(int bytes) {
    if (in.size() < static_cast<std::size_t>(bytes)) {
      ok = false;
      return 0;
    }
    std::uint64_t v = 0;
    for (int i = 0; i < bytes; ++i) v = (v << 8) | static_cast<unsigned char>(in[i]);
    in.remove_prefix(bytes);
    return v;
  }
  std::string_view bytes(std::size_t n) {
    if (in.size() < n) {
      ok = false;
      return {};
    }
    auto out = in.substr(0, n);
    in.remove_prefix(n);
    return out;
  }
};

constexpr std::string_view kSnapshotMagic = "JCSNAP";
constexpr std::uint8_t kSnapshotFormat = 1;
constexpr std::uint8_t kPut = 1, kDel = 2, kEnd = 0;

std::string applied_value(replication::Index index) { return std::to_string(index); }


// zstd's contexts, kept per thread (encoding and decoding happen on the
// proxy's thread; a context is reused rather than allocated per entry).
struct ZstdContexts {
  ZSTD_CCtx* compress = ZSTD_createCCtx();
  ZSTD_DCtx* decompress = ZSTD_createDCtx();
  ~ZstdContexts() {
    ZSTD_freeCCtx(compress);
    ZSTD_freeDCtx(decompress);
  }
};
ZstdContexts& zstd() {
  thread_local ZstdContexts contexts;
  return contexts;
}

// Level 1: the fastest of zstd's standard levels still shrinks entries
// about tenfold; the leader compresses every entry once.
constexpr int kCompressionLevel = 1;
// The largest entry written as format 2 (larger ones are written as
// format 1); a format-2 entry that claims more is refused.
constexpr std::uint64_t kMaxPlainEntryBytes = 1ull << 30;

}  // namespace

std::string encode_change(const Change& change) {
  std::string plain = encode_plain_change(change);
  // Format 1 for what format 2 would not read back (a group commit of many
  // large results): every proxy must read every entry.
  if (plain.size() > kMaxPlainEntryBytes) return plain;
  std::string out(1 + ZSTD_compressBound(plain.size()), '\0');
  out[0] = static_cast<char>(Change::kCompressed);
  std::size_t n = ZSTD_compressCCtx(zstd().compress, out.data() + 1, out.size() - 1, plain.data(),
                                    plain.size(), kCompressionLevel);
  if (ZSTD_isError(n)) return plain;  // cannot happen with a bound-sized buffer
  out.resize(1 + n);
  return out;
}

std::string encode_plain_change(const Change& change) {
  std::string out;
  out.reserve(16 + change.writes.bytes() + 9 * change.writes.size());
  out.push_back(static_cast<char>(Change::kPlain));
  put_u64(out, static_cast<std::uint64_t>(change.time_ms));
  put_u32(out, static_cast<std::uint32_t>(change.writes.size()));
  for (const auto& [key, value] : change.writes.ops()) {
    out.push_back(static_cast<char>(value ? kPut : kDel));
    put_u32(out, static_cast<std::uint32_t>(key.size()));
    out += key;
    if (value) {
      put_u32(out, static_cast<std::uint32_t>(value->size()));
      out += *value;
    }
  }
  return out;
}

bool decode_change(std::string_view bytes, Change& change) {
  if (!bytes.empty() && static_cast<std::uint8_t>(bytes[0]) == Change::kCompressed) {
    bytes.remove_prefix(1);
    unsigned long long size = ZSTD_getFrameContentSize(bytes.data(), bytes.size());
    if (size == ZSTD_CONTENTSIZE_ERROR || size == ZSTD_CONTENTSIZE_UNKNOWN ||
        size > kMaxPlainEntryBytes) {
      return false;
    }
    // Streamed into a buffer that grows with what really comes out, so
    // bytes that merely claim a large size cost no allocation.
    ZSTD_DCtx* dctx = zstd().decompress;
    ZSTD_DCtx_reset(dctx, ZSTD_reset_session_only);
    std::string plain(std::min<std::uint64_t>(size, 64 * 1024 + 16 * bytes.size()), '\0');
    ZSTD_inBuffer in{bytes.data(), bytes.size(), 0};
    ZSTD_outBuffer out{plain.data(), plain.size(), 0};
    for (;;) {
      std::size_t left = ZSTD_decompressStream(dctx, &out, &in);
      if (ZSTD_isError(left)) return false;
      if (left == 0) break;  // the frame is whole
      if (out.pos == out.size) {
        if (plain.size() > size) return false;  // more than it claimed
        // Room for one byte past the claim once it is reached: the frame's
        // end may still be to read, and more output is then refused.
        plain.resize(plain.size() == size ? size + 1
                                          : std::min<std::uint64_t>(size, 2 * plain.size()));
        out.dst = plain.data();
        out.size = plain.size();
      } else if (in.pos == in.size) {
        return false;  // cut short
      }
    }
    if (in.pos != in.size || out.pos != size) return false;
    plain.resize(out.pos);
    if (plain.empty() || static_cast<std::uint8_t>(plain[0]) != Change::kPlain) return false;
    return decode_change(plain, change);
  }
  Reader r{bytes};
  if (r.uint(1) != Change::kPlain || !r.ok) return false;
  change.time_ms = static_cast<std::int64_t>(r.uint(8));
  std::uint64_t count = r.uint(4);
  if (!r.ok || count > bytes.size()) return false;  // each op takes at least 5 bytes
  change.writes.clear();
  for (std::uint64_t i = 0; i < count; ++i) {
    auto kind = r.uint(1);
    auto key = r.bytes(r.uint(4));
    if (!r.ok) return false;
    if (kind == kPut) {
      auto value = r.bytes(r.uint(4));
      if (!r.ok) return false;
      change.writes.put(std::string(key), std::string(value));
    } else if (kind == kDel) {
      change.writes.del(std::string(key));
    } else {
      return false;
    }
  }
  return r.in.empty();
}

std::string encode_snapshot(replication::Index index, storage::ReadView& view) {
  std::string out(kSnapshotMagic);
  out.push_back(static_cast<char>(kSnapshotFormat));
  put_u64(out, index);
  view.scan("", [&](std::string_view key, std::string_view value) {
    if (key == ReplicatedStore::kAppliedKey) return true;
    out.push_back(static_cast<char>(kPut));
    put_u32(out, static_cast<std::uint32_t>(key.size()));
    out += key;
    put_u32(out, static_cast<std::uint32_t>(value.size()));
    out += value;
    return true;
  });
  out.push_back(static_cast<char>(kEnd));
  return out;
}

std::optional<replication::Index> decode_snapshot(
    std::string_view bytes, const std::function<void(std::string_view, std::string_view)>& fn) {
  Reader r{bytes};
  if (r.bytes(kSnapshotMagic.size()) != kSnapshotMagic || r.uint(1) != kSnapshotFormat) {
    return std::nullopt;
  }
  replication::Index index = r.uint(8);
  if (!r.ok) return std::nullopt;
  // Checked whole before anything is handed out.
  Reader check = r;
  for (;;) {
    auto kind = check.uint(1);
    if (!check.ok) return std::nullopt;
    if (kind == kEnd) break;
    if (kind != kPut) return std::nullopt;
    check.bytes(check.uint(4));
    check.bytes(check.uint(4));
    if (!check.ok) return std::nullopt;
  }
  if (!check.in.empty()) return std::nullopt;
  if (fn) {
    for (;;) {
      if (r.uint(1) == kEnd) break;
      auto key = r.bytes(r.uint(4));
      auto value = r.bytes(r.uint(4));
      fn(key, value);
    }
  }
  return index;
}

ReplicatedStore::ReplicatedStore(storage::Store& store)
    : store_(store), log_(log::get("raft")) {}

Status ReplicatedStore::open() {
  std::string value;
  Status s = store_.get(kAppliedKey, &value);
  if (s.is_not_found()) return Status::Ok();
  if (!s.ok()) return s;
  try {
    applied_ = std::stoull(value);
  } catch (const std::exception&) {
    return Status::Corruption(fmt::format("unreadable {}: '{}'", kAppliedKey, value));
  }
  return Status::Ok();
}

Status ReplicatedStore::apply(replication::Index index, std::string_view entry) {
  // At a restart the library applies again what came after its snapshot:
  // the store already has it.
  if (index <= applied_ || (!backlog_.empty() && index <= backlog_.back().first)) {
    return Status::Ok();
  }
  while (!expected_.empty() && expected_.front().index < index) expected_.pop_front();
  if (!expected_.empty() && expected_.front().index == index) {
    Expected mine = std::move(expected_.front());
    expected_.pop_front();
    if (mine.entry == entry) {
      mine.writes.put(std::string(kAppliedKey), applied_value(index));
      backlog_.emplace_back(index, std::move(mine.writes));
      retry();
      return Status::Ok();
    }
  }
  Change change;
  if (!decode_change(entry, change)) {
    // Never skipped: a proxy that skipped an entry would diverge silently.
    return Status::Corruption(fmt::format(
        "log entry {} is not a change this build can read ({} bytes; a newer version?)", index,
        entry.size()));
  }
  change.writes.put(std::string(kAppliedKey), applied_value(index));
  // Kept in order: what the store refused waits, and what comes after it too.
  backlog_.emplace_back(index, std::move(change.writes));
  retry();
  return Status::Ok();
}

void ReplicatedStore::expect(replication::Index index, std::string entry,
                             storage::WriteBatch writes) {
  if (!expected_.empty() && expected_.back().index >= index) expected_.clear();
  expected_.push_back(Expected{index, std::move(entry), std::move(writes)});
}

bool ReplicatedStore::retry() {
  while (!backlog_.empty()) {
    // Not synced: the Raft log is what makes it durable (replayed at a
    // restart from m/raft_applied on).
    if (Status s = store_.write(backlog_.front().second, false); !s.ok()) {
      if (backlog_.size() == 1 || !failing_) {
        log_->error(
            "cannot apply log entry index={} to the store: {} ({} entries wait; they stay in "
            "the log, and are applied once the store takes writes)",
            backlog_.front().first, s.to_string(), backlog_.size());
      }
      failing_ = true;
      return false;
    }
    applied_ = backlog_.front().first;
    ++entries_applied_;
    backlog_.pop_front();
  }
  if (failing_) log_->info("applying again: the store is at index {}", applied_);
  failing_ = false;
  return true;
}

std::function<std::string()> ReplicatedStore::snapshot(replication::Index index) {
  // Entries still waiting are not in the store: no snapshot can claim them.
  if (!backlog_.empty()) return {};
  std::shared_ptr<storage::ReadView> view = store_.read_view();
  return [index, view] { return encode_snapshot(index, *view); };
}

Status ReplicatedStore::restore(std::string_view snapshot) {
  auto index = decode_snapshot(snapshot);
  if (!index) return Status::Corruption("a snapshot this build cannot read");
  // Whatever waited is older than the snapshot, which replaces it all.
  if (*index > applied_) {
    backlog_.clear();
    failing_ = false;
  }
  if (*index <= applied_) {
    // A restart: the store is already at or past it.
    return Status::Ok();
  }
  log_->info("restoring a snapshot index={} bytes={} (this proxy was at {})", *index,
             snapshot.size(), applied_);
  // Marked "at 0" first: a crash half-way restores again at the next start.
  storage::WriteBatch batch;
  batch.put(std::string(kAppliedKey), applied_value(0));
  if (Status s = store_.write(batch, true); !s.ok()) return s;
  applied_ = 0;
  constexpr std::size_t kBatchBytes = 4 << 20;
  batch.clear();
  Status failed;
  auto flush = [&] {
    if (batch.empty() || !failed.ok()) return;
    failed = store_.write(batch, false);
    batch.clear();
  };
  // Keys first, then their deletion: a store is not written while scanned.
  std::vector<std::string> keys;
  if (Status s = store_.scan("", [&](std::string_view key, std::string_view) {
        if (key != kAppliedKey) keys.emplace_back(key);
        return true;
      });
      !s.ok()) {
    return s;
  }
  for (auto& key : keys) {
    batch.del(std::move(key));
    if (batch.bytes() + batch.size() * 16 >= kBatchBytes) flush();
  }
  keys.clear();
  flush();
  decode_snapshot(snapshot, [&](std::string_view key, std::string_view value) {
    batch.put(std::string(key), std::string(value));
    if (batch.bytes() >= kBatchBytes) flush();
  });
  flush();
  if (!failed.ok()) return failed;
  batch.put(std::string(kAppliedKey), applied_value(*index));
  if (Status s = store_.write(batch, true); !s.ok()) return s;
  applied_ = *index;
  ++snapshots_restored_;
  return Status::Ok();
}

}  // namespace jc::proxy
