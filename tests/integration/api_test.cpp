// The judge0-compatible HTTP API on a real node (API_PORT): judge0's
// documented requests and answers, a job submitted through the API and
// read through nc and the other way round, statuses from real programs,
// test cases, batches, tokens and ownership, CORS, and bad input of every
// kind that leaves the node serving.
#include <doctest/doctest.h>
#include <nlohmann/json.hpp>

#include <filesystem>
#include <fstream>
#include <set>
#include <thread>
#include <atomic>
#include <mutex>
#include <algorithm>
#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include "api/http_server.h"
#include "tests/support/cluster.h"
#include "tests/support/http_client.h"
#include "tests/support/run_jobs.h"

using namespace jc::test;
using nlohmann::json;

namespace {

// One node with the API on, and its port.
struct ApiNode {
  explicit ApiNode(std::map<std::string, std::string> env = {}, int nodes = 1, bool wait_up = true)
      : cluster([&] {
          ClusterOptions o;
          o.nodes = nodes;
          o.slots = 2;
          o.node_env = std::move(env);
          o.node_env["API_PORT"] = "0";
          return o;
        }()) {
    if (wait_up) REQUIRE(cluster.wait_nodes_up(cluster.size()));
    port = cluster.node(0).wait_listening("judge0-compatible API");
    REQUIRE(port != 0);
  }
  Cluster cluster;
  std::uint16_t port = 0;
};

json body_of(const HttpAnswer& a) {
  json j = json::parse(a.body, nullptr, false);
  INFO(a.status << " " << a.body);
  REQUIRE_FALSE(j.is_discarded());
  return j;
}

// POSTs a submission with wait=true and returns the answer's JSON.
json run_waiting(HttpClient& http, const json& submission, const std::string& query = "") {
  auto a = http.post("/submissions?wait=true" + query, submission.dump());
  INFO(a.body);
  REQUIRE(a.status == 201);
  return body_of(a);
}


// A callback receiver on loopback: records every request, answers each
// with `status` (500 makes the node try again later).
class Receiver {
 public:
  Receiver() {
    fd_ = ::socket(AF_INET, SOCK_STREAM | SOCK_CLOEXEC, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    REQUIRE(::bind(fd_, reinterpret_cast<sockaddr*>(&a), sizeof a) == 0);
    REQUIRE(::listen(fd_, 16) == 0);
    socklen_t len = sizeof a;
    ::getsockname(fd_, reinterpret_cast<sockaddr*>(&a), &len);
    port = ntohs(a.sin_port);
    thread_ = std::thread([this] { loop(); });
  }
  ~Receiver() {
    stop_ = true;
    ::shutdown(fd_, SHUT_RDWR);
    ::close(fd_);
    thread_.join();
  }
  struct Request {
    std::string method, target, body;
    int answered = 0;
  };
  std::vector<Request> requests() {
    std::lock_guard lock(mutex_);
    return requests_;
  }
  std::atomic<int> status{200};
  std::uint16_t port = 0;

 private:
  void loop() {
    while (!stop_) {
      int c = ::accept4(fd_, nullptr, nullptr, SOCK_CLOEXEC);
      if (c < 0) return;
      timeval tv{5, 0};
      ::setsockopt(c, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
      std::string data;
      char buf[4096];
      std::size_t body_at = std::string::npos, length = 0;
      while (true) {
        ssize_t n = ::recv(c, buf, sizeof buf, 0);
        if (n <= 0) break;
        data.append(buf, static_cast<std::size_t>(n));
        if (body_at == std::string::npos && (body_at = data.find("\r\n\r\n")) != std::string::npos) {
          body_at += 4;
          std::string lower = data.substr(0, body_at);
          std::transform(lower.begin(), lower.end(), lower.begin(), ::tolower);
          auto cl = lower.find("content-length:");
          if (cl != std::string::npos) length = std::stoul(lower.substr(cl + 15));
        }
        if (body_at != std::string::npos && data.size() >= body_at + length) break;
      }
      Request r;
      auto sp = data.find(' ');
      r.method = data.substr(0, sp);
      r.target = data.substr(sp + 1, data.find(' ', sp + 1) - sp - 1);
      if (body_at != std::string::npos) r.body = data.substr(body_at);
      r.answered = status;
      std::string answer = "HTTP/1.1 " + std::to_string(r.answered) + " X\r\nContent-Length: 0\r\n\r\n";
      ::send(c, answer.data(), answer.size(), MSG_NOSIGNAL);
      ::close(c);
      std::lock_guard lock(mutex_);
      requests_.push_back(std::move(r));
    }
  }
  int fd_ = -1;
  std::atomic<bool> stop_{false};
  std::mutex mutex_;
  std::vector<Request> requests_;
  std::thread thread_;
};

const char* kHelloC =
    "#include <stdio.h>\n\nint main(void) {\n  char name[10];\n  scanf(\"%s\", name);\n"
    "  printf(\"hello, %s\\n\", name);\n  return 0;\n}";

}  // namespace

TEST_CASE("api: judge0's documented C request is created, judged, and read by its token") {
  ApiNode node;
  HttpClient http(node.port);
  json req = {{"source_code", kHelloC}, {"language_id", 50}, {"stdin", "Judge0"},
              {"expected_output", "hello, Judge0"}};
  auto created = http.post("/submissions", req.dump());
  REQUIRE(created.status == 201);
  json token = body_of(created);
  REQUIRE(token.size() == 1);
  std::string t = token["token"];
  json got;
  REQUIRE(eventually(
      [&] {
        got = body_of(http.get("/submissions/" + t));
        return got["status"]["id"] >= 3;
      },
      60s, 100ms));
  // judge0's default eight attributes, in its order and types.
  std::vector<std::string> keys;
  for (auto it = got.begin(); it != got.end(); ++it) keys.push_back(it.key());
  CHECK(keys == std::vector<std::string>{"compile_output", "memory", "message", "status", "stderr",
                                         "stdout", "time", "token"});  // nlohmann sorts keys
  CHECK(got["status"] == json{{"id", 3}, {"description", "Accepted"}});
  CHECK(got["stdout"] == "hello, Judge0\n");
  CHECK(got["token"] == t);
  CHECK(got["time"].is_string());
  CHECK(got["memory"].is_number_integer());
  CHECK(got["stderr"].is_null());
  // Base64, as judge0 writes it.
  json b64 = body_of(http.get("/submissions/" + t + "?base64_encoded=true&fields=stdout,status_id"));
  CHECK(b64 == json{{"stdout", "aGVsbG8sIEp1ZGdlMAo=\n"}, {"status_id", 3}});
  // The token is the ticket: nc shows the same job.
  Client nc(node.cluster.node_port(0));
  nc.send("wait " + t + " 60\n");
  RunResult r = read_run_result(nc);
  REQUIRE(r.ok);
  CHECK(r.state == "DONE");
  CHECK(r.fact("verdict") == "ACCEPTED");
  CHECK(r.out == "hello, Judge0\n");
}

TEST_CASE("api: a job submitted through nc is read through the API, through another node too") {
  ApiNode node({}, 2);
  Client nc(node.cluster.node_port(1));
  RunResult r = run_and_wait(nc, "run --expect 3 echo 3");
  std::string t = r.header.substr(8, r.header.find(' ', 8) - 8);
  HttpClient http(node.port);
  json got = body_of(http.get("/submissions/" + t + "?fields=token,status,stdout,verdict,node"));
  CHECK(got["status"]["description"] == "Accepted");
  CHECK(got["stdout"] == "3\n");
  CHECK(got["verdict"] == "ACCEPTED");
  CHECK(got["node"].is_string());
  CHECK(http.get("/submissions/nosuchticket-1").status == 404);
}

TEST_CASE("api: statuses from real programs: WA, TLE, NZEC with its exit code, SIGSEGV, CE") {
  ApiNode node;
  HttpClient http(node.port);
  json wa = run_waiting(http, {{"source_code", "print(41)"}, {"language_id", 71},
                               {"expected_output", "42"}});
  CHECK(wa["status"]["id"] == 4);
  json tle = run_waiting(http, {{"source_code", "while True: pass"}, {"language_id", 71},
                                {"cpu_time_limit", 0.5}, {"wall_time_limit", 2}});
  CHECK(tle["status"]["id"] == 5);
  CHECK(tle["message"] == "Time limit exceeded");
  json nzec = run_waiting(http, {{"source_code", "import sys; sys.exit(3)"}, {"language_id", 71}},
                          "&fields=status,exit_code,message");
  CHECK(nzec["status"]["id"] == 11);
  CHECK(nzec["exit_code"] == 3);
  CHECK(nzec["message"] == "Exited with error status 3");
  json segv = run_waiting(http, {{"source_code", "int main(){volatile int*p=0;return *p;}"},
                                 {"language_id", 54}},
                          "&fields=status,exit_signal");
  CHECK(segv["status"]["id"] == 7);
  CHECK(segv["exit_signal"] == 11);
  json ce = run_waiting(http, {{"source_code", "int main(){return 3}"}, {"language_id", 54}});
  CHECK(ce["status"]["id"] == 6);
  CHECK(ce["compile_output"].get<std::string>().find("error") != std::string::npos);
  CHECK(ce["time"].is_null());
  // compiler options and arguments reach the compiler and the program as words.
  json args = run_waiting(http, {{"source_code",
                                  "#include <cstdio>\nint main(int c,char**v){for(int i=1;i<c;++i)"
                                  "printf(\"[%s]\",v[i]);printf(\"%d\\n\",X);}"},
                                 {"language_id", 54},
                                 {"compiler_options", "-DX=7 -O2"},
                                 {"command_line_arguments", "a 'b c' ;rm"}});
  CHECK(args["stdout"] == "[a][b c][;rm]7\n");
}

TEST_CASE("api: test cases run behind one compile, each with its status, the first failure shown") {
  ApiNode node;
  HttpClient http(node.port);
  json r = run_waiting(
      http,
      {{"source_code", "#include <iostream>\nint main(){long a,b;std::cin>>a>>b;std::cout<<a+b<<'\\n';}"},
       {"language_id", 54},
       {"test_cases", {{{"stdin", "1 2"}, {"expected_output", "3"}},
                       {{"stdin", "2 2"}, {"expected_output", "5"}},
                       {{"stdin", "5 5"}, {"expected_output", "10"}}}}},
      "&fields=status,stdout,test_cases,verdict");
  CHECK(r["status"]["id"] == 4);
  CHECK(r["verdict"] == "WRONG_ANSWER");
  CHECK(r["stdout"] == "4\n");
  REQUIRE(r["test_cases"].size() == 3);
  CHECK(r["test_cases"][0]["status"]["id"] == 3);
  CHECK(r["test_cases"][1]["status"]["id"] == 4);
  CHECK(r["test_cases"][2]["status"]["id"] == 3);
}

TEST_CASE("api: judge0's 422s, 400s and 404s, and garbage leaves the node serving") {
  ApiNode node(std::map<std::string, std::string>{{"API_MAX_BODY_KB", "64"}});
  HttpClient http(node.port);
  auto no_language = http.post("/submissions", json{{"source_code", kHelloC}}.dump());
  CHECK(no_language.status == 422);
  CHECK(no_language.body == R"({"language_id":["can't be blank"]})");
  auto unknown = http.post("/submissions", json{{"source_code", kHelloC}, {"language_id", 150000}}.dump());
  CHECK(unknown.status == 422);
  CHECK(unknown.body == R"({"language_id":["language with id 150000 doesn't exist"]})");
  auto over = http.post("/submissions", json{{"source_code", "x"}, {"language_id", 71},
                                              {"wall_time_limit", 100000}}.dump());
  CHECK(over.status == 422);
  CHECK(over.body.find("must be less than or equal to") != std::string::npos);
  CHECK(http.post("/submissions", "{\"source_code\": ").status == 400);
  // Nested past the parser's depth (1024; Rails stops at 100): not JSON
  // it reads, a 400 as Rails gives; shallower, a 422 for not an object.
  CHECK(http.post("/submissions", std::string(20000, '[') + std::string(20000, ']')).status == 400);
  CHECK(http.post("/submissions", std::string(50, '[') + std::string(50, ']')).status == 422);
  CHECK(http.get("/submissions/x?fields=stdout,nope").body == R"({"error":"invalid fields: [nope]"})");
  CHECK(http.get("/nothing").status == 404);
  // Over the body limit: 413, and that connection closes.
  HttpClient big(node.port);
  CHECK(big.post("/submissions", std::string(100 * 1024, ' ')).status == 413);
  // Cut off and garbage.
  {
    HttpClient cut(node.port);
    cut.raw().send("POST /submissions HTTP/1.1\r\nContent-Length: 1000\r\n\r\n{\"source");
  }
  HttpClient junk(node.port);
  junk.raw().send(std::string("\x16\x03\x01\x00\xff garbage\r\n\r\n", 17));
  CHECK(junk.read(10s).status == 400);
  // Nothing was queued by any of it, and the node still serves.
  json ok = run_waiting(http, {{"source_code", "print(1)"}, {"language_id", 71}});
  CHECK(ok["stdout"] == "1\n");
  Client nc(node.cluster.node_port(0));
  CHECK(nc.multi("getall")[0] == "Jobs: 1");
}

TEST_CASE("api: a batch is answered in order, and read back by its tokens") {
  ApiNode node;
  HttpClient http(node.port);
  json batch = {{"submissions",
                 {{{"source_code", "print(1)"}, {"language_id", 71}},
                  {{"source_code", "x"}},
                  {{"source_code", "print(2)"}, {"language_id", 71}}}}};
  auto a = http.post("/submissions/batch", batch.dump());
  REQUIRE(a.status == 201);
  json items = body_of(a);
  REQUIRE(items.size() == 3);
  CHECK(items[0].contains("token"));
  CHECK(items[1] == json{{"language_id", {"can't be blank"}}});
  std::string tokens = items[0]["token"].get<std::string>() + "," + "unknown-1," +
                       items[2]["token"].get<std::string>();
  json got;
  REQUIRE(eventually(
      [&] {
        got = body_of(http.get("/submissions/batch?tokens=" + tokens + "&fields=stdout,status_id"));
        return got["submissions"][0]["status_id"] == 3 && got["submissions"][2]["status_id"] == 3;
      },
      60s, 100ms));
  CHECK(got["submissions"][0]["stdout"] == "1\n");
  CHECK(got["submissions"][1].is_null());
  CHECK(got["submissions"][2]["stdout"] == "2\n");
  CHECK(http.post("/submissions/batch", R"({"submissions": []})").body ==
        R"({"error":"there should be at least one submission in a batch"})");
}

TEST_CASE("api: tokens: X-Auth-Token required, another owner's job is not found, admins list") {
  std::string dir = std::filesystem::temp_directory_path() / ("jc-api-tokens-" + unique_marker());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/tokens") << "alice:alice-token-0123456789\nbob:bob-token-0123456789\n"
                                    "root:root-token-0123456789\n";
  ApiNode node(std::map<std::string, std::string>{{"CLIENT_TOKENS", dir + "/tokens"}, {"ADMIN_NAMES", "root"}},
               1, false);
  HttpClient http(node.port);
  REQUIRE(eventually(
      [&] {
        auto w = http.get("/workers", {{"X-Auth-Token", "alice-token-0123456789"}});
        return w.status == 200 && w.body.find("\"up\"") != std::string::npos;
      },
      15s, 100ms));
  json req = {{"source_code", "print(1)"}, {"language_id", 71}};
  CHECK(http.post("/submissions", req.dump()).status == 401);
  CHECK(http.get("/languages").status == 401);
  CHECK(http.get("/languages", {{"X-Auth-Token", "wrong-token-0123456789"}}).status == 401);
  auto created = http.post("/submissions", req.dump(), {{"X-Auth-Token", "alice-token-0123456789"}});
  REQUIRE(created.status == 201);
  std::string t = body_of(created)["token"];
  CHECK(http.get("/submissions/" + t, {{"X-Auth-Token", "bob-token-0123456789"}}).status == 404);
  CHECK(http.get("/submissions/" + t, {{"Authorization", "Bearer alice-token-0123456789"}}).status == 200);
  CHECK(http.get("/submissions", {{"X-Auth-Token", "alice-token-0123456789"}}).status == 403);
  auto list = http.get("/submissions?per_page=5",
                       {{"X-Auth-Token", "alice-token-0123456789"}, {"X-Auth-User", "root-token-0123456789"}});
  REQUIRE(list.status == 200);
  json l = body_of(list);
  CHECK(l["meta"]["total_count"] == 1);
  CHECK(l["submissions"].size() == 1);
  std::filesystem::remove_all(dir);
}

TEST_CASE("api: languages, statuses, config and the rest of judge0's information endpoints") {
  ApiNode node;
  HttpClient http(node.port);
  json langs = body_of(http.get("/languages"));
  bool python = false;
  for (const auto& l : langs) {
    if (l["id"] == 71) python = l["name"].get<std::string>().rfind("Python (3.", 0) == 0;
  }
  CHECK(python);
  json one = body_of(http.get("/languages/54"));
  CHECK(one["source_file"] == "main.cpp");
  CHECK(one["compile_cmd"].get<std::string>().find("%s") != std::string::npos);
  CHECK(http.get("/languages/99999").status == 404);
  json all = body_of(http.get("/languages/all"));
  CHECK(all.size() >= langs.size());
  json statuses = body_of(http.get("/statuses"));
  REQUIRE(statuses.size() == 14);
  CHECK(statuses[13] == json{{"id", 14}, {"description", "Exec Format Error"}});
  json config = body_of(http.get("/config_info"));
  CHECK(config["wall_time_limit"] == 10.0);
  CHECK(config["max_memory_limit"] == 4096 * 1024);
  CHECK(http.get("/version").body == "1.13.1");
  CHECK(body_of(http.get("/about"))["version"] == "1.13.1");
  json workers = body_of(http.get("/workers"));
  REQUIRE(workers.size() == 1);
  CHECK(workers[0]["queue"] == "n1");
  CHECK(workers[0]["available"] == 2);
  CHECK(http.get("/").body.find("jobcluster playground") != std::string::npos);
}

TEST_CASE("api: CORS for browser front ends with preflight answered, and keep-alive on one connection") {
  ApiNode node(std::map<std::string, std::string>{{"API_CORS_ORIGINS", "https://judge.example"}});
  HttpClient http(node.port);
  auto pre = http.request("OPTIONS", "/submissions", "",
                          {{"Origin", "https://judge.example"},
                           {"Access-Control-Request-Method", "POST"}});
  CHECK(pre.status == 204);
  CHECK(pre.header("access-control-allow-origin") == "https://judge.example");
  CHECK(pre.header("access-control-allow-methods").find("POST") != std::string::npos);
  auto other = http.get("/statuses", {{"Origin", "https://evil.example"}});
  CHECK(other.status == 200);
  CHECK(other.header("access-control-allow-origin").empty());
  for (int i = 0; i < 5; ++i) CHECK(http.get("/statuses").status == 200);  // same connection
}

TEST_CASE("api: pipelined requests are answered in their order, a waited run holding the quicker answers behind it") {
  ApiNode node;
  HttpClient http(node.port);
  auto post = [](const std::string& target, const std::string& body) {
    return "POST " + target + " HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
           "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  };
  // A waited run (slow), a plain submit, an instant GET and a 404, sent in
  // one write; then the client closes its side, and still gets every answer.
  std::string slow = json{{"source_code", "echo first"}, {"language_id", 46}}.dump();
  std::string quick = json{{"source_code", "echo second"}, {"language_id", 46}}.dump();
  http.raw().send(post("/submissions?wait=true", slow) + post("/submissions", quick) +
                  "GET /statuses HTTP/1.1\r\nHost: t\r\n\r\n" +
                  "GET /nothing HTTP/1.1\r\nHost: t\r\n\r\n");
  http.raw().shutdown_write();
  auto a1 = http.read(), a2 = http.read(), a3 = http.read(), a4 = http.read();
  REQUIRE(a1.status == 201);
  CHECK(body_of(a1)["stdout"] == "first\n");
  REQUIRE(a2.status == 201);
  CHECK(body_of(a2).contains("token"));
  CHECK(a3.status == 200);
  CHECK(body_of(a3).size() == 14);
  CHECK(a4.status == 404);
  CHECK(http.raw().closed_by_peer(5s));
  // Garbage after good requests: the good are answered, then a 400 closes.
  HttpClient g(node.port);
  g.raw().send("GET /statuses HTTP/1.1\r\nHost: t\r\n\r\nNOT HTTP AT ALL\r\n\r\n");
  CHECK(g.read().status == 200);
  CHECK(g.read().status == 400);
  CHECK(g.raw().closed_by_peer(5s));
  CHECK(HttpClient(node.port).get("/statuses").status == 200);
}

TEST_CASE("api: more pipelined submissions than a node reads ahead are each answered once, in order") {
  ApiNode node;
  HttpClient http(node.port);
  // Two sleepers hold the node's two slots, so the burst's jobs stay queued.
  for (int i = 0; i < 2; ++i) {
    auto a = http.post("/submissions", json{{"source_code", "sleep 300"}, {"language_id", 46},
                                            {"wall_time_limit", 20}}.dump());
    REQUIRE(a.status == 201);
  }
  // Past the read-ahead limit: the node stops reading at the limit, answers,
  // and reads on. Sent from a thread, as a client that writes while it reads.
  const int count = static_cast<int>(jc::api::HttpServer::kMaxPipelined) + 904;
  std::string burst;
  for (int i = 0; i < count; ++i) {
    std::string body = json{{"source_code", "true # " + std::to_string(i)}, {"language_id", 46}}.dump();
    burst += "POST /submissions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
             "Content-Length: " + std::to_string(body.size()) + "\r\n\r\n" + body;
  }
  std::atomic<bool> sent{false};
  std::thread sender([&] { sent = http.raw().send_within(burst, 60s); });
  std::vector<std::string> tokens;
  std::set<std::string> distinct;
  for (int i = 0; i < count; ++i) {
    auto a = http.read(30s);
    if (a.status != 201) {
      FAIL_CHECK("answer " << i << ": " << a.status << " " << a.body);
      break;
    }
    tokens.push_back(body_of(a)["token"]);
    distinct.insert(tokens.back());
  }
  sender.join();
  CHECK(sent);
  REQUIRE(tokens.size() == static_cast<std::size_t>(count));
  CHECK(distinct.size() == tokens.size());
  // Each token is its own request's job, in the order sent.
  for (int i = 0; i < count; i += 613) {
    auto g = http.get("/submissions/" + tokens[static_cast<std::size_t>(i)] + "?fields=source_code");
    REQUIRE(g.status == 200);
    CHECK(body_of(g)["source_code"] == "true # " + std::to_string(i));
  }
}

// The node's resident memory in KB (VmRSS), 0 when unreadable.
long rss_kb(pid_t pid) {
  std::ifstream in("/proc/" + std::to_string(pid) + "/status");
  std::string line;
  while (std::getline(in, line)) {
    if (line.rfind("VmRSS:", 0) == 0) return std::atol(line.c_str() + 6);
  }
  return 0;
}

TEST_CASE("api: a client that pipelines reads of a large result and never reads the answers holds a few MiB of them") {
  ApiNode node;
  HttpClient http(node.port);
  // A result of 1 MB of output, read once to see it whole.
  json made = run_waiting(http, json{{"source_code", "head -c 1000000 /dev/zero | tr '\\0' a"},
                                     {"language_id", 46}});
  REQUIRE(made["status"]["id"] == 3);
  std::string token = made["token"];
  long before = rss_kb(node.cluster.node(0).pid());
  REQUIRE(before > 0);
  // 256 GETs of it in one write, and nothing read: without a bound the
  // node would render and hold 256 MB of answers for this one client.
  HttpClient greedy(node.port);
  std::string get = "GET /submissions/" + token + " HTTP/1.1\r\nHost: t\r\n\r\n";
  std::string burst;
  for (int i = 0; i < 256; ++i) burst += get;
  greedy.raw().send(burst);
  // Others are served meanwhile, and the node holds little for it at any
  // of these moments (sampled over a second, while it would be rendering).
  long peak = 0;
  for (int i = 0; i < 5; ++i) {
    CHECK(HttpClient(node.port).get("/statuses").status == 200);
    peak = std::max(peak, rss_kb(node.cluster.node(0).pid()));
    std::this_thread::sleep_for(200ms);
  }
  INFO("VmRSS before " << before << " KB, peak after " << peak << " KB");
  CHECK(peak - before < 64 * 1024);
  // Read, every answer comes, whole and in order.
  for (int i = 0; i < 256; ++i) {
    auto a = greedy.read();
    REQUIRE(a.status == 200);
    REQUIRE(a.body.size() > 1'000'000);
  }
}

TEST_CASE("api: a HEAD answer has no body, and the next answer on the connection is framed right") {
  ApiNode node;
  HttpClient http(node.port);
  http.raw().send("HEAD /statuses HTTP/1.1\r\nHost: t\r\n\r\n"
                  "GET /statuses HTTP/1.1\r\nHost: t\r\nConnection: close\r\n\r\n");
  std::string all = http.raw().until_close().value_or("");
  auto first_end = all.find("\r\n\r\n");
  REQUIRE(first_end != std::string::npos);
  CHECK(all.rfind("HTTP/1.1 405", 0) == 0);
  // The second answer follows the first one's header at once.
  CHECK(all.compare(first_end + 4, 15, "HTTP/1.1 200 OK") == 0);
  // A 204 says no length.
  HttpClient pre(node.port);
  auto options = pre.request("OPTIONS", "/submissions", "", {{"Origin", "https://a.example"}});
  CHECK(options.status == 204);
  CHECK(options.headers.count("content-length") == 0);
}

TEST_CASE("api: answers are framed as HTTP/1.0 and 1.1 clients expect") {
  ApiNode node;
  {  // 1.0 without keep-alive: a 1.0 answer with its length, then a close.
    HttpClient http(node.port);
    http.raw().send("GET /version HTTP/1.0\r\n\r\n");
    std::string all = http.raw().until_close().value_or("");
    CHECK(all.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    CHECK(all.find("\r\nContent-Length: 6\r\n") != std::string::npos);
    CHECK(all.find("keep-alive") == std::string::npos);
    CHECK(all.size() >= 6);
    CHECK(all.substr(all.size() - 6) == "1.13.1");
  }
  {  // 1.0 asking for keep-alive: it says so, and the connection serves another.
    HttpClient http(node.port);
    http.raw().send("GET /version HTTP/1.0\r\nConnection: keep-alive\r\n\r\n");
    auto head = http.raw().until("\r\n\r\n");
    REQUIRE(head);
    CHECK(head->rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
    CHECK(head->find("\r\nConnection: keep-alive\r\n") != std::string::npos);
    CHECK(http.raw().bytes(6) == std::optional<std::string>("1.13.1"));
    http.raw().send("GET /version HTTP/1.0\r\n\r\n");
    auto again = http.raw().until_close().value_or("");
    CHECK(again.rfind("HTTP/1.0 200 OK\r\n", 0) == 0);
  }
  // 1.1: the reason phrases, a close only when asked, and what every answer says.
  HttpClient http(node.port);
  http.raw().send(
      "POST /submissions HTTP/1.1\r\nHost: t\r\nContent-Length: 1\r\n\r\n{"
      "GET /nowhere HTTP/1.1\r\nHost: t\r\n\r\n"
      "POST /submissions HTTP/1.1\r\nHost: t\r\nContent-Length: 36\r\nConnection: close\r\n\r\n"
      "{\"source_code\":\"x\",\"language_id\":46}");
  std::string all = http.raw().until_close().value_or("");
  auto bad = all.find("HTTP/1.1 400 Bad Request\r\n");
  auto missing = all.find("HTTP/1.1 404 Not Found\r\n");
  auto created = all.find("HTTP/1.1 201 Created\r\n");
  CHECK(bad == 0);
  CHECK(missing != std::string::npos);
  CHECK(created != std::string::npos);
  CHECK(bad < missing);
  CHECK(missing < created);
  CHECK(all.find("Connection: close") > created);
  CHECK(all.find("Connection: close") != std::string::npos);
  CHECK(all.find("\r\nServer: jobcluster\r\n") != std::string::npos);
  CHECK(all.find("\r\nCache-Control: no-store\r\n") != std::string::npos);
  CHECK(all.find("\r\nContent-Type: application/json; charset=utf-8\r\n") != std::string::npos);
  CHECK(all.find("{\"token\":\"") != std::string::npos);
}

TEST_CASE("api: a chunked body is read whole, and the first of a repeated header counts") {
  ApiNode node(std::map<std::string, std::string>{{"API_CORS_ORIGINS", "http://first.example"}});
  HttpClient http(node.port);
  // The body in three chunks, cut inside a key and inside a value.
  http.raw().send(
      "POST /submissions HTTP/1.1\r\nHost: t\r\nContent-Type: application/json\r\n"
      "Transfer-Encoding: chunked\r\n\r\n"
      "c\r\n{\"source_cod\r\n"
      "14\r\ne\":\"echo chunked\",\"l\r\n"
      "f\r\nanguage_id\":46}\r\n"
      "0\r\n\r\n");
  HttpAnswer a = http.read();
  REQUIRE(a.status == 201);
  auto token = json::parse(a.body)["token"].get<std::string>();
  HttpAnswer shown = http.get("/submissions/" + token + "?fields=source_code,language_id");
  REQUIRE(shown.status == 200);
  CHECK(json::parse(shown.body) == json{{"source_code", "echo chunked"}, {"language_id", 46}});
  // Origin given twice: the first counts (as a look-up in the request's
  // headers gives), so the allowed one is echoed back.
  http.raw().send("GET /version HTTP/1.1\r\nHost: t\r\nOrigin: http://first.example\r\n"
                  "Origin: http://second.example\r\n\r\n");
  HttpAnswer twice = http.read();
  REQUIRE(twice.status == 200);
  CHECK(twice.header("access-control-allow-origin") == "http://first.example");
  // And the other way round, the second would have been refused.
  http.raw().send("GET /version HTTP/1.1\r\nHost: t\r\nOrigin: http://second.example\r\n"
                  "Origin: http://first.example\r\n\r\n");
  HttpAnswer reversed = http.read();
  REQUIRE(reversed.status == 200);
  CHECK(reversed.header("access-control-allow-origin").empty());
}

TEST_CASE("api: DELETE cancels a running submission") {
  ApiNode node;
  HttpClient http(node.port);
  auto created = http.post("/submissions", json{{"source_code", "sleep 30"}, {"language_id", 46},
                                                 {"wall_time_limit", 60}, {"cpu_time_limit", 60}}
                                                .dump());
  REQUIRE(created.status == 201);
  std::string t = body_of(created)["token"];
  REQUIRE(eventually([&] { return body_of(http.get("/submissions/" + t))["status"]["id"] == 2; }, 30s,
                     100ms));
  auto del = http.request("DELETE", "/submissions/" + t);
  CHECK(del.status == 200);
  json got;
  REQUIRE(eventually(
      [&] {
        got = body_of(http.get("/submissions/" + t + "?fields=status,verdict,message"));
        return got["status"]["id"] >= 3;
      },
      30s, 100ms));
  CHECK(got["verdict"] == "CANCELLED");
  CHECK(got["message"] == "Cancelled");
}

TEST_CASE("api: past MAX_QUEUE a submission is judge0's 503 queue is full, nc's ERR, until there is room") {
  Cluster cluster({.nodes = 1,
                   .slots = 1,
                   .proxy_env = {{"MAX_QUEUE", "3"}, {"DISPATCH_PREFETCH", "0"}, {"DISPATCH_PREFETCH_MS", "0"}},
                   .node_env = {{"API_PORT", "0"}}});
  REQUIRE(cluster.wait_nodes_up(1));
  std::uint16_t port = cluster.node(0).wait_listening("judge0-compatible API");
  HttpClient http(port);
  REQUIRE(eventually([&] { return body_of(http.get("/config_info"))["max_queue_size"] == 3; }, 10s));
  Client c(cluster.node_port(0));
  std::vector<std::string> tickets;
  // One runs on the node's one slot; what follows waits at the proxy.
  const json sleeper{{"source_code", "sleep 60"}, {"language_id", 46}, {"wall_time_limit", 90},
                     {"cpu_time_limit", 90}};
  HttpAnswer refused;
  REQUIRE(eventually(
      [&] {
        refused = http.post("/submissions", sleeper.dump());
        if (refused.status == 201) tickets.push_back(body_of(refused)["token"]);
        return refused.status == 503;
      },
      20s, 50ms));
  CHECK(refused.body == R"({"error":"queue is full"})");
  CHECK(tickets.size() >= 4);
  CHECK(cluster.proxy().log_count("queue is full (3 jobs, MAX_QUEUE)") == 1);
  CHECK(c.command("10") == "ERR queue is full, try again later");
  CHECK(c.command("run true") == "ERR queue is full, try again later");
  auto batch = http.post("/submissions/batch",
                         json{{"submissions", json::array({sleeper, sleeper})}}.dump());
  CHECK(batch.status == 503);
  CHECK(batch.body == R"({"error":"queue is full"})");
  // Reads still work, and a queued job says where it is.
  CHECK(c.command("status " + tickets.back()).find(" QUEUED") != std::string::npos);
  // Cancelled, the queue empties and nodes take jobs again.
  for (const auto& t : tickets) c.command("cancel " + t);
  CHECK(eventually([&] { return c.command("10").rfind("Ticket ID: ", 0) == 0; }, 10s, 100ms));
  CHECK(cluster.proxy().log_count("queue has room again") == 1);
}

TEST_CASE("dispatch: run --needs goes to a node with that label, waits while none is up, refuses what none offers") {
  Cluster cluster({.nodes = 1, .slots = 1});
  cluster.add_node({{"NODE_LABELS", "gpu,big-memory"}});
  REQUIRE(cluster.wait_nodes_up(2));
  Client c(cluster.node_port(0));
  for (int i = 0; i < 4; ++i) {
    RunResult r = run_and_wait(c, "run --needs gpu echo hi");
    CHECK(r.state == "DONE");
    CHECK(r.fact("node") == "n2");
  }
  CHECK(c.command("run --needs tpu true") ==
        "ERR no node of this cluster offers tpu (NODE_LABELS): the job could never run");
  CHECK(c.command("run --needs 'a b' true").rfind("ERR --needs takes a label", 0) == 0);
  // Its only node away, the job waits in the queue, and runs on its return.
  cluster.node(1).kill_hard();
  std::string t = submit_run(c, "run --needs big-memory echo back");
  CHECK(eventually([&] { return c.command("status " + t).find(" QUEUED") != std::string::npos; }, 10s));
  // It says what it waits for, as soon as the proxy has seen n2 go.
  CHECK(eventually(
      [&] { return c.command("status " + t).find(" waiting_for=label:big-memory") != std::string::npos; },
      10s));
  // Through ten dispatch rounds (DISPATCH_PERIOD is at most 100 ms), n1
  // never takes it: each look finds it queued.
  for (auto until = Clock::now() + 1s; Clock::now() < until;) {
    CHECK(c.command("status " + t).find(" QUEUED") != std::string::npos);
    std::this_thread::sleep_for(50ms);
  }
  cluster.restart_node(1, false);
  c.send("wait " + t + " 60\n");
  RunResult r = read_run_result(c);
  REQUIRE(r.ok);
  CHECK(r.fact("node") == "n2");
  CHECK(r.out == "back\n");
}

TEST_CASE("api: a language of the table that no node runs is a 422, and /languages lists what runs") {
  std::string dir = std::filesystem::temp_directory_path() / ("jc-api-langs-" + unique_marker());
  std::filesystem::create_directories(dir);
  std::ofstream(dir + "/languages.json")
      << R"({"languages": [{"id": 1001, "name": "Nowhere", "source_file": "main.x",)"
      << R"( "run_cmd": "/nonexistent/x main.x {args}", "requires": ["/nonexistent/x"]}]})";
  ApiNode node(std::map<std::string, std::string>{{"LANGUAGES_FILE", dir + "/languages.json"}});
  HttpClient http(node.port);
  auto a = http.post("/submissions", json{{"source_code", "x"}, {"language_id", 1001}}.dump());
  CHECK(a.status == 422);
  CHECK(a.body == R"({"language_id":["no node of this cluster runs the language with id 1001"]})");
  json langs = body_of(http.get("/languages"));
  bool listed = false;
  for (const auto& l : langs) listed = listed || l["id"] == 1001;
  CHECK_FALSE(listed);
  json one = body_of(http.get("/languages/1001"));
  CHECK(one["is_archived"] == true);
  std::filesystem::remove_all(dir);
}

TEST_CASE("api: a multi-file program (89) is compiled and run by its own scripts, from its zip") {
  ApiNode node;
  HttpClient http(node.port);
  // compile, run, src/main.cpp, src/greet.h, src/greet.cpp (made with Python's zipfile).
  const std::string project =
      "UEsDBBQAAAAIAC8GhV1/uvDaLAAAADAAAAAHAAAAY29tcGlsZdMvLS7ST8rM00/X1lbQzVcoKMpPVyguStbPTczM00suKABz0otSU0t"
      "APC4AUEsDBBQAAAAIAC8GhV3qeHdUDgAAAAwAAAADAAAAcnVu09MvKMpPV1BScVDiAgBQSwMEFAAAAAgALwaFXcVlQGVWAAAAaAAA"
      "AAwAAABzcmMvbWFpbi5jcHBTzsxLzilNSVWwycwvLilKTcy141KGiSmlF6WmluhlKHFl5pUo5CZm5mloVheXpFhZAZVm5qUr5FmDec"
      "mZeXZ2MHZ+aYmNDVijRp6mjY1STJ6SdS0XAFBLAwQUAAAACAAvBoVdSqvSvS8AAAA7AAAACwAAAHNyYy9ncmVldC5oU87MS84pTUlV"
      "sCkuKcrMS7fjKi5JsbKCcBTSi1JTSzSS8/OKSxSQxNUU8jStuQBQSwMEFAAAAAgALwaFXVIOvjpGAAAAUAAAAA0AAABzcmMvZ3JlZX"
      "QuY3BwU87MS84pTUlVUEovSk0t0ctQ4iouSbGyKi4pysxLVwALaiTn5xWXKCCJqynkaVYXpZaUFuUpKGWk5uTk6ygoaedZ13IBAFBL"
      "AQIUAxQAAAAIAC8GhV1/uvDaLAAAADAAAAAHAAAAAAAAAAAAAACAAQAAAABjb21waWxlUEsBAhQDFAAAAAgALwaFXep4d1QOAAAADA"
      "AAAAMAAAAAAAAAAAAAAIABUQAAAHJ1blBLAQIUAxQAAAAIAC8GhV3FZUBlVgAAAGgAAAAMAAAAAAAAAAAAAACAAYAAAABzcmMvbWFp"
      "bi5jcHBQSwECFAMUAAAACAAvBoVdSqvSvS8AAAA7AAAACwAAAAAAAAAAAAAAgAEAAQAAc3JjL2dyZWV0LmhQSwECFAMUAAAACAAvBo"
      "VdUg6+OkYAAABQAAAADQAAAAAAAAAAAAAAgAFYAQAAc3JjL2dyZWV0LmNwcFBLBQYAAAAABQAFABQBAADJAQAAAAA=";
  json r = run_waiting(http, {{"language_id", 89}, {"additional_files", project}, {"stdin", "zip"}},
                       "&fields=status,stdout,compile_output");
  CHECK(r["status"]["id"] == 3);
  CHECK(r["stdout"] == "hello, zip\n");
  // An entry that would land outside /box is refused before anything is queued.
  auto bad = http.post("/submissions",
                       json{{"language_id", 71}, {"source_code", "print(1)"},
                            {"additional_files",
                             "UEsDBBQAAAAAAC8GhV2DFtyMAQAAAAEAAAAJAAAALi4vZXNjYXBleFBLAQIUAxQAAAAAAC8GhV2DFtyMAQAAAAEA"
                             "AAAJAAAAAAAAAAAAAACAAQAAAAAuLi9lc2NhcGVQSwUGAAAAAAEAAQA3AAAAKAAAAAAA"}}
                           .dump());
  CHECK(bad.status == 422);
  CHECK(bad.body.find("additional_files") != std::string::npos);
  CHECK(bad.body.find("'../escape'") != std::string::npos);
}

TEST_CASE("api: a callback is PUT as judge0 sends it, retried, and survives a kill -9 of its node") {
  Receiver receiver;
  ApiNode node(std::map<std::string, std::string>{{"CALLBACK_ALLOW", "127.0.0.0/8"}});
  HttpClient http(node.port);
  std::string url = "http://127.0.0.1:" + std::to_string(receiver.port) + "/done";
  // Private addresses are refused unless CALLBACK_ALLOW names them.
  CHECK(http.post("/submissions", json{{"source_code", "print(1)"}, {"language_id", 71},
                                       {"callback_url", "http://10.0.0.1/x"}}.dump())
            .status == 422);
  auto created = http.post("/submissions", json{{"source_code", "print(42)"}, {"language_id", 71},
                                                {"callback_url", url}}.dump());
  REQUIRE(created.status == 201);
  std::string t = body_of(created)["token"];
  REQUIRE(eventually([&] { return !receiver.requests().empty(); }, 30s, 50ms));
  auto first = receiver.requests().front();
  CHECK(first.method == "PUT");
  CHECK(first.target == "/done");
  json cb = json::parse(first.body);
  CHECK(cb["token"] == t);
  CHECK(cb["status"]["id"] == 3);
  CHECK(cb["stdout"] == "NDIK\n");  // "42\n", Base64 as judge0 sends it

  // A receiver that fails: tried again, and owed across a kill -9.
  receiver.status = 500;
  auto second = http.post("/submissions", json{{"source_code", "print(7)"}, {"language_id", 71},
                                               {"callback_url", url}}.dump());
  std::string t2 = body_of(second)["token"];
  auto tries = [&] {
    int n = 0;
    for (const auto& r : receiver.requests()) n += json::parse(r.body)["token"] == t2;
    return n;
  };
  REQUIRE(eventually([&] { return tries() >= 2; }, 30s, 50ms));  // 1 s backoff between
  node.cluster.restart_node(0);  // kill -9, and back on the same data
  receiver.status = 200;
  REQUIRE(eventually(
      [&] {
        for (const auto& r : receiver.requests()) {
          if (r.answered == 200 && json::parse(r.body)["token"] == t2) return true;
        }
        return false;
      },
      60s, 50ms));
  CHECK(node.cluster.node(0).log_count("callbacks owed from before the restart") == 1);
}
