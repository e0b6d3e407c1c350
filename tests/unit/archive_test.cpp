// Unit tests of api/archive.h: judge0's additional_files extracted into a
// job's files, and every archive that could reach outside /box, outgrow
// its disk or hide in a link refused. Zips are made here with libzip.
#include "api/archive.h"

#include <doctest/doctest.h>
#include <sys/stat.h>
#include <zip.h>

#include <string>
#include <utility>
#include <vector>

namespace jc::api {
namespace {

struct Entry {
  std::string name;
  std::string content;
  bool link = false;
};

// A zip of these entries, in memory.
std::string make_zip(const std::vector<Entry>& entries) {
  zip_error_t err;
  zip_error_init(&err);
  zip_source_t* src = zip_source_buffer_create(nullptr, 0, 0, &err);
  REQUIRE(src != nullptr);
  zip_source_keep(src);
  zip_t* z = zip_open_from_source(src, ZIP_TRUNCATE, &err);
  REQUIRE(z != nullptr);
  for (const auto& e : entries) {
    zip_source_t* s = zip_source_buffer(z, e.content.data(), e.content.size(), 0);
    zip_int64_t i = zip_file_add(z, e.name.c_str(), s, ZIP_FL_ENC_UTF_8);
    REQUIRE(i >= 0);
    if (e.link) {
      zip_file_set_external_attributes(z, static_cast<zip_uint64_t>(i), 0, ZIP_OPSYS_UNIX,
                                       static_cast<zip_uint32_t>(S_IFLNK | 0777) << 16);
    }
  }
  REQUIRE(zip_close(z) == 0);
  REQUIRE(zip_source_open(src) == 0);
  zip_source_seek(src, 0, SEEK_END);
  zip_int64_t size = zip_source_tell(src);
  zip_source_seek(src, 0, SEEK_SET);
  std::string out(static_cast<std::size_t>(size), '\0');
  REQUIRE(zip_source_read(src, out.data(), static_cast<zip_uint64_t>(size)) == size);
  zip_source_close(src);
  zip_source_free(src);
  zip_error_fini(&err);
  return out;
}

}  // namespace

TEST_CASE("archive: a zip's files, with their directories, become the job's") {
  std::string zip = make_zip({{"compile", "g++ src/main.cpp"}, {"run", "./a.out"},
                              {"src/main.cpp", "int main(){}"}, {"src/", ""}});
  Extracted e = extract_zip(zip, 1 << 20, 100);
  REQUIRE(e.error == "");
  REQUIRE(e.files.size() == 3);
  CHECK(e.files[0].name == "compile");
  CHECK(e.files[2].name == "src/main.cpp");
  CHECK(e.files[2].content == "int main(){}");
}

TEST_CASE("archive: nothing lands outside /box: .., absolute paths, links") {
  for (const char* bad : {"../escape", "/etc/passwd", "a/../../b", "./x", "a//b", "sp ace"}) {
    Extracted e = extract_zip(make_zip({{bad, "x"}}), 1 << 20, 100);
    CHECK_MESSAGE(e.error.find("has an entry named") == 0, bad);
    CHECK(e.files.empty());
  }
  Extracted link = extract_zip(make_zip({{"passwd", "/etc/passwd", true}}), 1 << 20, 100);
  CHECK(link.error.find("has a link") == 0);
}

TEST_CASE("archive: a bomb is cut as it inflates, and too many entries are refused") {
  std::string zeros(8 << 20, '\0');
  std::string bomb = make_zip({{"zeros", zeros}});
  CHECK(bomb.size() < 64 * 1024);
  Extracted e = extract_zip(bomb, 1 << 20, 100);
  CHECK(e.error == "expands to more than 1048576 bytes, the job's disk");
  std::vector<Entry> many;
  for (int i = 0; i < 20; ++i) many.push_back({"f" + std::to_string(i), "x"});
  CHECK(extract_zip(make_zip(many), 1 << 20, 10).error == "has more than 10 entries");
  CHECK(extract_zip(make_zip({{"a", "1"}, {"a/b", "2"}}), 1 << 20, 10).error.find("cannot both be") !=
        std::string::npos);
}

TEST_CASE("archive: what is not a zip says so") {
  CHECK(extract_zip("not a zip at all", 1 << 20, 10).error == "is not a zip archive");
  // No bytes at all is an empty archive to libzip: nothing to extract.
  Extracted empty = extract_zip("", 1 << 20, 10);
  CHECK(empty.error == "");
  CHECK(empty.files.empty());
}

}  // namespace jc::api
