#include "runner/cgroup.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <csignal>
#include <fmt/format.h>
#include <sstream>

namespace jc::runner {

namespace {

constexpr int kV1 = 1;
constexpr int kV2 = 2;
// v1 hierarchies a run joins, in this order.
constexpr const char* kV1Controllers[] = {"memory", "cpuacct", "pids"};
constexpr const char* kGroupPrefix = "jobcluster-";

class SystemFs : public CgroupFs {
 public:
  int make_dir(const std::string& path) override {
    return ::mkdir(path.c_str(), 0755) == 0 ? 0 : errno;
  }
  int remove_dir(const std::string& path) override {
    return ::rmdir(path.c_str()) == 0 ? 0 : errno;
  }
  int write_file(const std::string& path, const std::string& text) override {
    int fd = ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
    if (fd < 0) return errno;
    ssize_t n = ::write(fd, text.data(), text.size());
    int err = n == static_cast<ssize_t>(text.size()) ? 0 : (n < 0 ? errno : EIO);
    ::close(fd);
    return err;
  }
  std::optional<std::string> read_file(const std::string& path) override {
    int fd = ::open(path.c_str(), O_RDONLY | O_CLOEXEC);
    if (fd < 0) return std::nullopt;
    std::string out;
    char buffer[4096];
    ssize_t n;
    while ((n = ::read(fd, buffer, sizeof buffer)) > 0) out.append(buffer, static_cast<std::size_t>(n));
    ::close(fd);
    if (n < 0) return std::nullopt;
    return out;
  }
  bool exists(const std::string& path) override { return ::access(path.c_str(), F_OK) == 0; }
  std::vector<std::string> list_dirs(const std::string& path) override {
    std::vector<std::string> out;
    DIR* d = ::opendir(path.c_str());
    if (d == nullptr) return out;
    while (dirent* e = ::readdir(d)) {
      std::string name = e->d_name;
      if (e->d_type == DT_DIR && name != "." && name != "..") out.push_back(name);
    }
    ::closedir(d);
    return out;
  }
  int open_for_write(const std::string& path) override {
    return ::open(path.c_str(), O_WRONLY | O_CLOEXEC);
  }
};

// "\040" and friends in mountinfo paths.
std::string unescape(const std::string& s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    auto octal = [&](std::size_t k) { return s[k] >= '0' && s[k] <= '7'; };
    if (s[i] == '\\' && i + 3 < s.size() && octal(i + 1) && octal(i + 2) && octal(i + 3)) {
      out.push_back(static_cast<char>((s[i + 1] - '0') * 64 + (s[i + 2] - '0') * 8 + (s[i + 3] - '0')));
      i += 3;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

struct Mount {
  std::string root, point, fstype;
  std::vector<std::string> options;  // super options
};

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

std::vector<Mount> cgroup_mounts(const std::string& mountinfo) {
  std::vector<Mount> out;
  std::istringstream lines(mountinfo);
  std::string line;
  while (std::getline(lines, line)) {
    std::istringstream words(line);
    std::vector<std::string> w;
    std::string x;
    while (words >> x) w.push_back(x);
    // id parent dev root point options [optional...] - fstype source super
    std::size_t dash = 0;
    for (std::size_t i = 6; i < w.size(); ++i) {
      if (w[i] == "-") {
        dash = i;
        break;
      }
    }
    if (dash == 0 || dash + 2 >= w.size()) continue;
    Mount m{unescape(w[3]), unescape(w[4]), w[dash + 1], {}};
    if (m.fstype != "cgroup" && m.fstype != "cgroup2") continue;
    if (dash + 3 < w.size()) m.options = split(w[dash + 3], ',');
    out.push_back(std::move(m));
  }
  return out;
}

// The directory of cgroup `path` (as /proc/self/cgroup shows it) in `m`.
std::string dir_in(const Mount& m, const std::string& path) {
  std::string rel = path;
  if (m.root != "/" && rel.rfind(m.root, 0) == 0) rel = rel.substr(m.root.size());
  if (rel.empty() || rel == "/") return m.point;
  return m.point + (rel[0] == '/' ? "" : "/") + rel;
}

// controller list -> path, from /proc/self/cgroup ("4:memory:/a/b", "0::/x").
std::vector<std::pair<std::vector<std::string>, std::string>> self_paths(const std::string& text) {
  std::vector<std::pair<std::vector<std::string>, std::string>> out;
  std::istringstream lines(text);
  std::string line;
  while (std::getline(lines, line)) {
    auto a = line.find(':');
    auto b = a == std::string::npos ? a : line.find(':', a + 1);
    if (b == std::string::npos) continue;
    out.emplace_back(split(line.substr(a + 1, b - a - 1), ','), line.substr(b + 1));
  }
  return out;
}

bool contains(const std::vector<std::string>& v, const std::string& x) {
  for (const auto& e : v) {
    if (e == x) return true;
  }
  return false;
}

bool has_word(const std::string& text, const std::string& word) {
  std::istringstream in(text);
  std::string w;
  while (in >> w) {
    if (w == word) return true;
  }
  return false;
}

// "key value" lines (cpu.stat, memory.events, memory.oom_control).
std::int64_t keyed(const std::optional<std::string>& text, const std::string& key) {
  if (!text) return -1;
  std::istringstream in(*text);
  std::string k;
  long long v;
  while (in >> k >> v) {
    if (k == key) return v;
  }
  return -1;
}

std::int64_t number(const std::optional<std::string>& text) {
  if (!text) return -1;
  try {
    return std::stoll(*text);
  } catch (...) {
    return -1;
  }
}

// Removes stale groups of this program in `parent`: their pid is gone.
void remove_stale(CgroupFs& fs, const std::string& parent, bool (*alive)(int)) {
  for (const auto& name : fs.list_dirs(parent)) {
    if (name.rfind(kGroupPrefix, 0) != 0) continue;
    auto dash = name.rfind('-');
    int pid = 0;
    try {
      pid = std::stoi(name.substr(dash + 1));
    } catch (...) {
      continue;
    }
    if (pid <= 0 || alive(pid)) continue;
    std::string dir = parent + "/" + name;
    for (const auto& leaf : fs.list_dirs(dir)) fs.remove_dir(dir + "/" + leaf);
    fs.remove_dir(dir);
  }
}

std::unique_ptr<std::vector<std::string>> open_v2(CgroupFs& fs, const Mount& m,
                                                  const std::string& self_path,
                                                  const std::string& group, std::string* why) {
  std::string dir = dir_in(m, self_path);
  auto available = fs.read_file(dir + "/cgroup.controllers");
  if (!available || !has_word(*available, "memory") || !has_word(*available, "pids")) {
    *why = fmt::format("cgroup v2 at {} does not offer the memory and pids controllers", dir);
    return nullptr;
  }
  // cpu, where offered, shares the CPUs fairly between runs (each run's
  // group has the same weight, however many processes it starts).
  const std::string wanted = has_word(*available, "cpu") ? "+memory +pids +cpu" : "+memory +pids";
  auto enabled = fs.read_file(dir + "/cgroup.subtree_control");
  if (!enabled || !has_word(*enabled, "memory") || !has_word(*enabled, "pids")) {
    int err = fs.write_file(dir + "/cgroup.subtree_control", wanted);
    if (err == EBUSY) {
      // No process may live in a group that hands controllers down: the
      // node moves itself into a leaf of its own, as a delegated service
      // does. Other processes in the same group keep this from working.
      std::string leaf = dir + "/" + group + "-node";
      int mk = fs.make_dir(leaf);
      if (mk != 0 && mk != EEXIST) {
        *why = fmt::format("cannot create {}: {}", leaf, std::strerror(mk));
        return nullptr;
      }
      if (int e = fs.write_file(leaf + "/cgroup.procs", std::to_string(::getpid())); e != 0) {
        *why = fmt::format("cannot move the node into {}: {}", leaf, std::strerror(e));
        return nullptr;
      }
      err = fs.write_file(dir + "/cgroup.subtree_control", wanted);
    }
    if (err != 0) {
      *why = fmt::format(
          "cannot enable memory and pids in {}/cgroup.subtree_control: {} (run the node in a "
          "cgroup of its own: a delegated systemd unit, or a container with a private cgroup "
          "namespace)",
          dir, std::strerror(err));
      return nullptr;
    }
  }
  std::string mine = dir + "/" + group;
  if (int e = fs.make_dir(mine); e != 0 && e != EEXIST) {
    *why = fmt::format("cannot create {}: {}", mine, std::strerror(e));
    return nullptr;
  }
  if (int e = fs.write_file(mine + "/cgroup.subtree_control", wanted); e != 0) {
    *why = fmt::format("cannot enable memory and pids in {}: {}", mine, std::strerror(e));
    fs.remove_dir(mine);
    return nullptr;
  }
  return std::make_unique<std::vector<std::string>>(std::vector<std::string>{mine});
}

std::unique_ptr<std::vector<std::string>> open_v1(
    CgroupFs& fs, const std::vector<Mount>& mounts,
    const std::vector<std::pair<std::vector<std::string>, std::string>>& self,
    const std::string& group, bool (*alive)(int), std::string* why) {
  std::vector<std::string> dirs;
  for (const char* controller : kV1Controllers) {
    const Mount* mount = nullptr;
    for (const auto& m : mounts) {
      if (m.fstype == "cgroup" && contains(m.options, controller)) mount = &m;
    }
    const std::string* path = nullptr;
    for (const auto& [controllers, p] : self) {
      if (contains(controllers, controller)) path = &p;
    }
    if (mount == nullptr || path == nullptr) {
      *why = fmt::format("no cgroup v1 {} hierarchy is mounted", controller);
      return nullptr;
    }
    std::string parent = dir_in(*mount, *path);
    remove_stale(fs, parent, alive);
    std::string mine = parent + "/" + group;
    if (int e = fs.make_dir(mine); e != 0 && e != EEXIST) {
      *why = fmt::format("cannot create {}: {}", mine, std::strerror(e));
      for (const auto& d : dirs) fs.remove_dir(d);
      return nullptr;
    }
    dirs.push_back(mine);
  }
  // The cpu controller, where it is mounted apart from cpuacct: each run in a
  // group of its own gets a fair share of the CPUs, however many processes
  // it starts (co-mounted, cpuacct's groups already are cpu's).
  const Mount* cpu = nullptr;
  for (const auto& m : mounts) {
    if (m.fstype == "cgroup" && contains(m.options, "cpu")) cpu = &m;
  }
  const std::string* cpu_path = nullptr;
  for (const auto& [controllers, p] : self) {
    if (contains(controllers, "cpu")) cpu_path = &p;
  }
  if (cpu != nullptr && cpu_path != nullptr && !contains(cpu->options, "cpuacct")) {
    std::string parent = dir_in(*cpu, *cpu_path);
    remove_stale(fs, parent, alive);
    std::string mine = parent + "/" + group;
    int e = fs.make_dir(mine);
    if (e == 0 || e == EEXIST) dirs.push_back(mine);
  }
  return std::make_unique<std::vector<std::string>>(std::move(dirs));
}

}  // namespace

CgroupFs& CgroupFs::system() {
  static SystemFs fs;
  return fs;
}

std::string cgroup_group_name(const std::string& node_id, int pid) {
  return fmt::format("{}{}-{}", kGroupPrefix, node_id, pid);
}

RunGroup::RunGroup(CgroupFs& fs, int version, std::vector<std::string> dirs, bool drop_cache)
    : fs_(fs), version_(version), dirs_(std::move(dirs)), drop_cache_(drop_cache) {}

RunGroup::~RunGroup() { remove(); }

std::vector<std::string> RunGroup::procs_files() const {
  // v1: the child joins through `tasks` with "0", moving only itself (it has
  // one thread): the kernel then skips the lock for whole thread groups that
  // a write to cgroup.procs takes, and its RCU grace period, milliseconds
  // per write on a busy machine, on the node's event loop.
  std::vector<std::string> out;
  for (const auto& d : dirs_) out.push_back(d + (version_ == kV2 ? "/cgroup.procs" : "/tasks"));
  return out;
}

std::int64_t RunGroup::cpu_ns() const {
  if (version_ == kV2) {
    std::int64_t us = keyed(fs_.read_file(dirs_[0] + "/cpu.stat"), "usage_usec");
    return us < 0 ? -1 : us * 1000;
  }
  return number(fs_.read_file(dirs_[1] + "/cpuacct.usage"));
}

RunUsage RunGroup::usage() const {
  RunUsage u;
  u.cpu_ns = cpu_ns();
  if (version_ == kV2) {
    u.peak_bytes = number(fs_.read_file(dirs_[0] + "/memory.peak"));
    u.oom_kills = std::max<std::int64_t>(0, keyed(fs_.read_file(dirs_[0] + "/memory.events"),
                                                  "oom_kill"));
  } else {
    u.peak_bytes = number(fs_.read_file(dirs_[0] + "/memory.max_usage_in_bytes"));
    u.oom_kills = std::max<std::int64_t>(
        0, keyed(fs_.read_file(dirs_[0] + "/memory.oom_control"), "oom_kill"));
  }
  return u;
}

void RunGroup::kill_all() {
  if (version_ == kV2 && fs_.write_file(dirs_[0] + "/cgroup.kill", "1") == 0) return;
  for (int round = 0; round < 100; ++round) {
    auto procs = fs_.read_file(dirs_[0] + "/cgroup.procs");
    if (!procs || procs->empty()) return;
    std::istringstream in(*procs);
    int pid;
    while (in >> pid) ::kill(pid, SIGKILL);
  }
}

void RunGroup::remove() {
  if (removed_) return;
  removed_ = true;
  if (drop_cache_) {
    if (version_ == kV2) {
      auto current = fs_.read_file(dirs_[0] + "/memory.current");
      if (current && number(current) > 0) fs_.write_file(dirs_[0] + "/memory.reclaim", *current);
    } else {
      fs_.write_file(dirs_[0] + "/memory.force_empty", "0");
    }
  }
  for (const auto& d : dirs_) fs_.remove_dir(d);
}

Cgroups::Cgroups(CgroupFs& fs, int version, std::vector<std::string> group_dirs)
    : fs_(fs), version_(version), group_dirs_(std::move(group_dirs)) {}

Cgroups::~Cgroups() {
  for (const auto& d : group_dirs_) {
    for (const auto& leaf : fs_.list_dirs(d)) fs_.remove_dir(d + "/" + leaf);
    fs_.remove_dir(d);
  }
}

std::unique_ptr<Cgroups> Cgroups::open(CgroupFs& fs, const std::string& mountinfo,
                                       const std::string& self_cgroup,
                                       const std::string& group_name, bool (*alive)(int),
                                       std::string* why) {
  auto mounts = cgroup_mounts(mountinfo);
  auto self = self_paths(self_cgroup);
  std::string why_v2;
  for (const auto& m : mounts) {
    if (m.fstype != "cgroup2") continue;
    for (const auto& [controllers, path] : self) {
      if (!controllers.empty() && !(controllers.size() == 1 && controllers[0].empty())) continue;
      remove_stale(fs, dir_in(m, path), alive);
      if (auto dirs = open_v2(fs, m, path, group_name, &why_v2)) {
        return std::unique_ptr<Cgroups>(new Cgroups(fs, kV2, std::move(*dirs)));
      }
    }
  }
  std::string why_v1;
  if (auto dirs = open_v1(fs, mounts, self, group_name, alive, &why_v1)) {
    return std::unique_ptr<Cgroups>(new Cgroups(fs, kV1, std::move(*dirs)));
  }
  *why = why_v2.empty() ? why_v1 : why_v2 + "; " + why_v1;
  return nullptr;
}

void Cgroups::check_dying() {
  auto text = fs_.read_file("/proc/cgroups");
  if (!text) return;
  std::istringstream in(*text);
  std::string line;
  while (std::getline(in, line)) {
    std::istringstream words(line);
    std::string name;
    long long hierarchy = 0, count = 0;
    if (!(words >> name >> hierarchy >> count) || name != "memory") continue;
    if (count > kTooMany) drop_cache_ = true;
    if (count < kEnough) drop_cache_ = false;
  }
}

std::unique_ptr<RunGroup> Cgroups::make_run(const RunLimits& limits, std::string* err) {
  if (next_run_ % kCheckEvery == 0) check_dying();
  std::string name = fmt::format("run-{}", next_run_++);
  std::vector<std::string> dirs;
  for (const auto& g : group_dirs_) {
    std::string d = g + "/" + name;
    if (int e = fs_.make_dir(d); e != 0) {
      *err = fmt::format("cannot create cgroup {}: {}", d, std::strerror(e));
      for (const auto& made : dirs) fs_.remove_dir(made);
      return nullptr;
    }
    dirs.push_back(d);
  }
  auto group = std::make_unique<RunGroup>(fs_, version_, dirs, drop_cache_);
  auto set = [&](const std::string& file, const std::string& value, bool optional) {
    if (!err->empty()) return;
    int e = fs_.write_file(file, value);
    if (e != 0 && !(optional && e == ENOENT)) {
      *err = fmt::format("cannot write {} to {}: {}", value, file, std::strerror(e));
    }
  };
  err->clear();
  std::string memory = std::to_string(limits.memory_bytes);
  if (version_ == kV2) {
    if (limits.memory_bytes > 0) {
      set(dirs[0] + "/memory.max", memory, false);
      set(dirs[0] + "/memory.swap.max", "0", true);
    }
    // One allocation over the limit ends the whole run, not one process.
    set(dirs[0] + "/memory.oom.group", "1", true);
    if (limits.processes > 0) set(dirs[0] + "/pids.max", std::to_string(limits.processes), false);
  } else {
    if (limits.memory_bytes > 0) {
      set(dirs[0] + "/memory.limit_in_bytes", memory, false);
      set(dirs[0] + "/memory.memsw.limit_in_bytes", memory, true);  // no swapping past it
    }
    if (limits.processes > 0) set(dirs[2] + "/pids.max", std::to_string(limits.processes), false);
  }
  if (!err->empty()) return nullptr;  // the destructor removes the directories
  return group;
}

}  // namespace jc::runner
