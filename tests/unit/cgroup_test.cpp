// Unit tests of runner/cgroup.h on a fake cgroup file system: finding the
// hierarchies (v2, v1, none), the node's group and its stale predecessors,
// each run's leaf with its limits, and the figures read back.
#include "runner/cgroup.h"

#include <doctest/doctest.h>

#include <unistd.h>

#include <cerrno>
#include <map>
#include <set>
#include <string>

namespace jc::runner {
namespace {

// Directories and files in memory. Writes create files unless the path is
// listed in `missing` (ENOENT, as for a file the kernel does not offer) or
// `refuse` (that errno once per listed count).
class FakeFs : public CgroupFs {
 public:
  std::set<std::string> dirs;
  std::map<std::string, std::string> files;
  std::set<std::string> missing;
  std::map<std::string, int> refuse;  // path -> errno, for the next write
  std::vector<std::string> writes;    // "path=value", in order

  int make_dir(const std::string& path) override {
    if (dirs.count(path)) return EEXIST;
    if (!dirs.count(path.substr(0, path.rfind('/')))) return ENOENT;
    dirs.insert(path);
    return 0;
  }
  int remove_dir(const std::string& path) override {
    if (!dirs.count(path)) return ENOENT;
    for (const auto& d : dirs) {
      if (d.rfind(path + "/", 0) == 0) return EBUSY;
    }
    dirs.erase(path);
    return 0;
  }
  int write_file(const std::string& path, const std::string& text) override {
    if (auto it = refuse.find(path); it != refuse.end()) {
      int e = it->second;
      refuse.erase(it);
      return e;
    }
    if (missing.count(path)) return ENOENT;
    if (!dirs.count(path.substr(0, path.rfind('/')))) return ENOENT;
    writes.push_back(path + "=" + text);
    files[path] = text;
    return 0;
  }
  std::optional<std::string> read_file(const std::string& path) override {
    auto it = files.find(path);
    if (it == files.end()) return std::nullopt;
    return it->second;
  }
  bool exists(const std::string& path) override { return dirs.count(path) || files.count(path); }
  std::vector<std::string> list_dirs(const std::string& path) override {
    std::vector<std::string> out;
    for (const auto& d : dirs) {
      if (d.rfind(path + "/", 0) == 0 && d.find('/', path.size() + 1) == std::string::npos)
        out.push_back(d.substr(path.size() + 1));
    }
    return out;
  }
  int open_for_write(const std::string&) override { return -1; }

  void mkdirs(const std::string& path) {
    std::string so_far;
    std::size_t at = 1;
    while (at <= path.size()) {
      std::size_t slash = path.find('/', at);
      so_far = path.substr(0, slash);
      dirs.insert(so_far);
      if (slash == std::string::npos) break;
      at = slash + 1;
    }
  }
};

// This project's machines: hybrid, v1 controllers one per hierarchy, the
// v2 hierarchy with hugetlb only.
const std::string kHybridMountinfo =
    "22 26 0:21 / /sys rw,relatime - sysfs sysfs rw\n"
    "30 22 0:27 / /sys/fs/cgroup rw,relatime - tmpfs tmpfs rw,mode=755\n"
    "31 30 0:28 / /sys/fs/cgroup/cpu rw,relatime - cgroup cgroup rw,cpu\n"
    "32 30 0:29 / /sys/fs/cgroup/cpuacct rw,relatime - cgroup cgroup rw,cpuacct\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
const std::string kHybridSelf =
    "8:pids:/\n4:memory:/process_api/b5a4\n2:cpuacct:/\n1:cpu:/\n0::/\n";

bool never_alive(int) { return false; }

FakeFs hybrid() {
  FakeFs fs;
  fs.mkdirs("/sys/fs/cgroup/cpu");
  fs.mkdirs("/sys/fs/cgroup/cpuacct");
  fs.mkdirs("/sys/fs/cgroup/memory/process_api/b5a4");
  fs.mkdirs("/sys/fs/cgroup/pids");
  fs.mkdirs("/sys/fs/cgroup/unified");
  fs.files["/sys/fs/cgroup/unified/cgroup.controllers"] = "hugetlb\n";
  return fs;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

}  // namespace

TEST_CASE("cgroup: on a hybrid host the v1 memory, cpuacct, pids and cpu groups are used") {
  FakeFs fs = hybrid();
  std::string why;
  auto cg = Cgroups::open(fs, kHybridMountinfo, kHybridSelf, "jobcluster-n1-42", never_alive, &why);
  REQUIRE_MESSAGE(cg, why);
  CHECK(cg->version() == 1);
  CHECK(joined(cg->group_dirs()) ==
        "/sys/fs/cgroup/memory/process_api/b5a4/jobcluster-n1-42\n"
        "/sys/fs/cgroup/cpuacct/jobcluster-n1-42\n"
        "/sys/fs/cgroup/pids/jobcluster-n1-42\n"
        "/sys/fs/cgroup/cpu/jobcluster-n1-42\n");
}

TEST_CASE("cgroup: a v1 run gets a fresh leaf with its limits, and its figures are read back") {
  FakeFs fs = hybrid();
  std::string why;
  auto cg = Cgroups::open(fs, kHybridMountinfo, kHybridSelf, "jobcluster-n1-42", never_alive, &why);
  REQUIRE(cg);
  std::string err;
  auto run = cg->make_run({64ull << 20, 256}, &err);
  REQUIRE_MESSAGE(run, err);
  const std::string mem = "/sys/fs/cgroup/memory/process_api/b5a4/jobcluster-n1-42/run-1";
  const std::string cpu = "/sys/fs/cgroup/cpuacct/jobcluster-n1-42/run-1";
  const std::string pids = "/sys/fs/cgroup/pids/jobcluster-n1-42/run-1";
  CHECK(joined(fs.writes) == mem + "/memory.limit_in_bytes=67108864\n" + mem +
                                 "/memory.memsw.limit_in_bytes=67108864\n" + pids +
                                 "/pids.max=256\n");
  const std::string share = "/sys/fs/cgroup/cpu/jobcluster-n1-42/run-1";
  CHECK(joined(run->procs_files()) ==
        mem + "/tasks\n" + cpu + "/tasks\n" + pids + "/tasks\n" + share + "/tasks\n");
  fs.files[cpu + "/cpuacct.usage"] = "123456789\n";
  fs.files[mem + "/memory.max_usage_in_bytes"] = "5242880\n";
  fs.files[mem + "/memory.oom_control"] = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
  RunUsage u = run->usage();
  CHECK(u.cpu_ns == 123456789);
  CHECK(u.peak_bytes == 5242880);
  CHECK(u.oom_kills == 2);
  CHECK(run->cpu_ns() == 123456789);
  run->remove();
  CHECK(!fs.dirs.count(mem));
  CHECK(!fs.dirs.count(cpu));
  CHECK(!fs.dirs.count(pids));
  CHECK(!fs.dirs.count(share));
  // The next run gets a leaf of its own.
  auto next = cg->make_run({0, 0}, &err);
  REQUIRE(next);
  CHECK(fs.dirs.count("/sys/fs/cgroup/pids/jobcluster-n1-42/run-2"));
}

TEST_CASE("cgroup: with too many dying memory groups, each run's group is emptied first") {
  FakeFs fs = hybrid();
  std::string why, err;
  auto cg = Cgroups::open(fs, kHybridMountinfo, kHybridSelf, "g", never_alive, &why);
  REQUIRE(cg);
  fs.mkdirs("/proc");
  fs.files["/proc/cgroups"] =
      "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t4\t25000\t1\npids\t8\t5\t1\n";
  auto run_and_remove = [&]() -> bool {
    fs.writes.clear();
    auto run = cg->make_run({1 << 20, 0}, &err);
    REQUIRE(run);
    run->remove();
    return joined(fs.writes).find("memory.force_empty=0") != std::string::npos;
  };
  // Checked every kCheckEvery runs: the first check is at run 256.
  for (std::uint64_t i = 1; i < Cgroups::kCheckEvery; ++i) CHECK_FALSE(run_and_remove());
  CHECK(run_and_remove());
  CHECK(cg->dropping_cache());
  fs.files["/proc/cgroups"] = "memory\t4\t9000\t1\n";
  for (std::uint64_t i = 1; i < Cgroups::kCheckEvery; ++i) CHECK(run_and_remove());
  CHECK_FALSE(run_and_remove());
  CHECK_FALSE(cg->dropping_cache());
}

TEST_CASE("cgroup: without swap accounting the memsw limit is simply not set") {
  FakeFs fs = hybrid();
  std::string why, err;
  auto cg = Cgroups::open(fs, kHybridMountinfo, kHybridSelf, "jobcluster-n1-42", never_alive, &why);
  REQUIRE(cg);
  fs.missing.insert("/sys/fs/cgroup/memory/process_api/b5a4/jobcluster-n1-42/run-1/"
                    "memory.memsw.limit_in_bytes");
  CHECK(cg->make_run({1 << 20, 10}, &err));
  CHECK(err.empty());
}

TEST_CASE("cgroup: a limit that cannot be set fails the run's group and leaves no directory") {
  FakeFs fs = hybrid();
  std::string why, err;
  auto cg = Cgroups::open(fs, kHybridMountinfo, kHybridSelf, "jobcluster-n1-42", never_alive, &why);
  REQUIRE(cg);
  fs.refuse["/sys/fs/cgroup/pids/jobcluster-n1-42/run-1/pids.max"] = EINVAL;
  CHECK_FALSE(cg->make_run({1 << 20, 10}, &err));
  CHECK(err.find("pids.max") != std::string::npos);
  CHECK(!fs.dirs.count("/sys/fs/cgroup/pids/jobcluster-n1-42/run-1"));
  CHECK(!fs.dirs.count("/sys/fs/cgroup/cpuacct/jobcluster-n1-42/run-1"));
}

TEST_CASE("cgroup: groups of earlier processes that are gone are removed, live ones kept") {
  FakeFs fs = hybrid();
  fs.mkdirs("/sys/fs/cgroup/pids/jobcluster-n1-999/run-7");
  fs.mkdirs("/sys/fs/cgroup/pids/jobcluster-n2-1000");
  fs.mkdirs("/sys/fs/cgroup/pids/someone-else-5");
  std::string why;
  auto cg = Cgroups::open(fs, kHybridMountinfo, kHybridSelf, "jobcluster-n1-42",
                          [](int pid) { return pid == 1000; }, &why);
  REQUIRE(cg);
  CHECK(!fs.dirs.count("/sys/fs/cgroup/pids/jobcluster-n1-999"));
  CHECK(fs.dirs.count("/sys/fs/cgroup/pids/jobcluster-n2-1000"));
  CHECK(fs.dirs.count("/sys/fs/cgroup/pids/someone-else-5"));
  // And the node's own group goes with it.
  cg.reset();
  CHECK(!fs.dirs.count("/sys/fs/cgroup/pids/jobcluster-n1-42"));
}

TEST_CASE("cgroup: no cgroup file system at all is no cgroups, with the reason") {
  FakeFs fs;
  std::string why;
  auto cg = Cgroups::open(fs, "26 1 254:0 / / rw - ext4 /dev/vda rw\n", "0::/\n", "g", never_alive,
                          &why);
  CHECK_FALSE(cg);
  CHECK(why == "no cgroup v1 memory hierarchy is mounted");
}

TEST_CASE("cgroup: a read-only cgroup file system (a container) is no cgroups, with the reason") {
  FakeFs fs = hybrid();
  // Modelled by a parent that cannot take a new directory.
  fs.dirs.erase("/sys/fs/cgroup/memory/process_api/b5a4");
  std::string why;
  CHECK_FALSE(Cgroups::open(fs, kHybridMountinfo, kHybridSelf, "g", never_alive, &why));
  CHECK(why.find("cannot create /sys/fs/cgroup/memory/process_api/b5a4/g") != std::string::npos);
}

namespace {

const std::string kV2Mountinfo =
    "30 22 0:27 / /sys/fs/cgroup rw,nosuid,nodev,noexec,relatime - cgroup2 cgroup2 rw\n";
const std::string kV2Self = "0::/system.slice/jobcluster.service\n";
const std::string kV2Dir = "/sys/fs/cgroup/system.slice/jobcluster.service";

FakeFs unified() {
  FakeFs fs;
  fs.mkdirs(kV2Dir);
  fs.files[kV2Dir + "/cgroup.controllers"] = "cpuset cpu io memory pids\n";
  fs.files[kV2Dir + "/cgroup.subtree_control"] = "";
  return fs;
}

}  // namespace

TEST_CASE("cgroup: v2 hands memory and pids down to the node's group and its runs") {
  FakeFs fs = unified();
  std::string why, err;
  auto cg = Cgroups::open(fs, kV2Mountinfo, kV2Self, "jobcluster-n1-42", never_alive, &why);
  REQUIRE_MESSAGE(cg, why);
  CHECK(cg->version() == 2);
  const std::string mine = kV2Dir + "/jobcluster-n1-42";
  CHECK(joined(cg->group_dirs()) == mine + "\n");
  auto run = cg->make_run({32ull << 20, 100}, &err);
  REQUIRE_MESSAGE(run, err);
  const std::string leaf = mine + "/run-1";
  CHECK(joined(fs.writes) == kV2Dir + "/cgroup.subtree_control=+memory +pids +cpu\n" + mine +
                                 "/cgroup.subtree_control=+memory +pids +cpu\n" + leaf +
                                 "/memory.max=33554432\n" + leaf + "/memory.swap.max=0\n" + leaf +
                                 "/memory.oom.group=1\n" + leaf + "/pids.max=100\n");
  fs.files[leaf + "/cpu.stat"] = "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n";
  fs.files[leaf + "/memory.peak"] = "1048576\n";
  fs.files[leaf + "/memory.events"] = "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n";
  RunUsage u = run->usage();
  CHECK(u.cpu_ns == 2'500'000);
  CHECK(u.peak_bytes == 1048576);
  CHECK(u.oom_kills == 1);
}

TEST_CASE("cgroup: v2 moves the node into a leaf of its own when its group may not hand down") {
  FakeFs fs = unified();
  // "No internal processes": the node lives in the group itself.
  fs.refuse[kV2Dir + "/cgroup.subtree_control"] = EBUSY;
  std::string why;
  auto cg = Cgroups::open(fs, kV2Mountinfo, kV2Self, "jobcluster-n1-42", never_alive, &why);
  REQUIRE_MESSAGE(cg, why);
  CHECK(fs.dirs.count(kV2Dir + "/jobcluster-n1-42-node"));
  CHECK(fs.files[kV2Dir + "/jobcluster-n1-42-node/cgroup.procs"] == std::to_string(::getpid()));
}

TEST_CASE("cgroup: v2 without the memory controller falls back to v1, or to none with reasons") {
  FakeFs fs = hybrid();
  std::string mountinfo =
      kHybridMountinfo + "41 30 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
  std::string why;
  auto cg = Cgroups::open(fs, mountinfo, kHybridSelf, "g", never_alive, &why);
  REQUIRE(cg);
  CHECK(cg->version() == 1);
  FakeFs only_v2 = unified();
  only_v2.files[kV2Dir + "/cgroup.controllers"] = "cpu io\n";
  CHECK_FALSE(Cgroups::open(only_v2, kV2Mountinfo, kV2Self, "g", never_alive, &why));
  CHECK(why.find("does not offer the memory and pids controllers") != std::string::npos);
  CHECK(why.find("no cgroup v1 memory hierarchy is mounted") != std::string::npos);
}

TEST_CASE("cgroup: mount points with escaped spaces and a namespace root map to directories") {
  FakeFs fs;
  fs.mkdirs("/sys/fs/my cgroup/memory/inner");
  fs.mkdirs("/sys/fs/cgroup/cpuacct");
  fs.mkdirs("/sys/fs/cgroup/pids");
  // Inside a cgroup namespace the memory hierarchy is mounted from /outer,
  // and /proc/self/cgroup shows paths below it.
  std::string mountinfo =
      "34 30 0:31 /outer /sys/fs/my\\040cgroup/memory rw - cgroup cgroup rw,memory\n"
      "32 30 0:29 / /sys/fs/cgroup/cpuacct rw - cgroup cgroup rw,cpu,cpuacct\n"
      "38 30 0:35 / /sys/fs/cgroup/pids rw - cgroup cgroup rw,pids\n";
  std::string self = "4:memory:/outer/inner\n2:cpu,cpuacct:/\n8:pids:/\n";
  std::string why;
  auto cg = Cgroups::open(fs, mountinfo, self, "g", never_alive, &why);
  REQUIRE_MESSAGE(cg, why);
  CHECK(cg->group_dirs()[0] == "/sys/fs/my cgroup/memory/inner/g");
  CHECK(cg->group_dirs()[1] == "/sys/fs/cgroup/cpuacct/g");
}

}  // namespace jc::runner
