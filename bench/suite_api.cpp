// The judge0-compatible API's figures (issue: the front door), each beside
// the line protocol doing the same work in the same run:
//   - durable POST /submissions per second, pipelined over keep-alive
//     through 3 nodes, against `run` submits through nc;
//   - end to end of Python print(1) through the API (wait=true) against
//     the same program through `run`;
//   - a C++ hello compiled per submission;
//   - the latency of wait=true for a program that prints one line.
// Every measure runs on a fresh cluster of 3 nodes with 2 slots and the
// API on; the rates are medians of rounds that alternate the two sides.
#include <fmt/format.h>
#include <nlohmann/json.hpp>

#include <algorithm>
#include <filesystem>
#include <thread>

#include "bench/figures.h"
#include "bench/probe.h"
#include "bench/suite.h"
#include "bench/replies.h"
#include "tests/support/http_client.h"

namespace jc::bench {

using namespace std::chrono_literals;
using jc::test::Client;
using jc::test::Cluster;
using jc::test::HttpAnswer;
using jc::test::HttpBrief;
using jc::test::HttpClient;
using nlohmann::json;

namespace {

constexpr std::size_t kHttpWindow = 256;  // wait=true requests pipelined per connection

std::vector<std::uint16_t> api_ports(Cluster& cluster) {
  std::vector<std::uint16_t> ports;
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    std::uint16_t p = cluster.node(i).wait_listening("judge0-compatible API");
    if (p == 0) throw std::runtime_error(fmt::format("node {} has no API port", i + 1));
    ports.push_back(p);
  }
  return ports;
}

std::unique_ptr<Cluster> api_cluster(const BenchContext& ctx) {
  ClusterSpec spec = cluster_spec(ctx, 3, 2);
  spec.pinned_node_env["API_PORT"] = "0";
  return start_cluster(spec, kUpTimeout);
}

std::string post_request(const std::string& target, const std::string& body) {
  return fmt::format(
      "POST {} HTTP/1.1\r\nHost: bench\r\nContent-Type: application/json\r\nContent-Length: "
      "{}\r\n\r\n{}",
      target, body.size(), body);
}

struct HttpRun {
  double seconds = 0;
  std::string error;
};

// Runs work(i, share) for clients i = 0..clients-1 at once, each on a thread
// of its own with its share of `count`; the seconds until the last is done,
// and the first client's error.
HttpRun run_clients(int clients, int count,
                    const std::function<std::string(std::size_t, std::size_t)>& work) {
  HttpRun run;
  const auto n = static_cast<std::size_t>(clients);
  std::vector<std::string> errors(n);
  auto t0 = Clock::now();
  {
    std::vector<std::thread> threads;
    for (std::size_t i = 0; i < n; ++i) {
      std::size_t share = static_cast<std::size_t>(count) / n + (i < static_cast<std::size_t>(count) % n ? 1 : 0);
      threads.emplace_back([&, i, share] { errors[i] = work(i, share); });
    }
    for (auto& t : threads) t.join();
  }
  run.seconds = seconds_since(t0);
  for (std::size_t i = 0; i < n && run.error.empty(); ++i) {
    if (!errors[i].empty()) run.error = fmt::format("client {}: {}", i + 1, errors[i]);
  }
  return run;
}

// `clients` connections, client i to node i % nodes, each POSTing its share
// of `count` copies of `body` to `target`, pipelined; check() says what is
// wrong with an answer ("" when right).
HttpRun http_posts(const std::vector<std::uint16_t>& ports, int clients, int count,
                   const std::string& target, const std::string& body, std::size_t window,
                   std::chrono::seconds timeout,
                   const std::function<std::string(const HttpBrief&)>& check) {
  std::vector<std::unique_ptr<HttpClient>> conns;
  for (int i = 0; i < clients; ++i) {
    conns.push_back(std::make_unique<HttpClient>(ports[static_cast<std::size_t>(i) % ports.size()]));
  }
  const std::string request = post_request(target, body);
  Deadline deadline = Clock::now() + timeout;
  return run_clients(clients, count, [&](std::size_t i, std::size_t share) {
    HttpClient& http = *conns[i];
    return pipeline(
        http.raw(), share, window, deadline, [&](std::size_t) { return request; },
        [&](std::size_t k) -> std::string {
          HttpBrief a = http.read_brief(left(deadline));
          if (a.status == 0) return fmt::format("no answer to request {}", k + 1);
          return check(a);
        });
  });
}

// `clients` nc connections, one per node, submitting their share of
// `count` copies of `line` pipelined; seconds until the last ticket.
HttpRun line_submits(Cluster& cluster, int clients, int count, const std::string& line,
                     std::size_t window, std::chrono::seconds timeout) {
  std::vector<std::unique_ptr<Client>> conns;
  for (int i = 0; i < clients; ++i) {
    conns.push_back(std::make_unique<Client>(cluster.node_port(static_cast<std::size_t>(i) % cluster.size())));
  }
  Deadline deadline = Clock::now() + timeout;
  return run_clients(clients, count, [&](std::size_t i, std::size_t share) {
    std::vector<std::string> tickets;
    return submit_jobs(*conns[i], share, line, window, deadline, tickets);
  });
}

std::string created(const HttpBrief& a) {
  if (a.status != 201) return fmt::format("answer {}: {}", a.status, a.body.substr(0, 200));
  return "";
}

// A wait=true answer of a program that should print `out` and be accepted.
std::function<std::string(const HttpBrief&)> accepted_with(std::string out) {
  return [out](const HttpBrief& a) -> std::string {
    if (a.status != 201) return fmt::format("answer {}: {}", a.status, a.body.substr(0, 200));
    json j = json::parse(a.body, nullptr, false);
    if (j.is_discarded() || !j.contains("status") || j["status"]["id"] != 3 || j["stdout"] != out) {
      return "not accepted with the expected output: " + std::string(a.body.substr(0, 300));
    }
    return "";
  };
}

double median_of(std::vector<double> v) {
  if (v.empty()) return 0;
  std::sort(v.begin(), v.end());
  return v.size() % 2 ? v[v.size() / 2] : (v[v.size() / 2 - 1] + v[v.size() / 2]) / 2;
}

std::string rates_text(const std::vector<double>& rates) {
  std::string out;
  for (double r : rates) out += (out.empty() ? "" : ", ") + grouped(r);
  return out;
}

const std::string& sleeper_body() {
  static const std::string body =
      json{{"source_code", "sleep 300"}, {"language_id", 46}, {"wall_time_limit", 300}}.dump();
  return body;
}

// 1. Durable submits, alternated rounds on fresh clusters: both sides pipeline
// as deep as the benchmark's clients do (the node reads at most 4,096 requests
// ahead on a connection, 20,000 lines).
void submit_rates(const BenchContext& ctx, ScenarioReport& r, bool quick) {
  const int submits = quick ? 5'000 : 20'000;
  // A round takes about a third of a second, and this shared machine moves
  // one by ±15%: five of each side give a steadier median than three.
  const int rounds = quick ? 1 : 5;
  auto m_submit = add_measure(
      r,
      fmt::format("durable POST /submissions: {} Bash `sleep 300` submissions, 3 keep-alive "
                  "connections (one per node, {} pipelined), vs `run` of the same through nc",
                  grouped(submits), ctx.window),
      ">= 0.7 x the line protocol's tickets/s");
  const std::string sleeper_line = "run --timeout 300000 bash -c 'sleep 300'";
  std::vector<double> api_rates, line_rates;
  // CPU microseconds per job of the proxy, of the nodes together and of the
  // clients, over the submits alone: where each side's time goes.
  struct Cost {
    std::vector<double> proxy, nodes, clients;
  } api_cost, line_cost;
  auto timed = [&](Cluster& cluster, Cost& cost, const std::function<HttpRun()>& run) {
    auto cpu = [&] {
      std::vector<double> out{0, 0, self_usage().cpu_s};
      for (const auto& u : cluster_usage(cluster)) out[u.name.rfind("node", 0) == 0 ? 1 : 0] += u.cpu_s;
      return out;
    };
    auto before = cpu();
    HttpRun result = run();
    // The tickets come before the proxy has every job: the work counts
    // until it has them all.
    poll_stats(cluster.node_port(0), [&](const ClusterSnapshot& s) { return s.submitted >= submits; },
               std::chrono::seconds(60), std::chrono::milliseconds(20));
    auto after = cpu();
    auto per_job = [&](int i) { return (after[i] - before[i]) * 1e6 / submits; };
    cost.proxy.push_back(per_job(0));
    cost.nodes.push_back(per_job(1));
    cost.clients.push_back(per_job(2));
    return result;
  };
  for (int round = 0; round < rounds; ++round) {
    {
      auto cluster = api_cluster(ctx);
      HttpRun line = timed(*cluster, line_cost, [&] {
        return line_submits(*cluster, 3, submits, sleeper_line, ctx.window, ctx.sizes.timeout);
      });
      if (!line.error.empty()) throw std::runtime_error("line-protocol submits: " + line.error);
      line_rates.push_back(safe_rate(submits, line.seconds));
    }
    {
      auto cluster = api_cluster(ctx);
      auto ports = api_ports(*cluster);
      HttpRun api = timed(*cluster, api_cost, [&] {
        return http_posts(ports, 3, submits, "/submissions", sleeper_body(), ctx.window,
                          ctx.sizes.timeout, created);
      });
      if (!api.error.empty()) throw std::runtime_error("API submits: " + api.error);
      api_rates.push_back(safe_rate(submits, api.seconds));
      if (round == rounds - 1) r.usage = cluster_usage(*cluster);
    }
  }
  auto cost_text = [](const Cost& c) {
    return fmt::format("proxy {:.1f}, nodes {:.1f}, clients {:.1f}", median_of(c.proxy),
                       median_of(c.nodes), median_of(c.clients));
  };
  r.details.push_back(fmt::format("CPU µs per submit (medians): API {}; `run` {}",
                                  cost_text(api_cost), cost_text(line_cost)));
  double api_rate = median_of(api_rates), line_rate = median_of(line_rates);
  double ratio = line_rate > 0 ? api_rate / line_rate : 0;
  set_measure(r, m_submit,
              fmt::format("{:.2f} x ({} vs {} per s)", ratio, grouped(api_rate), grouped(line_rate)),
              ratio >= 0.7);
  r.details.push_back(fmt::format("POST /submissions per s, rounds: {}; `run` tickets per s: {}",
                                  rates_text(api_rates), rates_text(line_rates)));
  r.figures["api_submit_rate"] = api_rate;
  r.figures["line_submit_rate"] = line_rate;
}

}  // namespace

void api_submit_scenario(const BenchContext& ctx, ScenarioReport& r) {
  submit_rates(ctx, r, ctx.sizes.timeout <= 60s);
}

void api_scenario(const BenchContext& ctx, ScenarioReport& r) {
  const bool quick = ctx.sizes.timeout <= 60s;
  const int py_jobs = quick ? 60 : 300;
  const int cpp_jobs = quick ? 6 : 24;
  const int latency_jobs = quick ? 10 : 50;
  const int rounds = quick ? 1 : 3;
  submit_rates(ctx, r, quick);
  auto m_e2e = add_measure(
      r,
      fmt::format("end to end, Python print(1): {} submissions with wait=true, 3 connections, vs "
                  "`run python3` through nc, until every result",
                  py_jobs),
      ">= 0.9 x the line protocol's jobs/s");
  auto m_cpp = add_measure(
      r, fmt::format("C++ hello, compiled per submission: {} with wait=true, 3 connections", cpp_jobs),
      "(reported)");
  auto m_latency = add_measure(
      r,
      fmt::format("latency of wait=true, Python print(1), one at a time ({}), vs `run` + `wait`",
                  latency_jobs),
      "(reported)");
  const std::string py = json{{"source_code", "print(1)"}, {"language_id", 71}}.dump();
  const std::string cpp =
      json{{"source_code",
            "#include <iostream>\nint main() { std::cout << \"hello, world\\n\"; }\n"},
           {"language_id", 54}}
          .dump();
  const std::string py_line = "run python3 -c 'print(1)'";

  // 2. End to end, Python print(1).
  std::vector<double> api_e2e, line_e2e;
  for (int round = 0; round < rounds; ++round) {
    {
      auto cluster = api_cluster(ctx);
      E2eRun run = run_e2e(*cluster, {.jobs = py_jobs,
                                      .clients = 3,
                                      .job_line = py_line,
                                      .window = ctx.window,
                                      .timeout = ctx.sizes.timeout});
      if (std::string e = outcome_error(run, py_jobs); !e.empty()) {
        throw std::runtime_error("`run python3` end to end: " + e);
      }
      line_e2e.push_back(run.jobs_per_s(py_jobs));
    }
    {
      auto cluster = api_cluster(ctx);
      auto ports = api_ports(*cluster);
      HttpRun api = http_posts(ports, 3, py_jobs, "/submissions?wait=true", py, kHttpWindow,
                               ctx.sizes.timeout, accepted_with("1\n"));
      if (!api.error.empty()) throw std::runtime_error("API end to end: " + api.error);
      api_e2e.push_back(safe_rate(py_jobs, api.seconds));
    }
  }
  double api_e2e_rate = median_of(api_e2e), line_e2e_rate = median_of(line_e2e);
  double e2e_ratio = line_e2e_rate > 0 ? api_e2e_rate / line_e2e_rate : 0;
  set_measure(r, m_e2e,
              fmt::format("{:.2f} x ({} vs {} jobs/s)", e2e_ratio, grouped(api_e2e_rate),
                          grouped(line_e2e_rate)),
              e2e_ratio >= 0.9);
  r.details.push_back(fmt::format("Python print(1) jobs/s through the API, rounds: {}; through "
                                  "`run`: {}",
                                  rates_text(api_e2e), rates_text(line_e2e)));
  r.figures["api_e2e_rate"] = api_e2e_rate;
  r.figures["line_e2e_rate"] = line_e2e_rate;

  // 3 and 4 on one cluster: C++ hello, then the latencies one at a time.
  auto cluster = api_cluster(ctx);
  auto ports = api_ports(*cluster);
  if (!std::filesystem::exists("/usr/bin/g++")) {
    set_measure(r, m_cpp, "not measured: no /usr/bin/g++ on this machine", false);
  } else {
    HttpRun run = http_posts(ports, 3, cpp_jobs, "/submissions?wait=true", cpp, 4,
                             ctx.sizes.timeout, accepted_with("hello, world\n"));
    if (!run.error.empty()) throw std::runtime_error("C++ hello: " + run.error);
    std::vector<double> one;
    HttpClient http(ports[0]);
    for (int i = 0; i < 5; ++i) {
      auto t0 = Clock::now();
      HttpAnswer a = http.post("/submissions?wait=true", cpp);
      if (std::string e = accepted_with("hello, world\n")({a.status, a.body}); !e.empty()) {
        throw std::runtime_error("C++ hello: " + e);
      }
      one.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    }
    set_measure(r, m_cpp,
                fmt::format("{:.1f} submissions/s with 3 connections; one alone {:.0f} ms (median of 5)",
                            safe_rate(cpp_jobs, run.seconds), median_of(one)),
                true);
  }
  std::vector<double> api_ms, line_ms;
  HttpClient http(ports[1]);
  Client nc(cluster->node_port(1));
  for (int i = 0; i < latency_jobs; ++i) {
    auto t0 = Clock::now();
    HttpAnswer a = http.post("/submissions?wait=true", py);
    if (std::string e = accepted_with("1\n")({a.status, a.body}); !e.empty()) throw std::runtime_error("latency: " + e);
    api_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
    t0 = Clock::now();
    std::string ticket = nc.command(py_line);
    if (ticket.rfind("Ticket ID: ", 0) != 0) throw std::runtime_error("latency: `run` gave " + ticket);
    nc.send("wait " + ticket.substr(11) + " 60\n");
    auto header = nc.line(60s);
    ResultHeader h = parse_result(header.value_or(""));
    auto frame = h.framed ? nc.bytes(h.stdout_bytes + 1 + h.stderr_bytes + 1, 10s) : std::nullopt;
    if (h.state != "DONE" || !frame || frame->rfind("1\n\n", 0) != 0) {
      throw std::runtime_error("latency: `run` gave " + header.value_or("nothing"));
    }
    for (std::size_t c = 0; c < h.cases; ++c) nc.line(10s);
    line_ms.push_back(std::chrono::duration<double, std::milli>(Clock::now() - t0).count());
  }
  Percentiles pa = percentiles(api_ms), pl = percentiles(line_ms);
  set_measure(r, m_latency,
              fmt::format("p50 {:.1f} ms, p99 {:.1f} ms (`run` + `wait`: p50 {:.1f} ms, p99 {:.1f} ms)",
                          pa.p50, pa.p99, pl.p50, pl.p99),
              true);
  r.figures["api_latency_p50_ms"] = pa.p50;
  r.figures["line_latency_p50_ms"] = pl.p50;
}

}  // namespace jc::bench
