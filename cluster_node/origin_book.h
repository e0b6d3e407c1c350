// The node's origin book: the jobs its clients submitted here, from the
// ticket it gives until they expire. The one owner of
//   m/prefix, m/counter   the ticket prefix (random, made once), and a number
//                         above every ticket's counter issued (reserved a
//                         block ahead, so a job may leave before its commit
//                         without a restart issuing its counter again)
//   m/expired             the highest counter of its tickets removed by expiry
//   o/<ticket>            OriginRecord (node_records.h): the job as accepted, written
//                         once (records of earlier builds also hold its result)
//   r/<ticket>            OriginOutcome: its state and result, once the result came
//   u/<ticket>            jobs not yet acknowledged by the proxy: a batch per
//                         commit, its tickets each followed by a newline, the
//                         first of them in the key; gone once the proxy has
//                         acknowledged all of it. "unsent" : the key's one job,
//                         never sent to the proxy (accepted while it was
//                         away); "" : the key's one job, sent since, or
//                         a record of an earlier build
// and, in memory, of which jobs the proxy has not acknowledged, in order.
#pragma once

#include <algorithm>
#include <array>
#include <deque>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "cluster_node/node_records.h"
#include "common/hash_maps.h"
#include "common/log.h"
#include "common/status.h"
#include "common/time.h"
#include "protocol/messages.h"
#include "protocol/retention.h"
#include "storage/staged.h"
#include "storage/ticket_batches.h"

namespace jc::node {

class OriginBook {
 public:
  OriginBook(storage::Staged& staged, std::shared_ptr<spdlog::logger> log)
      : staged_(staged), log_(std::move(log)) {}

  static constexpr std::string_view kOrigin = "o/", kOutcome = "r/";
  static std::string key(const std::string& t) { return std::string(kOrigin) + t; }

  Status recover();

  // A job accepted: its ticket (`<prefix>-<counter>-<random_part()>`), its
  // record, and its spec's bytes (encoded once, for the proxy too) in
  // `spec_bytes`. `connected`: it is sent once committed; else at the next
  // WELCOME.
  std::string accept(protocol::JobSpec& spec, TimeMs now, const std::string& node_id,
                     const std::string& random_part, bool connected, std::string& spec_bytes);

  // The job with what became of it (its r/ record over its o/ record).
  bool load(const std::string& t, OriginRecord& rec) const;
  // What became of the job, with its owner (`owner_known` set): its r/
  // record alone when that holds the owner (version 8 on), else its o/
  // record with r/ over it. False when neither reads.
  bool load_outcome(const std::string& t, OriginOutcome& outcome) const;
  // What a job accepted by this process and without an r/ record yet is,
  // besides a fresh record (QUEUED, no result): in memory, so that neither
  // its result nor a client's wait reads its o/ record (which holds its
  // files). Jobs accepted before a restart are read from the store.
  struct Pending {
    const std::string* owner = nullptr;  // the client name ("" without tokens)
    bool callback = false;               // judge0's callback_url is set
  };
  std::optional<Pending> pending(std::string_view t) const {
    const Entry* e = find(t);
    if (e == nullptr || !e->pending) return std::nullopt;
    return Pending{&owners_[e->owner], e->callback};
  }
  // What became of the job: its r/ record only (o/ is never rewritten). A
  // final result enters the expiry index at its final time; the sweep checks
  // the record again, so an entry left behind by a later change of the
  // record removes nothing before its time.
  void store(const std::string& t, const OriginRecord& rec);
  bool has(const std::string& t) const;
  // Expiry removes the records; raise_mark() notes its counter (m/expired,
  // written by write_mark()).
  void erase(const std::string& t) {
    staged_.del(key(t));
    staged_.del(outcome_key(t));
    settle_pending(t);
  }
  static std::string outcome_key(const std::string& t) { return std::string(kOutcome) + t; }
  bool raise_mark(const std::string& t);
  void write_mark() { staged_.put("m/expired", std::to_string(expired_upto_)); }
  // One of this node's tickets removed by expiry.
  bool expired_here(const std::string& t) const;

  // Whether this node issued `t` (its prefix, a counter already given),
  // whether or not a record of it survives.
  bool issued_here(const std::string& t) const;
  // m/counter as staged now: durable once this stage is committed.
  std::uint64_t reserved() const { return reserved_; }
  // A stage that held m/counter = `reserved` has been committed (and synced).
  void committed(std::uint64_t reserved) {
    durable_reserved_ = std::max(durable_reserved_, reserved);
  }
  // Whether every counter issued is below the committed m/counter: a
  // restart, whatever this turn's commit becomes, never issues them again.
  bool issued_below_durable_mark() const { return counter_ <= durable_reserved_; }

  // Forwarding to the proxy.
  bool unforwarded(std::string_view t) const {
    const Entry* e = find(t);
    return e != nullptr && e->unforwarded;
  }
  std::size_t unforwarded_count() const { return unforwarded_count_; }
  // Those not acknowledged, in the order they came.
  std::vector<std::string> unforwarded_in_order() const;
  // Never sent to the proxy: nobody else can have run it.
  bool unsent(std::string_view t) const {
    const Entry* e = find(t);
    return e != nullptr && e->unsent;
  }
  // Sent from now on (its u/ says so).
  void mark_sent(const std::string& t);
  // The proxy holds these durably.
  void acknowledged(const std::vector<std::string>& tickets);

  std::vector<protocol::GetAllEntry> getall(
      const std::function<bool(const OriginRecord&)>& shown) const;

 private:
  // Its r/ record alone (false: none yet, or unreadable).
  bool read_outcome(const std::string& t, OriginOutcome& outcome) const;
  // What became of the job (its r/ record), over `rec` read from o/.
  void apply_outcome(const std::string& t, OriginRecord& rec) const;

  storage::Staged& staged_;
  std::shared_ptr<spdlog::logger> log_;
  std::string prefix_;
  static constexpr std::uint64_t kCounterBlock = 1 << 16;
  std::uint64_t counter_ = 1;           // the next ticket's
  std::uint64_t reserved_ = 1;          // m/counter as staged
  std::uint64_t durable_reserved_ = 1;  // m/counter as last committed
  std::uint64_t expired_upto_ = 0;      // m/expired
  // This process's jobs that are pending or unforwarded (or both), by
  // their ticket's counter: every ticket this node issues is
  // <prefix_>-<counter>-<11 random characters>, so the counter and the
  // random part tell it from any other, and the book holds no copy of it
  // (32 bytes a job, hashed as a number).
  static constexpr std::size_t kRandomChars = protocol::kTicketRandomChars;
  struct Entry {
    std::uint64_t batch = 0;  // its u/ record: a batch's number, 0 a record of its own
    std::uint32_t owner = 0;  // in owners_
    std::array<char, kRandomChars> random{};
    bool pending : 1 = false;      // accepted by this process, no r/ record yet
    bool callback : 1 = false;     // judge0's callback_url is set
    bool unforwarded : 1 = false;  // not acknowledged by the proxy
    bool unsent : 1 = false;       // never sent to it (u/ says "unsent")
  };
  // Counters are issued in order and looked up mostly near the ones just
  // issued, acknowledged or finished. absl's table takes a slot from the
  // hash's high bits (its low 7 are the tag compared first). This hash
  // puts each block of 16 counters at a mixed place and each counter at
  // its own slot within it: neighbours share cache lines, where a mixing
  // hash put each lookup on a random line of a burst-sized table (9 % of a
  // node's CPU in `jc_bench --scenario e2e --jobs 300000`). Blocks, not
  // one run of counters: a lookup that misses stops at the first group
  // with an empty slot, and a long run of entries or of erased ones would
  // have none.
  struct CounterHash {
    static std::uint64_t mix(std::uint64_t x) {  // MurmurHash3's finalizer
      x ^= x >> 33;
      x *= 0xff51afd7ed558ccdull;
      x ^= x >> 33;
      x *= 0xc4ceb9fe1a85ec53ull;
      return x ^ (x >> 33);
    }
    std::size_t operator()(std::uint64_t c) const {
      const std::uint64_t slot = (mix(c >> 4) << 4) | (c & 15);
      return (slot << 7) | (mix(c) & 0x7f);
    }
  };
  absl::flat_hash_map<std::uint64_t, Entry, CounterHash> own_;
  std::size_t unforwarded_count_ = 0;
  std::deque<std::uint64_t> order_;  // unforwarded ones, in submission order (with acknowledged ones)
  // Owners by number: the client names of CLIENT_TOKENS, a handful.
  std::vector<std::string> owners_{std::string()};
  FlatMap<std::string, std::uint32_t> owner_ids_;
  storage::TicketBatches batches_{staged_};
  // The parts of `t` when it is a ticket this node issued (its prefix, in
  // the one spelling tickets have); nullopt for any other.
  std::optional<protocol::TicketParts> own_parts(std::string_view t) const;
  // The entry of `t` in `own` (own_, const or not), or its end(): only the
  // ticket exactly as issued finds it.
  template <class Own>
  auto locate(Own& own, std::string_view t) const;
  const Entry* find(std::string_view t) const;
  std::string ticket_of(std::uint64_t counter, const Entry& e) const;
  std::uint32_t owner_id(const std::string& owner);
  // `t` has its r/ record, or is gone: the entry stays while unforwarded.
  void settle_pending(std::string_view t);
  // Enters the job of counter `c` as unforwarded, from batch `id` (0: a
  // record of its own).
  void enter(std::uint64_t c, Entry& e, std::uint64_t id);
  // The same for `t`, read from u/ at recovery; null if it is not a ticket
  // this node issued.
  Entry* enter_recovered(const std::string& t, std::uint64_t id);
  // Its entry in the expiry index, e/<final ms>/o/<ticket>: of its own, or
  // in the entry this commit opened for results of that final time (its
  // value lists them, each after a newline).
  void index_result(const std::string& t, std::int64_t final_ms);
  std::string open_index_;
  std::int64_t open_index_final_ = -1;
};

// A random prefix of six lowercase letters and digits.
std::string random_prefix();

}  // namespace jc::node
