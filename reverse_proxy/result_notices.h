// Results owed to nodes. The one owner of
//   n/<origin>/<ticket>   results its origin node has not acknowledged yet, a
//                         batch per origin and commit: the tickets, each
//                         followed by a newline, the first of them in the
//                         key (a ticket is owed once, so keys never repeat).
//                         The record goes once every ticket in it has been
//                         acknowledged. Records of earlier builds hold "":
//                         the one ticket of the key.
// and, in memory, of who waits for a job's result besides its origin (a
// node whose client asked for a job not final yet), and of when a result
// pushed on the current connection is pushed again.
//
// A batch written once and deleted once costs two record writes per
// commit instead of two per job. A restart offers again the acknowledged
// results of a batch not wholly acknowledged: the origin acknowledges a
// result it holds again, as it does any repeated result.
#pragma once

#include <cstdint>
#include <map>
#include <set>
#include <string>
#include <vector>

#include "common/hash_maps.h"
#include "common/status.h"
#include "storage/staged.h"
#include "storage/ticket_batches.h"

namespace jc::proxy {

class ResultNotices {
 public:
  explicit ResultNotices(storage::Staged& staged) : staged_(staged) {}

  // Reads every n/ key; returns how many.
  Status recover(std::size_t& pending);

  // A job of `origin`'s clients is final: it is owed its result.
  void owe(const std::string& origin, const std::string& ticket);
  // `node` acknowledged these results.
  void acknowledged(const std::string& node, const std::vector<std::string>& tickets);
  // Everything owed to `origin`, to push at once (it just joined).
  std::vector<std::string> all_owed(const std::string& origin);
  // What to offer `origin` in this exchange, at most `max`: what was not
  // pushed in the last kRenotifyRounds exchanges.
  std::vector<std::string> due(const std::string& origin, std::size_t max);

  // A node waits for the result of `ticket` (its client asked).
  void watch(const std::string& ticket, const std::string& node) { watchers_[ticket].insert(node); }
  // Who gets the result of `ticket`: its origin and every watcher.
  std::set<std::string> recipients(const std::string& ticket, const std::string& origin);
  // Tickets some node watches.
  std::size_t watched() const { return watchers_.size(); }
  bool watched(const std::string& ticket) const { return watchers_.count(ticket) > 0; }

 private:
  static std::string key(const std::string& origin, const std::string& t) {
    return "n/" + origin + "/" + t;
  }
  struct Owed {
    std::uint64_t batch = 0;
    // Exchanges before a result pushed to its origin on this connection is
    // pushed again: the node acknowledges what it reads, and a result of
    // megabytes pushed every REQUEST_RESULT_PERIOD only queues copies.
    int wait = 0;
  };
  static constexpr int kRenotifyRounds = 30;
  // Enters `ticket` as owed to `origin` from the batch `id`.
  Owed& enter(const std::string& origin, const std::string& ticket, std::uint64_t id);

  storage::Staged& staged_;
  // origin -> ticket (kept inline: no heap block a result)
  std::map<std::string, TicketMap<Owed>> unnotified_;
  storage::TicketBatches batches_{staged_};  // n/ records, scoped by origin
  FlatMap<std::string, std::set<std::string>> watchers_;
};

}  // namespace jc::proxy
