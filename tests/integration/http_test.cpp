// The proxy's HTTP API on STATUS_PORT: /metrics parses as Prometheus text,
// /api/state and /api/jobs/<ticket> give the cluster and a job as JSON.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <regex>
#include <sstream>

#include "tests/support/cluster.h"

using namespace jc::test;

namespace {

struct Response {
  int status = 0;
  std::string body;
};

Response get(std::uint16_t port, const std::string& path) {
  Client c(port);
  c.send("GET " + path + " HTTP/1.0\r\nHost: test\r\n\r\n");
  Response r;
  auto all = c.until_close();
  if (!all) return r;
  auto sp = all->find(' ');
  if (sp != std::string::npos) r.status = std::stoi(all->substr(sp + 1, 3));
  auto body = all->find("\r\n\r\n");
  if (body != std::string::npos) r.body = all->substr(body + 4);
  return r;
}

// Checks every line against the Prometheus text exposition format (0.0.4).
std::string prometheus_errors(const std::string& text) {
  static const std::regex kComment(R"(^# (HELP|TYPE) [a-zA-Z_:][a-zA-Z0-9_:]* .+$)");
  static const std::regex kSample(
      R"(^[a-zA-Z_:][a-zA-Z0-9_:]*(\{([a-zA-Z_][a-zA-Z0-9_]*="([^"\\]|\\.)*",?)*\})? (-?[0-9]+(\.[0-9]+)?([eE][+-]?[0-9]+)?|NaN|[+-]Inf)$)");
  std::istringstream lines(text);
  std::string line, errors;
  while (std::getline(lines, line)) {
    if (line.empty()) continue;
    if (!std::regex_match(line, line[0] == '#' ? kComment : kSample)) errors += line + "\n";
  }
  return errors;
}

// Parses with the Prometheus client library's own text-format parser
// (Debian's python3-prometheus-client); returns the metric family names
// found, or "" when the parser rejected the text (or is not installed).
std::string prometheus_parse(const std::string& text) {
  const char* probe = "/usr/bin/python3 -c 'import prometheus_client' 2>/dev/null";
  if (std::system(probe) != 0) return "(parser not installed)";
  std::string file =
      (std::filesystem::temp_directory_path() / ("jc-metrics-" + std::to_string(getpid()) + ".txt"))
          .string();
  {
    std::ofstream out(file);
    out << text;
  }
  std::string cmd =
      "/usr/bin/python3 -c \"import sys; from prometheus_client.parser import "
      "text_string_to_metric_families as f; "
      "print(' '.join(sorted(m.name for m in f(open(sys.argv[1]).read()))))\" " +
      file;
  std::string out;
  if (FILE* p = popen(cmd.c_str(), "r")) {
    char buf[4096];
    while (std::size_t n = fread(buf, 1, sizeof(buf), p)) out.append(buf, n);
    if (pclose(p) != 0) out.clear();
  }
  std::filesystem::remove(file);
  return out;
}

}  // namespace

TEST_CASE("http: /metrics, /api/state and /api/jobs/<ticket> on STATUS_PORT") {
  Cluster cluster({.nodes = 2, .slots = 1, .proxy_env = {{"STATUS_PORT", "0"}}});
  std::uint16_t http = cluster.proxy().wait_listening("for status");
  REQUIRE(http != 0);
  REQUIRE(cluster.wait_nodes_up(2));
  Client c(cluster.node_port(0));
  auto tickets = submit_many(c, 3, 10);
  REQUIRE(tickets.size() == 3);
  for (const auto& t : tickets) REQUIRE(!wait_result(c, t, 30s).empty());

  auto metrics = get(http, "/metrics");
  CHECK(metrics.status == 200);
  CHECK(prometheus_errors(metrics.body) == "");
  std::string families = prometheus_parse(metrics.body);
  INFO("parsed families: " << families);
  if (families != "(parser not installed)") {
    CHECK(families.find("jobcluster_jobs_finished") != std::string::npos);
    CHECK(families.find("jobcluster_dispatch_round_duration_seconds") != std::string::npos);
    CHECK(families.find("jobcluster_node_running_jobs") != std::string::npos);
  }
  CHECK(metrics.body.find("\njobcluster_jobs_submitted_total 3\n") != std::string::npos);
  CHECK(metrics.body.find("\njobcluster_jobs_finished_total{state=\"DONE\"} 3\n") !=
        std::string::npos);
  CHECK(metrics.body.find("\njobcluster_nodes_connected 2\n") != std::string::npos);
  CHECK(metrics.body.find("jobcluster_node_slots{node=\"n1\"} 1\n") != std::string::npos);
  CHECK(metrics.body.find("jobcluster_dispatch_round_duration_seconds_bucket{le=\"+Inf\"}") !=
        std::string::npos);

  auto state = get(http, "/api/state");
  CHECK(state.status == 200);
  CHECK(state.body.find("\"queue_length\":0") != std::string::npos);
  CHECK(state.body.find("\"id\":\"n2\"") != std::string::npos);

  auto job = get(http, "/api/jobs/" + tickets[0]);
  CHECK(job.status == 200);
  CHECK(job.body.find("\"ticket\":\"" + tickets[0] + "\"") != std::string::npos);
  CHECK(job.body.find("\"state\":\"DONE\"") != std::string::npos);
  CHECK(get(http, "/api/jobs/NOPE-1").status == 404);
  CHECK(get(http, "/api/jobs/bad%2Fticket").status == 400);
  CHECK(get(http, "/nothing-here").status == 404);
  auto page = get(http, "/");
  CHECK(page.status == 200);
  CHECK(page.body.find("fetch('/api/state'") != std::string::npos);
  {
    Client junk(http);
    junk.send(std::string(20000, 'x') + "\r\n\r\n");
    CHECK(junk.closed_by_peer(5s));
  }
  CHECK(get(http, "/api/state").status == 200);
}

TEST_CASE("http: `stats` in JSON on a node gives the same picture as /api/state") {
  Cluster cluster({.nodes = 2, .slots = 1, .proxy_env = {{"STATUS_PORT", "0"}}});
  std::uint16_t http = cluster.proxy().wait_listening("for status");
  REQUIRE(cluster.wait_nodes_up(2));
  Client c(cluster.node_port(1));
  REQUIRE(c.command("format json") == "OK format json");
  std::string stats = c.command("stats");
  auto state = get(http, "/api/state");
  // Same fields; the times and last-heard clocks move, so compare the rest.
  auto strip = [](std::string s) {
    static const std::regex kClocks(R"re("(last_heard_ms|time_ms)":[0-9]+,?)re");
    s = std::regex_replace(s, kClocks, "");
    static const std::regex kHistory(R"re("history":\[[^\]]*\],?)re");
    s = std::regex_replace(s, kHistory, "");  // the page's chart data, on /api/state only
    static const std::regex kJobs(R"re("recent_jobs":\[\],?)re");
    s = std::regex_replace(s, kJobs, "");  // the page's job list (none finished here)
    static const std::regex kProxy(R"re(,?"proxy":"up")re");
    s = std::regex_replace(s, kProxy, "");
    while (!s.empty() && (s.back() == '\n' || s.back() == ',')) s.pop_back();
    return s;
  };
  CHECK(strip(stats) == strip(state.body));
}
