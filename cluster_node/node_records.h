// What a node stores of a job (cluster_node/node_core.h has where): the
// job a client submitted through it (o/), and the job the proxy gave it to
// run (x/). Records of the archive (protocol/codec.h: to_record).
#pragma once

#include <cstdint>
#include <string>
#include <string_view>

#include "protocol/fields.h"
#include "protocol/job.h"

namespace jc::node {

struct OriginRecord {
  protocol::JobSpec spec;
  protocol::JobState state = protocol::JobState::kQueued;
  bool has_result = false;
  protocol::JobResult result;
  std::uint32_t attempts = 0;

  template <class A>
  void serialize(A& ar, unsigned) {
    protocol::fields(ar, spec, state, has_result, result, attempts);
  }
};

// What becomes of a job submitted here: its r/ record, written when its
// result comes, beside its o/ record, which keeps the job as accepted and
// is never rewritten (a judge's submission carries its test data). Records
// of earlier builds hold these fields in o/ itself; an r/ record wins.
struct OriginOutcome {
  protocol::JobState state = protocol::JobState::kQueued;
  bool has_result = false;
  protocol::JobResult result;
  std::uint32_t attempts = 0;
  // The job's owner (JobSpec::owner), from version 8 on: with it, a read of
  // the job needs this record only, not its o/ record and the files in it.
  std::string owner;
  // In memory only: read from a record that has `owner`.
  bool owner_known = false;

  template <class A>
  void serialize(A& ar, unsigned) {
    protocol::fields(ar, state, has_result, result, attempts);
    if (ar.version() >= 8) {
      protocol::fields(ar, owner);
      if constexpr (A::is_loading::value) owner_known = true;
    }
  }
};

// The record of a job just accepted (queued, no result, no attempt) whose
// spec is `spec_bytes` as to_bytes gives them: to_record of that
// OriginRecord, without encoding the spec again (the spec is its first field).
std::string fresh_origin_record(std::string_view spec_bytes);

struct ExecRecord {
  protocol::JobSpec spec;
  std::uint32_t attempt = 1;
  protocol::JobState state = protocol::JobState::kQueued;
  protocol::JobResult result;
  // The proxy accepted this result as the job's one result: only in
  // records of earlier builds, which kept them after that (now deleted then).
  bool delivered = false;
  bool local = false;  // taken from this node's own clients while the proxy was away

  template <class A>
  void serialize(A& ar, unsigned) {
    protocol::fields(ar, spec, attempt, state, result, delivered, local);
  }
};

// What came of a run: its d/ record, written when the run ends, beside the
// job's x/ record, which keeps the job as given and is never rewritten.
// Records of earlier builds hold these fields in x/ itself; a d/ record wins.
struct ExecOutcome {
  protocol::JobState state = protocol::JobState::kDone;
  protocol::JobResult result;

  template <class A>
  void serialize(A& ar, unsigned) {
    protocol::fields(ar, state, result);
  }
};

// The x/ record of `rec` whose spec is `spec_bytes` as to_bytes gives them:
// to_record(rec), without encoding the spec again (it is the first field).
std::string exec_record_from(std::string_view spec_bytes, const ExecRecord& rec);

}  // namespace jc::node
