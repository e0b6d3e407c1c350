// Bytes kept in memory per job (a spec's record until its dispatch, a
// record's head while it runs): one heap block that holds its length
// before the bytes, 8 bytes where it is kept. A std::string behind a
// unique_ptr took two blocks, 32 bytes more, and two allocations a job.
#pragma once

#include <cstdint>
#include <cstring>
#include <stdexcept>
#include <string>
#include <string_view>
#include <utility>

namespace jc {

class OwnedBytes {
 public:
  OwnedBytes() = default;
  explicit OwnedBytes(std::string_view s) {
    if (s.size() > UINT32_MAX) throw std::length_error("OwnedBytes: over 4 GiB");
    const auto size = static_cast<std::uint32_t>(s.size());
    block_ = new char[kHeader + s.size()];
    std::memcpy(block_, &size, kHeader);
    if (!s.empty()) std::memcpy(block_ + kHeader, s.data(), s.size());
  }
  OwnedBytes(const OwnedBytes&) = delete;
  OwnedBytes& operator=(const OwnedBytes&) = delete;
  OwnedBytes(OwnedBytes&& other) noexcept : block_(std::exchange(other.block_, nullptr)) {}
  OwnedBytes& operator=(OwnedBytes&& other) noexcept {
    if (this != &other) {
      reset();
      block_ = std::exchange(other.block_, nullptr);
    }
    return *this;
  }
  ~OwnedBytes() { reset(); }

  explicit operator bool() const { return block_ != nullptr; }
  std::size_t size() const {
    std::uint32_t size = 0;
    if (block_ != nullptr) std::memcpy(&size, block_, kHeader);
    return size;
  }
  std::string_view view() const {
    return block_ == nullptr ? std::string_view() : std::string_view(block_ + kHeader, size());
  }
  std::string str() const { return std::string(view()); }
  void reset() {
    delete[] block_;
    block_ = nullptr;
  }

 private:
  static constexpr std::size_t kHeader = sizeof(std::uint32_t);
  char* block_ = nullptr;  // a uint32_t length, then the bytes
};

static_assert(sizeof(OwnedBytes) == sizeof(char*));

}  // namespace jc
