#include "tests/support/http_client.h"

#include <algorithm>
#include <cctype>
#include <charconv>

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

namespace {

struct Head {
  int status = 0;  // 0: not an HTTP answer's head
  std::size_t length = 0;
};

// The status line and Content-Length of `head`; field(name, value) for
// every header line.
template <class Field>
Head parse_head(std::string_view head, Field&& field) {
  Head h;
  if (head.rfind("HTTP/1.", 0) != 0 || head.size() < 12) return h;
  std::string_view rest = head;
  auto line_end = rest.find("\r\n");
  std::string_view status = rest.substr(0, line_end);
  std::from_chars(status.data() + 9, status.data() + std::min<std::size_t>(12, status.size()), h.status);
  if (h.status == 0) return h;
  rest.remove_prefix(line_end + 2);
  while (!rest.empty()) {
    line_end = rest.find("\r\n");
    std::string_view line = rest.substr(0, line_end);
    rest.remove_prefix(line_end == std::string_view::npos ? rest.size() : line_end + 2);
    auto colon = line.find(':');
    if (colon == std::string_view::npos) continue;
    std::string_view name = line.substr(0, colon);
    std::string_view value = line.substr(colon + 1);
    while (!value.empty() && value.front() == ' ') value.remove_prefix(1);
    constexpr std::string_view kLength = "content-length";
    if (std::equal(name.begin(), name.end(), kLength.begin(), kLength.end(),
                   [](char x, char y) { return std::tolower(static_cast<unsigned char>(x)) == y; })) {
      std::from_chars(value.data(), value.data() + value.size(), h.length);
    }
    field(name, value);
  }
  return h;
}

}  // namespace

HttpAnswer HttpClient::read(std::chrono::milliseconds timeout, bool headers) {
  HttpAnswer a;
  auto head = client_.until_view("\r\n\r\n", timeout);
  if (!head) return a;
  Head h = parse_head(*head, [&](std::string_view name, std::string_view value) {
    if (!headers) return;
    std::string lower(name);
    std::transform(lower.begin(), lower.end(), lower.begin(),
                   [](unsigned char c) { return static_cast<char>(std::tolower(c)); });
    a.headers[std::move(lower)] = std::string(value);
  });
  if (h.status == 0) return HttpAnswer{};
  if (h.length > 0) {
    auto body = client_.bytes_view(h.length, timeout);
    if (!body) return HttpAnswer{};
    a.body = std::string(*body);
  }
  a.status = h.status;
  return a;
}

HttpBrief HttpClient::read_brief(std::chrono::milliseconds timeout) {
  auto head = client_.until_view("\r\n\r\n", timeout);
  if (!head) return {};
  Head h = parse_head(*head, [](std::string_view, std::string_view) {});
  if (h.status == 0) return {};
  HttpBrief b;
  if (h.length > 0) {
    auto body = client_.bytes_view(h.length, timeout);
    if (!body) return {};
    b.body = *body;
  }
  b.status = h.status;
  return b;
}

}  // namespace jc::test
