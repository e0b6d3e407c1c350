#include <fmt/format.h>
#include "bench/probe.h"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <sstream>

namespace jc::bench {

namespace fs = std::filesystem;

double seconds_since(Clock::time_point t0) {
  return std::chrono::duration<double>(Clock::now() - t0).count();
}

ProcessUsage usage_of(const std::string& name, pid_t pid) {
  ProcessUsage u;
  u.name = name;
  std::ifstream stat("/proc/" + std::to_string(pid) + "/stat");
  std::string line;
  if (std::getline(stat, line) && line.rfind(')') != std::string::npos) {
    // Fields after "pid (comm) ": state is field 3; utime, stime, cutime and
    // cstime are fields 14 to 17, in clock ticks.
    std::istringstream rest(line.substr(line.rfind(')') + 2));
    std::string field;
    double ticks = static_cast<double>(sysconf(_SC_CLK_TCK));
    for (int i = 3; i <= 17 && rest >> field; ++i) {
      if (i == 14 || i == 15) u.cpu_s += std::stod(field) / ticks;
      if (i == 16 || i == 17) u.children_cpu_s += std::stod(field) / ticks;
    }
  }
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  while (std::getline(status, line)) {
    if (line.rfind("VmHWM:", 0) == 0) u.peak_mb = std::stod(line.substr(6)) / 1024.0;
    if (line.rfind("VmRSS:", 0) == 0) u.rss_mb = std::stod(line.substr(6)) / 1024.0;
  }
  return u;
}

std::int64_t rss_kb(pid_t pid) {
  std::ifstream status("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(status, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::stoll(line.substr(6));
  }
  return -1;
}

std::vector<ProcessUsage> cluster_usage(jc::test::Cluster& cluster) {
  std::vector<ProcessUsage> out;
  for (std::size_t k = 0; k < cluster.proxy_count(); ++k) {
    out.push_back(usage_of(cluster.proxy_count() > 1 ? fmt::format("reverse_proxy {}", k + 1)
                                                     : std::string("reverse_proxy"),
                           cluster.proxy(k).pid()));
  }
  for (std::size_t i = 0; i < cluster.size(); ++i) {
    out.push_back(usage_of("node " + cluster.node_id(i), cluster.node(i).pid()));
  }
  return out;
}

ProcessUsage self_usage() {
  ProcessUsage u = usage_of("jc_bench (clients)", getpid());
  // Its children are the cluster's processes, already counted on their own.
  u.children_cpu_s = 0;
  return u;
}

std::optional<ClusterSnapshot> query_stats(jc::test::Client& client,
                                           std::chrono::milliseconds timeout) {
  return parse_stats(client.multi("stats", timeout));
}

std::optional<ClusterSnapshot> poll_stats(std::uint16_t port,
                                          const std::function<bool(const ClusterSnapshot&)>& done,
                                          std::chrono::milliseconds timeout,
                                          std::chrono::milliseconds step) {
  std::optional<ClusterSnapshot> last;
  auto deadline = Clock::now() + timeout;
  auto client = std::make_unique<jc::test::Client>(port, std::chrono::seconds(2));
  bool ok = jc::test::eventually(
      [&] {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(deadline - Clock::now());
        auto s = query_stats(*client, std::clamp(left, std::chrono::milliseconds(100),
                                                 std::chrono::milliseconds(10000)));
        if (!s) {
          // A late reply would arrive out of step: start a fresh connection.
          client = std::make_unique<jc::test::Client>(port, std::chrono::seconds(2));
          return false;
        }
        last = s;
        return done(*s);
      },
      timeout, step);
  return ok ? last : std::nullopt;
}

StatusProbe::StatusProbe(std::uint16_t port, std::chrono::milliseconds period)
    : period_(period), thread_([this, port] { run(port); }) {}

StatusProbe::~StatusProbe() {
  std::string ignored;
  stop(ignored);
}

std::vector<double> StatusProbe::stop(std::string& error) {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  error = error_;
  if (error.empty() && ms_.empty()) error = "no answer to status";
  return ms_;
}

void StatusProbe::run(std::uint16_t port) {
  jc::test::Client client(port, std::chrono::seconds(2));
  const std::string reply = client.command("sleep 0");
  const std::string prefix = "Ticket ID: ";
  if (reply.rfind(prefix, 0) != 0) {
    error_ = "no ticket: " + reply;
    return;
  }
  const std::string ticket = reply.substr(prefix.size());
  if (client.command("wait " + ticket).rfind("Result: ", 0) != 0) {
    error_ = "its job did not finish";
    return;
  }
  const std::string ask = "status " + ticket;
  while (!stop_) {
    auto start = Clock::now();
    std::string answer = client.command(ask, std::chrono::seconds(5));
    if (answer.empty()) {
      error_ = "a status went unanswered for 5 s";
      return;
    }
    ms_.push_back(std::chrono::duration<double, std::milli>(Clock::now() - start).count());
    // A periodic tick, not a wait for something to happen.
    std::this_thread::sleep_for(period_);
  }
}

Sampler::Sampler(std::uint16_t port, Clock::time_point t0, std::chrono::milliseconds period)
    : t0_(t0), period_(period), thread_([this, port] { run(port); }) {}

Sampler::~Sampler() { stop(); }

std::vector<ClusterSnapshot> Sampler::stop() {
  stop_ = true;
  if (thread_.joinable()) thread_.join();
  return samples_;
}

void Sampler::run(std::uint16_t port) {
  auto client = std::make_unique<jc::test::Client>(port, std::chrono::seconds(2));
  auto next = Clock::now();
  while (!stop_) {
    auto s = query_stats(*client, std::chrono::seconds(5));
    if (s) {
      s->seconds = seconds_since(t0_);
      samples_.push_back(std::move(*s));
    } else {
      ++failures_;
      client = std::make_unique<jc::test::Client>(port, std::chrono::seconds(2));
    }
    next += period_;
    if (next < Clock::now()) next = Clock::now();
    // A periodic tick, not a wait for something to happen: wake in small
    // steps so stop() is quick.
    while (!stop_ && Clock::now() < next) {
      std::this_thread::sleep_for(
          std::min<Clock::duration>(next - Clock::now(), std::chrono::milliseconds(20)));
    }
  }
}

std::string find_on_path(const std::string& name) {
  const char* path = std::getenv("PATH");
  std::istringstream dirs(path != nullptr ? path : "/usr/local/bin:/usr/bin:/bin");
  std::string dir;
  while (std::getline(dirs, dir, ':')) {
    if (dir.empty()) continue;
    fs::path candidate = fs::path(dir) / name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  // Debian installs some servers in sbin, which a non-login PATH may lack.
  for (const char* dir : {"/usr/sbin", "/sbin"}) {
    fs::path candidate = fs::path(dir) / name;
    if (access(candidate.c_str(), X_OK) == 0) return candidate.string();
  }
  return "";
}

std::uint16_t free_loopback_port() {
  int fd = ::socket(AF_INET, SOCK_STREAM, 0);
  if (fd < 0) return 0;
  sockaddr_in addr{};
  addr.sin_family = AF_INET;
  addr.sin_port = 0;
  inet_pton(AF_INET, "127.0.0.1", &addr.sin_addr);
  socklen_t len = sizeof(addr);
  std::uint16_t port = 0;
  if (::bind(fd, reinterpret_cast<sockaddr*>(&addr), sizeof(addr)) == 0 &&
      ::getsockname(fd, reinterpret_cast<sockaddr*>(&addr), &len) == 0) {
    port = ntohs(addr.sin_port);
  }
  ::close(fd);
  return port;
}

std::int64_t dir_bytes(const std::string& path) {
  std::error_code ec;
  std::uintmax_t bytes = 0;
  // LevelDB deletes files while it compacts: one that vanishes between the
  // listing and its size counts as 0, and the walk goes on.
  for (fs::recursive_directory_iterator it(path, ec), end; !ec && it != end; it.increment(ec)) {
    std::error_code size_ec;
    if (!it->is_regular_file(size_ec)) continue;
    std::uintmax_t size = it->file_size(size_ec);
    if (!size_ec) bytes += size;
  }
  return static_cast<std::int64_t>(bytes);
}

double dir_size_mb(const std::string& path) {
  return static_cast<double>(dir_bytes(path)) / (1024.0 * 1024.0);
}

std::string write_file(const std::string& path, const std::string& text) {
  std::error_code ec;
  fs::path p(path);
  if (p.has_parent_path()) fs::create_directories(p.parent_path(), ec);
  std::ofstream out(path, std::ios::binary | std::ios::trunc);
  out << text;
  out.close();
  return out ? "" : "cannot write " + path;
}

}  // namespace jc::bench
