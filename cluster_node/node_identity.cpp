// The node's names that outlive its restarts: its id (NODE_ID, or one made
// on its first start) and the identity of its data directory. Both are kept
// in its store (m/node_id, m/identity).
#include "cluster_node/node_core.h"
#include "protocol/auth.h"

namespace jc::node {

std::string NodeCore::stable_node_id(storage::Store& store, const std::string& configured) {
  std::string stored;
  bool have = store.get("m/node_id", &stored).ok();
  if (!configured.empty()) return configured;
  if (have) return stored;
  std::string id = "node-" + random_prefix();
  storage::WriteBatch b;
  b.put("m/node_id", id);
  store.write(b, true);
  return id;
}

std::string NodeCore::data_identity(storage::Store& store) {
  std::string stored;
  if (store.get("m/identity", &stored).ok() && !stored.empty()) return stored;
  std::string id = protocol::random_nonce().substr(0, 16);  // 64 random bits, hex
  storage::WriteBatch b;
  b.put("m/identity", id);
  store.write(b, true);
  return id;
}

}  // namespace jc::node
