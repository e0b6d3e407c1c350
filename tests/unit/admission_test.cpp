// Unit tests of reverse_proxy/admission.h: who may join, what of a HELLO is
// kept, and when the queue counts as full.
#include "reverse_proxy/admission.h"

#include <doctest/doctest.h>

#include "protocol/auth.h"

namespace jc::proxy {
namespace {

protocol::Hello hello(const std::string& id = "node-1") {
  protocol::Hello h;
  h.node_id = id;
  h.slots = 2;
  return h;
}

}  // namespace

TEST_CASE("admission: a well-formed HELLO joins an open cluster") {
  CHECK_FALSE(join_refusal(hello(), "", JoinRules{}, false, 0).has_value());
}

TEST_CASE("admission: each refusal says why") {
  JoinRules rules;
  auto h = hello();
  h.version = protocol::kProtocolVersion + 1;
  CHECK(join_refusal(h, "", rules, false, 0)->find("protocol version") != std::string::npos);
  CHECK(join_refusal(hello("bad id/"), "", rules, false, 0)->find("node id must be") == 0);
  h = hello();
  h.slots = 0;
  CHECK(*join_refusal(h, "", rules, false, 0) == "a node needs at least one slot");
  CHECK(*join_refusal(hello(), "", rules, true, 1) == "node id node-1 is already connected");
  rules.max_nodes = 2;
  CHECK(*join_refusal(hello(), "", rules, false, 2) == "MAX_NUM_NODES=2 nodes are already connected");
  CHECK_FALSE(join_refusal(hello(), "", rules, false, 1).has_value());
}

TEST_CASE("admission: with CLUSTER_SECRET only a proof of it for this challenge joins") {
  JoinRules rules{"s3cret", 64};
  auto h = hello();
  CHECK(*join_refusal(h, "nonce", rules, false, 0) ==
        "this cluster needs CLUSTER_SECRET and the node gave no proof");
  h.auth = protocol::join_proof("wrong", "nonce", "node-1");
  CHECK(*join_refusal(h, "nonce", rules, false, 0) == "wrong CLUSTER_SECRET proof");
  h.auth = protocol::join_proof("s3cret", "nonce", "node-1");
  CHECK_FALSE(join_refusal(h, "nonce", rules, false, 0).has_value());
  CHECK(join_refusal(h, "another nonce", rules, false, 0).has_value());  // no replay
  CHECK(join_refusal(h, "", rules, false, 0).has_value());
}

TEST_CASE("admission: only plain words of a HELLO are kept") {
  CHECK(plain_sandbox("user,cgroup") == "user,cgroup");
  CHECK(plain_sandbox("<script>") == "?");
  CHECK(plain_sandbox(std::string(65, 'a')) == "?");
  CHECK(plain_cpus("pinned") == "pinned");
  CHECK(plain_cpus("all of them") == "?");
  auto offers = plain_offers({"lang:71", "label:gpu", "", "bad word", std::string(101, 'x')});
  CHECK(offers == std::set<std::string>{"label:gpu", "lang:71"});
  std::vector<std::string> many;
  for (int i = 0; i < 5000; ++i) many.push_back("label:" + std::to_string(i));
  CHECK(plain_offers(many).size() == 4096);
  CHECK(plain_api_address("127.0.0.1:2358") == "127.0.0.1:2358");
  CHECK(plain_api_address(std::string(301, 'a')).empty());
}

TEST_CASE("admission: the queue is full at MAX_QUEUE and has room again under nine tenths") {
  CHECK_FALSE(queue_full(false, 99, 100));
  CHECK(queue_full(false, 100, 100));
  CHECK(queue_full(true, 91, 100));
  CHECK(queue_full(true, 90, 100));
  CHECK_FALSE(queue_full(true, 89, 100));
  CHECK_FALSE(queue_full(false, 1'000'000, 0));  // 0: no limit
}

}  // namespace jc::proxy
