#include "cluster_node/node_records.h"

#include "protocol/codec.h"

namespace jc::node {

std::string fresh_origin_record(std::string_view spec_bytes) {
  // What follows the spec in every fresh record.
  static const std::string tail = [] {
    OriginRecord fresh;
    const std::string whole = protocol::to_record(fresh);
    return whole.substr(protocol::kRecordHeaderBytes + protocol::to_bytes(fresh.spec).size());
  }();
  std::string out;
  out.reserve(protocol::kRecordHeaderBytes + spec_bytes.size() + tail.size());
  protocol::append_record_header(out);
  out.append(spec_bytes).append(tail);
  return out;
}

std::string exec_record_from(std::string_view spec_bytes, const ExecRecord& rec) {
  std::string out;
  out.reserve(protocol::kRecordHeaderBytes + spec_bytes.size() + 64);
  protocol::append_record_header(out);
  out.append(spec_bytes);
  {
    protocol::OutArchive ar(out);
    // The fields after the spec, as ExecRecord::serialize writes them.
    protocol::fields(ar, rec.attempt, rec.state, rec.result, rec.delivered, rec.local);
  }
  return out;
}

}  // namespace jc::node
