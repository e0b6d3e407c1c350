// Retention on the proxy (RESULT_TTL): which finished jobs expire when, and
// which tickets are gone. The one owner of
//   e/<final ms>/<ticket>  the expiry index of f/ (protocol/retention.h): the
//                          origin node, then the other tickets of this
//                          commit with the same final time, each after a
//                          newline (records of earlier builds: one ticket)
//   w/<prefix>             the highest counter of that ticket prefix removed by expiry
//   m/expiry_index         "1" once f/ records written before the index have entries in it
// A sweep removes a job's f/ and s/ through the job book; a result its
// origin has not acknowledged keeps its notice (ResultNotices): the origin
// is told the job expired and acknowledges that.
#pragma once

#include <cstdint>
#include <string>
#include <unordered_map>

#include "common/log.h"
#include "common/status.h"
#include "common/time.h"
#include "protocol/retention.h"
#include "reverse_proxy/job_book.h"
#include "storage/staged.h"

namespace jc::proxy {

class ProxyExpiry {
 public:
  ProxyExpiry(storage::Staged& staged, JobBook& book, const protocol::Retention& retention,
              std::shared_ptr<spdlog::logger> log)
      : staged_(staged), book_(book), retention_(retention), log_(std::move(log)) {}

  // Reads the w/ marks, and enters f/ records of earlier builds in the index.
  Status recover(TimeMs now);
  // A job final at `final_ms`: its entry in the index.
  void index(const std::string& ticket, TimeMs final_ms, const std::string& origin) {
    if (open_final_ == final_ms && staged_.append_staged(open_key_, {"\n", ticket})) return;
    open_key_ = protocol::expiry_key(final_ms, ticket);
    open_final_ = final_ms;
    staged_.put(open_key_, origin);
  }
  // Removes at most `batch` jobs final for longer than RESULT_TTL.
  protocol::SweepOutcome sweep(TimeMs now, std::size_t batch);
  // Gone by RESULT_TTL: below its prefix's removed counter.
  bool gone(const std::string& ticket) const;
  bool expired(TimeMs final_ms, TimeMs now) const { return retention_.expired(final_ms, now); }

 private:
  static std::string watermark_key(std::string_view prefix) { return "w/" + std::string(prefix); }

  storage::Staged& staged_;
  JobBook& book_;
  const protocol::Retention& retention_;
  std::shared_ptr<spdlog::logger> log_;
  // The highest counter removed by expiry, per ticket prefix (w/ keys).
  std::unordered_map<std::string, std::uint64_t> expired_upto_;
  // The entry this commit opened, which later jobs of the same final time join.
  std::string open_key_;
  TimeMs open_final_ = -1;
};

}  // namespace jc::proxy
