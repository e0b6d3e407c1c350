// cluster_node PROXY_HOST PROXY_PORT: reads configuration, opens the store,
// runs the node until SIGTERM or SIGINT.
#include <algorithm>
#include <charconv>
#include <fmt/format.h>
#include <sys/stat.h>
#include <unistd.h>

#include <csignal>
#include <cstdio>
#include <filesystem>
#include <fstream>
#include <sstream>
#include <thread>

#include "cluster_node/node_server.h"
#include "common/config.h"
#include "common/log.h"
#include "net/asio.h"
#include "net/program.h"
#include "net/tls.h"
#include "storage/store.h"

namespace {

constexpr std::uint32_t kAutomaticUidBase = 0xffffffffu;

constexpr const char* kUsage = R"(usage: cluster_node PROXY_HOST PROXY_PORT
       PROXY_ADDRESSES=host:port,host:port,host:port cluster_node

A jobcluster node: accepts client jobs over TCP (try `nc localhost 9000`,
then `help`), forwards them to the reverse proxy at PROXY_HOST:PROXY_PORT,
and runs the jobs the proxy dispatches to it.

Environment (defaults in brackets):
  PROXY_ADDRESSES        replicated proxies: host:port of each, comma-separated; the
                         node follows whichever leads [none: the arguments]
  CLIENT_PORT            TCP port for clients; 0 = any free port [9000]
  NODE_ID                stable name of the node [generated once, kept in DATA_DIR]
  NODE_SLOTS             jobs run at the same time [number of CPUs]
  SLOT_CPUS              auto: each slot's jobs on a CPU of their own where there are
                         as many CPUs as slots; off: slots share the CPUs; or a list,
                         e.g. 1,2,3: slot i on the i-th CPU named [auto]
  DATA_DIR               LevelDB directory [./data/cluster_node-<CLIENT_PORT>]
  INFO_PERIOD            ms between INFO messages to the proxy [500]
  REQUEST_RESULT_PERIOD  ms between re-asking the proxy for awaited results, and
                         the round after which a held job is written [1000]
  MAX_CLIENTS            most client connections at once [10000]
  JOB_TIMEOUT            wall-clock limit of a run job, ms [10000]; CPU time defaults to it
  JOB_MEMORY_MB          memory of a run job's whole process tree, tmpfs included [256]
  JOB_OUTPUT_KB          limit of each of stdout and stderr [1024]
  JOB_DISK_MB            a run job's working directory and /tmp together [64]
  JOB_MAX_TIMEOUT, JOB_MAX_MEMORY_MB, JOB_MAX_OUTPUT_KB, JOB_MAX_DISK_MB
                         the most a job may ask [300000, 4096, 4096, 4096]
  JOB_PROCESSES          processes (and threads) of one run of a job [256]
  JOB_READONLY_PATHS     host paths a run job may read, comma-separated (e.g. /opt/jdk) [none]
  JOB_UID_BASE           as root, job in slot i runs as user id JOB_UID_BASE+i [derived per node];
                         0 = every job runs as JOB_USER
  JOB_USER               user that runs jobs when JOB_UID_BASE=0 [nobody]
  JOB_WORK_DIR           jobs' working directories where the node cannot give them a
                         private tmpfs (not root) [$TMPDIR/jobcluster-<NODE_ID>]
  CLUSTER_SECRET         proves membership to the proxy, and keys the TLS of the
                         link to it (the same value on the proxy and every node) [none]
  CLIENT_TOKENS          a file of name:token lines: clients send `auth <token>`
                         first, and see and cancel only their own jobs [none]
  ADMIN_NAMES            comma-separated names (from CLIENT_TOKENS) that may see
                         and cancel every job and `drain` [none]
  MAX_CLIENTS_PER_ADDRESS
                         most client connections from one address [256]
  CLIENT_IDLE_TIMEOUT    ms after which a client connection that sent nothing and
                         waits for nothing is closed [300000]
  TLS_CERT, TLS_KEY, TLS_CA
                         PEM files: the link to the proxy uses TLS with these
                         certificates (all three, or none); the proxy's must lead
                         to TLS_CA and name PROXY_HOST [none]
  DRAIN_TIMEOUT          ms a node stopped by SIGTERM/SIGINT waits for its running
                         jobs to finish and be delivered [8000]
  PROXY_GRACE_PERIOD     ms without the proxy after which the node runs its own
                         clients' queued jobs itself [30000]; 0 = never
  API_PORT               HTTP port of the judge0-compatible API; 0 = any free port [off]
  API_CORS_ORIGINS       origins a browser may call the API from, comma-separated [*]
  API_MAX_BODY_KB        largest request body the API takes [8192]
  API_MAX_WAIT           seconds a `wait=true` submission may block [60]
  API_MAX_BATCH          most submissions in one batch [20]
  LANGUAGES_FILE         a language table (JSON) over the built-in one [none]
  JOB_ALLOW_NETWORK      1: jobs may ask for the node's network (enable_network) [0]
  CALLBACK_ALLOW         CIDR ranges callbacks may reach although they are loopback,
                         link-local or private, comma-separated [none]
  CALLBACK_RETRY_S       seconds a callback is retried until answered 2xx [3600]
  NODE_LABELS            comma-separated labels this node offers, for `run --needs` [none]
  BIND_ADDRESS           address to listen on [0.0.0.0]
  LOG_LEVEL              error, warn, info, debug [info]; VERBOSE=true means debug
)";

// SLOT_CPUS: auto, off, or one CPU per slot (at least NODE_SLOTS of them,
// each one this node may use, none twice).
jc::runner::SlotCpus slot_cpus(const std::string& text, std::uint32_t slots) {
  jc::runner::SlotCpus out;
  if (text.empty() || text == "auto") return out;
  if (text == "off") {
    out.pin = false;
    return out;
  }
  auto allowed = jc::runner::allowed_cpus();
  auto bad = [&](const std::string& why) {
    return jc::config::ConfigError(fmt::format(
        "SLOT_CPUS must be auto, off, or a comma-separated CPU per slot ({}), got '{}': {}", slots,
        text, why));
  };
  std::size_t at = 0;
  while (at <= text.size()) {
    std::size_t comma = std::min(text.find(',', at), text.size());
    std::string item = text.substr(at, comma - at);
    unsigned cpu = 0;
    auto [ptr, ec] = std::from_chars(item.data(), item.data() + item.size(), cpu);
    if (item.empty() || ec != std::errc() || ptr != item.data() + item.size())
      throw bad(fmt::format("'{}' is not a CPU number", item));
    if (std::find(allowed.begin(), allowed.end(), cpu) == allowed.end())
      throw bad(fmt::format("this node may not use CPU {}", cpu));
    if (std::find(out.cpus.begin(), out.cpus.end(), cpu) != out.cpus.end())
      throw bad(fmt::format("CPU {} is named twice", cpu));
    out.cpus.push_back(cpu);
    at = comma + 1;
  }
  if (out.cpus.size() < slots) throw bad(fmt::format("{} CPUs for {} slots", out.cpus.size(), slots));
  return out;
}

// JOB_READONLY_PATHS: absolute paths that exist, comma-separated.
std::vector<std::string> readonly_paths(const std::string& text) {
  std::vector<std::string> out;
  std::size_t at = 0;
  while (at < text.size()) {
    std::size_t comma = text.find(',', at);
    std::string p = text.substr(at, comma == std::string::npos ? std::string::npos : comma - at);
    at = comma == std::string::npos ? text.size() : comma + 1;
    if (p.empty()) continue;
    std::error_code ec;
    if (p[0] != '/' || p == "/" || p.find("/..") != std::string::npos ||
        !std::filesystem::exists(p, ec)) {
      throw jc::config::ConfigError(fmt::format(
          "JOB_READONLY_PATHS must be absolute paths (not /) that exist, comma-separated, got '{}'",
          p));
    }
    std::string normal = std::filesystem::path(p).lexically_normal().string();
    while (normal.size() > 1 && normal.back() == '/') normal.pop_back();
    // A job has its own of these; the host's would be hidden or harmful.
    for (const char* own : {"/proc", "/dev", "/tmp", "/box", "/sys"}) {
      std::string o = own;
      if (normal == o || normal.rfind(o + "/", 0) == 0) {
        throw jc::config::ConfigError(fmt::format(
            "JOB_READONLY_PATHS must not name {} or a path in it (a job has its own), got '{}'",
            o, p));
      }
    }
    out.push_back(normal);
  }
  return out;
}

jc::node::NodeConfig load_config(int argc, char** argv) {
  using namespace jc::config;
  jc::node::NodeConfig c;
  // PROXY_ADDRESSES: every replicated proxy; the arguments then may be left
  // out (when given, they are one more address).
  std::string list = env_string("PROXY_ADDRESSES", "");
  auto add = [&](const std::string& host, const std::string& port_text, const char* what) {
    if (host.empty()) throw ConfigError(fmt::format("{} must not name an empty host", what));
    std::string port = std::to_string(parse_port(what, port_text));
    if (port == "0") throw ConfigError(fmt::format("{} port must be from 1 to 65535, got '0'", what));
    std::pair<std::string, std::string> entry{host, port};
    if (std::find(c.proxies.begin(), c.proxies.end(), entry) == c.proxies.end()) {
      c.proxies.push_back(std::move(entry));
    }
  };
  if (!list.empty()) {
    std::size_t start = 0;
    for (;;) {
      std::size_t comma = list.find(',', start);
      std::string entry = list.substr(start, comma == std::string::npos ? std::string::npos : comma - start);
      entry.erase(0, entry.find_first_not_of(" \t"));
      entry.erase(entry.find_last_not_of(" \t") + 1);
      auto colon = entry.rfind(':');
      if (colon == std::string::npos) {
        throw ConfigError(fmt::format(
            "PROXY_ADDRESSES must be comma-separated host:port entries, got '{}'", list));
      }
      add(entry.substr(0, colon), entry.substr(colon + 1), "PROXY_ADDRESSES");
      if (comma == std::string::npos) break;
      start = comma + 1;
    }
  }
  if (argc == 3) {
    if (std::string(argv[1]).empty()) throw ConfigError("PROXY_HOST must not be empty");
    add(argv[1], argv[2], "PROXY_PORT");
  } else if (argc != 1 || list.empty()) {
    throw ConfigError("expected PROXY_HOST PROXY_PORT, or PROXY_ADDRESSES (see --help)");
  }
  c.client_port = env_port("CLIENT_PORT").value_or(9000);
  unsigned cpus = std::max(1u, std::thread::hardware_concurrency());
  c.core.slots = static_cast<std::uint32_t>(env_int("NODE_SLOTS", cpus, 1, 100'000, "jobs"));
  c.slot_cpus = slot_cpus(env_string("SLOT_CPUS", "auto"), c.core.slots);
  c.core.retention.ttl_ms = jc::net::env_result_ttl();
  c.data_dir = env_string("DATA_DIR", fmt::format("./data/cluster_node-{}", c.client_port));
  c.info_period_ms = env_int("INFO_PERIOD", 500, 1, 3'600'000, "milliseconds");
  c.request_result_period_ms = env_int("REQUEST_RESULT_PERIOD", 1000, 1, 3'600'000, "milliseconds");
  c.max_clients =
      static_cast<std::size_t>(env_int("MAX_CLIENTS", 10'000, 1, 1'000'000, "connections"));
  auto& lim = c.job_limits;
  lim.maxima.timeout_ms = static_cast<std::uint32_t>(
      env_int("JOB_MAX_TIMEOUT", 300'000, 1, 86'400'000, "milliseconds"));
  lim.maxima.cpu_ms = lim.maxima.timeout_ms;
  lim.maxima.memory_mb =
      static_cast<std::uint32_t>(env_int("JOB_MAX_MEMORY_MB", 4096, 1, 1'048'576, "megabytes"));
  lim.maxima.output_kb =
      static_cast<std::uint32_t>(env_int("JOB_MAX_OUTPUT_KB", 4096, 1, 4096, "kilobytes"));
  lim.defaults.timeout_ms = static_cast<std::uint32_t>(env_int(
      "JOB_TIMEOUT", 10'000, 1, lim.maxima.timeout_ms, "milliseconds, at most JOB_MAX_TIMEOUT"));
  lim.defaults.cpu_ms = lim.defaults.timeout_ms;
  lim.defaults.memory_mb = static_cast<std::uint32_t>(env_int(
      "JOB_MEMORY_MB", 256, 1, lim.maxima.memory_mb, "megabytes, at most JOB_MAX_MEMORY_MB"));
  lim.defaults.output_kb = static_cast<std::uint32_t>(env_int(
      "JOB_OUTPUT_KB", 1024, 1, lim.maxima.output_kb, "kilobytes, at most JOB_MAX_OUTPUT_KB"));
  lim.maxima.disk_mb =
      static_cast<std::uint32_t>(env_int("JOB_MAX_DISK_MB", 4096, 1, 1'048'576, "megabytes"));
  lim.defaults.disk_mb = static_cast<std::uint32_t>(env_int(
      "JOB_DISK_MB", 64, 1, lim.maxima.disk_mb, "megabytes, at most JOB_MAX_DISK_MB"));
  c.job_processes =
      static_cast<std::uint32_t>(env_int("JOB_PROCESSES", 256, 1, 1'000'000, "processes"));
  c.readonly_paths = readonly_paths(env_string("JOB_READONLY_PATHS", ""));
  c.secret = env_string("CLUSTER_SECRET", "");
  c.tls = jc::net::env_tls_settings(c.secret);
  c.tokens = jc::net::env_client_tokens();
  c.max_clients_per_address = static_cast<std::size_t>(
      env_int("MAX_CLIENTS_PER_ADDRESS", 256, 1, 1'000'000, "connections"));
  c.client_idle_timeout_ms = env_int("CLIENT_IDLE_TIMEOUT", 300'000, 1, 86'400'000,
                                     "milliseconds a silent client that waits for nothing stays");
  c.drain_timeout_ms = env_int("DRAIN_TIMEOUT", 8'000, 0, 86'400'000,
                               "milliseconds a stopping node waits for its running jobs");
  c.proxy_grace_ms = env_int("PROXY_GRACE_PERIOD", 30'000, 0, 86'400'000,
                             "milliseconds; 0 = never run jobs without the proxy");
  c.job_user = env_string("JOB_USER", "nobody");
  if (auto base = env_raw("JOB_UID_BASE"); base && !base->empty()) {
    c.job_uid_base = static_cast<std::uint32_t>(
        env_int("JOB_UID_BASE", 0, 0, 2'000'000'000, "a user id; 0 = every job runs as JOB_USER"));
  } else {
    c.job_uid_base = kAutomaticUidBase;  // refined below, once DATA_DIR is known
  }
  c.bind_address = jc::net::env_bind_address();
  c.work_dir = env_string("JOB_WORK_DIR", "");
  c.allow_network = env_int("JOB_ALLOW_NETWORK", 0, 0, 1, "0 or 1") == 1;
  std::string labels = env_string("NODE_LABELS", "");
  for (std::size_t at = 0; at < labels.size();) {
    std::size_t comma = std::min(labels.find(',', at), labels.size());
    std::string label = labels.substr(at, comma - at);
    at = comma + 1;
    bool ok = !label.empty() && label.size() <= 64 &&
              std::all_of(label.begin(), label.end(), [](char ch) {
                return std::isalnum(static_cast<unsigned char>(ch)) || ch == '.' || ch == '_' ||
                       ch == '-';
              });
    if (!ok) {
      throw ConfigError(fmt::format(
          "NODE_LABELS must be comma-separated words of A-Z a-z 0-9 . _ - (at most 64 "
          "characters each), got '{}'",
          labels));
    }
    c.core.offers.push_back("label:" + label);
  }
  if (c.allow_network) c.core.offers.push_back("network");
  c.api_port = env_port("API_PORT");
  c.api_cors_origins = env_string("API_CORS_ORIGINS", "*");
  c.api_max_body_bytes = static_cast<std::size_t>(
      env_int("API_MAX_BODY_KB", 8192, 1, 1'048'576, "kilobytes")) << 10;
  auto& a = c.api_settings;
  a.wall_time_limit_ms = lim.defaults.timeout_ms;
  a.max_wall_time_limit_ms = lim.maxima.timeout_ms;
  a.cpu_time_limit_ms = lim.defaults.timeout_ms;
  a.max_cpu_time_limit_ms = lim.maxima.cpu_ms;
  a.memory_limit_kb = lim.defaults.memory_mb * 1024;
  a.max_memory_limit_kb = lim.maxima.memory_mb * 1024;
  a.stack_limit_kb = std::min<std::uint32_t>(64000, a.memory_limit_kb);
  a.max_stack_limit_kb = a.max_memory_limit_kb;
  a.max_processes_and_or_threads = c.job_processes;
  a.max_max_processes_and_or_threads = c.job_processes;
  a.max_file_size_kb = lim.defaults.disk_mb * 1024;
  a.max_max_file_size_kb = lim.maxima.disk_mb * 1024;
  a.output_kb = lim.defaults.output_kb;
  a.disk_mb = lim.defaults.disk_mb;
  a.allow_network = c.allow_network;
  a.max_wait_s = static_cast<std::uint32_t>(env_int("API_MAX_WAIT", 60, 0, 3600, "seconds"));
  a.max_batch = static_cast<std::uint32_t>(env_int("API_MAX_BATCH", 20, 1, 10'000, "submissions"));
  a.callback_retry_s = static_cast<std::uint32_t>(
      env_int("CALLBACK_RETRY_S", 3600, 1, 30 * 86'400, "seconds"));
  std::string allow = env_string("CALLBACK_ALLOW", "");
  auto ranges = jc::api::parse_cidrs(allow);
  if (!ranges) {
    throw ConfigError(fmt::format(
        "CALLBACK_ALLOW must be comma-separated CIDR ranges (10.0.0.0/8,fd00::/8), got '{}'", allow));
  }
  a.callback_allow = std::move(*ranges);
  // The language table: built in, LANGUAGES_FILE's entries over it.
  if (std::string err = jc::api::parse_languages(jc::api::builtin_languages_json(), c.language_table);
      !err.empty()) {
    throw ConfigError("the built-in language table is broken: " + err);
  }
  if (auto file = env_raw("LANGUAGES_FILE"); file && !file->empty()) {
    std::ifstream in(*file);
    std::stringstream text;
    text << in.rdbuf();
    if (!in) throw ConfigError(fmt::format("LANGUAGES_FILE cannot be read: '{}'", *file));
    std::vector<jc::api::Language> extra;
    if (std::string err = jc::api::parse_languages(text.str(), extra); !err.empty()) {
      throw ConfigError(fmt::format("LANGUAGES_FILE '{}' is not a language table: {}", *file, err));
    }
    jc::api::merge_languages(c.language_table, std::move(extra));
  }
  c.core.node_id = env_string("NODE_ID", "");
  if (!c.core.node_id.empty() && !jc::protocol::is_valid_node_id(c.core.node_id)) {
    throw ConfigError(fmt::format(
        "NODE_ID must be 1 to 64 characters of A-Z a-z 0-9 . _ -, got '{}'", c.core.node_id));
  }
  return c;
}

std::string advertised_host(const std::string& bind) {
  if (bind != "0.0.0.0" && bind != "::") return bind;
  char name[256] = {};
  if (gethostname(name, sizeof(name) - 1) == 0 && name[0] != '\0') return name;
  return "localhost";
}

// Settings that need the store (the stable node id) or the final data
// directory, and process-wide set-up for running jobs.
void prepare(jc::node::NodeConfig& config, jc::storage::Store& store) {
  config.core.node_id = jc::node::NodeCore::stable_node_id(store, config.core.node_id);
  config.identity = jc::node::NodeCore::data_identity(store);
  config.advertise_host = advertised_host(config.bind_address);
  if (config.job_uid_base == kAutomaticUidBase) {
    // A range of its own per node on this machine (several nodes may share
    // one), derived from where its state lives.
    std::uint32_t h = 2166136261u;
    for (char ch : std::filesystem::absolute(config.data_dir).string() + config.core.node_id) {
      h = (h ^ static_cast<unsigned char>(ch)) * 16777619u;
    }
    config.job_uid_base = 200'000 + (h % 30'000) * 1024;
    if (config.core.slots > 1024) config.job_uid_base = 0;
  }
  {
    // What this machine runs (offered to the proxy, which gives a job only
    // to a node that runs its language), named with the versions installed
    // where the API shows them; the paths its toolchains read join the
    // jobs' read-only view.
    config.languages = jc::api::detect_languages(config.language_table, jc::api::system_probe(),
                                                 config.api_port.has_value());
    for (const auto& l : config.languages) config.core.offers.push_back(fmt::format("lang:{}", l.id));
    for (const auto& l : config.languages) {
      for (const auto& p : l.readonly_paths) {
        if (std::filesystem::exists(p) &&
            std::find(config.readonly_paths.begin(), config.readonly_paths.end(), p) ==
                config.readonly_paths.end()) {
          config.readonly_paths.push_back(p);
        }
      }
    }
  }
  if (config.work_dir.empty()) {
    const char* tmp = std::getenv("TMPDIR");
    config.work_dir =
        fmt::format("{}/jobcluster-{}", tmp && *tmp ? tmp : "/tmp", config.core.node_id);
  }
  // Writes to a job's stdin pipe after it exited must fail, not kill us.
  signal(SIGPIPE, SIG_IGN);
}

}  // namespace

int main(int argc, char** argv) {
  if (auto code = jc::net::info_flags(argc, argv, "cluster_node", kUsage)) return *code;
  auto config = jc::net::load_config_or_report<jc::node::NodeConfig>(
      "cluster_node", [&] { return load_config(argc, argv); });
  if (!config) return 2;
  return jc::net::run_server<jc::node::NodeServer>(std::move(*config), "node", prepare);
}
