#include "protocol/batching.h"

#include <algorithm>
#include <type_traits>
#include <unordered_set>

namespace jc::protocol {

namespace {

constexpr std::size_t kPerField = 16;  // lengths and small fields, generously

std::size_t strings(const std::string& s) { return s.size() + kPerField; }

std::size_t approx_size(const Assignment& a) { return approx_size(a.spec) + kPerField; }
// A job as its encoded bytes (Submit::spec_bytes).
std::size_t approx_size(const std::string& bytes) { return bytes.size() + kPerField; }

// Splits `items` into runs whose approx_size adds up to at most `budget`
// (at least one item each).
template <class T>
std::vector<std::vector<T>> chunks(std::vector<T> items, std::size_t budget) {
  std::vector<std::vector<T>> out(1);
  std::size_t used = 0;
  for (auto& item : items) {
    std::size_t size = approx_size(item);
    if (!out.back().empty() && used + size > budget) {
      out.emplace_back();
      used = 0;
    }
    used += size;
    out.back().push_back(std::move(item));
  }
  return out;
}

}  // namespace

std::size_t approx_size(const JobSpec& s) {
  std::size_t n = 16 * kPerField + strings(s.ticket) + strings(s.command) +
                  strings(s.stdin_data) + strings(s.origin) + strings(s.expected) +
                  strings(s.check);
  for (const auto& f : s.files) n += strings(f.name) + strings(f.content);
  for (const auto& c : s.cases) n += strings(c.name) + strings(c.stdin_data) + strings(c.expected);
  return n;
}

std::size_t approx_size(const JobReport& r) {
  const JobResult& res = r.result;
  std::size_t n = 24 * kPerField + strings(r.ticket) + strings(r.node) + strings(res.node) +
                  strings(res.text) + strings(res.stdout_data) + strings(res.stderr_data) +
                  strings(res.verdict) + strings(res.sandbox);
  for (const auto& c : res.cases) {
    n += 12 * kPerField + strings(c.name) + strings(c.verdict) + strings(c.stdout_data) +
         strings(c.stderr_data);
  }
  return n;
}

namespace {

template <class T>
std::size_t total_size(const std::vector<T>& items, std::size_t budget) {
  std::size_t total = 0;
  for (const auto& item : items) {
    total += approx_size(item);
    if (total > budget) break;  // enough to know
  }
  return total;
}

// Whether `m` is a batch over the budget (most are not: then it is sent as
// it is, without moving its items).
bool over_budget(const Message& m, std::size_t budget) {
  return std::visit(
      [&](const auto& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, Result> || std::is_same_v<T, ResReq>) {
          return total_size(msg.reports, budget) > budget;
        } else if constexpr (std::is_same_v<T, Job>) {
          return total_size(msg.jobs, budget) > budget;
        } else if constexpr (std::is_same_v<T, Submit>) {
          return (msg.jobs.empty() ? total_size(msg.spec_bytes, budget)
                                   : total_size(msg.jobs, budget)) > budget;
        } else {
          return false;
        }
      },
      m);
}

}  // namespace

std::vector<Message> split_batch(Message m, std::size_t budget) {
  std::vector<Message> out;
  if (!over_budget(m, budget)) {
    out.push_back(std::move(m));
    return out;
  }
  std::visit(
      [&](auto&& msg) {
        using T = std::decay_t<decltype(msg)>;
        if constexpr (std::is_same_v<T, Result>) {
          for (auto& part : chunks(std::move(msg.reports), budget)) out.push_back(Result{std::move(part)});
        } else if constexpr (std::is_same_v<T, ResReq>) {
          bool first = true;
          for (auto& part : chunks(std::move(msg.reports), budget)) {
            ResReq piece;
            piece.reports = std::move(part);
            // The requests are small: they go with the first piece.
            if (first) piece.requests = std::move(msg.requests);
            first = false;
            out.push_back(std::move(piece));
          }
        } else if constexpr (std::is_same_v<T, Job>) {
          for (auto& part : chunks(std::move(msg.jobs), budget)) out.push_back(Job{std::move(part)});
        } else if constexpr (std::is_same_v<T, Submit>) {
          if (msg.jobs.empty()) {  // jobs as bytes alone: a node's new submissions
            for (auto& part : chunks(std::move(msg.spec_bytes), budget)) {
              Submit piece;
              piece.first = msg.first;
              piece.spec_bytes = std::move(part);
              out.push_back(std::move(piece));
            }
            return;
          }
          auto parts = chunks(std::move(msg.jobs), budget);
          if (parts.size() == 1) {
            msg.jobs = std::move(parts[0]);
            out.push_back(std::move(msg));
            return;
          }
          std::unordered_set<std::string> local(msg.local.begin(), msg.local.end());
          std::unordered_set<std::string> finished(msg.local_finished.begin(),
                                                   msg.local_finished.end());
          std::size_t next = 0;  // msg's index of the job at hand
          for (auto& part : parts) {
            Submit piece;
            piece.first = msg.first;
            for (const auto& spec : part) {
              if (local.count(spec.ticket)) piece.local.push_back(spec.ticket);
              if (finished.count(spec.ticket)) piece.local_finished.push_back(spec.ticket);
              // Each job keeps the bytes it was given (Submit::spec_bytes).
              if (next < msg.spec_bytes.size()) piece.spec_bytes.push_back(std::move(msg.spec_bytes[next]));
              ++next;
            }
            piece.jobs = std::move(part);
            out.push_back(std::move(piece));
          }
        } else {
          out.push_back(std::move(msg));
        }
      },
      std::move(m));
  return out;
}

}  // namespace jc::protocol
