#include "reverse_proxy/job_book.h"

#include <algorithm>

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
    : staged_(staged), names_(names), log_(std::move(log)) {}

Status JobBook::recover(TimeMs now,
                        const std::function<void(const std::string&, const std::string&)>& held,
                        bool& corrupt) {
  return staged_.store().scan("a/", [&](std::string_view key, std::string_view value) {
    JobRecord rec;
    if (!protocol::from_record(value, rec)) {
      log_->error("unreadable job record key={}", protocol::escape_sample(key));
      corrupt = true;
      return true;
    }
    QueueKey qkey{rec.spec.priority, rec.seq};
    auto [entry, inserted] = active_.insert_or_assign(
        std::string(key.substr(2)),
        Active{rec.state, names_.intern(rec.node), rec.attempts, qkey, names_.intern(rec.spec.owner)});
    entry->second.needs = names_.needs_id(rec.spec.needs);
    entry->second.pinned = rec.pinned;
    next_seq_ = std::max(next_seq_, rec.seq + 1);
    if (rec.state == JobState::kRunning) {
      held(rec.node, entry->first);
    } else {
      entry->second.not_before = rec.spec.not_before_ms;
      enqueue(entry, now);
    }
    return true;
  });
}

bool JobBook::has_finished(const std::string& t) const {
  std::string ignored;
  return staged_.get(finished_key(t), &ignored).ok();
}

void JobBook::write_spec(const std::string& ticket, std::string bytes, Active& job, bool keep) {
  if (keep && cached_spec_bytes_ + bytes.size() <= kSpecCacheBytes) {
    cached_spec_bytes_ += bytes.size();
    job.spec = std::make_unique<std::string>(bytes);
  }
  staged_.put(spec_key(ticket), std::move(bytes));
}

bool JobBook::load(const std::string& key, JobRecord& rec) const {
  std::string value;
  if (!staged_.get(key, &value).ok()) return false;
  return protocol::from_record(value, rec);
}

namespace {
// The spec's bytes of an s/ record written in this record version; empty
// for an earlier one, whose bytes a frame of this version cannot carry.
std::string bytes_of_record(std::string&& record) {
  if (record.size() < protocol::kRecordHeaderBytes || record[0] != protocol::kRecordMarker ||
      static_cast<unsigned char>(record[1]) != protocol::kRecordVersion) {
    return {};
  }
  record.erase(0, protocol::kRecordHeaderBytes);
  return std::move(record);
}
}  // namespace

bool JobBook::load_spec(const std::string& ticket, JobRecord& rec, std::string* spec_bytes) const {
  if (rec.spec_inline) return true;
  std::string value;
  if (!staged_.get(spec_key(ticket), &value).ok()) return false;
  if (!protocol::from_record(value, rec.spec)) return false;
  if (spec_bytes != nullptr) *spec_bytes = bytes_of_record(std::move(value));
  return true;
}

bool JobBook::load_queued(iterator it, JobRecord& rec, std::string& spec_bytes) {
  Active& job = it->second;
  if (job.spec) {
    // Never dispatched since it came: its a/ record says nothing that
    // memory does not (no attempt, no node tried, no result).
    cached_spec_bytes_ -= job.spec->size();
    std::string record = std::move(*job.spec);
    job.spec.reset();
    bool whole = protocol::from_record(record, rec.spec);
    if (whole && job.attempts == 0) {
      rec.state = job.state;
      rec.seq = job.key.seq;
      rec.pinned = job.pinned;
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

void JobBook::store_active(const std::string& ticket, JobRecord& rec) {
  if (rec.spec_inline) {
    // A record of an earlier version: its spec moves to a record of its own.
    staged_.put(spec_key(ticket), protocol::to_record(rec.spec));
    rec.spec_inline = false;
  }
  staged_.put(active_key(ticket), protocol::to_record(rec));
}

void JobBook::store_finished(const std::string& ticket, const JobRecord& rec) {
  staged_.del(active_key(ticket));
  if (rec.spec_inline) staged_.put(spec_key(ticket), protocol::to_record(rec.spec));
  staged_.put(finished_key(ticket), protocol::to_record(rec));
  if (auto it = active_.find(ticket); it != active_.end()) {
    drop_cached_spec(it->second);
    active_.erase(it);
  }
}

void JobBook::erase_finished(const std::string& ticket) {
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
    delayed_.emplace(std::make_pair(it->second.not_before, it->second.key.seq), &it->first);
  } else {
    queue_.push(it->first, it->second.key, it->second.needs);
  }
}

void JobBook::promote_due(TimeMs now) {
  while (!delayed_.empty() && delayed_.begin()->first.first <= now) {
    const std::string& ticket = *delayed_.begin()->second;
    delayed_.erase(delayed_.begin());
    auto it = active_.find(ticket);
    if (it != active_.end() && it->second.state == JobState::kQueued) {
      queue_.push(it->first, it->second.key, it->second.needs);
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
  if (!job.spec) return;
  cached_spec_bytes_ -= job.spec->size();
  job.spec.reset();
}

}  // namespace jc::proxy
