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

#include <deque>
#include <functional>
#include <string>
#include <vector>

#include "cluster_node/node_records.h"
#include "common/hash_maps.h"
#include "common/log.h"
#include "common/status.h"
#include "common/time.h"
#include "protocol/messages.h"
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
    std::string owner;
    bool callback = false;  // judge0's callback_url is set
  };
  const Pending* pending(const std::string& t) const {
    auto it = pending_.find(t);
    return it == pending_.end() ? nullptr : &it->second;
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
    pending_.erase(t);
  }
  static std::string outcome_key(const std::string& t) { return std::string(kOutcome) + t; }
  bool raise_mark(const std::string& t);
  void write_mark() { staged_.put("m/expired", std::to_string(expired_upto_)); }
  // One of this node's tickets removed by expiry.
  bool expired_here(const std::string& t) const;

  // Whether this node issued `t` (its prefix, a counter already given),
  // whether or not a record of it survives.
  bool issued_here(const std::string& t) const;
  // The stage this book wrote to has been committed (and synced).
  void committed() { durable_reserved_ = reserved_; }
  // Whether every counter issued is below the committed m/counter: a
  // restart, whatever this turn's commit becomes, never issues them again.
  bool issued_below_durable_mark() const { return counter_ <= durable_reserved_; }

  // Forwarding to the proxy.
  bool unforwarded(const std::string& t) const { return unforwarded_.count(t) > 0; }
  std::size_t unforwarded_count() const { return unforwarded_.size(); }
  // Those not acknowledged, in the order they came.
  const std::deque<std::string>& order() const { return order_; }
  // Never sent to the proxy: nobody else can have run it.
  bool unsent(const std::string& t) const { return unsent_.count(t) > 0; }
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
  std::deque<std::string> order_;  // unforwarded_, in submission order (with acknowledged ones)
  // Each unforwarded job's u/ record: a batch's number, or 0 for a record
  // of its own ("unsent", or sent since).
  FlatMap<std::string, std::uint64_t> unforwarded_;
  storage::TicketBatches batches_{staged_};
  // Enters `t` as unforwarded, from batch `id` (0: a record of its own).
  void enter(const std::string& t, std::uint64_t id);
  // Its entry in the expiry index, e/<final ms>/o/<ticket>: of its own, or
  // in the entry this commit opened for results of that final time (its
  // value lists them, each after a newline).
  void index_result(const std::string& t, std::int64_t final_ms);
  std::string open_index_;
  std::int64_t open_index_final_ = -1;
  // Of the unforwarded jobs, those never sent to the proxy: nobody else can
  // run them, so their local run's result shows at once (u/ says "unsent").
  FlatSet<std::string> unsent_;
  NodeMap<std::string, Pending> pending_;
};

// A random prefix of six lowercase letters and digits.
std::string random_prefix();

}  // namespace jc::node
