// judge0's additional_files: a zip, extracted into the files a job gets in
// /box (libzip reads it; no hand-written parser). Everything is checked
// before the job is queued, so a bad archive is a 422 and never a job: an
// entry that would land outside /box (an absolute path, "..", a link), a
// name of other characters than [A-Za-z0-9._-] per path component, more
// than `max_entries` entries, or more than `max_bytes` once expanded (a
// zip bomb is cut as it inflates, whatever sizes it claims).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include "protocol/job.h"

namespace jc::api {

struct Extracted {
  std::vector<protocol::FileSpec> files;  // names are paths under /box ("src/main.c")
  std::string error;                      // "" when it could be extracted
};

Extracted extract_zip(std::string_view zip, std::uint64_t max_bytes, std::size_t max_entries);

}  // namespace jc::api
