#include "bench/pipeline.h"

#include <fmt/format.h>

#include <algorithm>

#include "bench/replies.h"

namespace jc::bench {

std::chrono::milliseconds left(Deadline deadline) {
  auto ms = std::chrono::duration_cast<std::chrono::milliseconds>(deadline -
                                                                  std::chrono::steady_clock::now());
  return std::max(ms, std::chrono::milliseconds(1));
}

std::string pipeline(jc::test::Client& client, std::size_t count, std::size_t window,
                     Deadline deadline, const std::function<std::string(std::size_t)>& command,
                     const std::function<std::string(std::size_t)>& read_reply) {
  window = std::max<std::size_t>(window, 1);
  std::size_t sent = 0;
  std::string batch;
  for (std::size_t answered = 0; answered < count; ++answered) {
    // Refill when half the window is answered, so sends are few and large.
    if (sent < count && sent - answered <= window / 2) {
      batch.clear();
      for (; sent < count && sent - answered < window; ++sent) batch += command(sent);
      if (!client.send_within(batch, left(deadline))) {
        return fmt::format("send failed or timed out after {} replies", answered);
      }
    }
    if (auto error = read_reply(answered); !error.empty()) return error;
  }
  return "";
}

std::string submit_jobs(jc::test::Client& client, std::size_t count, const std::string& job_line,
                        std::size_t window, Deadline deadline, std::vector<std::string>& tickets) {
  constexpr std::string_view kTicket = "Ticket ID: ";
  tickets.reserve(tickets.size() + count);
  return pipeline(
      client, count, window, deadline, [line = job_line + "\n"](std::size_t) { return line; },
      [&](std::size_t i) -> std::string {
        auto l = client.line(left(deadline));
        if (!l) return fmt::format("no reply to submit {} of {} before the deadline", i + 1, count);
        if (l->rfind(kTicket, 0) != 0) return fmt::format("submit {} answered '{}'", i + 1, *l);
        tickets.push_back(l->substr(kTicket.size()));
        return "";
      });
}

std::string await_jobs(jc::test::Client& client, const std::vector<std::string>& tickets,
                       std::size_t window, Deadline deadline, Outcomes& outcomes) {
  // `wait` holds each reply until the job is final; its own limit is the
  // time left, so a stuck job answers "not executed yet" instead of hanging.
  auto wait_s = std::max<long long>(
      1, std::chrono::duration_cast<std::chrono::seconds>(left(deadline)).count());
  return pipeline(
      client, tickets.size(), window, deadline,
      [&](std::size_t i) { return fmt::format("wait {} {}\n", tickets[i], wait_s); },
      [&](std::size_t i) -> std::string {
        auto l = client.line(left(deadline));
        if (!l) return fmt::format("no result for {} before the deadline", tickets[i]);
        ResultHeader r = parse_result(*l);
        if (!r.final) return fmt::format("wait {} answered '{}'", tickets[i], *l);
        if (r.framed) {
          std::size_t frame = r.stdout_bytes + 1 + r.stderr_bytes + 1;
          if (!client.bytes(frame, left(deadline))) return "truncated run result of " + tickets[i];
          for (std::size_t c = 0; c < r.cases; ++c) {
            if (!client.line(left(deadline))) return "truncated run result of " + tickets[i];
          }
        }
        outcomes.by_node[r.node.empty() ? "?" : r.node]++;
        outcomes.by_state[r.state]++;
        return "";
      });
}

}  // namespace jc::bench
