// An HTTP/1.1 client for integration tests, over the test Client (a
// deadline on every read): requests on one keep-alive connection, answers
// read by their Content-Length.
#pragma once

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <string_view>

#include "tests/support/client.h"

namespace jc::test {

struct HttpAnswer {
  int status = 0;  // 0: no answer (closed, timed out, garbage)
  std::map<std::string, std::string> headers;  // names in lower case
  std::string body;
  std::string header(const std::string& name) const {
    auto it = headers.find(name);
    return it == headers.end() ? "" : it->second;
  }
};

// An answer's status and body, the body a view into the client's buffer,
// valid until its next read.
struct HttpBrief {
  int status = 0;  // 0: no answer (closed, timed out, garbage)
  std::string_view body;
};

class HttpClient {
 public:
  explicit HttpClient(std::uint16_t port) : client_(port) {}
  HttpAnswer request(const std::string& method, const std::string& path,
                     const std::string& body = "",
                     const std::map<std::string, std::string>& headers = {},
                     std::chrono::milliseconds timeout = std::chrono::seconds(60));
  HttpAnswer get(const std::string& path, const std::map<std::string, std::string>& headers = {}) {
    return request("GET", path, "", headers);
  }
  HttpAnswer post(const std::string& path, const std::string& body,
                  const std::map<std::string, std::string>& headers = {}) {
    return request("POST", path, body, headers);
  }
  // Reads one answer to bytes sent by hand; `headers` false keeps only the
  // status and body (a benchmark's client, which shares the machine).
  HttpAnswer read(std::chrono::milliseconds timeout = std::chrono::seconds(60), bool headers = true);
  // As read(), copying nothing: what a benchmark's client needs of an answer.
  HttpBrief read_brief(std::chrono::milliseconds timeout = std::chrono::seconds(60));
  Client& raw() { return client_; }

 private:
  Client client_;
};

}  // namespace jc::test
