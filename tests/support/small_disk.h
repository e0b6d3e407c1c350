// A small file system for disk-full tests: a tmpfs of the test's own
// (needs CAP_SYS_ADMIN), unmounted at the end.
#pragma once

#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

namespace jc::test {

struct SmallDisk {
  explicit SmallDisk(int mb) {
    dir = (std::filesystem::temp_directory_path() / ("jc-disk-" + std::to_string(::getpid()))).string();
    std::filesystem::create_directories(dir);
    mounted = std::system(("mount -t tmpfs -o size=" + std::to_string(mb) + "m,mode=0700 tmpfs " +
                           dir + " 2>/dev/null")
                              .c_str()) == 0;
  }
  ~SmallDisk() {
    if (mounted) std::system(("umount -l " + dir).c_str());
    std::error_code ec;
    std::filesystem::remove_all(dir, ec);
  }
  bool resize(int mb) {
    return std::system(("mount -o remount,size=" + std::to_string(mb) + "m " + dir).c_str()) == 0;
  }
  // Writes a file until the file system refuses more.
  void fill() {
    std::ofstream out(dir + "/filler", std::ios::binary);
    std::string chunk(1 << 16, 'x');
    while (out.write(chunk.data(), static_cast<std::streamsize>(chunk.size()))) out.flush();
  }
  std::string dir;
  bool mounted = false;
};


}  // namespace jc::test
