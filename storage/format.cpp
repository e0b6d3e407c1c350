#include <string>

#include "storage/store.h"

namespace jc::storage {
namespace {

Status refuse(const std::string& held) {
  return Status::InvalidArgument("it holds storage format " + held + ", this build reads " +
                                 std::string(kStorageFormat) +
                                 ": use an empty DATA_DIR or the jobcluster that wrote it");
}

}  // namespace

Status check_format(Store& store) {
  std::string format;
  Status s = store.get(kFormatKey, &format);
  if (s.ok()) return format == kStorageFormat ? Status::Ok() : refuse(format);
  if (!s.is_not_found()) return s;
  bool empty = true;
  s = store.scan("", [&](std::string_view, std::string_view) {
    empty = false;
    return false;
  });
  if (!s.ok()) return s;
  if (!empty) return refuse("1 (an older jobcluster)");
  WriteBatch mark;
  mark.put(std::string(kFormatKey), std::string(kStorageFormat));
  return store.write(mark, true);
}

}  // namespace jc::storage
