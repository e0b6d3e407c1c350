// The node-proxy link under attack from the network in between: a relay
// that reads every byte and rewrites one, and nodes with the wrong key or a
// certificate from the wrong authority.
#include <doctest/doctest.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <fstream>
#include <string>

#include "tests/support/cluster.h"
#include "tests/support/relay.h"
#include "tests/support/run_jobs.h"
#include "tests/support/skip.h"

using namespace jc::test;
namespace fs = std::filesystem;

TEST_CASE("TLS: a relay between node and proxy reads no job, and a rewritten byte drops the link") {
  const std::string secret = "relay-test-secret-1f6a";
  Cluster cluster({.nodes = 0,
                   .slots = 1,
                   .proxy_env = {{"CLUSTER_SECRET", secret}},
                   .node_env = {{"CLUSTER_SECRET", secret}}});
  Relay relay(cluster.proxy_port());
  cluster.set_node_proxy_port(relay.port());
  // Long names and markers: a short one (n1, cat) turns up in kilobytes
  // of ciphertext by chance.
  const std::string node = "relay-node-3d5f8a";
  cluster.add_node({{"NODE_ID", node}});
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));

  // Hidden test data goes node -> proxy (SUBMIT) and back (JOB), the
  // output and verdict come back (RESULT): none of it in the clear.
  auto first = run_and_wait(
      c, "run --stdin=hidden-7c1e9a --expect=hidden-7c1e9a cat # command-marker-0b62e1");
  CHECK(first.facts["verdict"] == "ACCEPTED");
  std::string seen = relay.seen();
  CHECK(seen.size() > 500);
  CHECK(seen.find("hidden-7c1e9a") == std::string::npos);
  CHECK(seen.find("command-marker-0b62e1") == std::string::npos);
  CHECK(seen.find("ACCEPTED") == std::string::npos);
  CHECK(seen.find(node) == std::string::npos);

  // Now the relay flips a bit of the next large chunk from the proxy (the
  // job, as it is given to the node). TLS refuses the record: the link
  // drops, the node comes back, and the job runs as submitted.
  int before = relay.connections();
  relay.tamper_next(90);
  std::string t = submit_run(c, "run --stdin=hidden-second-42 --expect=hidden-second-42 cat");
  REQUIRE(!t.empty());
  CHECK(eventually([&] { return relay.tampered(); }, 20s));
  CHECK(eventually([&] { return relay.connections() > before; }, 20s));
  CHECK(eventually(
      [&] {
        std::string log = cluster.node(0).log_since_start();
        return log.find("lost the proxy reason=") != std::string::npos;
      },
      10s));
  c.send("wait " + t + " 60\n");
  auto second = read_run_result(c, 70s);
  REQUIRE(second.ok);
  CHECK(second.facts["verdict"] == "ACCEPTED");
  CHECK(second.out == "hidden-second-42\n");
  CHECK(relay.seen().find("hidden-second-42") == std::string::npos);
}

namespace {

// A certificate authority and certificates made with the openssl tool in a
// directory of the test's own.
struct Pki {
  Pki() {
    std::string tmpl = (fs::temp_directory_path() / "jc-pki-XXXXXX").string();
    if (mkdtemp(tmpl.data()) == nullptr) return;
    dir = tmpl;
    ok = std::system("command -v openssl >/dev/null 2>&1") == 0 && make_ca("ca") &&
         make_ca("other-ca") && make_cert("proxy", "ca", "IP:127.0.0.1") &&
         make_cert("node", "ca", "DNS:node") && make_cert("stranger", "other-ca", "DNS:node");
  }
  ~Pki() {
    std::error_code ec;
    if (!dir.empty()) fs::remove_all(dir, ec);
  }
  bool run(const std::string& command) {
    return std::system(("cd " + dir + " && " + command + " >/dev/null 2>&1").c_str()) == 0;
  }
  bool write(const std::string& file, const std::string& text) {
    std::ofstream out(dir + "/" + file);
    out << text;
    return static_cast<bool>(out);
  }
  bool make_ca(const std::string& name) {
    return run("openssl req -x509 -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -days 2 "
               "-subj /CN=" + name + " -keyout " + name + ".key -out " + name + ".pem");
  }
  bool make_cert(const std::string& name, const std::string& ca, const std::string& san) {
    return run("openssl req -newkey ec -pkeyopt ec_paramgen_curve:P-256 -nodes -subj /CN=" + name +
               " -keyout " + name + ".key -out " + name + ".csr") &&
           write(name + ".ext", "subjectAltName=" + san + "\n") &&
           run("openssl x509 -req -in " + name + ".csr -CA " + ca + ".pem -CAkey " + ca +
               ".key -CAcreateserial -days 2 -extfile " + name + ".ext -out " + name + ".pem");
  }
  std::map<std::string, std::string> env(const std::string& name, const std::string& ca) const {
    return {{"TLS_CERT", dir + "/" + name + ".pem"},
            {"TLS_KEY", dir + "/" + name + ".key"},
            {"TLS_CA", dir + "/" + ca + ".pem"}};
  }
  std::string dir;
  bool ok = false;
};

}  // namespace

TEST_CASE("TLS certificates: a node with one from TLS_CA joins, one from another CA is refused") {
  Pki pki;
  if (!pki.ok) JC_SKIP("needs the openssl tool (scripts/install-deps installs it)");
  Cluster cluster({.nodes = 0, .slots = 1, .proxy_env = pki.env("proxy", "ca")});
  CHECK(cluster.proxy().log_count("node links: TLS 1.3, certificates") == 1);
  // Certificates authenticate nodes: no protected-mode restriction then.
  CHECK(cluster.proxy().log_count("protected mode") == 0);
  cluster.add_node(pki.env("node", "ca"));
  REQUIRE(cluster.wait_nodes_up(1));
  Client c(cluster.node_port(0));
  auto r = run_and_wait(c, "run --stdin=certified --expect=certified cat");
  CHECK(r.facts["verdict"] == "ACCEPTED");

  // A certificate the proxy's CA did not sign; and a node that trusts
  // another CA than the one that signed the proxy's.
  cluster.add_node(pki.env("stranger", "other-ca"));
  auto distrusting = pki.env("node", "ca");
  distrusting["TLS_CA"] = pki.dir + "/other-ca.pem";
  cluster.add_node(distrusting);
  CHECK(eventually(
      [&] {
        return cluster.proxy().log_count("TLS handshake failed") >= 2 &&
               cluster.node(1).log_since_start().find("TLS handshake failed") !=
                   std::string::npos &&
               cluster.node(2).log_since_start().find("certificate verify failed") !=
                   std::string::npos;
      },
      15s));
  CHECK(cluster.proxy().log_count("node joined node=n2") == 0);
  CHECK(cluster.proxy().log_count("node joined node=n3") == 0);
}

TEST_CASE("TLS settings: half a certificate set, or an unreadable file, stops the start with why") {
  Pki pki;
  if (!pki.ok) JC_SKIP("needs the openssl tool (scripts/install-deps installs it)");
  auto half = pki.env("proxy", "ca");
  half.erase("TLS_CA");
  Process p1(std::string(JC_BIN_DIR) + "/reverse_proxy", {"0"}, half, pki.dir + "/p1.log");
  p1.start();
  CHECK(p1.wait_exit(10s) == 2);
  CHECK(p1.log_since_start().find("TLS_CERT, TLS_KEY and TLS_CA go together") !=
        std::string::npos);
  auto wrong_key = pki.env("proxy", "ca");
  wrong_key["TLS_KEY"] = pki.dir + "/node.key";
  Process p2(std::string(JC_BIN_DIR) + "/reverse_proxy", {"0"}, wrong_key, pki.dir + "/p2.log");
  p2.start();
  CHECK(p2.wait_exit(10s) == 2);
  CHECK(p2.log_since_start().find("is not the key of TLS_CERT") != std::string::npos);
}
