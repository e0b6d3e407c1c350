// One client connection (what `nc HOST 9000` talks to).
//
// Lines are split by LineReader and parsed by parse_command; each command
// gets a reply slot in arrival order, filled now or later (a submit after its
// group commit, `wait` when the job ends), and replies leave strictly in
// order, one async_write at a time. Commands take effect in order too: the
// lines after a `wait` are kept, unparsed, until it has answered, so a
// `status` after a `wait` sees what the `wait` saw (other commands, submits
// above all, are carried out as they arrive). After the client closes its sending
// side the session still answers every command it has read, then closes.
// Reading pauses while too many replies are pending (backpressure).
// Runs on the node's io_context thread; keeps itself alive with
// shared_from_this() in every handler.
#pragma once

#include <chrono>
#include <deque>
#include <unordered_map>
#include <memory>
#include <optional>
#include <string>

#include "cluster_node/command.h"
#include "net/asio.h"

namespace jc::node {

class NodeServer;

class ClientSession : public std::enable_shared_from_this<ClientSession> {
 public:
  // Connections open per client address, shared by the sessions of a node:
  // each counts itself in for its lifetime.
  using AddressCounts = std::unordered_map<std::string, std::size_t>;

  ClientSession(boost::asio::ip::tcp::socket socket, NodeServer& server, std::string peer,
                std::string address, std::shared_ptr<AddressCounts> counts,
                std::chrono::milliseconds idle_timeout);
  ~ClientSession();
  void start();
  void close();
  // Refuse with one error line and close (too many connections).
  void refuse(const std::string& reply);

 private:
  struct Slot {
    bool ready = false;
    bool close_after = false;
    std::string text;
  };
  using SlotPtr = std::shared_ptr<Slot>;

  void do_read();
  void on_read(const boost::system::error_code& ec, std::size_t n);
  // A line read (nullopt: one over the limit), in order: carried out now,
  // or kept while a `wait` before it has not answered.
  void input(std::optional<std::string_view> line);
  void process(std::optional<std::string_view> line);
  // Carries out the kept lines up to the next unanswered `wait`.
  void replay();
  // The client's input ended and every line of it was carried out.
  void end_of_input();
  void handle_line(std::string_view line);
  SlotPtr add_slot();
  void fill(const SlotPtr& slot, std::string text, bool close_after = false);
  // A callback that fills `slot` later, if the session still exists.
  template <class F>
  auto later(SlotPtr slot, F format);
  void pump();
  void do_write();
  bool backlogged() const;
  // CLIENT_IDLE_TIMEOUT: closes the connection once it has sent nothing and
  // waits for nothing for that long.
  void arm_idle_timer(std::chrono::steady_clock::time_point at);
  bool idle() const;

  boost::asio::ip::tcp::socket socket_;
  NodeServer& server_;
  std::string peer_;
  std::string address_;
  std::shared_ptr<AddressCounts> counts_;
  std::chrono::milliseconds idle_timeout_;
  std::chrono::steady_clock::time_point last_heard_;
  boost::asio::steady_timer idle_timer_;
  LineReader reader_;
  std::string inbox_;
  std::deque<SlotPtr> slots_;
  std::string outgoing_;
  std::string writing_;
  // A `run ... <<WORD` being read: its reply slot and the body so far.
  struct Heredoc {
    CmdRun run;
    SlotPtr slot;
    bool json = false;
    std::string body;
    bool too_long = false;
  };
  std::optional<Heredoc> heredoc_;
  void heredoc_line(std::string_view line);
  void submit_run(const CmdRun& run, std::string_view body, const SlotPtr& slot, bool json);

  // CLIENT_TOKENS: the name this connection proved with `auth`.
  std::optional<std::string> name_;
  int failed_auths_ = 0;
  bool tokens_on() const;
  // The report as this client may see it: another name's job is unknown.
  protocol::JobReport visible(const protocol::JobReport& r) const;
  void authenticate(const CmdAuth& auth, const SlotPtr& slot, bool json);

  std::deque<std::optional<std::string>> deferred_;  // lines after an unanswered `wait`
  std::size_t deferred_bytes_ = 0;
  int waits_pending_ = 0;
  bool replaying_ = false;
  bool input_ended_ = false;  // EOF
  bool exited_ = false;       // `exit` (or too many wrong tokens): later lines are ignored

  bool json_ = false;
  bool reading_ = false;
  bool read_closed_ = false;  // client sent EOF, or asked to exit
  bool closed_ = false;
};

}  // namespace jc::node
