// jc_bench's command line, parsed without I/O (bench.cpp prints the usage
// or the error).
#pragma once

#include <map>
#include <string>
#include <vector>

namespace jc::bench {

struct Options {
  // Single scenarios (the default when no suite option is given).
  std::string scenario = "e2e";  // e2e | latency
  int jobs = 2000;
  int nodes = 3;
  int slots = 2;
  int ms = 0;
  int clients = 1;
  bool run_jobs = false;     // --kind run: `run true` jobs instead of sleep jobs
  int prefetch = -1;         // DISPATCH_PREFETCH, when given
  int dispatch_period = -1;  // DISPATCH_PERIOD, when given
  std::string timeline;      // --timeline FILE: e2e samples as CSV

  // The suite.
  bool suite = false;
  bool quick = false;
  std::vector<std::string> only;  // --only a,b: a subset of the suite
  bool compare = false;           // beanstalkd on the same machine
  std::string out_dir;            // timelines of the suite; default build/bench

  // The soak (--only soak; never run unless named).
  int soak_seconds = -1;  // default 600, 60 with --quick
  int soak_rate = 5000;   // 0-ms jobs offered per second
  int soak_ttl = 60000;   // RESULT_TTL (ms) of the proxy and every node
  std::string soak_csv;   // default DIR/soak.csv

  // Both.
  std::map<std::string, std::string> proxy_env;  // --proxy-env K=V (repeatable)
  std::map<std::string, std::string> node_env;   // --node-env K=V, --env K=V sets both
  std::size_t window = 10000;                    // commands a client pipelines ahead

  bool help = false;
};

struct ParseResult {
  Options options;
  std::string error;  // non-empty: the command line is wrong
};
ParseResult parse_options(const std::vector<std::string>& args);

// Names the suite knows, in the order it runs them.
const std::vector<std::string>& suite_names();
// Names --only also accepts that the suite runs only when they are named
// (they take long), after the others.
const std::vector<std::string>& on_request_names();

std::string usage_text();

}  // namespace jc::bench
