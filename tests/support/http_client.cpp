#include "tests/support/http_client.h"

#include <algorithm>
#include <cctype>

namespace jc::test {

HttpAnswer HttpClient::request(const std::string& method, const std::string& path,
                               const std::string& body,
                               const std::map<std::string, std::string>& headers,
                               std::chrono::milliseconds timeout) {
  std::string req = method + " " + path + " HTTP/1.1\r\nHost: test\r\n";
  for (const auto& [k, v] : headers) req += k + ": " + v + "\r\n";
  if (!body.empty() || method == "POST") {
    req += "Content-Type: application/json\r\nContent-Length: " + std::to_string(body.size()) + "\r\n";
  }
  req += "\r\n" + body;
  if (!client_.send(req)) return {};
  return read(timeout);
}

HttpAnswer HttpClient::read(std::chrono::milliseconds timeout) {
  HttpAnswer a;
  auto status = client_.line(timeout);
  if (!status || status->rfind("HTTP/1.", 0) != 0 || status->size() < 12) return a;
  a.status = std::stoi(status->substr(9, 3));
  while (true) {
    auto h = client_.line(timeout);
    if (!h) return HttpAnswer{};
    std::string line = *h;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    if (line.empty()) break;
    auto colon = line.find(':');
    if (colon == std::string::npos) continue;
    std::string name = line.substr(0, colon);
    std::transform(name.begin(), name.end(), name.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    std::string value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.erase(0, 1);
    a.headers[name] = value;
  }
  std::size_t length = a.headers.count("content-length") ? std::stoul(a.headers["content-length"]) : 0;
  if (length > 0) {
    auto body = client_.bytes(length, timeout);
    if (!body) return HttpAnswer{};
    a.body = *body;
  }
  return a;
}

}  // namespace jc::test
