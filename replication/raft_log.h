// A replicated log for the reverse proxies, behind an interface of our own so
// that the Raft library (Debian's libraft 0.15, canonical/raft) stays in this
// folder: a switch to a maintained fork touches raft_log.cpp only.
//
// One RaftLog per proxy. The library runs on a libuv loop that is driven from
// the proxy's Asio thread (pump()), so every callback below, the state
// machine's apply among them, runs on that one thread, between Asio handlers.
//
// propose() appends an entry and says at which index; its `done(true)`
// fires once the entry is on a majority's disk and applied here.
// `done(false)` means leadership was lost first: the entry may still be
// committed by the next leader, or not.
#pragma once

#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "common/log.h"
#include "common/status.h"
#include "net/asio.h"

namespace jc::replication {

using Index = std::uint64_t;

enum class Role { unavailable, follower, candidate, leader };
std::string_view role_name(Role role);

struct PeerStatus {
  std::uint64_t id = 0;
  std::string address;
  Index match = 0;      // the last index it holds, as the leader knows (leader only)
  bool recent = false;  // it answered within an election timeout (leader only)
};

struct LogStatus {
  Role role = Role::unavailable;
  std::uint64_t term = 0;
  std::uint64_t leader_id = 0;  // 0: none known
  std::string leader;           // its PROXY_PEERS entry, "" when none is known
  // A follower: how long ago it last heard from the leader (0 otherwise).
  std::uint64_t leader_silent_ms = 0;
  Index last = 0;               // the last index in this log
  Index applied = 0;            // the last index applied here
  std::vector<PeerStatus> peers;
};

// What the log is replicated into. Called on the pump's thread.
class StateMachine {
 public:
  virtual ~StateMachine() = default;
  // A committed entry, in log order. An entry the state machine cannot
  // write yet (a full disk) must be kept and written later by the state
  // machine itself (behind()), since the library (0.15) takes a server that
  // failed an apply out of the cluster for good. Not OK means an entry it
  // can never apply (a newer format): the process stops, saying why.
  virtual Status apply(Index index, std::string_view entry) = 0;
  // Applied entries wait to be written: a leader must hand over.
  virtual bool behind() const { return false; }
  // A snapshot of the state at `index` (the last applied). Returns the work
  // that serializes it, which runs on a thread of the library's pool while
  // entries go on being applied: it must read a consistent view taken now.
  virtual std::function<std::string()> snapshot(Index index) = 0;
  // Replaces the whole state with a snapshot's (a proxy far behind, or new).
  // Not OK stops the process: a half-restored state must not take entries;
  // the next start restores again.
  virtual Status restore(std::string_view snapshot) = 0;
};

class PeerTransport;

struct RaftConfig {
  std::uint64_t id = 0;            // 1-based position of this proxy in `peers`
  std::vector<std::string> peers;  // PROXY_PEERS
  std::string dir;                 // the library's own files (log segments, metadata, snapshots)
  unsigned election_timeout_ms = 300;
  unsigned heartbeat_ms = 50;
  // A snapshot every `snapshot_threshold` entries; `snapshot_trailing`
  // entries stay in the log after one, so a proxy briefly away catches up
  // from the log rather than from a snapshot.
  unsigned snapshot_threshold = 8192;
  unsigned snapshot_trailing = 4096;
};

class RaftLog {
 public:
  RaftLog(boost::asio::io_context& io, RaftConfig config, StateMachine& machine);
  ~RaftLog();
  RaftLog(const RaftLog&) = delete;
  RaftLog& operator=(const RaftLog&) = delete;

  // The transport carries the library's bytes between proxies (set before start()).
  PeerTransport& transport();
  Status start();
  // Closes the library and runs its loop until everything is released.
  void stop();

  // Leader only: the entry's index, or nullopt (and `done` is not called).
  std::optional<Index> propose(std::string_view entry, std::function<void(bool)> done);
  // Fires once every entry before it is applied here (a new leader's state
  // is then complete).
  bool barrier(std::function<void(bool)> done);
  LogStatus status() const;
  // A leader that cannot serve (its store refuses writes, its core did not
  // load) asks another proxy to take over; nothing if it does not lead.
  void hand_over(const char* why);
  // Called (on the pump's thread, never inside the library) when the role,
  // the leader or the term changed.
  std::function<void(const LogStatus&)> on_status;

  // Runs the library's loop now (posted after every call into it).
  void pump();
  // Runs it at once if it has not run for a while: called between the
  // owner's own long handlers, so that a burst of them does not keep the
  // library from its heartbeats (a leader that hears from no follower for
  // an election timeout steps down).
  void pump_if_late();

 private:
  struct Impl;
  std::unique_ptr<Impl> impl_;
};

}  // namespace jc::replication
