#include "runner/cgroup_fs.h"

#include <dirent.h>
#include <fcntl.h>
#include <sys/stat.h>
#include <unistd.h>

#include <cerrno>
#include <sstream>

namespace jc::runner {

namespace {

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

}  // namespace

CgroupFs& CgroupFs::system() {
  static SystemFs fs;
  return fs;
}

namespace cgroup_text {

namespace {

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

std::vector<std::string> split(const std::string& s, char sep) {
  std::vector<std::string> out;
  std::string item;
  std::istringstream in(s);
  while (std::getline(in, item, sep)) out.push_back(item);
  return out;
}

}  // namespace

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

}  // namespace cgroup_text
}  // namespace jc::runner
