// The cgroup file system as runner/cgroup.h sees it: the few file
// operations cgroups need, behind an interface so that tests drive the
// cgroup code on a fake (CgroupFs::system() is the real one), and the pure
// parsers of what the kernel shows about them (/proc/self/mountinfo,
// /proc/self/cgroup, "key value" files, range lists of CPUs).
#pragma once

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace jc::runner {

class CgroupFs {
 public:
  virtual ~CgroupFs() = default;
  // 0 or an errno value.
  virtual int make_dir(const std::string& path) = 0;
  virtual int remove_dir(const std::string& path) = 0;
  virtual int write_file(const std::string& path, const std::string& text) = 0;
  virtual std::optional<std::string> read_file(const std::string& path) = 0;
  virtual bool exists(const std::string& path) = 0;
  // Names of the sub-directories of `path`.
  virtual std::vector<std::string> list_dirs(const std::string& path) = 0;
  // A descriptor open for writing (close-on-exec), or -1: the spawned child
  // writes "0" to cgroup.procs through it to join its group before exec.
  virtual int open_for_write(const std::string& path) = 0;

  static CgroupFs& system();
};

namespace cgroup_text {

// A cgroup or cgroup2 mount, from /proc/self/mountinfo.
struct Mount {
  std::string root, point, fstype;
  std::vector<std::string> options;  // super options ("rw", "memory", ...)
};
std::vector<Mount> cgroup_mounts(const std::string& mountinfo);

// /proc/self/cgroup: controller list -> path ("4:memory:/a/b", "0::/x").
std::vector<std::pair<std::vector<std::string>, std::string>> self_paths(const std::string& text);

// The directory of cgroup `path` (as /proc/self/cgroup shows it) in `m`.
std::string dir_in(const Mount& m, const std::string& path);

bool contains(const std::vector<std::string>& v, const std::string& x);
// Whether white-space separated `text` has `word`.
bool has_word(const std::string& text, const std::string& word);
// The value of `key` in "key value" lines (cpu.stat, memory.events,
// memory.oom_control); -1 when absent or unreadable.
std::int64_t keyed(const std::optional<std::string>& text, const std::string& key);
// A file of one number; -1 when unreadable.
std::int64_t number(const std::optional<std::string>& text);

}  // namespace cgroup_text
}  // namespace jc::runner
