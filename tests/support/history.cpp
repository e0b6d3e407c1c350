#include "tests/support/history.h"

#include <map>

namespace jc::test {

Claim claim_of(const std::string& reply) {
  Claim c;
  if (reply.rfind("Result: ", 0) == 0) {
    c.kind = Claim::kFinal;
    c.result = reply;
    std::string word = reply.substr(8, reply.find(' ', 8) - 8);
    c.state = word == "Executed" ? "DONE" : word;
  } else if (reply.rfind("Result has not been executed yet", 0) == 0) {
    c.kind = Claim::kNotFinal;
  } else if (reply.rfind("Status: ", 0) == 0) {
    auto a = reply.find(' ', 8);
    auto b = reply.find(' ', a + 1);
    c.state = reply.substr(a + 1, b == std::string::npos ? std::string::npos : b - a - 1);
    c.kind = (c.state == "DONE" || c.state == "FAILED" || c.state == "TIMEOUT" ||
              c.state == "CANCELLED")
                 ? Claim::kFinal
                 : Claim::kNotFinal;
  } else if (reply.rfind("ERR unknown ticket", 0) == 0) {
    c.kind = Claim::kNotFinal;  // "no such job": behind any final result
  }
  return c;  // other ERRs ("cannot check now") claim nothing
}

// Reads that went backwards: after a reply showed a ticket final, a read
// sent later showed it not final, or showed another result.
std::vector<std::string> backwards_reads(const std::vector<History::Read>& reads) {
  std::map<std::string, std::vector<const History::Read*>> by_ticket;
  for (const auto& r : reads) by_ticket[r.ticket].push_back(&r);
  std::vector<std::string> out;
  for (auto& [ticket, list] : by_ticket) {
    const History::Read* first_final = nullptr;
    Claim first;
    std::string result;  // the first Result line seen, at any time
    for (const auto* r : list) {
      Claim c = claim_of(r->reply);
      if (c.kind != Claim::kFinal) continue;
      if (!first_final || r->received < first_final->received) {
        first_final = r;
        first = c;
      }
      if (!c.result.empty()) {
        if (result.empty()) {
          result = c.result;
        } else if (c.result != result) {
          out.push_back("ANOTHER RESULT " + ticket + ": '" + result + "' and '" + c.result +
                        "' (via " + r->node + ")");
        }
      }
    }
    if (!first_final) continue;
    for (const auto* r : list) {
      if (r->sent <= first_final->received) continue;
      Claim c = claim_of(r->reply);
      bool behind = c.kind == Claim::kNotFinal || (c.kind == Claim::kFinal && c.state != first.state);
      if (behind) {
        out.push_back("BACKWARDS " + ticket + ": '" + first_final->reply + "' via " +
                      first_final->node + ", then '" + r->reply + "' via " + r->node + " to `" +
                      r->command + "`");
      }
    }
  }
  return out;
}

}  // namespace jc::test
