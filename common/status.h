// Status: the outcome of a fallible call in the cores and in storage.
// Modelled on LevelDB's: built by named factories, checked with ok().
#pragma once

#include <string>
#include <utility>

namespace jc {

class Status {
 public:
  enum class Code { kOk, kNotFound, kCorruption, kIoError, kInvalidArgument };

  Status() = default;
  static Status Ok() { return {}; }
  static Status NotFound(std::string msg) { return {Code::kNotFound, std::move(msg)}; }
  static Status Corruption(std::string msg) { return {Code::kCorruption, std::move(msg)}; }
  static Status IoError(std::string msg) { return {Code::kIoError, std::move(msg)}; }
  static Status InvalidArgument(std::string msg) {
    return {Code::kInvalidArgument, std::move(msg)};
  }

  bool ok() const { return code_ == Code::kOk; }
  bool is_not_found() const { return code_ == Code::kNotFound; }
  Code code() const { return code_; }
  const std::string& message() const { return message_; }
  std::string to_string() const;

 private:
  Status(Code code, std::string msg) : code_(code), message_(std::move(msg)) {}
  Code code_ = Code::kOk;
  std::string message_;
};

inline std::string Status::to_string() const {
  switch (code_) {
    case Code::kOk:
      return "OK";
    case Code::kNotFound:
      return "NotFound: " + message_;
    case Code::kCorruption:
      return "Corruption: " + message_;
    case Code::kIoError:
      return "IO error: " + message_;
    case Code::kInvalidArgument:
      return "Invalid argument: " + message_;
  }
  return message_;
}

}  // namespace jc
