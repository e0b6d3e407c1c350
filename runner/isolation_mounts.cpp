// The steps that build the minimal root and a job's workspace, prepared by
// the parent (isolation_child.cpp runs them in the child).
#include "runner/isolation_internal.h"

#include <sys/stat.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fmt/format.h>

namespace jc::runner::detail {

namespace fs = std::filesystem;

namespace {

// The root's own tmpfs holds only mount points, links and a few small files.
constexpr const char* kRootTmpfs = "size=4m,nr_inodes=4096,mode=0755";
// Files of /etc that programs need to start, bound read-only when they exist
// (a link is copied as a link). passwd, group, hosts and nsswitch.conf are
// written instead: the host's list its users and its network.
constexpr const char* kEtcEntries[] = {"ld.so.cache", "ld.so.conf", "ld.so.conf.d",
                                       "alternatives", "localtime"};
// Top-level links of a merged-/usr system, or directories of an older one.
constexpr const char* kTopLevel[] = {"bin", "sbin", "lib", "lib32", "lib64", "libx32"};
constexpr const char* kDevices[] = {"null", "zero", "full", "random", "urandom"};
// A job's tmpfs: inodes in proportion to its size, so that a million empty
// files cannot be made (their removal would take seconds).
constexpr std::uint64_t kInodesPerMegabyte = 256;
constexpr std::uint64_t kMinInodes = 1024;

bool exists_no_follow(const std::string& p, struct stat& st) { return ::lstat(p.c_str(), &st) == 0; }

// Ops that make `host` (a file, directory or link) appear at `at` in the root.
void add_entry(std::vector<Op>& ops, const std::string& host, const std::string& at) {
  struct stat st {};
  if (!exists_no_follow(host, st)) return;
  if (S_ISLNK(st.st_mode)) {
    std::error_code ec;
    auto target = fs::read_symlink(host, ec);
    if (!ec) ops.push_back({Op::kSymlink, at, target.string()});
  } else if (S_ISDIR(st.st_mode)) {
    ops.push_back({Op::kMkdir, at, ""});
    ops.push_back({Op::kBindRo, at, host});
  } else {
    ops.push_back({Op::kTouch, at, ""});
    ops.push_back({Op::kBindRo, at, host});
  }
}

// Ops for the parents of `path` under `base` (mkdir -p).
void add_parents(std::vector<Op>& ops, const std::string& base, const std::string& path) {
  std::string so_far;
  fs::path parent = fs::path(path).parent_path();
  for (const auto& part : parent) {
    if (part == "/") continue;
    so_far += "/" + part.string();
    ops.push_back({Op::kMkdir, base + so_far, ""});
  }
}

std::string synthetic_passwd(const IsolationConfig& c, uid_t job_uid, gid_t job_gid,
                             bool groups) {
  std::string out = groups ? "root:x:0:\nnogroup:x:65534:\n"
                           : "root:x:0:0:root:/root:/usr/sbin/nologin\n"
                             "nobody:x:65534:65534:nobody:/nonexistent:/usr/sbin/nologin\n";
  auto line = [&](const std::string& name, std::uint32_t uid, std::uint32_t gid) {
    out += groups ? fmt::format("{}:x:{}:\n", name, gid)
                  : fmt::format("{}:x:{}:{}:{}:/box:/bin/sh\n", name, uid, gid, name);
  };
  if (c.uid_base > 0) {
    for (std::uint32_t i = 0; i < c.slots; ++i) line(fmt::format("job{}", i), c.uid_base + i, c.uid_base + i);
  } else if (job_uid != 65534) {
    line("job", job_uid, job_gid);
  }
  return out;
}

}  // namespace

std::vector<Op> root_ops(const IsolationConfig& c, uid_t job_uid, gid_t job_gid) {
  const std::string b = kBuildAt;
  std::vector<Op> ops;
  ops.push_back({Op::kTmpfs, b, kRootTmpfs});
  for (const char* d : {"usr", "etc", "dev", "proc", "tmp", "box"}) ops.push_back({Op::kMkdir, b + "/" + d, ""});
  ops.push_back({Op::kBindRo, b + "/usr", "/usr"});
  for (const char* top : kTopLevel) add_entry(ops, std::string("/") + top, b + "/" + top);
  for (const char* e : kEtcEntries) add_entry(ops, std::string("/etc/") + e, b + "/etc/" + e);
  // Language runtimes' configuration (the JVM cannot start without its
  // jvm.cfg, which Debian keeps in /etc/java-<version>-openjdk).
  std::error_code ec;
  for (const auto& entry : fs::directory_iterator("/etc", ec)) {
    std::string name = entry.path().filename().string();
    if (name.rfind("java-", 0) == 0) add_entry(ops, entry.path().string(), b + "/etc/" + name);
  }
  ops.push_back({Op::kWrite, b + "/etc/passwd", synthetic_passwd(c, job_uid, job_gid, false)});
  ops.push_back({Op::kWrite, b + "/etc/group", synthetic_passwd(c, job_uid, job_gid, true)});
  ops.push_back({Op::kWrite, b + "/etc/hosts", "127.0.0.1 localhost\n::1 localhost\n"});
  ops.push_back({Op::kWrite, b + "/etc/hostname", std::string(kHostName) + "\n"});
  ops.push_back({Op::kWrite, b + "/etc/nsswitch.conf",
                 "passwd: files\ngroup: files\nshadow: files\nhosts: files\n"});
  for (const char* d : kDevices) {
    std::string host = std::string("/dev/") + d;
    if (::access(host.c_str(), F_OK) != 0) continue;
    ops.push_back({Op::kTouch, b + "/dev/" + d, ""});
    ops.push_back({Op::kBindDev, b + "/dev/" + d, host});
  }
  ops.push_back({Op::kSymlink, b + "/dev/fd", "/proc/self/fd"});
  ops.push_back({Op::kSymlink, b + "/dev/stdin", "/proc/self/fd/0"});
  ops.push_back({Op::kSymlink, b + "/dev/stdout", "/proc/self/fd/1"});
  ops.push_back({Op::kSymlink, b + "/dev/stderr", "/proc/self/fd/2"});
  // POSIX shared memory (shm_open, Python's multiprocessing) lands in the
  // job's /tmp, inside its --disk and its memory.
  ops.push_back({Op::kSymlink, b + "/dev/shm", "/tmp"});
  // JOB_READONLY_PATHS: each at its own path (a link as a link to its
  // target, which is bound too); one inside /usr, or inside another entry,
  // is there already.
  std::vector<std::string> bound{"/usr"};
  auto covered = [&](const std::string& p) {
    for (const auto& done : bound) {
      if (p == done || p.rfind(done + "/", 0) == 0) return true;
    }
    return false;
  };
  std::vector<std::string> paths = c.readonly_paths;
  std::sort(paths.begin(), paths.end(),
            [](const std::string& x, const std::string& y) { return x.size() < y.size(); });
  for (const auto& p : paths) {
    std::error_code canon_ec;
    std::string real = fs::canonical(p, canon_ec).string();
    if (canon_ec) continue;
    if (!covered(real)) {
      add_parents(ops, b, real);
      add_entry(ops, real, b + real);
      bound.push_back(real);
    }
    if (real != p && !covered(p)) {
      add_parents(ops, b, p);
      ops.push_back({Op::kSymlink, b + p, real});
      bound.push_back(p);
    }
  }
  ops.push_back({Op::kRemountRo, b, kRootTmpfs});
  return ops;
}

std::vector<Op> workspace_ops(const WorkspaceSpec& s) {
  std::uint64_t mb = std::max<std::uint64_t>(1, s.disk_bytes >> 20);
  std::string options = fmt::format("size={},nr_inodes={},mode=0755", s.disk_bytes,
                                    std::max(kMinInodes, mb * kInodesPerMegabyte));
  // The tmpfs goes up at /proc (empty now: the run mounts its own proc
  // later), /box and /tmp are bound from it, and it comes down from /proc
  // again: both on one tmpfs, one --disk for the two.
  return {{Op::kTmpfs, "/proc", options},
          {Op::kMkdir, "/proc/box", ""},
          {Op::kChmod, "/proc/box", "0700"},
          {Op::kMkdir, "/proc/tmp", ""},
          {Op::kChmod, "/proc/tmp", "1777"},
          {Op::kFilesAndBox, "/proc", "/proc/box"},
          {Op::kBindTmp, "/tmp", "/proc/tmp"},
          {Op::kDetach, "/proc", ""}};
}

}  // namespace jc::runner::detail
