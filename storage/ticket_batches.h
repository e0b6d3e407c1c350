// Records that say only that tickets belong to a set (results an origin
// has not acknowledged, jobs the proxy has not acknowledged), written as
// one record per commit rather than one per ticket: the value lists the
// tickets, each followed by a newline, and the key, which the owner
// chooses, names the first (a ticket enters such a set once, so keys never
// repeat). A record is deleted once each of its tickets is done with. The
// owner keeps, for each ticket, the id of its batch.
#pragma once

#include <cstdint>
#include <initializer_list>
#include <string>
#include <string_view>
#include <unordered_map>
#include <utility>

#include "storage/staged.h"

namespace jc::storage {

// Calls fn for each non-empty piece of `value` between newlines.
template <class Fn>
void for_each_line(std::string_view value, Fn&& fn) {
  for (std::size_t at = 0; at < value.size();) {
    std::size_t end = value.find('\n', at);
    if (end == std::string_view::npos) end = value.size();
    if (end > at) fn(value.substr(at, end - at));
    at = end + 1;
  }
}

class TicketBatches {
 public:
  explicit TicketBatches(Staged& staged) : staged_(staged) {}

  // Appends `ticket` to the batch this stage holds for `scope`, or stages
  // a new one under the key `new_key()` makes; returns the batch's id. The
  // ticket counts only once hold() is called (an owner skips a ticket it
  // has already).
  template <class MakeKey>
  std::uint64_t add(const std::string& scope, const std::string& ticket, MakeKey&& new_key) {
    return add_line(scope, {ticket, "\n"}, std::forward<MakeKey>(new_key));
  }
  // The same with a line of the owner's making (its pieces, ending in a
  // newline; the ticket first): for a set whose tickets carry a fact.
  template <class MakeKey>
  std::uint64_t add_line(const std::string& scope, std::initializer_list<std::string_view> line,
                         MakeKey&& new_key) {
    auto open = open_.find(scope);
    auto batch = open == open_.end() ? batches_.end() : batches_.find(open->second);
    if (batch != batches_.end() && staged_.append_staged(batch->second.key, line)) {
      return batch->first;
    }
    const std::uint64_t id = next_++;
    std::string value;
    std::size_t bytes = 0;
    for (std::string_view piece : line) bytes += piece.size();
    value.reserve(bytes * 8);  // room for a few more
    for (std::string_view piece : line) value.append(piece);
    std::string key = new_key();
    staged_.put(key, std::move(value));
    batches_.try_emplace(id, Batch{std::move(key), scope, 0});
    open_.insert_or_assign(scope, id);
    return id;
  }
  // A record read back at start: its id, to hold() its tickets with; then
  // settle() deletes it if none was held.
  std::uint64_t read(std::string key) {
    const std::uint64_t id = next_++;
    batches_.try_emplace(id, Batch{std::move(key), {}, 0});
    return id;
  }
  void settle(std::uint64_t id) {
    if (auto it = batches_.find(id); it != batches_.end() && it->second.left == 0) forget(it);
  }
  void hold(std::uint64_t id) { ++batches_[id].left; }
  // One of the batch's tickets is done with: the record goes with the last.
  void release(std::uint64_t id) {
    auto it = batches_.find(id);
    if (it != batches_.end() && --it->second.left == 0) forget(it);
  }

 private:
  struct Batch {
    std::string key;
    std::string scope;
    std::size_t left = 0;  // its tickets not done with yet
  };
  using Map = std::unordered_map<std::uint64_t, Batch>;
  void forget(Map::iterator it) {
    staged_.del(it->second.key);
    if (auto open = open_.find(it->second.scope);
        open != open_.end() && open->second == it->first) {
      open_.erase(open);
    }
    batches_.erase(it);
  }

  Staged& staged_;
  Map batches_;
  std::unordered_map<std::string, std::uint64_t> open_;  // scope -> its batch staged last
  std::uint64_t next_ = 1;
};

}  // namespace jc::storage
