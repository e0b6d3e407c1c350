#include "cluster_node/origin_book.h"

#include <fmt/format.h>

#include <algorithm>
#include <charconv>
#include <random>

#include "protocol/codec.h"
#include "protocol/retention.h"

namespace jc::node {

namespace {
std::string unforwarded_key(const std::string& t) { return "u/" + t; }
constexpr std::string_view kUnsent = "unsent";
}  // namespace

std::string random_prefix() {
  static constexpr char kAlphabet[] = "abcdefghijklmnopqrstuvwxyz0123456789";
  std::random_device rd;
  std::mt19937_64 gen((static_cast<std::uint64_t>(rd()) << 32) ^ rd());
  std::string p;
  for (int i = 0; i < 6; ++i) p.push_back(kAlphabet[gen() % 36]);
  return p;
}

Status OriginBook::recover() {
  std::string value;
  if (staged_.get("m/prefix", &value).ok()) {
    prefix_ = value;
  } else {
    prefix_ = random_prefix();
    staged_.put("m/prefix", prefix_);
  }
  auto number = [&](const char* key, std::uint64_t& out) {
    if (!staged_.get(key, &value).ok()) return true;
    auto [end, ec] = std::from_chars(value.data(), value.data() + value.size(), out);
    return ec == std::errc() && end == value.data() + value.size();
  };
  if (!number("m/counter", counter_) || !number("m/expired", expired_upto_)) {
    return Status::Corruption("m/counter or m/expired is not a number: DATA_DIR is damaged");
  }
  reserved_ = durable_reserved_ = counter_;
  return staged_.store().scan("u/", [&](std::string_view k, std::string_view v) {
    std::string t(k.substr(2));
    OriginRecord rec;
    if (v.empty() || v == kUnsent) {  // a job's record of its own
      if (load(t, rec)) {
        if (Entry* e = enter_recovered(t, 0)) e->unsent = v == kUnsent;
      }
      return true;
    }
    const std::uint64_t id = batches_.read(std::string(k));
    storage::for_each_line(v, [&](std::string_view line) {
      // One with its result came back from the proxy, which had it: the
      // acknowledgement of the rest of the batch was still to come.
      std::string job(line);
      if (load(job, rec) && !rec.has_result) enter_recovered(job, id);
    });
    batches_.settle(id);  // gone if all of it was acknowledged, or expired
    return true;
  });
}

std::optional<protocol::TicketParts> OriginBook::own_parts(std::string_view t) const {
  auto parts = protocol::parse_ticket(t);
  if (!parts || parts->prefix != prefix_) return std::nullopt;
  return parts;
}

template <class Own>
auto OriginBook::locate(Own& own, std::string_view t) const {
  auto parts = own_parts(t);
  if (!parts) return own.end();
  auto it = own.find(parts->counter);
  if (it == own.end() || parts->random != std::string_view(it->second.random.data(), kRandomChars)) {
    return own.end();
  }
  return it;
}

const OriginBook::Entry* OriginBook::find(std::string_view t) const {
  auto it = locate(own_, t);
  return it == own_.end() ? nullptr : &it->second;
}

std::string OriginBook::ticket_of(std::uint64_t counter, const Entry& e) const {
  return fmt::format("{}-{}-{}", prefix_, counter, std::string_view(e.random.data(), kRandomChars));
}

std::uint32_t OriginBook::owner_id(const std::string& owner) {
  if (owner.empty()) return 0;
  auto [it, added] = owner_ids_.try_emplace(owner, static_cast<std::uint32_t>(owners_.size()));
  if (added) owners_.push_back(owner);
  return it->second;
}

void OriginBook::enter(std::uint64_t c, Entry& e, std::uint64_t id) {
  if (e.unforwarded) return;
  e.unforwarded = true;
  e.batch = id;
  ++unforwarded_count_;
  order_.push_back(c);
  if (id != 0) batches_.hold(id);
}

OriginBook::Entry* OriginBook::enter_recovered(const std::string& t, std::uint64_t id) {
  auto parts = own_parts(t);
  if (!parts) {
    // u/ names only tickets accept() made with this node's m/prefix.
    log_->error("u/ names a ticket this node did not issue ticket={}: not forwarded",
                protocol::escape_sample(t));
    return nullptr;
  }
  auto [it, added] = own_.try_emplace(parts->counter);
  Entry& e = it->second;
  if (added) std::copy_n(parts->random.begin(), kRandomChars, e.random.begin());
  enter(parts->counter, e, id);
  return &e;
}

void OriginBook::settle_pending(std::string_view t) {
  auto it = locate(own_, t);
  if (it == own_.end() || !it->second.pending) return;
  it->second.pending = false;
  if (!it->second.unforwarded) own_.erase(it);
}

std::vector<std::string> OriginBook::unforwarded_in_order() const {
  std::vector<std::string> out;
  out.reserve(unforwarded_count_);
  for (std::uint64_t c : order_) {
    auto it = own_.find(c);
    if (it != own_.end() && it->second.unforwarded) out.push_back(ticket_of(c, it->second));
  }
  return out;
}

std::string OriginBook::accept(protocol::JobSpec& spec, TimeMs now, const std::string& node_id,
                               const std::string& random_part, bool connected,
                               std::string& spec_bytes) {
  // <node prefix>-<counter>-<66 random bits>: unique by the first two
  // (m/counter is above every counter issued), unguessable by the third, at most
  // 6 + 1 + 13 + 1 + 11 = 32 characters below 10^13 jobs of one node.
  if (counter_ + kCounterBlock / 2 >= reserved_) {
    reserved_ = counter_ + kCounterBlock;
    staged_.put("m/counter", std::to_string(reserved_));
  }
  const std::uint64_t c = counter_++;
  spec.ticket = fmt::format("{}-{}-{}", prefix_, c, random_part);
  spec.origin = node_id;
  spec.submitted_ms = now;
  const std::string& ticket = spec.ticket;
  // Encoded once: the bytes begin the job's record and are what the proxy
  // is sent.
  spec_bytes = protocol::to_bytes(spec);
  staged_.put(key(ticket), fresh_origin_record(spec_bytes));
  Entry& e = own_[c];
  std::copy_n(ticket.end() - kRandomChars, kRandomChars, e.random.begin());
  e.pending = true;
  e.callback = spec.is_api && !spec.api.callback_url.empty();
  e.owner = owner_id(spec.owner);
  if (!connected) {
    staged_.put(unforwarded_key(ticket), std::string(kUnsent));
    e.unsent = true;
    enter(c, e, 0);
    return ticket;
  }
  // Into the batch of this commit, or a new one.
  static const std::string kOneScope;
  enter(c, e, batches_.add(kOneScope, ticket, [&] { return unforwarded_key(ticket); }));
  return ticket;
}

bool OriginBook::issued_here(const std::string& t) const {
  auto parts = own_parts(t);
  return parts && parts->counter < counter_;
}

bool OriginBook::read_outcome(const std::string& t, OriginOutcome& outcome) const {
  std::string bytes;
  return staged_.get(storage::ReadKey(kOutcome, t), &bytes).ok() &&
         protocol::from_record(bytes, outcome);
}

bool OriginBook::load_outcome(const std::string& t, OriginOutcome& outcome) const {
  if (read_outcome(t, outcome) && outcome.owner_known) return true;
  OriginRecord rec;  // no r/ record yet, or one of version 7
  if (!load(t, rec)) return false;
  outcome.state = rec.state;
  outcome.has_result = rec.has_result;
  outcome.result = std::move(rec.result);
  outcome.attempts = rec.attempts;
  outcome.owner = std::move(rec.spec.owner);
  outcome.owner_known = true;
  return true;
}

void OriginBook::apply_outcome(const std::string& t, OriginRecord& rec) const {
  OriginOutcome outcome;
  if (read_outcome(t, outcome)) {
    rec.state = outcome.state;
    rec.has_result = outcome.has_result;
    rec.result = std::move(outcome.result);
    rec.attempts = outcome.attempts;
  }
}

bool OriginBook::load(const std::string& t, OriginRecord& rec) const {
  std::string bytes;
  if (!staged_.get(storage::ReadKey(kOrigin, t), &bytes).ok() || !protocol::from_record(bytes, rec))
    return false;
  apply_outcome(t, rec);
  return true;
}

void OriginBook::store(const std::string& t, const OriginRecord& rec) {
  OriginOutcome outcome;
  outcome.state = rec.state;
  outcome.has_result = rec.has_result;
  outcome.result = rec.result;
  outcome.attempts = rec.attempts;
  // A pending job's record is a fresh one: memory knows its owner.
  if (auto p = pending(t)) {
    outcome.owner = *p->owner;
    settle_pending(t);  // its r/ record says from now on
  } else {
    outcome.owner = rec.spec.owner;
  }
  staged_.put(outcome_key(t), protocol::to_record(outcome));
  if (rec.has_result) index_result(t, rec.result.final_time());
}

void OriginBook::index_result(const std::string& t, std::int64_t final_ms) {
  // Results of one commit with the same final time share an entry: the
  // first in its key, the others after it, each after a newline.
  if (open_index_final_ == final_ms && staged_.append_staged(open_index_, {"\n", t})) return;
  open_index_ = protocol::expiry_key(final_ms, "o/" + t);
  open_index_final_ = final_ms;
  staged_.put(open_index_, "");
}

bool OriginBook::has(const std::string& t) const {
  std::string bytes;
  return staged_.get(storage::ReadKey(kOrigin, t), &bytes).ok();
}

bool OriginBook::raise_mark(const std::string& t) {
  auto parts = own_parts(t);
  if (!parts || parts->counter <= expired_upto_) return false;
  expired_upto_ = parts->counter;
  return true;
}

bool OriginBook::expired_here(const std::string& t) const {
  auto parts = own_parts(t);
  return parts && parts->counter <= expired_upto_;
}

void OriginBook::mark_sent(const std::string& t) {
  // Its record of its own says so (it is never in a batch).
  auto it = locate(own_, t);
  if (it == own_.end() || !it->second.unsent) return;
  it->second.unsent = false;
  staged_.put(unforwarded_key(t), "");
}

void OriginBook::acknowledged(const std::vector<std::string>& tickets) {
  for (const auto& t : tickets) {
    auto it = locate(own_, t);
    if (it == own_.end() || !it->second.unforwarded) continue;
    Entry& e = it->second;
    const std::uint64_t id = e.batch;
    e.unforwarded = e.unsent = false;
    --unforwarded_count_;
    if (!e.pending) own_.erase(it);
    if (id == 0) {
      staged_.del(unforwarded_key(t));
      continue;
    }
    batches_.release(id);
  }
  auto settled = [&](std::uint64_t c) {
    auto it = own_.find(c);
    return it == own_.end() || !it->second.unforwarded;
  };
  while (!order_.empty() && settled(order_.front())) order_.pop_front();
}

std::vector<protocol::GetAllEntry> OriginBook::getall(
    const std::function<bool(const OriginRecord&)>& shown) const {
  std::vector<protocol::GetAllEntry> out;
  staged_.store().scan("o/", [&](std::string_view k, std::string_view bytes) {
    OriginRecord rec;
    if (!protocol::from_record(bytes, rec)) return true;
    apply_outcome(std::string(k.substr(2)), rec);
    if (shown(rec)) {
      out.push_back({rec.spec.ticket, rec.state, rec.spec.describe(), rec.spec.owner});
    }
    return true;
  });
  // Tickets of one node share a prefix: order by their counter, i.e. by
  // submission.
  auto counter = [](const std::string& t) -> std::uint64_t {
    auto first = t.find('-');
    if (first == std::string::npos) return 0;
    try {
      return std::stoull(t.substr(first + 1));
    } catch (...) {
      return 0;
    }
  };
  std::sort(out.begin(), out.end(),
            [&](const protocol::GetAllEntry& a, const protocol::GetAllEntry& b) {
              return counter(a.ticket) < counter(b.ticket);
            });
  return out;
}

}  // namespace jc::node
