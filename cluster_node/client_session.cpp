#include "cluster_node/client_session.h"

#include <fmt/format.h>

#include "cluster_node/node_server.h"
#include "cluster_node/replies.h"
#include "common/log.h"
#include "common/time.h"

namespace jc::node {

namespace asio = boost::asio;
using boost::system::error_code;

namespace {
constexpr std::size_t kReadChunk = 16 * 1024;
// A client may pipeline this many commands ahead of their replies before
// the node stops reading from it.
constexpr std::size_t kMaxPendingReplies = 20'000;
constexpr std::size_t kMaxOutgoingBytes = 4 << 20;
// Wrong tokens one connection may send before it is closed.
constexpr int kMaxFailedAuths = 3;
// The reply to a submit while the node's storage refuses writes.
constexpr const char* kStorageFull = "storage full, try again later";
}  // namespace

ClientSession::ClientSession(asio::ip::tcp::socket socket, NodeServer& server, std::string peer,
                             std::string address, std::shared_ptr<AddressCounts> counts,
                             std::chrono::milliseconds idle_timeout)
    : socket_(std::move(socket)),
      server_(server),
      peer_(std::move(peer)),
      address_(std::move(address)),
      counts_(std::move(counts)),
      idle_timeout_(idle_timeout),
      last_heard_(std::chrono::steady_clock::now()),
      idle_timer_(socket_.get_executor()) {
  ++(*counts_)[address_];
}

ClientSession::~ClientSession() {
  auto it = counts_->find(address_);
  if (it != counts_->end() && --it->second == 0) counts_->erase(it);
}

void ClientSession::start() {
  do_read();
  arm_idle_timer(last_heard_ + idle_timeout_);
}

bool ClientSession::idle() const {
  return slots_.empty() && deferred_.empty() && !heredoc_ && outgoing_.empty() && writing_.empty();
}

void ClientSession::arm_idle_timer(std::chrono::steady_clock::time_point at) {
  idle_timer_.expires_at(at);
  idle_timer_.async_wait([weak = weak_from_this()](const error_code& ec) {
    auto self = weak.lock();
    if (ec || !self || self->closed_ || self->read_closed_) return;
    auto due = self->last_heard_ + self->idle_timeout_;
    if (std::chrono::steady_clock::now() < due || !self->idle()) {
      // Heard from since, or a reply is still owed (a `wait`): look again later.
      self->arm_idle_timer(std::max(due, std::chrono::steady_clock::now() + self->idle_timeout_ / 4));
      return;
    }
    log::get("client")->debug("closing idle client peer={}", self->peer_);
    self->fill(self->add_slot(),
               replies::error(fmt::format("closing: nothing sent for {} ms (CLIENT_IDLE_TIMEOUT)",
                                          self->idle_timeout_.count()),
                              self->json_),
               true);
    self->read_closed_ = self->exited_ = true;
    self->pump();
  });
}

void ClientSession::refuse(const std::string& reply) {
  outgoing_ = reply;
  read_closed_ = exited_ = true;
  do_write();
}

void ClientSession::close() {
  if (closed_) return;
  closed_ = true;
  error_code ignored;
  idle_timer_.cancel();
  socket_.shutdown(asio::ip::tcp::socket::shutdown_both, ignored);
  socket_.close(ignored);
  slots_.clear();
}

bool ClientSession::backlogged() const {
  return slots_.size() + deferred_.size() >= kMaxPendingReplies ||
         outgoing_.size() + writing_.size() + deferred_bytes_ >= kMaxOutgoingBytes;
}

void ClientSession::do_read() {
  if (closed_ || read_closed_ || reading_ || backlogged()) return;
  reading_ = true;
  inbox_.resize(kReadChunk);
  socket_.async_read_some(asio::buffer(inbox_),
                          [self = shared_from_this()](const error_code& ec, std::size_t n) {
                            // reading_ stays set while on_read() parses inbox_: a reply completed
                            // synchronously must not start the next read into the buffer being
                            // parsed (Asio may read speculatively at once).
                            self->on_read(ec, n);
                          });
}

void ClientSession::on_read(const error_code& ec, std::size_t n) {
  if (closed_) {
    reading_ = false;
    return;
  }
  if (n > 0) last_heard_ = std::chrono::steady_clock::now();
  if (ec) {
    reading_ = false;
    if (ec != asio::error::eof && ec != asio::error::operation_aborted) {
      log::get("client")->debug("read failed peer={} error=\"{}\"", peer_, ec.message());
    }
    read_closed_ = true;  // answer what was read, then close
    input_ended_ = true;
    if (deferred_.empty()) end_of_input();
    if (reader_.has_partial()) {
      log::get("client")->debug("client left mid-line peer={}", peer_);
    }
    pump();
    return;
  }
  reader_.feed(
      std::string_view(inbox_.data(), n),
      [this](std::string_view line) { input(line); }, [this] { input(std::nullopt); });
  reading_ = false;
  pump();
  do_read();
}

void ClientSession::input(std::optional<std::string_view> line) {
  if (exited_) return;
  if (waits_pending_ > 0 || !deferred_.empty()) {
    deferred_bytes_ += line ? line->size() : 0;
    deferred_.push_back(line ? std::optional<std::string>(std::string(*line)) : std::nullopt);
    return;
  }
  process(line);
}

void ClientSession::process(std::optional<std::string_view> line) {
  if (exited_) return;
  if (!line) {
    if (heredoc_) {
      heredoc_->too_long = true;
      return;
    }
    fill(add_slot(), replies::error(fmt::format("line too long: the limit is {} bytes; send a "
                                                "long script as a here-document of short lines",
                                                kMaxLineBytes),
                                    json_));
    return;
  }
  if (heredoc_) {
    heredoc_line(*line);
  } else {
    handle_line(*line);
  }
}

void ClientSession::replay() {
  if (replaying_) return;  // the loop below goes on: no recursion per answered wait
  replaying_ = true;
  while (!deferred_.empty() && waits_pending_ == 0 && !exited_ && !closed_) {
    std::optional<std::string> line = std::move(deferred_.front());
    deferred_.pop_front();
    deferred_bytes_ -= line ? line->size() : 0;
    process(line ? std::optional<std::string_view>(*line) : std::nullopt);
  }
  replaying_ = false;
  if (exited_) {
    deferred_.clear();
    deferred_bytes_ = 0;
  }
  if (input_ended_ && deferred_.empty()) end_of_input();
}

void ClientSession::end_of_input() {
  if (!heredoc_) return;
  fill(heredoc_->slot,
       replies::error("the connection ended inside the here-document (no line '" +
                          heredoc_->run.heredoc + "')",
                      heredoc_->json));
  heredoc_.reset();
}

ClientSession::SlotPtr ClientSession::add_slot() {
  slots_.push_back(std::make_shared<Slot>());
  return slots_.back();
}

void ClientSession::fill(const SlotPtr& slot, std::string text, bool close_after) {
  slot->text = std::move(text);
  slot->ready = true;
  slot->close_after = close_after;
}

template <class F>
auto ClientSession::later(SlotPtr slot, F format) {
  // Holds the session: after the client's EOF nothing else does, and the
  // reply is still owed.
  return [self = shared_from_this(), slot = std::move(slot), format](auto&&... args) {
    if (self->closed_) return;
    self->fill(slot, format(std::forward<decltype(args)>(args)...));
    self->pump();
    self->do_read();
  };
}

namespace {
// --priority and --delay into the job (the delay counts from now, when it
// is accepted).
void schedule(protocol::JobSpec& spec, const Schedule& s) {
  spec.priority = s.priority;
  spec.not_before_ms = s.delay_ms > 0 ? now_ms() + static_cast<TimeMs>(s.delay_ms) : 0;
}
}  // namespace

bool ClientSession::tokens_on() const { return server_.tokens().enabled(); }

protocol::JobReport ClientSession::visible(const protocol::JobReport& r) const {
  // An expired job's owner is gone with it: "expired" is all anyone learns.
  if (r.state == protocol::JobState::kExpired) return r;
  if (protocol::may_access(server_.tokens(), name_, r.owner)) return r;
  protocol::JobReport unknown;
  unknown.ticket = r.ticket;
  return unknown;
}

void ClientSession::authenticate(const CmdAuth& auth, const SlotPtr& slot, bool json) {
  auto log = log::get("client");
  if (!tokens_on()) {
    fill(slot, replies::error("auth is not needed: this node has no CLIENT_TOKENS", json));
    return;
  }
  auto name = server_.tokens().authenticate(auth.token);
  if (!name) {
    ++failed_auths_;
    log->warn("client auth failed peer={} attempt={}", peer_, failed_auths_);
    bool last = failed_auths_ >= kMaxFailedAuths;
    fill(slot,
         replies::error(last ? "auth failed: wrong token; closing after " +
                                   std::to_string(kMaxFailedAuths) + " attempts"
                             : "auth failed: wrong token",
                        json),
         last);
    if (last) read_closed_ = exited_ = true;
    return;
  }
  log->debug("client authenticated peer={} name={}", peer_, *name);
  name_ = std::move(name);
  fill(slot, replies::authenticated(*name_, json));
}

void ClientSession::handle_line(std::string_view line) {
  Command cmd = parse_command(line);
  if (std::holds_alternative<CmdEmpty>(cmd)) return;
  SlotPtr slot = add_slot();
  bool json = json_;
  if (auto* auth = std::get_if<CmdAuth>(&cmd)) {
    authenticate(*auth, slot, json);
    return;
  }
  if (tokens_on() && !name_ && !std::holds_alternative<CmdExit>(cmd)) {
    fill(slot, replies::error("auth required: send auth <token> first", json));
    return;
  }
  std::string owner = name_.value_or("");
  std::visit(
      [&](auto& c) {
        using T = std::decay_t<decltype(c)>;
        if constexpr (std::is_same_v<T, CmdSleep>) {
          if (server_.storage_full()) {
            fill(slot, replies::error(kStorageFull, json));
            return;
          }
          protocol::JobSpec spec;
          spec.kind = protocol::JobKind::kSleep;
          spec.sleep_ms = c.ms;
          spec.owner = owner;
          schedule(spec, c.schedule);
          server_.submit(std::move(spec), later(slot, [json](const std::string& t) {
                           return replies::ticket(t, json);
                         }));
        } else if constexpr (std::is_same_v<T, CmdRun>) {
          if (c.heredoc.empty()) {
            submit_run(c, "", slot, json);
          } else {
            heredoc_ = Heredoc{c, slot, json, "", false};
          }
        } else if constexpr (std::is_same_v<T, CmdResult>) {
          server_.lookup(c.ticket, false, std::nullopt,
                         later(slot, [this, json](const protocol::JobReport& r, bool unreachable) {
                           return replies::result(visible(r), unreachable, json);
                         }));
        } else if constexpr (std::is_same_v<T, CmdStatus>) {
          server_.lookup(c.ticket, false, std::nullopt,
                         later(slot, [this, json](const protocol::JobReport& r, bool unreachable) {
                           return replies::status(visible(r), unreachable, json);
                         }));
        } else if constexpr (std::is_same_v<T, CmdWait>) {
          // The lines after it wait for its answer (input()).
          ++waits_pending_;
          server_.lookup(c.ticket, true, c.seconds,
                         [self = shared_from_this(), slot, json](const protocol::JobReport& r,
                                                                 bool unreachable) {
                           if (self->closed_) return;
                           self->fill(slot, replies::result(self->visible(r), unreachable, json));
                           --self->waits_pending_;
                           self->replay();
                           self->pump();
                           self->do_read();
                         });
        } else if constexpr (std::is_same_v<T, CmdCancel>) {
          std::optional<std::string> requester;
          if (tokens_on() && !server_.tokens().is_admin(owner)) requester = owner;
          server_.cancel(c.ticket, requester, json,
                         later(slot, [](const std::string& text) { return text; }));
        } else if constexpr (std::is_same_v<T, CmdGetAll>) {
          server_.getall(later(slot, [this, json](const std::vector<GetAllEntry>& jobs) {
            if (!tokens_on()) return replies::getall(jobs, json);
            std::vector<GetAllEntry> mine;
            for (const auto& j : jobs) {
              if (protocol::may_access(server_.tokens(), name_, j.owner)) mine.push_back(j);
            }
            return replies::getall(mine, json);
          }));
        } else if constexpr (std::is_same_v<T, CmdStats>) {
          server_.stats(later(slot, [json](const protocol::ClusterStats& s, bool up) {
            return replies::stats(s, up, json, now_ms());
          }));
        } else if constexpr (std::is_same_v<T, CmdHelp>) {
          fill(slot, replies::help(json));
        } else if constexpr (std::is_same_v<T, CmdExit>) {
          fill(slot, replies::goodbye(json), true);
          read_closed_ = exited_ = true;
        } else if constexpr (std::is_same_v<T, CmdFormat>) {
          json_ = c.json;
          fill(slot, replies::format_switched(c.json));
        } else if constexpr (std::is_same_v<T, CmdDrain>) {
          // Taking a node out of service is an operator's act: only from the
          // machine it runs on.
          bool local = peer_.rfind("127.", 0) == 0 || peer_.rfind("::1", 0) == 0;
          if (tokens_on() && !server_.tokens().is_admin(owner)) {
            fill(slot, replies::error("drain needs a name listed in ADMIN_NAMES", json));
          } else if (!tokens_on() && !local) {
            fill(slot, replies::error("drain is accepted only from this machine (a loopback "
                                      "connection); or send the node SIGTERM",
                                      json));
          } else {
            server_.drain([] {});
            fill(slot,
                 "OK draining: queued jobs go back to the proxy, running ones finish, "
                 "then the node exits\n");
          }
        } else if constexpr (std::is_same_v<T, CmdError>) {
          fill(slot, replies::error(c.message, json));
        } else if constexpr (std::is_same_v<T, CmdAuth>) {
          // handled above
        }
      },
      cmd);
}

void ClientSession::heredoc_line(std::string_view line) {
  Heredoc& h = *heredoc_;
  if (line == h.run.heredoc) {
    Heredoc done = std::move(h);
    heredoc_.reset();
    if (done.too_long) {
      fill(done.slot, replies::error(fmt::format("the here-document is over the limit of {} bytes "
                                                 "(lines at most {} bytes)",
                                                 kMaxHeredocBytes, kMaxLineBytes),
                                     done.json));
    } else {
      submit_run(done.run, done.body, done.slot, done.json);
    }
    return;
  }
  if (h.too_long || h.body.size() + line.size() + 1 > kMaxHeredocBytes) {
    // Keep reading up to the terminator, without keeping the lines.
    h.too_long = true;
    h.body.clear();
    return;
  }
  h.body.append(line);
  h.body.push_back('\n');
}

void ClientSession::submit_run(const CmdRun& run, std::string_view body, const SlotPtr& slot,
                               bool json) {
  protocol::JobSpec spec;
  std::string err = build_run_spec(run, body, spec);
  spec.owner = name_.value_or("");
  schedule(spec, run.options.schedule);
  if (err.empty()) err = server_.apply_limits(spec);
  if (err.empty() && server_.storage_full()) err = kStorageFull;
  if (!err.empty()) {
    fill(slot, replies::error(err, json));
    return;
  }
  server_.submit(std::move(spec),
                 later(slot, [json](const std::string& t) { return replies::ticket(t, json); }));
}

void ClientSession::pump() {
  if (closed_) return;
  bool close_after = false;
  while (!slots_.empty() && slots_.front()->ready) {
    outgoing_ += slots_.front()->text;
    close_after = close_after || slots_.front()->close_after;
    slots_.pop_front();
    if (close_after) {
      slots_.clear();
      break;
    }
  }
  if (writing_.empty()) do_write();
}

void ClientSession::do_write() {
  if (closed_) return;
  if (outgoing_.empty()) {
    if (read_closed_ && slots_.empty() && deferred_.empty()) close();
    return;
  }
  writing_.swap(outgoing_);
  outgoing_.clear();
  asio::async_write(socket_, asio::buffer(writing_),
                    [self = shared_from_this()](const error_code& ec, std::size_t) {
                      self->writing_.clear();
                      if (ec) {
                        self->close();
                        return;
                      }
                      self->do_write();
                      self->do_read();
                    });
}

}  // namespace jc::node
