// Results owed to nodes. The one owner of
//   n/<origin>/<ticket>   "" : a result its origin node has not acknowledged yet
// and, in memory, of who waits for a job's result besides its origin (a
// node whose client asked for a job not final yet), and of when a result
// pushed on the current connection is pushed again.
#pragma once

#include <map>
#include <set>
#include <string>
#include <unordered_map>
#include <vector>

#include "common/status.h"
#include "storage/staged.h"

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

 private:
  static std::string key(const std::string& origin, const std::string& t) {
    return "n/" + origin + "/" + t;
  }

  storage::Staged& staged_;
  std::map<std::string, std::set<std::string>> unnotified_;  // origin -> tickets
  std::unordered_map<std::string, std::set<std::string>> watchers_;
  // Exchanges before a result pushed to its origin on this connection is
  // pushed again: the node acknowledges what it reads, and a result of
  // megabytes pushed every REQUEST_RESULT_PERIOD only queues copies.
  std::unordered_map<std::string, int> wait_;
  static constexpr int kRenotifyRounds = 30;
};

}  // namespace jc::proxy
