// Chaos test: a proxy (or three replicated ones) and K nodes under a steady
// stream of sleep jobs from three client threads while a chaos thread kills
// (-9) and restarts nodes and proxies (the leader among them, and at times
// two proxies at once: no majority until they are back), and stops (SIGSTOP)
// and continues them: a stopped proxy is cut off from everyone, and resumes
// believing what it believed. Afterwards every ticket a
// client saw must have exactly one result, the same on every node: none lost,
// none stuck.
//
//   chaos_test [--seconds N] [--seed S] [--nodes K] [--proxies P]
//
// The cluster directory (data and logs) is kept when the test fails and its
// path is printed. CHAOS_LOG_LEVEL=debug makes every process log every job
// step; CHAOS_PROXY_ENV / CHAOS_NODE_ENV (K=V,K=V) add settings for experiments;
// CHAOS_KEEP=1 keeps the directory even on success.
#include <signal.h>
#include <stdarg.h>
#include <stdlib.h>

#include <algorithm>
#include <atomic>
#include <cstdio>
#include <cstring>
#include <filesystem>
#include <fstream>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <random>
#include <set>
#include <string>
#include <thread>
#include <vector>

#include "tests/support/cluster.h"
#include "tests/support/history.h"

using namespace jc::test;
using namespace std::chrono_literals;

namespace {

struct Options {
  int seconds = 60;
  unsigned seed = 1;
  int nodes = 4;
  int proxies = 1;
};

const Clock::time_point g_start = Clock::now();

double elapsed() { return std::chrono::duration<double>(Clock::now() - g_start).count(); }

std::mutex g_print_mutex;

__attribute__((format(printf, 1, 2))) void say(const char* fmt, ...) {
  std::lock_guard lock(g_print_mutex);
  std::printf("[%7.2f] ", elapsed());
  va_list args;
  va_start(args, fmt);
  std::vprintf(fmt, args);
  va_end(args);
  std::printf("\n");
  std::fflush(stdout);
}

std::string tail(const std::string& s, std::size_t n) {
  return s.size() > n ? s.substr(s.size() - n) : s;
}

bool starts_with(const std::string& s, const std::string& prefix) {
  return s.rfind(prefix, 0) == 0;
}

// Sleeps until `until` or until `stop` is set, in short steps.
void sleep_until_or(Clock::time_point until, const std::atomic<bool>& stop) {
  while (!stop.load() && Clock::now() < until) {
    auto left = until - Clock::now();
    std::this_thread::sleep_for(std::min<Clock::duration>(left, 50ms));
  }
}

// Tickets that clients saw in a "Ticket ID: X" reply.
class Accepted {
 public:
  void add(const std::string& ticket, std::size_t node) {
    std::lock_guard lock(mutex_);
    if (!tickets_.emplace(ticket, node).second) ++duplicates_;
  }
  std::map<std::string, std::size_t> snapshot() const {
    std::lock_guard lock(mutex_);
    return tickets_;
  }
  int duplicates() const {
    std::lock_guard lock(mutex_);
    return duplicates_;
  }

 private:
  mutable std::mutex mutex_;
  std::map<std::string, std::size_t> tickets_;  // ticket -> node index it was submitted to
  int duplicates_ = 0;
};

struct ClientStats {
  std::atomic<long> connections{0}, refused{0}, submitted{0}, accepted{0}, other_replies{0},
      no_reply{0};
};

void client_thread(int index, const Options& opt, const std::vector<std::uint16_t>& ports,
                   const std::atomic<bool>& stop, Accepted& accepted, ClientStats& stats) {
  std::mt19937 rng(opt.seed + static_cast<unsigned>(index));
  std::uniform_int_distribution<std::size_t> pick_node(0, ports.size() - 1);
  std::uniform_int_distribution<int> pick_batch(1, 10);
  std::uniform_int_distribution<int> pick_ms(0, 200);
  std::uniform_int_distribution<int> pick_form(0, 1);
  // Pace: roughly what 4 nodes of 2 slots run, so the backlog at the end stays small.
  std::uniform_int_distribution<int> pick_pause_ms(100, 500);
  while (!stop.load()) {
    std::size_t node = pick_node(rng);
    int batch = pick_batch(rng);
    std::vector<int> jobs;
    for (int i = 0; i < batch; ++i) jobs.push_back(pick_ms(rng));
    int pause = pick_pause_ms(rng);
    {
      Client c(ports[node], 300ms);
      if (!c.connected()) {
        ++stats.refused;
      } else {
        ++stats.connections;
        std::string lines;
        for (int ms : jobs) {
          lines +=
              pick_form(rng) ? std::to_string(ms) + "\n" : "sleep " + std::to_string(ms) + "\n";
        }
        if (c.send(lines)) {
          stats.submitted += batch;
          for (int i = 0; i < batch; ++i) {
            // A stopped node may hold the reply for up to 4 s; a dead one never sends it.
            auto l = c.line(6s);
            if (!l) {
              stats.no_reply += batch - i;
              break;
            }
            if (starts_with(*l, "Ticket ID: ")) {
              accepted.add(l->substr(11), node);
              ++stats.accepted;
            } else {
              ++stats.other_replies;
            }
          }
        }
      }
    }
    sleep_until_or(Clock::now() + std::chrono::milliseconds(pause), stop);
  }
}

struct ChaosCounts {
  int node_kills = 0, proxy_kills = 0, node_stops = 0, proxy_stops = 0, nothing = 0;
  int leader_kills = 0, majority_losses = 0;  // replicated proxies
  int crashes = 0;          // a process that exited without being killed by us
  int restart_retries = 0;  // a restart that did not come up at first
};

// Starts process `who` (negative: proxy -who-1) again, retrying when it
// does not come up.
bool restart(Cluster& cluster, int who, bool kill_first, ChaosCounts& counts) {
  for (int attempt = 0; attempt < 20; ++attempt) {
    try {
      if (who < 0 && cluster.proxy_count() == 1) {
        cluster.restart_proxy(kill_first || attempt > 0);
      } else if (who < 0) {
        auto k = static_cast<std::size_t>(-who - 1);
        if (kill_first || attempt > 0) cluster.kill_proxy(k);
        cluster.start_proxy(k);
      } else {
        cluster.restart_node(static_cast<std::size_t>(who), kill_first || attempt > 0);
      }
      return true;
    } catch (const std::exception& e) {
      ++counts.restart_retries;
      say("restart of %s failed (attempt %d): %s", who < 0 ? "proxy" : cluster.node_id(who).c_str(),
          attempt + 1, e.what());
      std::this_thread::sleep_for(200ms);
    }
  }
  return false;
}

// Restarts whatever exited on its own (a crash: counted and reported).
void revive_dead(Cluster& cluster, ChaosCounts& counts) {
  for (std::size_t k = 0; k < cluster.proxy_count(); ++k) {
    if (!cluster.proxy(k).running()) {
      ++counts.crashes;
      say("CRASH: proxy %zu is not running; its log since start ends with:\n%s", k + 1,
          tail(cluster.proxy(k).log_since_start(), 2000).c_str());
      restart(cluster, -static_cast<int>(k) - 1, false, counts);
    }
  }
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    if (!cluster.node(i).running()) {
      ++counts.crashes;
      say("CRASH: node %s is not running; its log since start ends with:\n%s",
          cluster.node_id(i).c_str(), tail(cluster.node(i).log_since_start(), 2000).c_str());
      restart(cluster, static_cast<int>(i), false, counts);
    }
  }
}

void chaos_thread(const Options& opt, Cluster& cluster, Clock::time_point end,
                  const std::atomic<bool>& stop, ChaosCounts& counts) {
  std::mt19937 rng(opt.seed);
  std::uniform_int_distribution<int> pick_gap_ms(500, 3000);
  const int proxies = static_cast<int>(cluster.proxy_count());
  std::uniform_int_distribution<int> pick_action(0, proxies > 1 ? 4 : 3);
  std::uniform_int_distribution<int> pick_proxy(0, proxies - 1);
  std::uniform_int_distribution<int> pick_down_ms(0, 2000);
  std::uniform_int_distribution<int> pick_stop_ms(500, 4000);
  std::uniform_int_distribution<int> pick_node(0, static_cast<int>(cluster.size()) - 1);
  std::uniform_int_distribution<int> pick_stop_target(-proxies,
                                                      static_cast<int>(cluster.size()) - 1);
  while (!stop.load()) {
    auto next = Clock::now() + std::chrono::milliseconds(pick_gap_ms(rng));
    if (next >= end) break;
    sleep_until_or(next, stop);
    if (stop.load()) break;
    revive_dead(cluster, counts);
    switch (pick_action(rng)) {
      case 0: {
        int i = pick_node(rng);
        say("chaos: kill -9 and restart node %s", cluster.node_id(i).c_str());
        ++counts.node_kills;
        restart(cluster, i, true, counts);
        break;
      }
      case 1: {
        if (proxies == 1) {
          say("chaos: kill -9 and restart the proxy");
          ++counts.proxy_kills;
          restart(cluster, -1, true, counts);
          break;
        }
        // The leader every other time, else any proxy; down for up to 2 s.
        int k = pick_proxy(rng);
        bool leader_kill = false;
        if (pick_proxy(rng) % 2 == 0) {
          int leader = cluster.leader(2s);
          if (leader >= 0) {
            k = leader;
            leader_kill = true;
            ++counts.leader_kills;
          }
        }
        int down = pick_down_ms(rng);
        say("chaos: kill -9 proxy %d%s, back after %d ms", k + 1, leader_kill ? " (the leader)" : "",
            down);
        ++counts.proxy_kills;
        cluster.kill_proxy(static_cast<std::size_t>(k));
        sleep_until_or(Clock::now() + std::chrono::milliseconds(down), stop);
        restart(cluster, -k - 1, false, counts);
        break;
      }
      case 4: {
        // Two of three: no majority, no service, until they are back.
        int a = pick_proxy(rng), b = (a + 1 + pick_proxy(rng) % (proxies - 1)) % proxies;
        int down = pick_down_ms(rng) + 500;
        say("chaos: kill -9 proxies %d and %d (no majority), back after %d ms", a + 1, b + 1, down);
        counts.proxy_kills += 2;
        ++counts.majority_losses;
        cluster.kill_proxy(static_cast<std::size_t>(a));
        cluster.kill_proxy(static_cast<std::size_t>(b));
        sleep_until_or(Clock::now() + std::chrono::milliseconds(down), stop);
        restart(cluster, -a - 1, false, counts);
        restart(cluster, -b - 1, false, counts);
        break;
      }
      case 2: {
        int target = pick_stop_target(rng);
        int ms = pick_stop_ms(rng);
        Process& p = target < 0 ? cluster.proxy(static_cast<std::size_t>(-target - 1))
                                : cluster.node(static_cast<std::size_t>(target));
        std::string name = target >= 0     ? cluster.node_id(target)
                           : proxies == 1 ? std::string("the proxy")
                                          : "proxy " + std::to_string(-target);
        say("chaos: SIGSTOP %s for %d ms", name.c_str(), ms);
        (target < 0 ? counts.proxy_stops : counts.node_stops)++;
        p.signal(SIGSTOP);
        std::this_thread::sleep_for(std::chrono::milliseconds(ms));
        p.signal(SIGCONT);
        break;
      }
      default:
        ++counts.nothing;
        break;
    }
  }
}

std::optional<std::size_t> colon_count(const std::string& head) {
  auto colon = head.find(": ");
  if (colon == std::string::npos) return std::nullopt;
  try {
    return static_cast<std::size_t>(std::stoul(head.substr(colon + 2)));
  } catch (...) {
    return std::nullopt;
  }
}

// The ticket a read command is about ("" for other commands).
std::string ticket_in(const std::string& cmd) {
  if (cmd.rfind("status ", 0) == 0) return cmd.substr(7);
  if (cmd.rfind("wait ", 0) == 0) return cmd.substr(5, cmd.find(' ', 5) - 5);
  if (cmd.size() > 1 && cmd[0] == 'r' && cmd.find(' ') == std::string::npos) return cmd.substr(1);
  return "";
}

// One client connection per node, reconnected on failure. Every read it
// makes goes into `history`.
class Connections {
 public:
  Connections(std::vector<std::uint16_t> ports, History& history,
              std::vector<std::string> names)
      : ports_(std::move(ports)),
        clients_(ports_.size()),
        history_(history),
        names_(std::move(names)) {}

  Client& get(std::size_t i) {
    if (!clients_[i] || !clients_[i]->connected())
      clients_[i] = std::make_unique<Client>(ports_[i], 5s);
    return *clients_[i];
  }
  void drop(std::size_t i) { clients_[i].reset(); }

  // Sends `cmd`, returns the reply's first line, or nullopt on a failure
  // (the connection is dropped, so the next call reconnects).
  std::optional<std::string> ask(std::size_t i, const std::string& cmd,
                                 std::chrono::milliseconds timeout) {
    Client& c = get(i);
    auto sent = Clock::now();
    if (!c.connected() || !c.send(cmd + "\n")) {
      drop(i);
      return std::nullopt;
    }
    auto l = c.line(timeout);
    if (!l) drop(i);
    std::string ticket = ticket_in(cmd);
    if (l && !ticket.empty()) history_.record({ticket, names_[i], cmd, *l, sent, Clock::now()});
    return l;
  }

  // A "Word: N" reply with its N lines; nullopt on failure.
  std::optional<std::vector<std::string>> ask_multi(std::size_t i, const std::string& cmd,
                                                    std::chrono::milliseconds timeout) {
    auto head = ask(i, cmd, timeout);
    if (!head) return std::nullopt;
    std::vector<std::string> out{*head};
    auto n = colon_count(*head);
    if (!n) return out;
    for (std::size_t k = 0; k < *n; ++k) {
      auto l = clients_[i]->line(timeout);
      if (!l) {
        drop(i);
        return std::nullopt;
      }
      out.push_back(*l);
    }
    return out;
  }

  std::size_t size() const { return ports_.size(); }

 private:
  std::vector<std::uint16_t> ports_;
  std::vector<std::unique_ptr<Client>> clients_;
  History& history_;
  std::vector<std::string> names_;
};

// During the storm: reads of accepted tickets through random nodes, for the
// history.
void reader_thread(const Options& opt, const std::vector<std::uint16_t>& ports,
                   std::vector<std::string> names, const std::atomic<bool>& stop,
                   const Accepted& accepted, History& history) {
  std::mt19937 rng(opt.seed + 500);
  Connections conns(ports, history, std::move(names));
  std::uniform_int_distribution<std::size_t> pick_node(0, ports.size() - 1);
  std::uniform_int_distribution<int> pick_cmd(0, 1);
  while (!stop.load()) {
    auto tickets = accepted.snapshot();
    if (!tickets.empty()) {
      auto it = tickets.begin();
      std::advance(it, std::uniform_int_distribution<std::size_t>(0, tickets.size() - 1)(rng));
      conns.ask(pick_node(rng), (pick_cmd(rng) ? "r" : "status ") + it->first, 5s);
    }
    sleep_until_or(Clock::now() + 20ms, stop);
  }
}

bool is_final_state(const std::string& s) {
  return s == "DONE" || s == "FAILED" || s == "TIMEOUT" || s == "CANCELLED";
}

int run(const Options& opt) {
  // Keep the directory whatever happens; removed below on success.
  setenv("JC_KEEP_TEST_DIRS", "1", 1);
  const char* level_env = std::getenv("CHAOS_LOG_LEVEL");
  std::string level = level_env ? level_env : "info";
  ClusterOptions copt;
  copt.proxies = opt.proxies;
  copt.nodes = opt.nodes;
  copt.slots = 2;
  // The secure set-up is the one under fire: nodes prove the cluster secret.
  copt.proxy_env = {{"NODE_TIMEOUT", "2000"},
                    {"REQUEST_RESULT_PERIOD", "500"},
                    {"MAX_ATTEMPTS", "50"},
                    {"LOG_LEVEL", level},
                    {"CLUSTER_SECRET", "chaos-test-secret"}};
  copt.node_env = {{"LOG_LEVEL", level}, {"CLUSTER_SECRET", "chaos-test-secret"}};
  // Extra settings for experiments, e.g. CHAOS_NODE_ENV=PROXY_GRACE_PERIOD=500,INFO_PERIOD=200.
  for (auto [var, env] : {std::pair{"CHAOS_PROXY_ENV", &copt.proxy_env},
                          std::pair{"CHAOS_NODE_ENV", &copt.node_env}}) {
    const char* extra = std::getenv(var);
    std::string list = extra ? extra : "";
    std::size_t pos = 0;
    while (pos < list.size()) {
      std::size_t comma = list.find(',', pos);
      if (comma == std::string::npos) comma = list.size();
      std::string kv = list.substr(pos, comma - pos);
      auto eq = kv.find('=');
      if (eq != std::string::npos) (*env)[kv.substr(0, eq)] = kv.substr(eq + 1);
      pos = comma + 1;
    }
  }

  std::string dir;
  bool ok = false;
  {
    Cluster cluster(copt);
    dir = cluster.dir();
    say("cluster dir %s proxy port %u", dir.c_str(), cluster.proxy_port());
    std::vector<std::uint16_t> ports;
    for (std::size_t i = 0; i < cluster.size(); ++i) ports.push_back(cluster.node_port(i));
    if (!cluster.wait_nodes_up(cluster.size(), 30s)) {
      say("FAIL: the nodes did not all join the proxy within 30 s");
      say("kept %s", dir.c_str());
      return 1;
    }
    say("%zu nodes up; chaos for %d s (seed %u)", cluster.size(), opt.seconds, opt.seed);

    // --- the storm ---
    Accepted accepted;
    ClientStats cstats;
    ChaosCounts counts;
    std::atomic<bool> stop{false};
    auto end = Clock::now() + std::chrono::seconds(opt.seconds);
    std::vector<std::thread> threads;
    for (int t = 1; t <= 3; ++t) {
      threads.emplace_back(client_thread, t, std::cref(opt), std::cref(ports), std::cref(stop),
                           std::ref(accepted), std::ref(cstats));
    }
    std::thread chaos(chaos_thread, std::cref(opt), std::ref(cluster), end, std::cref(stop),
                      std::ref(counts));
    std::vector<std::string> names;
    for (std::size_t i = 0; i < cluster.size(); ++i) names.push_back(cluster.node_id(i));
    History history;
    std::thread reader(reader_thread, std::cref(opt), std::cref(ports), names, std::cref(stop),
                       std::cref(accepted), std::ref(history));
    sleep_until_or(end, stop);
    stop = true;
    chaos.join();
    reader.join();
    for (auto& t : threads) t.join();
    say("storm over: connections=%ld refused=%ld submitted=%ld accepted=%ld other_replies=%ld "
        "no_reply=%ld",
        cstats.connections.load(), cstats.refused.load(), cstats.submitted.load(),
        cstats.accepted.load(), cstats.other_replies.load(), cstats.no_reply.load());

    // --- back to a healthy cluster ---
    cluster.proxy().signal(SIGCONT);
    for (std::size_t i = 0; i < cluster.size(); ++i) cluster.node(i).signal(SIGCONT);
    revive_dead(cluster, counts);
    if (!cluster.wait_nodes_up(cluster.size(), 60s)) {
      say("warning: not every node is up at the proxy after 60 s; checking anyway");
    }

    auto tickets = accepted.snapshot();
    {
      std::ofstream out(dir + "/accepted.txt");
      for (const auto& [t, n] : tickets) out << t << " " << cluster.node_id(n) << "\n";
    }
    say("checking %zu accepted tickets (list in %s/accepted.txt)", tickets.size(), dir.c_str());

    // --- every ticket: one result, the same on every node ---
    Connections conns(ports, history, names);
    std::mt19937 rng(opt.seed + 1000);
    std::uniform_int_distribution<std::size_t> pick_node(0, conns.size() - 1);
    auto final_deadline = Clock::now() + 240s;
    int results = 0, lost = 0, mismatched = 0, stuck = 0, gave_up = 0, bad = 0;
    long reruns = 0;
    std::vector<std::string> problems;
    for (const auto& [ticket, origin] : tickets) {
      std::string result;
      std::size_t via = pick_node(rng);
      while (true) {
        auto left = std::chrono::duration_cast<std::chrono::seconds>(final_deadline - Clock::now());
        long secs = std::clamp<long>(left.count(), 0, 120);
        auto reply = conns.ask(via, "wait " + ticket + " " + std::to_string(secs),
                               std::chrono::seconds(secs) + 10s);
        if (reply && starts_with(*reply, "Result: ")) {
          result = *reply;
          break;
        }
        if (Clock::now() >= final_deadline) break;
        if (!reply) {
          via = pick_node(rng);  // reconnect, maybe elsewhere
          std::this_thread::sleep_for(100ms);
        } else if (starts_with(*reply, "ERR")) {
          // Unknown here for now (e.g. the proxy is away): ask again shortly.
          std::this_thread::sleep_for(200ms);
        }
      }
      if (result.empty()) {
        // Stuck (known somewhere, never final) or lost (nobody knows it).
        bool known = false;
        std::string states;
        for (std::size_t i = 0; i < conns.size(); ++i) {
          auto s = conns.ask(i, "status " + ticket, 10s);
          states += " " + cluster.node_id(i) + ":'" + s.value_or("(no reply)") + "'";
          if (s && starts_with(*s, "Status: ")) known = true;
        }
        if (known) {
          ++stuck;
          problems.push_back("STUCK " + ticket + " (submitted to " + cluster.node_id(origin) +
                             "):" + states);
        } else {
          ++lost;
          problems.push_back("LOST " + ticket + " (submitted to " + cluster.node_id(origin) +
                             "):" + states);
        }
        continue;
      }
      ++results;
      if (starts_with(result, "Result: FAILED gave up after")) {
        ++gave_up;
        problems.push_back("GAVE UP " + ticket + ": " + result);
      } else if (result.find("Executed Job[" + ticket + "]") == std::string::npos) {
        ++bad;
        problems.push_back("BAD RESULT " + ticket + ": " + result);
      }
      // The same result on every other node.
      for (std::size_t i = 0; i < conns.size(); ++i) {
        if (i == via) continue;
        std::optional<std::string> other;
        // A node that has not heard of the result yet asks the proxy; give it a few tries.
        eventually(
            [&] {
              other = conns.ask(i, "r" + ticket, 10s);
              return other && starts_with(*other, "Result: ");
            },
            15s, 200ms);
        if (!other || *other != result) {
          ++mismatched;
          problems.push_back("MISMATCH " + ticket + ": " + cluster.node_id(via) + " says '" +
                             result + "' but " + cluster.node_id(i) + " says '" +
                             other.value_or("(no reply)") + "'");
          break;
        }
      }
      // Dispatches beyond the first.
      auto s = conns.ask(pick_node(rng), "status " + ticket, 10s);
      auto pos = s ? s->find(" attempt=") : std::string::npos;
      if (pos != std::string::npos) {
        long attempts = std::atol(s->c_str() + pos + 9);
        if (attempts > 1) reruns += attempts - 1;
      }
    }

    // --- what the nodes list (getall): informational, except a ticket no node lists ---
    std::set<std::string> listed;
    int listed_unseen = 0, listed_nonfinal = -1, unlisted = 0;
    bool getall_ok = false;
    // The origin node learns a result from the proxy's push: give it a moment.
    eventually(
        [&] {
          std::set<std::string> seen;
          int nonfinal = 0;
          for (std::size_t i = 0; i < conns.size(); ++i) {
            auto jobs = conns.ask_multi(i, "getall", 30s);
            if (!jobs || !starts_with(jobs->front(), "Jobs: ")) return false;
            for (std::size_t k = 1; k < jobs->size(); ++k) {
              const std::string& l = (*jobs)[k];
              auto sp1 = l.find(' ');
              auto sp2 = l.find(' ', sp1 + 1);
              std::string t = l.substr(0, sp1);
              std::string state =
                  sp1 == std::string::npos
                      ? ""
                      : l.substr(sp1 + 1,
                                 sp2 == std::string::npos ? std::string::npos : sp2 - sp1 - 1);
              seen.insert(t);
              if (tickets.count(t) && !is_final_state(state)) ++nonfinal;
            }
          }
          getall_ok = true;
          listed = std::move(seen);
          listed_nonfinal = nonfinal;
          return nonfinal == 0;
        },
        20s, 500ms);
    if (!getall_ok) problems.push_back("GETALL did not answer on every node");
    for (const auto& t : listed) listed_unseen += tickets.count(t) ? 0 : 1;
    for (const auto& [t, origin] : tickets) {
      if (getall_ok && !listed.count(t)) {
        ++unlisted;
        problems.push_back("UNLISTED " + t + ": accepted by " + cluster.node_id(origin) +
                           " but no node's getall lists it");
      }
    }

    // --- the history: no read went backwards, by any client through any node ---
    auto reads = history.snapshot();
    auto backwards = backwards_reads(reads);
    for (const auto& b : backwards) problems.push_back(b);
    say("history: %zu reads checked, %zu went backwards", reads.size(), backwards.size());

    revive_dead(cluster, counts);  // a crash during the checks counts too
    int stops = counts.node_stops + counts.proxy_stops;
    bool reruns_unexplained =
        reruns > 0 && counts.node_kills == 0 && counts.proxy_kills == 0 && stops == 0;
    if (reruns_unexplained) problems.push_back("RERUNS without any kill or stop");
    if (accepted.duplicates() > 0) {
      problems.push_back("DUPLICATE tickets handed out: " + std::to_string(accepted.duplicates()));
    }
    // A run that accepted nothing, or did nothing to the processes, proved nothing.
    if (tickets.empty()) problems.push_back("no ticket was accepted");
    if (counts.node_kills + counts.proxy_kills + stops == 0)
      problems.push_back("no fault was injected");
    for (const auto& p : problems) say("%s", p.c_str());
    say("chaos actions: node_kills=%d proxy_kills=%d (leader %d, two at once %d) node_stops=%d "
        "proxy_stops=%d nothing=%d crashes=%d restart_retries=%d",
        counts.node_kills, counts.proxy_kills, counts.leader_kills, counts.majority_losses,
        counts.node_stops, counts.proxy_stops, counts.nothing, counts.crashes,
        counts.restart_retries);
    ok = lost == 0 && mismatched == 0 && stuck == 0 && gave_up == 0 && bad == 0 && unlisted == 0 &&
         getall_ok && counts.crashes == 0 && !reruns_unexplained && accepted.duplicates() == 0 &&
         !tickets.empty() && counts.node_kills + counts.proxy_kills + stops > 0 &&
         backwards.empty();
    std::printf(
        "chaos seed=%u seconds=%d proxies=%d nodes=%d jobs_accepted=%zu results=%d lost=%d "
        "mismatched=%d duplicates=%d "
        "stuck=%d node_kills=%d proxy_kills=%d leader_kills=%d stops=%d reruns=%ld listed_unseen=%d "
        "gave_up=%d bad=%d unlisted=%d listed_nonfinal=%d crashes=%d backwards=%zu "
        "elapsed=%.1fs %s\n",
        opt.seed, opt.seconds, opt.proxies, opt.nodes, tickets.size(), results, lost, mismatched,
        accepted.duplicates(), stuck, counts.node_kills, counts.proxy_kills, counts.leader_kills,
        stops, reruns, listed_unseen, gave_up, bad, unlisted,
        listed_nonfinal, counts.crashes, backwards.size(), elapsed(), ok ? "PASS" : "FAIL");
    std::fflush(stdout);
  }  // every process killed here
  if (ok && std::getenv("CHAOS_KEEP") == nullptr) {
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  } else {
    std::printf("kept the cluster directory (data and logs): %s\n", dir.c_str());
    std::fflush(stdout);
  }
  return ok ? 0 : 1;
}

[[noreturn]] void usage(const char* argv0) {
  std::fprintf(stderr, "usage: %s [--seconds N] [--seed S] [--nodes K] [--proxies P]\n", argv0);
  std::exit(2);
}

}  // namespace

int main(int argc, char** argv) {
  Options opt;
  for (int i = 1; i < argc; ++i) {
    std::string a = argv[i];
    if (i + 1 >= argc) usage(argv[0]);
    try {
      if (a == "--seconds") {
        opt.seconds = std::stoi(argv[++i]);
      } else if (a == "--seed") {
        opt.seed = static_cast<unsigned>(std::stoul(argv[++i]));
      } else if (a == "--nodes") {
        opt.nodes = std::stoi(argv[++i]);
      } else if (a == "--proxies") {
        opt.proxies = std::stoi(argv[++i]);
      } else {
        usage(argv[0]);
      }
    } catch (const std::exception&) {
      usage(argv[0]);
    }
  }
  if (opt.seconds < 1 || opt.nodes < 1 || opt.proxies < 1 || opt.proxies == 2) usage(argv[0]);
  signal(SIGPIPE, SIG_IGN);
  try {
    return run(opt);
  } catch (const std::exception& e) {
    std::fprintf(stderr, "chaos_test: %s\n", e.what());
    return 1;
  }
}
