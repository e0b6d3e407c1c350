// Runs are started on the sandbox's launcher threads (common/work_threads.h),
// off the node's event loop: the runner's Executor in this process, with
// real children. A cancel that comes while a run's spawn is still on its way
// must end the run as soon as it exists, not be lost.
#include <doctest/doctest.h>
#include <unistd.h>

#include <chrono>
#include <filesystem>
#include <map>
#include <optional>
#include <string>
#include <vector>

#include "net/asio.h"
#include "protocol/messages.h"
#include "runner/cgroup.h"
#include "runner/executor.h"
#include "runner/janitor.h"

using namespace std::chrono_literals;

namespace {

jc::protocol::Assignment run_job(const std::string& ticket, const std::string& command) {
  jc::protocol::Assignment a;
  a.spec.ticket = ticket;
  a.spec.kind = jc::protocol::JobKind::kRun;
  a.spec.command = command;
  // The node fills every limit before a job reaches the executor.
  a.spec.limits.timeout_ms = 120'000;
  a.spec.limits.cpu_ms = 120'000;
  a.spec.limits.memory_mb = 256;
  a.spec.limits.output_kb = 64;
  a.spec.limits.disk_mb = 16;
  a.attempt = 1;
  return a;
}

// The node's cgroup directories (every hierarchy), found by name; none
// where the sandbox has no cgroups. Tests running beside this one make and
// remove groups of their own: a walk that meets one vanishing stops with
// an error, and is made again (it found nothing it can be sure of).
std::vector<std::filesystem::path> node_groups(const std::string& name) {
  namespace fs = std::filesystem;
  for (int attempt = 0; attempt < 20; ++attempt) {
    std::vector<fs::path> out;
    std::error_code ec;
    fs::recursive_directory_iterator it("/sys/fs/cgroup",
                                        fs::directory_options::skip_permission_denied, ec);
    for (fs::recursive_directory_iterator end; !ec && it != end; it.increment(ec)) {
      std::error_code type_ec;
      if (it->is_directory(type_ec) && it->path().filename() == name) {
        out.push_back(it->path());
        it.disable_recursion_pending();
      }
    }
    if (!ec) return out;
  }
  FAIL("no walk of /sys/fs/cgroup completed in 20 attempts");
  return {};
}

}  // namespace

TEST_CASE("launcher: a run cancelled while its spawn is on its way ends CANCELLED at once") {
  namespace fs = std::filesystem;
  const std::string id = "launcher-" + std::to_string(::getpid());
  const fs::path work = fs::temp_directory_path() / id;
  fs::create_directories(work);
  boost::asio::io_context io;
  jc::runner::SandboxConfig config;
  config.node_id = id;
  config.identity = id;
  config.isolation.slots = 2;
  config.isolation.work_root = work.string();
  config.slot_cpus.pin = false;
  std::map<std::string, jc::protocol::JobResult> results;
  {
    jc::runner::Executor executor(
        io, id, config, 2,
        [&](const std::string& t, jc::protocol::JobResult r) { results[t] = std::move(r); });
    executor.start(run_job("t-cancelled", "sleep 300"));
    executor.start(run_job("t-runs", "echo done"));
    // Two cases: a job of two runs, whose cgroup holds theirs.
    auto cases = run_job("t-cases", "cat");
    cases.spec.cases = {{"1", "a", false, ""}, {"2", "b", false, ""}};
    // Nothing of either run has come back to the event loop yet: its
    // spawn is the launcher's, so this cancel finds it still launching.
    CHECK(executor.cancel("t-cancelled"));
    auto deadline = std::chrono::steady_clock::now() + 60s;
    while (results.size() < 2 && std::chrono::steady_clock::now() < deadline) {
      io.run_for(50ms);
    }
    executor.start(std::move(cases));  // in the slot the cancelled one left
    while (results.size() < 3 && std::chrono::steady_clock::now() < deadline) {
      io.run_for(50ms);
    }
    // Every group of a run or a job is removed once it ended (on the
    // janitor's thread, the runs' before their job's): only the node's own
    // groups are left, with nothing in them.
    jc::runner::Janitor::instance().drain();
    const auto groups = node_groups(jc::runner::cgroup_group_name(id, id));
    const std::string& has = executor.sandbox_description();
    if (has == "full" || has.find("cgroup") != std::string::npos) CHECK(!groups.empty());
    for (const auto& group : groups) {
      std::error_code ec;
      for (const auto& entry : fs::directory_iterator(group, ec)) {
        if (!entry.is_directory()) continue;
        INFO("left behind: " << entry.path().string());
        CHECK(entry.path().filename().string().rfind("slot-", 0) == 0);
      }
    }
    executor.stop_all();
  }
  REQUIRE(results.count("t-cancelled") == 1);
  REQUIRE(results.count("t-runs") == 1);
  const auto& cancelled = results["t-cancelled"];
  CHECK(cancelled.state == jc::protocol::JobState::kCancelled);
  CHECK(cancelled.end_ms - cancelled.start_ms < 60'000);  // not the sleep's 300 s
  const auto& ran = results["t-runs"];
  CHECK(ran.state == jc::protocol::JobState::kDone);
  CHECK(ran.stdout_data == "done\n");
  REQUIRE(results.count("t-cases") == 1);
  CHECK(results["t-cases"].state == jc::protocol::JobState::kDone);
  std::error_code ec;
  fs::remove_all(work, ec);
}
