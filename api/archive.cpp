#include "api/archive.h"

#include <sys/stat.h>
#include <zip.h>

#include <fmt/format.h>
#include <memory>

namespace jc::api {

namespace {

// A path under /box: components of [A-Za-z0-9._-], none "." or "..", no
// leading "/", at most a few levels and a few hundred characters.
bool safe_path(std::string_view name) {
  constexpr std::size_t kMaxPath = 255, kMaxDepth = 16;
  if (name.empty() || name.size() > kMaxPath || name.front() == '/') return false;
  std::size_t depth = 0;
  while (!name.empty()) {
    auto slash = name.find('/');
    std::string_view part = name.substr(0, slash);
    if (part.empty() || part == "." || part == ".." || ++depth > kMaxDepth) return false;
    for (char c : part) {
      bool ok = (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || (c >= '0' && c <= '9') ||
                c == '.' || c == '_' || c == '-';
      if (!ok) return false;
    }
    if (slash == std::string_view::npos) break;
    name.remove_prefix(slash + 1);
  }
  return true;
}

struct ArchiveCloser {
  void operator()(zip_t* z) const { zip_discard(z); }
};
struct FileCloser {
  void operator()(zip_file_t* f) const { zip_fclose(f); }
};

}  // namespace

Extracted extract_zip(std::string_view bytes, std::uint64_t max_bytes, std::size_t max_entries) {
  Extracted out;
  zip_error_t error;
  zip_error_init(&error);
  zip_source_t* source = zip_source_buffer_create(bytes.data(), bytes.size(), 0, &error);
  if (source == nullptr) {
    out.error = "is not a zip archive";
    return out;
  }
  std::unique_ptr<zip_t, ArchiveCloser> archive(zip_open_from_source(source, ZIP_RDONLY, &error));
  if (!archive) {
    zip_source_free(source);
    zip_error_fini(&error);
    out.error = "is not a zip archive";
    return out;
  }
  zip_error_fini(&error);
  zip_int64_t entries = zip_get_num_entries(archive.get(), 0);
  if (entries < 0 || static_cast<std::uint64_t>(entries) > max_entries) {
    out.error = fmt::format("has more than {} entries", max_entries);
    return out;
  }
  std::uint64_t total = 0;
  for (zip_int64_t i = 0; i < entries; ++i) {
    const char* raw = zip_get_name(archive.get(), static_cast<zip_uint64_t>(i), ZIP_FL_ENC_RAW);
    std::string name = raw != nullptr ? raw : "";
    if (!name.empty() && name.back() == '/') continue;  // a directory: made with its files
    zip_uint8_t os = 0;
    zip_uint32_t attributes = 0;
    if (zip_file_get_external_attributes(archive.get(), static_cast<zip_uint64_t>(i), 0, &os,
                                         &attributes) == 0 &&
        os == ZIP_OPSYS_UNIX && S_ISLNK(attributes >> 16)) {
      out.error = fmt::format("has a link ('{}'), which could point outside /box", name);
      return out;
    }
    if (!safe_path(name)) {
      out.error = fmt::format(
          "has an entry named '{}': entries are paths under /box of A-Z a-z 0-9 . _ - "
          "(no '..', no absolute path)",
          name.substr(0, 100));
      return out;
    }
    std::unique_ptr<zip_file_t, FileCloser> file(
        zip_fopen_index(archive.get(), static_cast<zip_uint64_t>(i), 0));
    if (!file) {
      out.error = fmt::format("cannot be read at '{}' (encrypted, or damaged)", name);
      return out;
    }
    protocol::FileSpec f;
    f.name = name;
    char buffer[64 * 1024];
    while (true) {
      zip_int64_t n = zip_fread(file.get(), buffer, sizeof buffer);
      if (n < 0) {
        out.error = fmt::format("cannot be read at '{}' (damaged)", name);
        return out;
      }
      if (n == 0) break;
      total += static_cast<std::uint64_t>(n);
      if (total > max_bytes) {
        out.error = fmt::format("expands to more than {} bytes, the job's disk", max_bytes);
        return out;
      }
      f.content.append(buffer, static_cast<std::size_t>(n));
    }
    for (const auto& other : out.files) {
      // A name twice, or a file where another entry needs a directory.
      bool clash = other.name == f.name || other.name.rfind(f.name + "/", 0) == 0 ||
                   f.name.rfind(other.name + "/", 0) == 0;
      if (clash) {
        out.error = fmt::format("has '{}' and '{}', which cannot both be", other.name, name);
        return out;
      }
    }
    out.files.push_back(std::move(f));
  }
  return out;
}

}  // namespace jc::api
