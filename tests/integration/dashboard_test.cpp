// The dashboard in a real browser: headless Chromium loads the page from the
// proxy, its script fetches /api/state, and the rendered DOM shows the live
// node count and numbers that change when jobs run. A screenshot is saved as
// build/dashboard.png. Skips with the reason where Chromium is missing.
#include <doctest/doctest.h>

#include <array>
#include <cstdio>
#include <filesystem>

#include "tests/support/cluster.h"
#include "tests/support/skip.h"

using namespace jc::test;

namespace {

const char* kChromium = "/usr/bin/chromium";

std::string run_capture(const std::string& cmd) {
  std::string out;
  FILE* p = popen(cmd.c_str(), "r");
  if (p == nullptr) return out;
  std::array<char, 4096> buf{};
  while (std::size_t n = fread(buf.data(), 1, buf.size(), p)) out.append(buf.data(), n);
  pclose(p);
  return out;
}

std::string browser(const std::string& args, const std::string& url) {
  return run_capture(std::string("timeout 60 ") + kChromium +
                     " --headless --no-sandbox --disable-gpu --hide-scrollbars "
                     "--virtual-time-budget=3000 " +
                     args + " " + url + " 2>/dev/null");
}

// The text of the element with this id in a dumped DOM.
std::string text_of(const std::string& dom, const std::string& id) {
  std::string open = "id=\"" + id + "\">";
  auto pos = dom.find(open);
  if (pos == std::string::npos) return "";
  pos += open.size();
  return dom.substr(pos, dom.find('<', pos) - pos);
}

}  // namespace

TEST_CASE("dashboard: headless Chromium shows the live node count and moving numbers") {
  if (!std::filesystem::exists(kChromium)) {
    JC_SKIP("no Chromium at /usr/bin/chromium (scripts/install-deps --test installs it)");
  }
  Cluster cluster({.nodes = 2, .slots = 2, .proxy_env = {{"STATUS_PORT", "0"}}});
  std::uint16_t http = cluster.proxy().wait_listening("for status");
  REQUIRE(http != 0);
  REQUIRE(cluster.wait_nodes_up(2));
  std::string url = "http://127.0.0.1:" + std::to_string(http) + "/";
  std::string before = browser("--dump-dom", url);
  CHECK(text_of(before, "nodes_up") == "2/2");
  CHECK(text_of(before, "finished") == "0");
  Client c(cluster.node_port(0));
  auto tickets = submit_many(c, 20, 10);
  REQUIRE(tickets.size() == 20);
  for (const auto& t : tickets) REQUIRE(!wait_result(c, t, 30s).empty());
  std::string after = browser("--dump-dom", url);
  CHECK(text_of(after, "nodes_up") == "2/2");
  CHECK(text_of(after, "finished") == "20");
  CHECK(after.find("node n1 joined") != std::string::npos);
  // The recent jobs, each opening its record.
  for (const auto& t : tickets) CHECK(after.find("href=\"/api/jobs/" + t + "\"") != std::string::npos);
  std::string shot = std::string(JC_BIN_DIR) + "/../dashboard.png";
  std::filesystem::remove(shot);
  browser("--window-size=1000,640 --screenshot=" + shot, url);
  CHECK(std::filesystem::exists(shot));
  CHECK(std::filesystem::file_size(shot) > 1000);
}

TEST_CASE("playground: headless Chromium runs the page's C++ program on a node to Accepted") {
  if (!std::filesystem::exists(kChromium)) {
    JC_SKIP("no Chromium at /usr/bin/chromium (scripts/install-deps --test installs it)");
  }
  if (!std::filesystem::exists("/usr/bin/g++")) JC_SKIP("no g++ on this machine");
  Cluster cluster({.nodes = 1, .slots = 2, .node_env = {{"API_PORT", "0"}}});
  std::uint16_t api = cluster.node(0).wait_listening("judge0-compatible API");
  REQUIRE(api != 0);
  REQUIRE(cluster.wait_nodes_up(1));
  std::string url = "'http://127.0.0.1:" + std::to_string(api) + "/?autorun=1'";
  // Virtual time runs the page's polling on; the compile and run take real
  // time, during which the browser's fetches are pending.
  std::string dom = run_capture(std::string("timeout 120 ") + kChromium +
                                " --headless --no-sandbox --disable-gpu --virtual-time-budget=600000"
                                " --dump-dom " + url + " 2>/dev/null");
  CHECK(text_of(dom, "status") == "Accepted");
  CHECK(text_of(dom, "stdout") == "hello, world\n");
  CHECK(text_of(dom, "verdict") == "ACCEPTED");
  CHECK(text_of(dom, "node") == "n1");
}
