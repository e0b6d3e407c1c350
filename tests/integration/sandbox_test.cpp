// The sandbox of run jobs, tried as an attacker's submission would: what a
// job can see, write and reach, what it leaves behind, and whether its
// limits and figures hold for the whole process tree.
//
// A test that needs a protection the machine cannot give (no root, no
// CAP_SYS_ADMIN, no writable cgroups, as in a container) skips with the
// reason. Where the machine can give it and the node does not, the test
// fails: a weaker sandbox is never taken for a skip.
#include <doctest/doctest.h>
#include <sys/socket.h>
#include <sys/stat.h>
#include <sys/un.h>
#include <unistd.h>

#include <algorithm>
#include <filesystem>
#include <fstream>
#include <set>
#include <sstream>

#include "tests/support/cluster.h"
#include "tests/support/run_jobs.h"
#include "tests/support/skip.h"

using namespace jc::test;

namespace {

bool machine_allows(const std::string& protection) {
  if (protection == "cgroup") return can_create_cgroups();
  if (protection == "seccomp") return true;  // needs no privilege, only no_new_privs
  return ::geteuid() == 0 && has_cap_sys_admin();
}

// "" when node n1 applies every protection in `wanted` (comma-separated).
// Otherwise the reason to skip, or a failed check (and "") when this
// machine allows what the node left out.
std::string missing(Client& c, const std::string& wanted) {
  std::string have = node_sandbox(c, "n1");
  std::istringstream in(wanted);
  std::string want;
  while (std::getline(in, want, ',')) {
    if (protection_applies(have, want)) continue;
    if (machine_allows(want)) {
      FAIL_CHECK("the node applies sandbox=" << have << " without " << want
                                             << ", which this machine allows");
      return "";
    }
    return "this machine does not allow the " + want + " protection (the node applies sandbox=" +
           have + ")";
  }
  return "";
}

#define NEED(client, wanted)                                      \
  do {                                                            \
    std::string why_ = missing(client, wanted);                   \
    if (!why_.empty()) JC_SKIP(why_);                             \
  } while (0)

std::set<std::string> lines_of(const std::string& text) {
  std::set<std::string> out;
  std::istringstream in(text);
  std::string line;
  while (std::getline(in, line)) {
    if (!line.empty()) out.insert(line);
  }
  return out;
}

std::string joined(const std::set<std::string>& s) {
  std::string out;
  for (const auto& x : s) out += x + " ";
  return out;
}

bool processes_gone(const std::string& marker) {
  return eventually([&] { return host_processes_with(marker).empty(); }, 10s);
}

// A one-node cluster that is up, and a client of it.
struct OneNode {
  explicit OneNode(ClusterOptions options = {.nodes = 1, .slots = 1})
      : cluster(std::move(options)), client(cluster.node_port(0)) {
    REQUIRE(cluster.wait_nodes_up(cluster.size()));
  }
  Cluster cluster;
  Client client;
};

}  // namespace

TEST_CASE("sandbox: every result names the protections that applied, as stats does") {
  OneNode one;
  std::string have = node_sandbox(one.client, "n1");
  REQUIRE(!have.empty());
  if (::geteuid() == 0 && has_cap_sys_admin()) {
    for (const char* p : {"user", "fs", "pid", "ipc", "uts", "net", "seccomp"}) {
      CHECK_MESSAGE(protection_applies(have, p), "root with CAP_SYS_ADMIN, yet no " << p);
    }
    if (can_create_cgroups()) CHECK(have == "full");
  } else {
    MESSAGE("not root with CAP_SYS_ADMIN: the node applies sandbox=" << have);
    CHECK(!protection_applies(have, "fs"));
  }
  auto r = run_and_wait(one.client, "run true");
  CHECK(r.fact("sandbox") == have);
  one.client.command("format json");
  std::string t = one.client.command("run true");
  REQUIRE(t.rfind("{\"ticket\":\"", 0) == 0);
  std::string json = one.client.command("wait " + t.substr(11, t.size() - 13) + " 60");
  CHECK(json.find("\"sandbox\":\"" + have + "\"") != std::string::npos);
  // What cannot be applied is said once at start.
  if (have != "full") CHECK(one.cluster.node(0).log_count("cannot apply") >= 1);
}

TEST_CASE("sandbox: a job sees only its minimal root: nothing of the host, the node or the proxy") {
  OneNode one;
  NEED(one.client, "fs");
  std::string m = unique_marker();
  std::string secret_var = "/var/tmp/jc-secret-" + m;
  std::string secret_tmp = "/tmp/jc-secret-" + m;
  std::ofstream(secret_var) << "secret\n";
  std::ofstream(secret_tmp) << "secret\n";
  struct Cleanup {
    std::vector<std::string> paths;
    ~Cleanup() {
      for (const auto& p : paths) std::filesystem::remove(p);
    }
  } cleanup{{secret_var, secret_tmp}};

  std::set<std::string> expected{"box", "dev", "etc", "proc", "tmp", "usr"};
  for (const char* top : {"bin", "sbin", "lib", "lib32", "lib64", "libx32"}) {
    struct stat st {};
    if (::lstat((std::string("/") + top).c_str(), &st) == 0) expected.insert(top);
  }
  auto root = run_and_wait(one.client, "run ls -A /");
  CHECK(joined(lines_of(root.out)) == joined(expected));
  auto dev = run_and_wait(one.client, "run ls -A /dev");
  CHECK(joined(lines_of(dev.out)) ==
        "fd full null random shm stderr stdin stdout urandom zero ");
  for (const std::string& path :
       {secret_var, secret_tmp, std::string("/home"), std::string("/root"), std::string("/var"),
        std::string("/etc/shadow"), one.cluster.dir(), one.cluster.dir() + "/proxy/CURRENT",
        one.cluster.dir() + "/n1/CURRENT"}) {
    auto r = run_and_wait(one.client, "run cat " + path + " || ls " + path);
    CHECK_MESSAGE(r.state == "FAILED", path << " is visible: " << r.out);
    CHECK_MESSAGE(r.err.find("No such file or directory") != std::string::npos, path << ": " << r.err);
  }
  // Read-only, all of it but /box and /tmp; the safe devices work.
  auto usr = run_and_wait(one.client, "run touch /usr/x /etc/x /x 2>&1; echo x > /dev/null && echo ok");
  CHECK(usr.out.find("Read-only file system") != std::string::npos);
  CHECK(usr.out.find("ok") != std::string::npos);
  // The users it sees are its own, not the host's.
  auto passwd = run_and_wait(one.client, "run cut -d: -f1 /etc/passwd");
  for (const auto& name : lines_of(passwd.out)) {
    CHECK_MESSAGE((name == "root" || name == "nobody" || name.rfind("job", 0) == 0), name);
  }
}

TEST_CASE("sandbox: /tmp, /dev/shm and the working directory are private and gone with the job") {
  OneNode one;
  NEED(one.client, "fs");
  std::string m = "jc-private-" + unique_marker();
  auto a = run_and_wait(one.client, "run echo A > /tmp/" + m + " && echo A > /dev/shm/" + m +
                                        "s && echo A > ./" + m + "w && cat /tmp/" + m +
                                        "s /dev/shm/" + m + " && pwd && touch /var/tmp/" + m);
  CHECK(a.out == "A\nA\n/box\n");
  CHECK(a.err.find("/var/tmp/" + m) != std::string::npos);  // no /var/tmp at all
  for (const std::string& host : {"/tmp/" + m, "/dev/shm/" + m + "s", "/var/tmp/" + m}) {
    CHECK_MESSAGE(!std::filesystem::exists(host), host << " was left on the host");
  }
  auto b = run_and_wait(one.client, "run ls -A /tmp /box /dev/shm/");
  CHECK(b.state == "DONE");
  CHECK(b.out.find(m) == std::string::npos);
}

TEST_CASE("sandbox: a job sees only its own processes") {
  OneNode one;
  NEED(one.client, "pid");
  auto r = run_and_wait(one.client, "run ps -e -o comm=");
  auto names = lines_of(r.out);
  CHECK(names.size() <= 3);
  for (const auto& n : names) {
    CHECK_MESSAGE((n == "jobcluster-init" || n == "sh" || n == "ps"), "the job sees " << n);
  }
  auto ids = run_and_wait(one.client, "run ps -e -o pid= | wc -l; echo $$");
  CHECK(ids.out.find("\n2\n") != std::string::npos);  // the shell is process 2, after job_init
}

TEST_CASE("sandbox: CPU time is the whole tree's, and over --cpu is TIME_LIMIT_EXCEEDED") {
  OneNode one;
  // The CPU limit ends the shell's child: the shell's own exit code (128+N)
  // must not make it a runtime error.
  auto cpu = run_and_wait(one.client,
                          "run --cpu 500 --timeout 60000 python3 -c 'while True: pass'");
  CHECK(cpu.state == "TIMEOUT");
  CHECK(cpu.fact("verdict") == "TIME_LIMIT_EXCEEDED");
  CHECK(cpu.number("cpu_ms") >= 500);
  // Ended near the limit, long before the wall-clock one.
  CHECK(cpu.number("cpu_ms") < 5000);
  // Killed at its wall-clock limit, the figures are still the tree's: at
  // least the CPU time the busy child itself last printed (the machine is
  // shared, so how much it got in that second is not fixed).
  auto wall = run_script(one.client, "--timeout 1000",
                         "python3 -c '\n"
                         "import time\n"
                         "last = 0\n"
                         "while True:\n"
                         "    t = time.process_time()\n"
                         "    if t - last > 0.02:\n"
                         "        print(int(t * 1000), flush=True)\n"
                         "        last = t\n"
                         "'");
  CHECK(wall.state == "TIMEOUT");
  CHECK(wall.fact("verdict") == "TIME_LIMIT_EXCEEDED");
  auto printed = lines_of(wall.out);
  REQUIRE(!printed.empty());
  long long child_ms = 0;
  for (const auto& p : printed) child_ms = std::max(child_ms, std::stoll(p));
  CHECK(child_ms > 0);
  CHECK(wall.number("cpu_ms") >= child_ms);
}

TEST_CASE("sandbox: memory is the tree's resident memory with tmpfs, and reserving is free") {
  OneNode one;
  NEED(one.client, "cgroup");
  // Reserving much and touching little, as the JVM, Go and V8 do.
  auto reserve = run_and_wait(
      one.client,
      "run --memory 64 python3 -c 'import mmap; m = mmap.mmap(-1, 1 << 30); m[0] = 1; print(1)'");
  CHECK(reserve.state == "DONE");
  CHECK(reserve.out == "1\n");
  // Eight processes of 55 MB each are 440 MB, not 55.
  auto forks = run_script(one.client, "--memory 64 --timeout 20000",
                          "python3 -c '\n"
                          "import os, time\n"
                          "for i in range(8):\n"
                          "    if os.fork() == 0:\n"
                          "        b = bytearray(55 << 20); time.sleep(2); os._exit(0)\n"
                          "for i in range(8): os.wait()\n"
                          "'");
  CHECK(forks.fact("verdict") == "MEMORY_LIMIT_EXCEEDED");
  CHECK(forks.state == "FAILED");
  auto string = run_and_wait(one.client, "run --memory 64 python3 -c \"x = 'a' * (512 << 20)\"");
  CHECK(string.fact("verdict") == "MEMORY_LIMIT_EXCEEDED");
  // A failure that has nothing to do with memory is not a memory verdict,
  // and the peak is the job's alone.
  auto exit3 = run_and_wait(one.client, "run --memory 64 exit 3");
  CHECK(exit3.fact("verdict") == "RUNTIME_ERROR");
  CHECK(exit3.number("peak_kb") > 0);
  CHECK(exit3.number("peak_kb") < 16 * 1024);
  if (protection_applies(node_sandbox(one.client, "n1"), "fs")) {
    // Files in /dev/shm (its /tmp) are memory too.
    auto shm = run_and_wait(
        one.client, "run --memory 16 dd if=/dev/zero of=/dev/shm/fill bs=1M count=200");
    CHECK(shm.fact("verdict") == "MEMORY_LIMIT_EXCEEDED");
  }
  if (std::filesystem::exists("/usr/bin/java")) {
    auto java = run_and_wait(one.client, "run --memory 256 --timeout 20000 java -version");
    CHECK_MESSAGE(java.state == "DONE", java.err);
  } else {
    MESSAGE("no /usr/bin/java here: the JVM part is not run");
  }
}

TEST_CASE("sandbox: nothing a job starts outlives it or touches the next job in its slot") {
  OneNode one;
  std::string m = unique_marker();
  // Leftovers in sessions of their own, one rewriting the answer file the
  // next submissions use, as an attacker would.
  auto evil = run_and_wait(
      one.client, "run setsid sleep 300." + m +
                      " >/dev/null 2>&1 & setsid sh -c 'while :; do echo WRONG > /tmp/answer; echo "
                      "WRONG > /box/answer; sleep 0.02; done' " + m + " >/dev/null 2>&1 & echo left");
  CHECK(evil.out == "left\n");
  CHECK(processes_gone(m));
  for (int i = 0; i < 2; ++i) {
    auto honest = run_and_wait(
        one.client, "run --expect 42 echo 42 > answer; echo 42 > /tmp/answer; sleep 0.3; cat answer");
    CHECK(honest.fact("verdict") == "ACCEPTED");
  }
  // Many leftovers do not exhaust later jobs' processes.
  std::string many = unique_marker();
  run_and_wait(one.client, "run for i in $(seq 250); do setsid sleep 300." + many +
                               " >/dev/null 2>&1 & done; echo done");
  CHECK(processes_gone(many));
  auto after = run_and_wait(one.client, "run for i in $(seq 50); do true & done; wait; echo fine");
  CHECK(after.out == "fine\n");
}

TEST_CASE("sandbox: the data directories are private, and out of a job's reach") {
  OneNode one;
  for (const std::string& dir : {one.cluster.dir() + "/proxy", one.cluster.dir() + "/n1"}) {
    struct stat st {};
    REQUIRE(::stat(dir.c_str(), &st) == 0);
    CHECK_MESSAGE((st.st_mode & 0777) == 0700, dir << " has mode " << std::oct << (st.st_mode & 0777));
  }
  std::string have = node_sandbox(one.client, "n1");
  if (!protection_applies(have, "fs") && !protection_applies(have, "user")) {
    JC_SKIP("the node runs jobs as itself (not root): only the directory modes are checked");
  }
  // The proxy's LevelDB log holds other jobs' hidden stdin and expected output.
  auto r = run_and_wait(one.client, "run cat " + one.cluster.dir() + "/proxy/*.log");
  CHECK(r.state == "FAILED");
}

TEST_CASE("sandbox: no network, and no unix socket of the host") {
  OneNode one;
  NEED(one.client, "net,fs");
  std::string path = "/tmp/jc-sock-" + unique_marker();
  int listener = ::socket(AF_UNIX, SOCK_STREAM, 0);
  sockaddr_un addr{};
  addr.sun_family = AF_UNIX;
  std::snprintf(addr.sun_path, sizeof addr.sun_path, "%s", path.c_str());
  REQUIRE(::bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) == 0);
  REQUIRE(::listen(listener, 8) == 0);
  ::chmod(path.c_str(), 0777);
  // From the host both are reachable.
  CHECK(std::system(("nc -z -U " + path).c_str()) == 0);
  CHECK(std::system(("nc -z -w 1 127.0.0.1 " + std::to_string(one.cluster.proxy_port())).c_str()) == 0);
  auto tcp = run_and_wait(one.client, "run nc -z -w 1 127.0.0.1 " + std::to_string(one.cluster.proxy_port()));
  CHECK(tcp.state == "FAILED");
  auto unix_socket = run_and_wait(one.client, "run nc -z -U " + path);
  CHECK(unix_socket.state == "FAILED");
  auto ifaces = run_and_wait(one.client, "run cat /proc/net/dev | tail -n +3 | cut -d: -f1");
  CHECK(joined(lines_of(ifaces.out)) == "    lo ");
  ::close(listener);
  std::filesystem::remove(path);
}

TEST_CASE("sandbox: no user namespaces, keyrings, io_uring or vsock, and threads still work") {
  OneNode one;
  NEED(one.client, "seccomp");
  auto r = run_script(one.client, "",
                      "unshare -Ur true; echo \"unshare $?\"\n"
                      "python3 -c '\n"
                      "import ctypes, threading\n"
                      "libc = ctypes.CDLL(None, use_errno=True)\n"
                      "print(\"keyctl\", libc.syscall(250, 0, 0, 0, 0, 0), ctypes.get_errno())\n"
                      "print(\"io_uring_setup\", libc.syscall(425, 1, 0), ctypes.get_errno())\n"
                      "t = threading.Thread(target=lambda: print(\"thread\")); t.start(); t.join()\n"
                      "import socket\n"
                      "for family in (socket.AF_UNIX, socket.AF_INET, socket.AF_INET6):\n"
                      "    socket.socket(family, socket.SOCK_STREAM).close()\n"
                      "try:\n"
                      "    socket.socket(socket.AF_VSOCK, socket.SOCK_STREAM)\n"
                      "except OSError as e:\n"
                      "    print(\"vsock\", e.errno)\n"
                      "'");
  // AF_VSOCK (97: EAFNOSUPPORT) is not scoped by the network namespace.
  CHECK(r.out == "unshare 1\nkeyctl -1 1\nio_uring_setup -1 38\nthread\nvsock 97\n");
  CHECK(r.err.find("Operation not permitted") != std::string::npos);
}

TEST_CASE("sandbox: a million empty files stop at --disk's inodes and never stall the node") {
  OneNode one;
  NEED(one.client, "fs");
  std::string t = submit_run(one.client,
                             "run --timeout 60000 python3 -c 'for i in range(1000000): "
                             "open(str(i), \"w\").close()'");
  // The node answers others all along.
  Client other(one.cluster.node_port(0));
  for (int i = 0; i < 5; ++i) CHECK(other.command("status " + t).rfind("Status: " + t, 0) == 0);
  one.client.send("wait " + t + " 120\n");
  auto r = read_run_result(one.client, 130s);
  REQUIRE(r.ok);
  CHECK(r.fact("verdict") == "RUNTIME_ERROR");
  CHECK(r.err.find("No space left on device") != std::string::npos);
  CHECK(r.fact("attempt") == "1");  // never taken for a lost node and run again
  auto next = run_and_wait(one.client, "run echo next");
  CHECK(next.out == "next\n");
}

TEST_CASE("sandbox: writing 1 GB to /tmp stops at --disk and leaves the host untouched") {
  OneNode one;
  NEED(one.client, "fs");
  std::string name = "jc-big-" + unique_marker();
  auto r = run_and_wait(one.client, "run --disk 32 --memory 512 dd if=/dev/zero of=/tmp/" + name +
                                        " bs=1M count=1024");
  CHECK(r.fact("verdict") == "RUNTIME_ERROR");
  CHECK(r.err.find("No space left on device") != std::string::npos);
  CHECK(!std::filesystem::exists("/tmp/" + name));
  // --disk bounds /box and /tmp together.
  auto both = run_and_wait(one.client, "run --disk 8 head -c 5000000 /dev/zero > /tmp/a && "
                                       "head -c 5000000 /dev/zero > ./b && echo both");
  CHECK(both.state == "FAILED");
  CHECK(both.out.find("both") == std::string::npos);
}

TEST_CASE("sandbox: scripts of any accepted size run and a NUL byte is refused at submission") {
  OneNode one;
  std::string script;
  while (script.size() < 300 * 1024) script += "# a comment line that makes this script long, long, long\n";
  script += "echo big-ok\n";
  auto r = run_script(one.client, "", script);
  CHECK(r.state == "DONE");
  CHECK(r.out == "big-ok\n");
  std::string nul = one.client.command(std::string("run <<END\necho a") + '\0' + "b\nEND");
  CHECK(nul == "ERR the command holds a NUL byte (at byte 6): a shell cannot run it");
}

TEST_CASE("sandbox: a thousand processes end with the job and past JOB_PROCESSES none start") {
  OneNode roomy({.nodes = 1, .slots = 1, .node_env = {{"JOB_PROCESSES", "1100"}}});
  std::string m = unique_marker();
  auto r = run_and_wait(roomy.client, "run --timeout 60000 for i in $(seq 1000); do sleep 300." +
                                          m + " & done; echo started");
  CHECK(r.out == "started\n");
  CHECK(processes_gone(m));
  Cluster strict({.nodes = 1, .slots = 1});
  Client c(strict.node_port(0));
  std::string m2 = unique_marker();
  auto capped = run_and_wait(c, "run --timeout 60000 for i in $(seq 1000); do sleep 300." + m2 +
                                    " & done; echo all");
  INFO(capped.err);
  // The shell cannot fork past the limit: the job fails there.
  CHECK(capped.fact("verdict") == "RUNTIME_ERROR");
  CHECK(capped.out.find("all") == std::string::npos);
  CHECK(capped.err.find("fork") != std::string::npos);
  CHECK(processes_gone(m2));
}

TEST_CASE("sandbox: JOB_READONLY_PATHS are readable at their own paths and read-only") {
  std::string dir = "/var/tmp/jc-ro-" + unique_marker();
  std::filesystem::create_directories(dir + "/lib");
  std::ofstream(dir + "/lib/data.txt") << "shared data\n";
  std::filesystem::create_directory_symlink(dir, dir + "-link");
  struct Cleanup {
    std::string d;
    ~Cleanup() {
      std::filesystem::remove_all(d);
      std::filesystem::remove(d + "-link");
    }
  } cleanup{dir};
  OneNode one({.nodes = 1,
               .slots = 1,
               .node_env = {{"JOB_READONLY_PATHS", dir + "-link,/usr/lib," + dir + "/lib"}}});
  NEED(one.client, "fs");
  auto r = run_and_wait(one.client, "run cat " + dir + "/lib/data.txt " + dir +
                                        "-link/lib/data.txt; touch " + dir + "/x");
  CHECK(r.out == "shared data\nshared data\n");
  CHECK(r.err.find("Read-only file system") != std::string::npos);
}

TEST_CASE("sandbox: two jobs at once see neither each other's files nor processes") {
  OneNode two({.nodes = 1, .slots = 2});
  NEED(two.client, "fs,pid");
  std::string m = unique_marker();
  std::string a = submit_run(two.client, "run --timeout 20000 echo s > /tmp/a" + m +
                                             "; echo s > a" + m + "; sleep 5." + m);
  REQUIRE(eventually(
      [&] { return two.client.command("status " + a).find(" RUNNING ") != std::string::npos; },
      10s));
  REQUIRE(eventually([&] { return !host_processes_with("sleep 5." + m).empty(); }, 10s));
  Client other(two.cluster.node_port(0));
  auto b = run_and_wait(other, "run ls -A /tmp /box; ps -e -o args=; cat /tmp/a" + m);
  CHECK(b.out.find(m) == std::string::npos);
  CHECK(b.state == "FAILED");  // the cat
  two.client.command("cancel " + a);
}

TEST_CASE("sandbox: jobs running at once share no network namespace") {
  OneNode two({.nodes = 1, .slots = 2});
  NEED(two.client, "net");
  std::string name = "jc-chan-" + unique_marker();
  // One listens on an abstract unix socket (no file: only the namespace
  // scopes it), the other tries to reach it.
  std::string a = submit_run(two.client,
                             "run --timeout 20000 python3 -c 'import socket, time; s = "
                             "socket.socket(socket.AF_UNIX); s.bind(\"\\0" + name +
                                 "\"); s.listen(); print(\"up\", flush=True); time.sleep(8)'");
  REQUIRE(eventually(
      [&] { return two.client.command("status " + a).find(" RUNNING ") != std::string::npos; },
      10s));
  REQUIRE(eventually([&] { return !host_processes_with(name).empty(); }, 10s));
  Client other(two.cluster.node_port(0));
  auto b = run_and_wait(other, "run python3 -c 'import socket; s = socket.socket(socket.AF_UNIX); "
                               "s.connect(\"\\0" + name + "\"); print(\"reached\")'");
  CHECK(b.out.find("reached") == std::string::npos);
  CHECK(b.err.find("ConnectionRefusedError") != std::string::npos);
  two.client.command("cancel " + a);
}

TEST_CASE("sandbox: a job with a hundred busy processes gets no more CPU than another job") {
  OneNode two({.nodes = 1, .slots = 2});
  NEED(two.client, "cgroup");
  std::string m = unique_marker();
  std::string hog = submit_run(two.client, "run --timeout 30000 --cpu 120000 for i in $(seq 100); "
                                           "do sh -c 'while :; do :; done' hog" + m +
                                           " & done; sleep 30");
  REQUIRE(eventually([&] { return host_processes_with("hog" + m).size() >= 50; }, 20s));
  Client other(two.cluster.node_port(0));
  // Alone it needs a fraction of a second of CPU; with a fair share it gets
  // it well within its timeout, however many processes the other job runs.
  auto victim = run_and_wait(other, "run --timeout 15000 python3 -c 'print(sum(range(10**7)))'");
  CHECK(victim.state == "DONE");
  CHECK(victim.out == "49999995000000\n");
  two.client.command("cancel " + hog);
  CHECK(eventually([&] { return host_processes_with("hog" + m).empty(); }, 10s));
}

TEST_CASE("sandbox: a C++ program compiled with g++ in the check step is judged") {
  if (!std::filesystem::exists("/usr/bin/g++")) JC_SKIP("no g++ on this machine");
  OneNode one;
  auto r = run_script(one.client, "--timeout 60000 --memory 1024",
                      "@@ file sum.cpp\n"
                      "#include <iostream>\n"
                      "int main() { long a, b; std::cin >> a >> b; std::cout << a + b << '\\n'; }\n"
                      "@@ check\n"
                      "g++ -O2 -o sum sum.cpp\n"
                      "@@ command\n"
                      "./sum\n"
                      "@@ case small\n@@ stdin\n1 2\n@@ expect\n3\n"
                      "@@ case big\n@@ stdin\n4000000000 5\n@@ expect\n4000000005\n");
  INFO(r.err);
  CHECK(r.state == "DONE");
  CHECK(r.fact("verdict") == "ACCEPTED");
  CHECK(r.fact("passed") == "2");
  auto bad = run_script(one.client, "--timeout 60000 --memory 1024",
                        "@@ file bad.cpp\nint main( {}\n@@ check\ng++ -o bad bad.cpp\n"
                        "@@ command\n./bad\n");
  CHECK(bad.fact("verdict") == "COMPILE_ERROR");
  CHECK(bad.err.find("error") != std::string::npos);
}

TEST_CASE("sandbox: the README's worked example, a Python program judged on two cases") {
  OneNode one;
  auto r = run_script(one.client, "--timeout 5000 --memory 128",
                      "@@ file sum.py\n"
                      "a, b = map(int, input().split())\n"
                      "print(a + b)\n"
                      "@@ check\n"
                      "python3 -m py_compile sum.py\n"
                      "@@ command\n"
                      "python3 sum.py\n"
                      "@@ case small\n@@ stdin\n1 2\n@@ expect\n3\n"
                      "@@ case negative\n@@ stdin\n-5 3\n@@ expect\n-2\n");
  CHECK(r.state == "DONE");
  CHECK(r.fact("verdict") == "ACCEPTED");
  CHECK(r.fact("passed") == "2");
  REQUIRE(r.cases.size() == 2);
  CHECK(r.cases[0].rfind("case small ACCEPTED exit=0", 0) == 0);
  CHECK(r.cases[1].rfind("case negative ACCEPTED exit=0", 0) == 0);
}
