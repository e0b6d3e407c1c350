// Unit tests of runner/cgroup.h on a fake cgroup file system: finding the
// hierarchies (v2, v1, none), the node's group and its stale predecessors
// (by data directory identity, never by PID), each job's group with its
// memory and CPU, each run's leaf with its limits, and the figures read back.
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
    "33 30 0:30 / /sys/fs/cgroup/cpuset rw,relatime - cgroup cgroup rw,cpuset\n"
    "34 30 0:31 / /sys/fs/cgroup/memory rw,relatime - cgroup cgroup rw,memory\n"
    "38 30 0:35 / /sys/fs/cgroup/pids rw,relatime - cgroup cgroup rw,pids\n"
    "40 30 0:37 / /sys/fs/cgroup/unified rw,relatime - cgroup2 cgroup2 rw\n";
const std::string kHybridSelf =
    "8:pids:/\n4:memory:/process_api/b5a4\n3:cpuset:/\n2:cpuacct:/\n1:cpu:/\n0::/\n";
// The node n1 whose data directory's identity is 5eed.
const std::string kGroup = "jobcluster-n1-5eed";
const std::string kMem = "/sys/fs/cgroup/memory/process_api/b5a4/" + kGroup;
const std::string kAcct = "/sys/fs/cgroup/cpuacct/" + kGroup;
const std::string kPids = "/sys/fs/cgroup/pids/" + kGroup;
const std::string kCpu = "/sys/fs/cgroup/cpu/" + kGroup;
const std::string kCpuset = "/sys/fs/cgroup/cpuset/" + kGroup;

FakeFs hybrid() {
  FakeFs fs;
  fs.mkdirs("/sys/fs/cgroup/cpu");
  fs.mkdirs("/sys/fs/cgroup/cpuacct");
  fs.mkdirs("/sys/fs/cgroup/cpuset");
  fs.files["/sys/fs/cgroup/cpuset/cpuset.cpus"] = "0-1\n";
  fs.files["/sys/fs/cgroup/cpuset/cpuset.mems"] = "0\n";
  fs.mkdirs("/sys/fs/cgroup/memory/process_api/b5a4");
  fs.mkdirs("/sys/fs/cgroup/pids");
  fs.mkdirs("/sys/fs/cgroup/unified");
  fs.files["/sys/fs/cgroup/unified/cgroup.controllers"] = "hugetlb\n";
  return fs;
}

std::shared_ptr<Cgroups> open_hybrid(FakeFs& fs, const std::string& mountinfo = kHybridMountinfo) {
  std::string why;
  auto cg = Cgroups::open(fs, mountinfo, kHybridSelf, "n1", "5eed", &why);
  REQUIRE_MESSAGE(cg, why);
  fs.writes.clear();
  return cg;
}

std::string joined(const std::vector<std::string>& v) {
  std::string out;
  for (const auto& s : v) out += s + "\n";
  return out;
}

}  // namespace

TEST_CASE("cgroup: on a hybrid host the v1 memory, cpuacct, pids, cpu and cpuset groups are used") {
  FakeFs fs = hybrid();
  std::string why;
  auto cg = Cgroups::open(fs, kHybridMountinfo, kHybridSelf, "n1", "5eed", &why);
  REQUIRE_MESSAGE(cg, why);
  CHECK(cg->version() == 1);
  CHECK(joined(cg->group_dirs()) == joined({kMem, kAcct, kPids, kCpu, kCpuset}));
  // The node's cpuset group has its parent's CPUs and memory, and hands
  // them to every group made under it.
  CHECK(joined(fs.writes) == kCpuset + "/cpuset.cpus=0-1\n\n" + kCpuset + "/cpuset.mems=0\n\n" +
                                 kCpuset + "/cgroup.clone_children=1\n");
  CHECK(cg->can_pin());
}

TEST_CASE("cgroup: pinned slots get a group each on their CPU, written once") {
  FakeFs fs = hybrid();
  auto cg = open_hybrid(fs);
  std::string why;
  REQUIRE_MESSAGE(cg->pin_slots({0, 1}, &why), why);
  CHECK(cg->pinned());
  CHECK(joined(fs.writes) == kCpuset + "/slot-0/cpuset.cpus=0\n" + kCpuset +
                                 "/slot-1/cpuset.cpus=1\n");
  for (const auto& d : {kMem, kAcct, kPids, kCpu, kCpuset}) CHECK(fs.dirs.count(d + "/slot-1"));
  // Runs take their slot's CPU from its group: no write per run.
  fs.writes.clear();
  std::string err;
  auto job = cg->make_job({64ull << 20, 1, 1}, &err);
  auto run = job->make_run({64ull << 20, 0}, &err);
  REQUIRE_MESSAGE(run, err);
  CHECK(joined(fs.writes).find("cpuset") == std::string::npos);
  CHECK(joined(run->procs_files()).find(kCpuset + "/slot-1/run-") != std::string::npos);
}

TEST_CASE("cgroup: slots that cannot be pinned leave the jobs in the node's group") {
  FakeFs fs = hybrid();
  auto cg = open_hybrid(fs);
  fs.refuse[kCpuset + "/slot-1/cpuset.cpus"] = EINVAL;
  std::string why, err;
  CHECK_FALSE(cg->pin_slots({0, 1}, &why));
  CHECK(why.find("slot-1/cpuset.cpus") != std::string::npos);
  CHECK_FALSE(cg->pinned());
  CHECK(!fs.dirs.count(kCpuset + "/slot-0"));
  auto job = cg->make_job({1 << 20, 1, 1}, &err);
  auto run = job->make_run({1 << 20, 0}, &err);
  REQUIRE(run);
  CHECK(joined(run->procs_files()).find(kCpuset + "/run-") != std::string::npos);
}

TEST_CASE("cgroup: a v1 job of one run has its limits on the run's leaf, figures read back") {
  FakeFs fs = hybrid();
  auto cg = open_hybrid(fs);
  std::string err;
  auto job = cg->make_job({64ull << 20, 0, 1}, &err);
  REQUIRE_MESSAGE(job, err);
  CHECK_FALSE(job->own());
  CHECK(fs.writes.empty());  // nothing of its own
  auto run = job->make_run({64ull << 20, 256}, &err);
  REQUIRE_MESSAGE(run, err);
  const std::string leaf = "/run-1";
  CHECK(joined(fs.writes) == kMem + leaf + "/memory.limit_in_bytes=67108864\n" + kMem + leaf +
                                 "/memory.memsw.limit_in_bytes=67108864\n" + kPids + leaf +
                                 "/pids.max=256\n");
  CHECK(joined(run->procs_files()) == kMem + leaf + "/tasks\n" + kAcct + leaf + "/tasks\n" +
                                          kPids + leaf + "/tasks\n" + kCpu + leaf + "/tasks\n" +
                                          kCpuset + leaf + "/tasks\n");
  fs.files[kAcct + leaf + "/cpuacct.usage"] = "123456789\n";
  fs.files[kMem + leaf + "/memory.max_usage_in_bytes"] = "5242880\n";
  fs.files[kMem + leaf + "/memory.oom_control"] = "oom_kill_disable 0\nunder_oom 0\noom_kill 2\n";
  RunUsage u = run->usage();
  CHECK(u.cpu_ns == 123456789);
  CHECK(u.peak_bytes == 5242880);
  CHECK(u.oom_kills == 2);
  CHECK(run->cpu_ns() == 123456789);
  run->remove();
  for (const auto& d : {kMem, kAcct, kPids, kCpu, kCpuset}) CHECK(!fs.dirs.count(d + leaf));
  // The next run gets a leaf of its own.
  auto next = job->make_run({0, 0}, &err);
  REQUIRE(next);
  CHECK(fs.dirs.count(kPids + "/run-2"));
}

TEST_CASE("cgroup: a v1 job of several runs has a group bounded by its memory, in its slot's") {
  FakeFs fs = hybrid();
  auto cg = open_hybrid(fs);
  std::string why, err;
  REQUIRE(cg->pin_slots({0, 1}, &why));
  fs.writes.clear();
  auto job = cg->make_job({64ull << 20, 1, 9}, &err);
  REQUIRE_MESSAGE(job, err);
  CHECK(job->own());
  const std::string j = "/slot-1/job-1";
  CHECK(joined(fs.writes) == kMem + j + "/memory.limit_in_bytes=67108864\n" + kMem + j +
                                 "/memory.memsw.limit_in_bytes=67108864\n");
  fs.writes.clear();
  // Each run is a leaf under it, with its own limits.
  auto run = job->make_run({64ull << 20, 256}, &err);
  REQUIRE_MESSAGE(run, err);
  const std::string r = j + "/run-2";
  CHECK(joined(fs.writes) == kMem + r + "/memory.limit_in_bytes=67108864\n" + kMem + r +
                                 "/memory.memsw.limit_in_bytes=67108864\n" + kPids + r +
                                 "/pids.max=256\n");
  CHECK(joined(run->procs_files()).find(kCpuset + r + "/tasks\n") != std::string::npos);
  run.reset();
  CHECK(!fs.dirs.count(kMem + r));
  CHECK(fs.dirs.count(kMem + j));
  job.reset();
  for (const auto& d : {kMem, kAcct, kPids, kCpu, kCpuset}) {
    CHECK(!fs.dirs.count(d + j));
    CHECK(fs.dirs.count(d + "/slot-1"));
  }
}

TEST_CASE("cgroup: a job's group outlives the node's cgroups object, and then takes it along") {
  FakeFs fs = hybrid();
  auto cg = open_hybrid(fs);
  std::string err;
  auto job = cg->make_job({1 << 20, 0, 2}, &err);
  REQUIRE(job);
  cg.reset();  // the sandbox goes first at shutdown
  CHECK(fs.dirs.count(kMem + "/job-1"));
  job.reset();
  CHECK(!fs.dirs.count(kMem + "/job-1"));
  CHECK(!fs.dirs.count(kMem));
}

TEST_CASE("cgroup: with too many dying memory groups, each run's group is emptied first") {
  FakeFs fs = hybrid();
  auto cg = open_hybrid(fs);
  std::string err;
  auto job = cg->make_job({1 << 20, 0, 1}, &err);
  REQUIRE(job);
  fs.mkdirs("/proc");
  fs.files["/proc/cgroups"] =
      "#subsys_name\thierarchy\tnum_cgroups\tenabled\nmemory\t4\t25000\t1\npids\t8\t5\t1\n";
  auto run_and_remove = [&]() -> bool {
    fs.writes.clear();
    auto run = job->make_run({1 << 20, 0}, &err);
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
  auto cg = open_hybrid(fs);
  std::string err;
  fs.missing.insert(kMem + "/job-1/memory.memsw.limit_in_bytes");
  fs.missing.insert(kMem + "/job-1/run-2/memory.memsw.limit_in_bytes");
  auto job = cg->make_job({1 << 20, 0, 2}, &err);
  REQUIRE_MESSAGE(job, err);
  CHECK(job->make_run({1 << 20, 10}, &err));
  CHECK(err.empty());
}

TEST_CASE("cgroup: a limit write the kernel finds busy once is made again") {
  FakeFs fs = hybrid();
  auto cg = open_hybrid(fs);
  std::string err;
  auto job = cg->make_job({1 << 20, 0, 1}, &err);
  fs.refuse[kMem + "/run-1/memory.memsw.limit_in_bytes"] = EBUSY;
  CHECK(job->make_run({1 << 20, 10}, &err));
  CHECK(fs.files[kMem + "/run-1/memory.memsw.limit_in_bytes"] == "1048576");
}

TEST_CASE("cgroup: a limit that cannot be set fails the group and leaves no directory") {
  FakeFs fs = hybrid();
  auto cg = open_hybrid(fs);
  std::string err;
  auto job = cg->make_job({1 << 20, 0, 1}, &err);
  fs.refuse[kPids + "/run-1/pids.max"] = EINVAL;
  CHECK_FALSE(job->make_run({1 << 20, 10}, &err));
  CHECK(err.find("pids.max") != std::string::npos);
  CHECK(!fs.dirs.count(kPids + "/run-1"));
  CHECK(!fs.dirs.count(kAcct + "/run-1"));
  // A job's group likewise.
  fs.refuse[kMem + "/job-2/memory.limit_in_bytes"] = EINVAL;
  CHECK_FALSE(cg->make_job({1 << 20, 0, 3}, &err));
  CHECK(err.find("memory.limit_in_bytes") != std::string::npos);
  CHECK(!fs.dirs.count(kMem + "/job-2"));
}

TEST_CASE("cgroup: at start only the groups with this node's identity are removed, whatever PID") {
  FakeFs fs = hybrid();
  // Left by this node's earlier process (killed), under any node id: its
  // data directory's identity says they are its own.
  fs.mkdirs("/sys/fs/cgroup/pids/jobcluster-n1-5eed/job-3/run-7");
  fs.mkdirs("/sys/fs/cgroup/pids/jobcluster-old-name-5eed/run-9");
  fs.files["/sys/fs/cgroup/pids/jobcluster-n1-5eed/job-3/run-7/cgroup.procs"] = "";
  // Another node's (another data directory's), in this container or in
  // another whose PIDs mean nothing here; the old PID-style names; others'.
  fs.mkdirs("/sys/fs/cgroup/pids/jobcluster-n2-c0ffee/run-1");
  fs.mkdirs("/sys/fs/cgroup/pids/jobcluster-n1-999999/run-7");
  fs.mkdirs("/sys/fs/cgroup/pids/jobcluster-n1-5eed0");
  fs.mkdirs("/sys/fs/cgroup/pids/someone-else-5eed");
  auto cg = open_hybrid(fs);
  CHECK(fs.dirs.count(kPids));  // made anew
  CHECK(!fs.dirs.count(kPids + "/job-3"));
  CHECK(!fs.dirs.count("/sys/fs/cgroup/pids/jobcluster-old-name-5eed"));
  CHECK(fs.dirs.count("/sys/fs/cgroup/pids/jobcluster-n2-c0ffee/run-1"));
  CHECK(fs.dirs.count("/sys/fs/cgroup/pids/jobcluster-n1-999999/run-7"));
  CHECK(fs.dirs.count("/sys/fs/cgroup/pids/jobcluster-n1-5eed0"));
  CHECK(fs.dirs.count("/sys/fs/cgroup/pids/someone-else-5eed"));
  // And the node's own group goes with it.
  cg.reset();
  CHECK(!fs.dirs.count(kPids));
}

TEST_CASE("cgroup: no cgroup file system at all is no cgroups, with the reason") {
  FakeFs fs;
  std::string why;
  auto cg = Cgroups::open(fs, "26 1 254:0 / / rw - ext4 /dev/vda rw\n", "0::/\n", "g", "1", &why);
  CHECK_FALSE(cg);
  CHECK(why == "no cgroup v1 memory hierarchy is mounted");
}

TEST_CASE("cgroup: a read-only cgroup file system (a container) is no cgroups, with the reason") {
  FakeFs fs = hybrid();
  // Modelled by a parent that cannot take a new directory.
  fs.dirs.erase("/sys/fs/cgroup/memory/process_api/b5a4");
  std::string why;
  CHECK_FALSE(Cgroups::open(fs, kHybridMountinfo, kHybridSelf, "n1", "5eed", &why));
  CHECK(why.find("cannot create " + kMem) != std::string::npos);
}

TEST_CASE("cgroup: v1 without a cpuset hierarchy runs jobs unpinned and says why") {
  FakeFs fs = hybrid();
  std::string mountinfo = kHybridMountinfo;
  mountinfo.erase(mountinfo.find("33 30"), mountinfo.find("34 30") - mountinfo.find("33 30"));
  auto cg = open_hybrid(fs, mountinfo);
  CHECK_FALSE(cg->can_pin());
  CHECK(cg->cannot_pin_because() == "no cgroup v1 cpuset hierarchy is mounted");
  std::string why;
  CHECK_FALSE(cg->pin_slots({0, 1}, &why));
  CHECK(why == "no cgroup v1 cpuset hierarchy is mounted");
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

TEST_CASE("cgroup: v2 hands memory, pids, cpu and cpuset down to the node's group, jobs and runs") {
  FakeFs fs = unified();
  std::string why, err;
  auto cg = Cgroups::open(fs, kV2Mountinfo, kV2Self, "n1", "5eed", &why);
  REQUIRE_MESSAGE(cg, why);
  CHECK(cg->version() == 2);
  CHECK(cg->can_pin());
  const std::string mine = kV2Dir + "/" + kGroup;
  CHECK(joined(cg->group_dirs()) == mine + "\n");
  CHECK(joined(fs.writes) == kV2Dir + "/cgroup.subtree_control=+memory +pids +cpu\n" + mine +
                                 "/cgroup.subtree_control=+memory +pids +cpu\n" + kV2Dir +
                                 "/cgroup.subtree_control=+cpuset\n" + mine +
                                 "/cgroup.subtree_control=+cpuset\n");
  fs.writes.clear();
  REQUIRE_MESSAGE(cg->pin_slots({2, 3}, &why), why);
  const std::string slot = mine + "/slot-1";
  CHECK(joined(fs.writes) == mine + "/slot-0/cpuset.cpus=2\n" + mine +
                                 "/slot-0/cgroup.subtree_control=+memory +pids +cpu\n" + slot +
                                 "/cpuset.cpus=3\n" + slot +
                                 "/cgroup.subtree_control=+memory +pids +cpu\n");
  fs.writes.clear();
  auto job = cg->make_job({32ull << 20, 1, 2}, &err);
  REQUIRE_MESSAGE(job, err);
  const std::string j = slot + "/job-1";
  CHECK(joined(fs.writes) == j + "/memory.max=33554432\n" + j + "/memory.swap.max=0\n" + j +
                                 "/cgroup.subtree_control=+memory +pids +cpu\n");
  fs.writes.clear();
  auto run = job->make_run({32ull << 20, 100}, &err);
  REQUIRE_MESSAGE(run, err);
  const std::string leaf = j + "/run-2";
  CHECK(joined(fs.writes) == leaf + "/memory.max=33554432\n" + leaf + "/memory.swap.max=0\n" +
                                 leaf + "/memory.oom.group=1\n" + leaf + "/pids.max=100\n");
  CHECK(joined(run->procs_files()) == leaf + "/cgroup.procs\n");
  fs.files[leaf + "/cpu.stat"] = "usage_usec 2500\nuser_usec 2000\nsystem_usec 500\n";
  fs.files[leaf + "/memory.peak"] = "1048576\n";
  fs.files[leaf + "/memory.events"] = "low 0\nhigh 0\nmax 4\noom 1\noom_kill 1\n";
  RunUsage u = run->usage();
  CHECK(u.cpu_ns == 2'500'000);
  CHECK(u.peak_bytes == 1048576);
  CHECK(u.oom_kills == 1);
}

TEST_CASE("cgroup: v2 without the cpuset controller runs jobs unpinned and says why") {
  FakeFs fs = unified();
  fs.files[kV2Dir + "/cgroup.controllers"] = "cpu io memory pids\n";
  std::string why, err;
  auto cg = Cgroups::open(fs, kV2Mountinfo, kV2Self, "n1", "5eed", &why);
  REQUIRE_MESSAGE(cg, why);
  CHECK_FALSE(cg->can_pin());
  CHECK(cg->cannot_pin_because().find("does not offer the cpuset controller") != std::string::npos);
  CHECK_FALSE(cg->pin_slots({0}, &why));
  CHECK(why == cg->cannot_pin_because());
  fs.writes.clear();
  auto job = cg->make_job({32ull << 20, 0, 2}, &err);
  REQUIRE(job);
  CHECK(joined(fs.writes).find("cpuset") == std::string::npos);
  CHECK(job->dirs().memory == kV2Dir + "/" + kGroup + "/job-1");
}

TEST_CASE("cgroup: v2 moves the node into a leaf of its own when its group may not hand down") {
  FakeFs fs = unified();
  // "No internal processes": the node lives in the group itself.
  fs.refuse[kV2Dir + "/cgroup.subtree_control"] = EBUSY;
  std::string why;
  auto cg = Cgroups::open(fs, kV2Mountinfo, kV2Self, "n1", "5eed", &why);
  REQUIRE_MESSAGE(cg, why);
  CHECK(fs.dirs.count(kV2Dir + "/" + kGroup + "-node"));
  CHECK(fs.files[kV2Dir + "/" + kGroup + "-node/cgroup.procs"] == std::to_string(::getpid()));
}

TEST_CASE("cgroup: v2 without the memory controller falls back to v1, or to none with reasons") {
  FakeFs fs = hybrid();
  std::string mountinfo =
      kHybridMountinfo + "41 30 0:38 / /sys/fs/cgroup/unified rw - cgroup2 cgroup2 rw\n";
  std::string why;
  auto cg = Cgroups::open(fs, mountinfo, kHybridSelf, "n1", "5eed", &why);
  REQUIRE(cg);
  CHECK(cg->version() == 1);
  FakeFs only_v2 = unified();
  only_v2.files[kV2Dir + "/cgroup.controllers"] = "cpu io\n";
  CHECK_FALSE(Cgroups::open(only_v2, kV2Mountinfo, kV2Self, "n1", "5eed", &why));
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
  auto cg = Cgroups::open(fs, mountinfo, self, "g", "1", &why);
  REQUIRE_MESSAGE(cg, why);
  CHECK(joined(cg->group_dirs()) ==
        "/sys/fs/my cgroup/memory/inner/jobcluster-g-1\n/sys/fs/cgroup/cpuacct/jobcluster-g-1\n"
        "/sys/fs/cgroup/pids/jobcluster-g-1\n");
}

}  // namespace jc::runner
