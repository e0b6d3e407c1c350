// NodeCore's reads of a job (lookup, getall) and retention: what expired
// (RESULT_TTL) leaves both books, and records of earlier builds enter the
// expiry index once. An x/ record lives until the proxy has its result
// (then it is deleted), so it needs no expiry; only records of earlier
// builds, kept after delivery, are in the index.
#include <algorithm>

#include "cluster_node/node_core.h"
#include "protocol/codec.h"
#include "storage/ticket_batches.h"

namespace jc::node {

using protocol::JobReport;
using protocol::JobState;

Status NodeCore::index_final_records() {
  // Records written before the expiry index (storage format 4) enter it
  // once, at their end.
  std::string marker;
  if (staged_.get("m/expiry_index", &marker).ok()) return Status::Ok();
  std::size_t indexed = 0;
  for (std::string_view space : {"o/", "x/"}) {
    Status s = staged_.store().scan(space, [&](std::string_view key, std::string_view bytes) {
      std::string ticket(key.substr(2));
      bool final = false;
      std::int64_t at = 0;
      if (space == "o/") {
        OriginRecord rec;
        final = protocol::from_record(bytes, rec) && rec.has_result;
        at = rec.result.final_time();
      } else {
        ExecRecord rec;
        final = protocol::from_record(bytes, rec) && protocol::is_final(rec.state);
        at = rec.result.final_time();
      }
      if (final) {
        staged_.put(protocol::expiry_key(at, std::string(space) + ticket), "");
        ++indexed;
      }
      return true;
    });
    if (!s.ok()) return s;
  }
  staged_.put("m/expiry_index", "1");
  if (indexed > 0) log_->info("finished jobs entered in the expiry index count={}", indexed);
  return Status::Ok();
}

protocol::SweepOutcome NodeCore::sweep(TimeMs now) {
  protocol::SweepOutcome out;
  const auto& retention = options_.retention;
  if (!retention.enabled()) return out;
  std::vector<std::string> gone;  // keys of removed records
  std::string first_index, last_index;
  std::size_t visited = 0;
  // Looks at one record an index entry names; false when the entry must
  // stay (the record is not done with), true when it may go.
  auto visit = [&](const std::string& record_key, std::int64_t at) {
    std::string ticket = record_key.size() > 2 ? record_key.substr(2) : std::string();
    if (record_key.rfind("o/", 0) == 0) {
      OriginRecord rec;
      if (origin_.load(ticket, rec)) {
        if (origin_.unforwarded(ticket)) {
          return false;  // the proxy has not even got it: kept, looked at again
        } else if (rec.has_result &&
                   retention.expired(rec.result.final_time() != 0 ? rec.result.final_time() : at,
                                     now)) {
          origin_.erase(ticket);  // o/ and r/
          gone.push_back(record_key);
          callbacks_.forget(ticket);
          origin_.raise_mark(ticket);
        }
      }
    } else if (record_key.rfind("x/", 0) == 0) {
      ExecRecord rec;
      if (exec_.load(ticket, rec)) {
        if (exec_.undelivered(ticket) || exec_.holds(ticket)) {
          return false;  // its result is still on its way to the proxy
        } else if (protocol::is_final(rec.state) &&
                   retention.expired(rec.result.final_time() != 0 ? rec.result.final_time() : at,
                                     now)) {
          exec_.forget(ticket);  // x/ and d/
          gone.push_back(record_key);
        }
      }
    }
    return true;
  };
  staged_.store().scan(protocol::kExpiryPrefix, [&](std::string_view key, std::string_view value) {
    auto parsed = protocol::parse_expiry_key(key);
    if (parsed && parsed->first == 0) {
      // No final time known (a record of an earlier build): it counts from now.
      staged_.del(std::string(key));
      staged_.put(protocol::expiry_key(now, parsed->second), std::string(value));
      return true;
    }
    if (parsed && !retention.expired(parsed->first, now)) return false;
    if (gone.size() >= kSweepBatch || ++visited > 4 * kSweepBatch) {
      out.more = true;
      return false;
    }
    const std::int64_t at = parsed ? parsed->first : 0;
    std::string record_key = parsed ? std::string(parsed->second) : std::string();
    bool remove_index = visit(record_key, at);
    // A batch (OriginBook::index_result): more origin records of the same
    // final time, each after a newline. One that must stay gets an entry
    // of its own.
    const bool batch = !value.empty();
    storage::for_each_line(value, [&](std::string_view ticket) {
      std::string member = "o/" + std::string(ticket);
      if (!visit(member, at)) staged_.put(protocol::expiry_key(at, member), "");
    });
    if (!remove_index && batch) staged_.put(std::string(key), "");  // its members are done with
    if (remove_index) {
      staged_.del(std::string(key));
      if (first_index.empty()) first_index = key;
      last_index = key;
    }
    return true;
  });
  if (!gone.empty()) origin_.write_mark();
  // Others' results fetched for clients.
  for (auto it = remote_.begin(); it != remote_.end();) {
    if (retention.expired(it->second.result.final_time(), now)) {
      it = remote_.erase(it);
    } else {
      ++it;
    }
  }
  std::erase_if(remote_order_, [&](const std::string& t) { return !remote_.count(t); });
  out.removed = gone.size();
  if (!first_index.empty()) out.compact.emplace_back(first_index, last_index);
  if (!gone.empty()) {
    std::sort(gone.begin(), gone.end());
    // o/ and x/ keys, each range apart.
    auto x = std::lower_bound(gone.begin(), gone.end(), std::string("x/"));
    if (x != gone.begin()) {
      out.compact.emplace_back(gone.front(), *(x - 1));
      // The r/ records of those o/ ones.
      out.compact.emplace_back("r/" + gone.front().substr(2), "r/" + (x - 1)->substr(2));
    }
    if (x != gone.end()) out.compact.emplace_back(*x, gone.back());
  }
  if (out.removed > 0) log_->debug("swept expired jobs count={} more={}", out.removed, out.more);
  return out;
}

std::optional<protocol::JobSpec> NodeCore::origin_spec(const std::string& ticket) const {
  OriginRecord origin;
  if (!origin_.load(ticket, origin)) return std::nullopt;
  return std::move(origin.spec);
}

JobReport NodeCore::lookup(const std::string& ticket, TimeMs now) const {
  const auto& retention = options_.retention;
  JobReport r;
  r.ticket = ticket;
  OriginOutcome outcome;
  if (auto p = origin_.pending(ticket)) {
    r.state = JobState::kQueued;  // as its fresh o/ record says
    r.owner = *p->owner;
  } else if (origin_.load_outcome(ticket, outcome)) {
    if (outcome.has_result && retention.expired(outcome.result.final_time(), now)) {
      return protocol::expired_report(ticket);
    }
    r.state = outcome.state;
    r.attempts = outcome.attempts;
    r.owner = std::move(outcome.owner);
    if (outcome.has_result) {
      r.node = outcome.result.node;
      r.has_result = true;
      r.result = std::move(outcome.result);
      return r;
    }
  }
  ExecRecord exec;
  if (exec_.has_record(ticket) && exec_.load(ticket, exec) &&
      (exec.delivered || !protocol::is_final(exec.state))) {
    if (exec.delivered && retention.expired(exec.result.final_time(), now)) {
      return protocol::expired_report(ticket);
    }
    // Our own run's result shows only once the proxy accepted it as the one result.
    r = exec_.report(ticket, exec, options_.node_id);
    if (!exec.delivered) r.has_result = false;
    return r;
  }
  if (auto it = remote_.find(ticket); it != remote_.end()) {
    if (retention.expired(it->second.result.final_time(), now))
      return protocol::expired_report(ticket);
    return it->second;
  }
  if (r.state == JobState::kUnknown && retention.enabled()) {
    if (origin_.expired_here(ticket)) return protocol::expired_report(ticket);
  }
  return r;
}

std::vector<GetAllEntry> NodeCore::getall(TimeMs now) const {
  return origin_.getall([&](const OriginRecord& rec) {
    return !(rec.has_result && options_.retention.expired(rec.result.final_time(), now));
  });
}

}  // namespace jc::node
