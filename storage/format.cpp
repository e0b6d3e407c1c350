#include <string>

#include "storage/store.h"

namespace jc::storage {
namespace {

Status refuse(const std::string& held) {
  return Status::InvalidArgument("it holds storage format " + held + ", this build reads 4 and " +
                                 std::string(kStorageFormat) +
                                 ": use an empty DATA_DIR or the jobcluster that wrote it");
}

}  // namespace

Status check_format(Store& store, std::string* found) {
  std::string format;
  Status s = store.get(kFormatKey, &format);
  if (found) *found = s.ok() ? format : "";
  if (s.ok() && format == kStorageFormat) return Status::Ok();
  if (s.ok() && format == "4") {
    // Its records are version 4, which every later build reads. On a full
    // disk the mark waits for the next start: the records read either way.
    WriteBatch mark;
    mark.put(std::string(kFormatKey), std::string(kStorageFormat));
    if (store.writable()) (void)store.write(mark, true);
    return Status::Ok();
  }
  if (s.ok()) return refuse(format);
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
