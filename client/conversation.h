// One client connection's conversation, without the socket: the pure
// handler of the client protocol (INTERFACE.md section 3).
//
// The shell (cluster_node/client_session.cpp) feeds it the bytes it reads
// and writes what take_output() gives; everything between is decided here:
// lines and here-documents are framed (InputReader) and parsed
// (parse_command); each command gets
// a reply slot in arrival order, filled now or later (a submit after its
// group commit, `wait` when the job ends), and replies leave strictly in
// order. Commands take effect in order too: the lines after a `wait` are
// kept, unparsed, until it has answered, so a `status` after a `wait` sees
// what the `wait` saw. Here too: authentication (CLIENT_TOKENS) and what a
// client may see of others' jobs, the job limits, here-documents, `exit`,
// `drain`'s permission, and the answer to a full disk.
//
// What it needs of the node is the Backend interface (NodeServer in the
// binary, a fake in the tests). A Backend calls back later, perhaps after
// the client left: a callback holds the shell alive through `hold` and
// drops its answer once close() was called; `wake` tells the shell that
// output is ready.
#pragma once

#include <chrono>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

#include "client/command.h"
#include "client/input_reader.h"
#include "client/lookups.h"
#include "common/time.h"
#include "protocol/client_tokens.h"
#include "protocol/messages.h"

namespace jc::client {

// Limits of run jobs: the defaults a job gets, and the most it may ask for.
struct JobLimits {
  protocol::Limits defaults{10'000, 10'000, 256, 1024, 64};
  // Output: a result is stored and copied by the node, the proxy and the
  // client's node, on their event loops: 2 x 4 MiB costs each about half a
  // second here, 2 x 16 MiB seconds, long enough for a busy node to miss
  // NODE_TIMEOUT. 4 MiB is also the most JOB_MAX_OUTPUT_KB allows; an
  // expected output is at most a 1 MiB here-document anyway.
  protocol::Limits maxima{300'000, 300'000, 4096, 4096, 4096};
};
// Fills a run job's limits from the defaults; an error when it asks for
// more than a maximum ("" when it fits).
std::string apply_limits(const JobLimits& limits, protocol::JobSpec& spec);

class Backend {
 public:
  virtual ~Backend() = default;
  // Stores the job durably; `done` gets its ticket after the commit.
  virtual void submit(protocol::JobSpec spec, std::function<void(const std::string&)> done) = 0;
  virtual void lookup(LookupRequest request, LookupDone done) = 0;
  // Sends CANCEL (`requester`: the client's name when it may cancel only
  // its own jobs, else ""); `done` gets the proxy's report after it acted.
  virtual void cancel(const std::string& ticket, const std::string& requester,
                      LookupDone done) = 0;
  // After the pending commit, so it lists jobs submitted just before.
  virtual void getall(std::function<void(const std::vector<protocol::GetAllEntry>&)> done) = 0;
  virtual void stats(std::function<void(const protocol::ClusterStats&, bool proxy_up)> done) = 0;
  virtual void drain() = 0;
  virtual bool proxy_connected() const = 0;
  // The storage refuses writes: submits get "ERR storage full".
  virtual bool storage_full() const = 0;
  // The cluster takes no more jobs now (MAX_QUEUE): `adding` more would be
  // past it. Submits get "ERR queue is full, try again later" (the API 503).
  virtual bool queue_full(std::size_t adding) const = 0;
  virtual std::uint64_t max_queue() const = 0;  // the cluster's MAX_QUEUE as last told (0: none)
  virtual const protocol::ClientTokens& tokens() const = 0;
  virtual const JobLimits& limits() const = 0;
  virtual TimeMs now() const = 0;
  // Whether some node of the cluster offers `need` ("label:gpu",
  // "lang:71", "network"): ever (a job needing what none offers is refused
  // at submission), or up now.
  virtual bool offered(const std::string& need) const = 0;
  virtual bool available(const std::string& need) const = 0;
};

class Conversation {
 public:
  // A client may pipeline this many commands ahead of their replies before
  // the shell stops reading from it.
  static constexpr std::size_t kMaxPendingReplies = 20'000;
  static constexpr std::size_t kMaxPendingBytes = 4 << 20;
  // Wrong tokens one connection may send before it is closed.
  static constexpr int kMaxFailedAuths = 3;

  // `peer`: "address:port" of the client (drain is for loopback peers).
  Conversation(Backend& backend, std::string peer, std::function<std::shared_ptr<void>()> hold,
               std::function<void()> wake);

  // Bytes read from the client.
  void feed(std::string_view bytes);
  // The client closed its sending side: every line read is still answered.
  void end_of_input();
  // CLIENT_IDLE_TIMEOUT passed without a line: says so and ends.
  void idle_timeout(std::chrono::milliseconds after);
  // The connection is gone: answers that come later are dropped.
  void close() { closed_ = true; }

  // The replies ready, in order.
  std::string take_output();
  // Everything owed is in take_output()'s hands: the shell writes it, then
  // closes the connection.
  bool finished() const;
  // No more input is read (EOF, `exit`, too many wrong tokens, idle).
  bool stopped_reading() const { return stop_reading_; }
  // Too much owed to read more now (`unwritten`: bytes the shell holds).
  bool backlogged(std::size_t unwritten) const;
  // Nothing owed and nothing half-read: what CLIENT_IDLE_TIMEOUT looks at.
  bool idle() const { return slots_.empty() && deferred_.empty() && !reader_.has_partial(); }
  bool mid_line() const { return reader_.has_partial(); }

 private:
  struct Slot {
    bool ready = false;
    bool close_after = false;
    std::string text;
  };
  using SlotPtr = std::shared_ptr<Slot>;
  // What is kept while a `wait` before it has not answered: a line
  // (nullopt: one over the limit), a whole here-document, or the end of
  // what can be read (an error to answer; `close`: then the connection).
  struct KeptHeredoc {
    std::string run_line, body;
    bool too_long = false;
  };
  struct InputEnd {
    std::string message;
    bool close = false;
  };
  using Kept = std::variant<std::optional<std::string>, KeptHeredoc, InputEnd>;

  // What the reader framed, in order: carried out now, or kept while a
  // `wait` before it has not answered.
  void input(InputReader::Item item);
  void keep(Kept item, std::size_t bytes);
  void process_line(std::optional<std::string_view> line);
  void process_heredoc(const InputReader::Heredoc& doc);
  // Carries out the kept input up to the next unanswered `wait`.
  void replay();
  // A command line, or a here-document's `run` line with its body.
  void handle_line(std::string_view line, const InputReader::Heredoc* doc);
  void submit_run(const CmdRun& run, const InputReader::Heredoc* doc, const SlotPtr& slot,
                  bool json);
  void authenticate(const CmdAuth& auth, const SlotPtr& slot, bool json);
  void end_input(const InputEnd& end);
  SlotPtr add_slot();
  static void fill(const SlotPtr& slot, std::string text, bool close_after = false);
  // A callback that fills `slot` later with format(args...), if the
  // connection is still there.
  template <class F>
  auto later(SlotPtr slot, F format);
  bool tokens_on() const;
  // The report as this client may see it: another name's job is unknown.
  protocol::JobReport visible(const protocol::JobReport& r) const;
  void schedule(protocol::JobSpec& spec, const Schedule& s) const;

  Backend& backend_;
  std::string peer_;
  std::function<std::shared_ptr<void>()> hold_;
  std::function<void()> wake_;
  InputReader reader_;
  std::deque<SlotPtr> slots_;
  std::optional<std::string> name_;  // CLIENT_TOKENS: the name proved with `auth`
  int failed_auths_ = 0;
  std::deque<std::pair<Kept, std::size_t>> deferred_;  // input after an unanswered `wait`, with its size
  std::size_t deferred_bytes_ = 0;
  int waits_pending_ = 0;
  bool replaying_ = false;
  bool input_ended_ = false;  // EOF
  bool exited_ = false;       // later lines are ignored
  bool stop_reading_ = false;
  bool ended_ = false;  // a reply that closes the connection was taken
  bool json_ = false;
  bool closed_ = false;
};

}  // namespace jc::client
