#include "reverse_proxy/job_book.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>

#include "protocol/codec.h"

namespace jc::proxy {

using protocol::JobState;

std::uint32_t Names::intern(const std::string& name) {
  if (name.empty()) return 0;
  auto [it, added] = ids_.try_emplace(name, static_cast<std::uint32_t>(names_.size()));
  if (added) names_.push_back(name);
  return it->second;
}

std::uint32_t Names::needs_id(const std::vector<std::string>& needs) {
  if (needs.empty()) return 0;
  if (needs.size() == 1) return intern("needs:" + needs[0]);  // an API job's language
  std::vector<std::string> sorted = needs;
  std::sort(sorted.begin(), sorted.end());
  std::string joined;
  for (const auto& n : sorted) joined += (joined.empty() ? "" : ",") + n;
  return intern("needs:" + joined);
}

std::string_view Names::needs_list(std::uint32_t id) const {
  std::string_view list = names_[id];
  if (list.size() >= 6) list.remove_prefix(6);  // "needs:"
  return list;
}

JobBook::JobBook(storage::Staged& staged, Names& names, std::shared_ptr<spdlog::logger> log)
    : staged_(staged), names_(names), log_(std::move(log)), queued_(staged), held_(staged) {}

std::string JobBook::queued_key(std::uint64_t first_seq) {
  return fmt::format("q/{:016x}", first_seq);
}

Status JobBook::recover(TimeMs now,
                        const std::function<void(const std::string&, const std::string&)>& held,
                        bool& corrupt) {
  Status s = staged_.store().scan("a/", [&](std::string_view key, std::string_view value) {
    JobRecord rec;
    if (!protocol::from_record(value, rec)) {
      log_->error("unreadable job record key={}", protocol::escape_sample(key));
      corrupt = true;
      return true;
    }
    auto [entry, inserted] = active_.try_emplace(key.substr(2));
    entry->second = Active{};
    entry->second.state = rec.state;
    entry->second.node = names_.intern(rec.node);
    entry->second.attempts = rec.attempts;
    describe(entry->second, rec.spec, rec.seq);
    entry->second.pinned = rec.pinned;
    next_seq_ = std::max(next_seq_, rec.seq + 1);
    if (rec.state == JobState::kRunning) {
      held(rec.node, entry->first.str());
    } else {
      enqueue(entry, now);
    }
    return true;
  });
  if (!s.ok()) return s;
  // An a/ record, read above, wins over an h/ line, which wins over a q/
  // line: each is written only while the one before it is not.
  s = recover_lines(kHeld, held_, corrupt, [&](iterator entry, JobRecord& rec,
                                               const std::string& node) {
    Active& job = entry->second;
    job.state = rec.state = JobState::kRunning;
    job.node = names_.intern(node);
    job.attempts = rec.attempts = 1;
    rec.node = node;
    rec.nodes_tried.push_back(node);
    job.keep(Active::Kept::kRecord, protocol::to_record(rec));  // the head only
    held(node, entry->first.str());
  });
  if (!s.ok()) return s;
  return recover_lines(kQueued, queued_, corrupt,
                       [&](iterator entry, JobRecord&, const std::string&) { enqueue(entry, now); });
}

namespace {
// What a q/ or h/ line says: "<ticket> <seq>", or "<ticket> <node> <seq>"
// (`with_node`); nullopt for a line that says neither.
struct BatchLine {
  std::string_view ticket, node;
  std::uint64_t seq = 0;
};
std::optional<BatchLine> parse_line(std::string_view line, bool with_node) {
  BatchLine out;
  std::size_t space = line.rfind(' ');
  if (space == std::string_view::npos ||
      std::from_chars(line.data() + space + 1, line.data() + line.size(), out.seq).ec !=
          std::errc()) {
    return std::nullopt;
  }
  out.ticket = line.substr(0, space);
  if (with_node) {
    space = out.ticket.rfind(' ');
    if (space == std::string_view::npos) return std::nullopt;
    out.node = out.ticket.substr(space + 1);
    out.ticket = out.ticket.substr(0, space);
  }
  return out;
}
}  // namespace

Status JobBook::recover_lines(std::string_view prefix, storage::TicketBatches& batches,
                              bool& corrupt, const EnterLine& enter) {
  // A batch record lists every job of its commit until the last has a
  // later record or is gone: the others are skipped (a finished job may
  // have expired since, its s/ record with it). A record with a line or a
  // spec that cannot be read is kept, as an unreadable a/ record is:
  // deleting it could lose the job that line stands for.
  const bool with_node = prefix == kHeld;
  const auto line_kind = with_node ? Active::Line::kHeld : Active::Line::kQueued;
  return staged_.store().scan(prefix, [&](std::string_view key, std::string_view value) {
    const std::uint64_t id = batches.read(std::string(key));
    bool keep = false;
    storage::for_each_line(value, [&](std::string_view text) {
      auto line = parse_line(text, with_node);
      if (!line) {
        log_->error("unreadable batch line key={} line={}", protocol::escape_sample(key),
                    protocol::escape_sample(text));
        corrupt = keep = true;
        return;
      }
      std::string ticket(line->ticket);
      if (active_.count(ticket) > 0 || has_finished(ticket)) return;
      JobRecord rec;
      std::string bytes;
      Status got = staged_.get(storage::ReadKey(kSpec, ticket), &bytes);
      if (got.is_not_found()) return;  // expired
      if (!got.ok() || !protocol::from_record(bytes, rec.spec)) {
        log_->error("unreadable spec record ticket={} {}", protocol::escape_sample(ticket),
                    got.to_string());
        corrupt = keep = true;
        return;
      }
      auto [entry, added] = active_.try_emplace(std::move(ticket));
      describe(entry->second, rec.spec, line->seq);
      entry->second.line = line_kind;
      entry->second.line_batch = id;
      batches.hold(id);
      next_seq_ = std::max(next_seq_, line->seq + 1);
      rec.seq = line->seq;
      enter(entry, rec, std::string(line->node));
    });
    if (keep) batches.hold(id);  // never released
    batches.settle(id);
    return true;
  });
}

void JobBook::describe(Active& job, const protocol::JobSpec& spec, std::uint64_t seq) {
  job.set_key(QueueKey{spec.priority, seq});
  job.owner = names_.intern(spec.owner);
  job.origin = names_.intern(spec.origin);
  job.not_before = spec.not_before_ms;
  job.needs = names_.needs_id(spec.needs);
}

bool JobBook::has_finished(std::string_view t) const {
  std::string ignored;
  return staged_.get(storage::ReadKey(kFinished, t), &ignored).ok();
}

void JobBook::write_spec(std::string_view ticket, std::string bytes, Active& job, bool keep) {
  if (keep && cached_spec_bytes_ + bytes.size() <= kSpecCacheBytes) {
    drop_cached_spec(job);
    job.keep(Active::Kept::kSpec, bytes);
    cached_spec_bytes_ += bytes.size();
  }
  staged_.put(spec_key(ticket), std::move(bytes));
}

bool JobBook::load_active(std::string_view t, JobRecord& rec) const {
  auto it = active_.find(t);
  if (it == active_.end() || it->second.line == Active::Line::kNone)
    return load(storage::ReadKey(kActive, t), rec);
  const Active& job = it->second;
  if (job.line == Active::Line::kHeld) {
    return job.record() != nullptr && protocol::from_record(job.record()->view(), rec);
  }
  if (const OwnedBytes* spec = job.spec()) return fresh_record(job, spec->view(), rec);
  std::string bytes;
  return staged_.get(storage::ReadKey(kSpec, t), &bytes).ok() && fresh_record(job, bytes, rec);
}

bool JobBook::fresh_record(const Active& job, std::string_view spec_record, JobRecord& rec) {
  // Queued since its submit: no attempt, no node tried, no result.
  rec = JobRecord{};
  if (!protocol::from_record(spec_record, rec.spec)) return false;
  rec.state = job.state;
  rec.seq = job.seq;
  rec.pinned = job.pinned;
  return true;
}

bool JobBook::load(std::string_view key, JobRecord& rec) const {
  std::string value;
  if (!staged_.get(key, &value).ok()) return false;
  return protocol::from_record(value, rec);
}

namespace {
// The spec's bytes of an s/ record written in version 7 or later (a spec
// is the same bytes in each, and in a frame); empty for an earlier one,
// whose bytes a frame of this version cannot carry.
std::string_view spec_part(std::string_view record) {
  if (record.size() < protocol::kRecordHeaderBytes || record[0] != protocol::kRecordMarker ||
      static_cast<unsigned char>(record[1]) < 7 ||
      static_cast<unsigned char>(record[1]) > protocol::kRecordVersion) {
    return {};
  }
  return record.substr(protocol::kRecordHeaderBytes);
}
// The same, made of the record in place.
std::string bytes_of_record(std::string&& record) {
  if (spec_part(record).empty()) return {};
  record.erase(0, protocol::kRecordHeaderBytes);
  return std::move(record);
}
}  // namespace

bool JobBook::load_spec(std::string_view ticket, JobRecord& rec, std::string* spec_bytes) const {
  if (rec.spec_inline) return true;
  std::string value;
  if (!staged_.get(storage::ReadKey(kSpec, ticket), &value).ok()) return false;
  if (!protocol::from_record(value, rec.spec)) return false;
  if (spec_bytes != nullptr) *spec_bytes = bytes_of_record(std::move(value));
  return true;
}

bool JobBook::load_queued(iterator it, JobRecord& rec, std::string& spec_bytes) {
  Active& job = it->second;
  // Never dispatched since it came: memory says all but the spec (no
  // attempt, no node tried, no result), which is read once: from the cache
  // (it leaves the cache whatever comes of it), else from s/.
  if (const OwnedBytes* spec = job.spec()) {
    const bool fresh = job.attempts == 0 && spec->size() > 0 && fresh_record(job, spec->view(), rec);
    if (fresh) spec_bytes = std::string(spec_part(spec->view()));
    drop_cached_spec(job);
    if (fresh) return true;
    rec = JobRecord{};
  } else if (job.line == Active::Line::kQueued) {
    std::string record;
    if (job.attempts == 0 && staged_.get(storage::ReadKey(kSpec, it->first), &record).ok() &&
        !record.empty() && fresh_record(job, record, rec)) {
      spec_bytes = bytes_of_record(std::move(record));
      return true;
    }
    rec = JobRecord{};
  }
  if (!load_active(it->first, rec)) return false;
  if (load_spec(it->first, rec, &spec_bytes)) return true;
  log_->error("no spec record ticket={}: left out of the queue", it->first);
  return false;
}

void JobBook::note_queued(iterator it) {
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, it->second.seq).ptr;
  const std::uint64_t id =
      queued_.add_line({}, {it->first, " ", std::string_view(digits, end - digits), "\n"},
                       [&] { return queued_key(it->second.seq); });
  queued_.hold(id);
  it->second.line = Active::Line::kQueued;
  it->second.line_batch = id;
}

void JobBook::store_dispatched(iterator it, JobRecord& rec) {
  Active& job = it->second;
  const bool first = job.line == Active::Line::kQueued && rec.attempts == 1 &&
                     rec.nodes_tried.size() == 1 && rec.nodes_tried[0] == rec.node &&
                     !rec.pinned && !rec.spec_inline;
  if (!first) {
    store_active(it, rec);
    return;
  }
  leave_line(job);
  char digits[24];
  auto end = std::to_chars(digits, digits + sizeof digits, rec.seq).ptr;
  const std::uint64_t id = held_.add_line(
      {}, {it->first, " ", rec.node, " ", std::string_view(digits, end - digits), "\n"},
      [&] { return storage::joined_key(kHeld, it->first); });
  held_.hold(id);
  job.line = Active::Line::kHeld;
  job.line_batch = id;
  drop_cached_spec(job);  // the core drops it at dispatch; counted here if not
  job.keep(Active::Kept::kRecord, protocol::to_record(rec));  // the head only
}

void JobBook::store_active(iterator it, JobRecord& rec) {
  const std::string_view ticket = it->first;
  leave_line(it->second);
  if (rec.spec_inline) {
    // A record of an earlier version: its spec moves to a record of its own.
    staged_.put(spec_key(ticket), protocol::to_record(rec.spec));
    rec.spec_inline = false;
  }
  staged_.put(active_key(ticket), protocol::to_record(rec));
}

void JobBook::store_finished(std::string_view ticket, const JobRecord& rec) {
  auto it = active_.find(ticket);
  if (it != active_.end() && it->second.line != Active::Line::kNone) {
    leave_line(it->second);  // it has no a/ record
  } else {
    staged_.del(active_key(ticket));
  }
  if (rec.spec_inline) staged_.put(spec_key(ticket), protocol::to_record(rec.spec));
  staged_.put(finished_key(ticket), protocol::to_record(rec));
  if (it != active_.end()) {
    drop_cached_spec(it->second);
    active_.erase(it);
  }
}

void JobBook::erase_finished(std::string_view ticket) {
  staged_.del(finished_key(ticket));
  staged_.del(spec_key(ticket));
}

Status JobBook::scan_finished(
    const std::function<void(const std::string&, const JobRecord*)>& each) const {
  return staged_.store().scan("f/", [&](std::string_view key, std::string_view value) {
    JobRecord rec;
    bool read = protocol::from_record(value, rec);
    each(std::string(key.substr(2)), read ? &rec : nullptr);
    return true;
  });
}

void JobBook::enqueue(iterator it, TimeMs now) {
  if (it->second.not_before > now) {
    delayed_.emplace(std::make_pair(it->second.not_before, it->second.seq), &it->first);
  } else {
    queue_.push(it->first, it->second.key(), it->second.needs);
  }
}

void JobBook::promote_due(TimeMs now) {
  while (!delayed_.empty() && delayed_.begin()->first.first <= now) {
    const std::string_view ticket = *delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    auto it = active_.find(ticket);
    if (it != active_.end() && it->second.state == JobState::kQueued) {
      queue_.push(it->first, it->second.key(), it->second.needs);
    }
  }
}

void JobBook::unqueue(const JobRecord& rec) {
  queue_.erase(QueueKey{rec.spec.priority, rec.seq}, names_.needs_id(rec.spec.needs));
  delayed_.erase({rec.spec.not_before_ms, rec.seq});
}

std::optional<TimeMs> JobBook::next_delayed() const {
  if (delayed_.empty()) return std::nullopt;
  return delayed_.begin()->first.first;
}

void JobBook::drop_cached_spec(Active& job) {
  const OwnedBytes* spec = job.spec();
  if (spec == nullptr) return;
  cached_spec_bytes_ -= spec->size();
  job.forget(Active::Kept::kSpec);
}

}  // namespace jc::proxy
