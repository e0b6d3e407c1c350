#include "client/conversation.h"

#include <fmt/format.h>

#include "client/replies.h"
#include "common/log.h"

namespace jc::client {

namespace {
// The reply to a submit while the node's storage refuses writes.
constexpr const char* kStorageFull = "storage full, try again later";
constexpr const char* kQueueFull = "queue is full, try again later";

bool loopback(const std::string& peer) {
  return peer.rfind("127.", 0) == 0 || peer.rfind("::1", 0) == 0 || peer.rfind("[::1]", 0) == 0;
}
}  // namespace

std::string apply_limits(const JobLimits& limits, protocol::JobSpec& spec) {
  const auto& d = limits.defaults;
  const auto& m = limits.maxima;
  auto& l = spec.limits;
  struct Field {
    std::uint32_t& value;
    std::uint32_t fallback, max;
    const char *name, *unit, *variable;
  };
  for (Field f :
       {Field{l.timeout_ms, d.timeout_ms, m.timeout_ms, "timeout", "ms", "JOB_MAX_TIMEOUT"},
        Field{l.cpu_ms, 0, m.cpu_ms, "cpu", "ms", "JOB_MAX_TIMEOUT"},
        Field{l.memory_mb, d.memory_mb, m.memory_mb, "memory", "MB", "JOB_MAX_MEMORY_MB"},
        Field{l.output_kb, d.output_kb, m.output_kb, "output", "KB", "JOB_MAX_OUTPUT_KB"},
        Field{l.disk_mb, d.disk_mb, m.disk_mb, "disk", "MB", "JOB_MAX_DISK_MB"}}) {
    if (f.value > f.max) {
      return fmt::format("--{} {} {} is above this node's maximum of {} {} ({})", f.name, f.value,
                         f.unit, f.max, f.unit, f.variable);
    }
    if (f.value == 0) f.value = f.fallback;
  }
  // CPU time defaults to the wall-clock timeout.
  if (l.cpu_ms == 0) l.cpu_ms = l.timeout_ms;
  return "";
}

Conversation::Conversation(Backend& backend, std::string peer,
                           std::function<std::shared_ptr<void>()> hold, std::function<void()> wake)
    : backend_(backend), peer_(std::move(peer)), hold_(std::move(hold)), wake_(std::move(wake)) {}

void Conversation::feed(std::string_view bytes) {
  reader_.feed(bytes, [this](InputReader::Item item) { input(std::move(item)); });
}

void Conversation::end_of_input() {
  input_ended_ = true;
  stop_reading_ = true;
  if (auto word = reader_.open_heredoc()) {
    input(InputReader::Broken{
        fmt::format("the connection ended inside the here-document (no line '{}')", *word)});
  }
}

void Conversation::idle_timeout(std::chrono::milliseconds after) {
  fill(add_slot(),
       replies::error(
           fmt::format("closing: nothing sent for {} ms (CLIENT_IDLE_TIMEOUT)", after.count()),
           json_),
       true);
  stop_reading_ = exited_ = true;
}

bool Conversation::backlogged(std::size_t unwritten) const {
  return slots_.size() + deferred_.size() >= kMaxPendingReplies ||
         unwritten + deferred_bytes_ >= kMaxPendingBytes;
}

bool Conversation::finished() const {
  return ended_ || (stop_reading_ && slots_.empty() && deferred_.empty());
}

std::string Conversation::take_output() {
  std::string out;
  while (!ended_ && !slots_.empty() && slots_.front()->ready) {
    out += slots_.front()->text;
    bool close_after = slots_.front()->close_after;
    slots_.pop_front();
    if (close_after) {
      ended_ = true;
      slots_.clear();
      deferred_.clear();
      deferred_bytes_ = 0;
    }
  }
  return out;
}

void Conversation::input(InputReader::Item item) {
  if (exited_) return;
  const bool defer = waits_pending_ > 0 || !deferred_.empty();
  if (auto* line = std::get_if<InputReader::Line>(&item)) {
    if (defer) {
      keep(std::optional<std::string>(std::string(line->text)), line->text.size());
    } else {
      process_line(line->text);
    }
  } else if (std::holds_alternative<InputReader::TooLongLine>(item)) {
    if (defer) {
      keep(std::optional<std::string>(), 0);
    } else {
      process_line(std::nullopt);
    }
  } else if (auto* doc = std::get_if<InputReader::Heredoc>(&item)) {
    if (defer) {
      keep(KeptHeredoc{std::string(doc->run_line), std::string(doc->body), doc->too_long},
           doc->run_line.size() + doc->body.size());
    } else {
      process_heredoc(*doc);
    }
  } else {
    // Broken input, or input that ended inside a here-document: nothing
    // after it can be read.
    InputEnd end{std::get<InputReader::Broken>(item).message, !input_ended_};
    if (end.close) stop_reading_ = true;
    if (defer) {
      keep(std::move(end), 0);
    } else {
      end_input(end);
    }
  }
}

void Conversation::keep(Kept item, std::size_t bytes) {
  deferred_bytes_ += bytes;
  deferred_.emplace_back(std::move(item), bytes);
}

void Conversation::process_line(std::optional<std::string_view> line) {
  if (exited_) return;
  if (!line) {
    fill(add_slot(), replies::error(fmt::format("line too long: the limit is {} bytes; send a "
                                                "long script as a here-document of short lines, "
                                                "or a file in a counted section",
                                                kMaxLineBytes),
                                    json_));
    return;
  }
  handle_line(*line, nullptr);
}

void Conversation::process_heredoc(const InputReader::Heredoc& doc) {
  if (exited_) return;
  handle_line(doc.run_line, &doc);
}

void Conversation::end_input(const InputEnd& end) {
  if (exited_) return;
  fill(add_slot(), replies::error(end.message, json_), end.close);
  if (end.close) exited_ = true;
}

void Conversation::replay() {
  if (replaying_) return;  // the loop below goes on: no recursion per answered wait
  replaying_ = true;
  while (!deferred_.empty() && waits_pending_ == 0 && !exited_ && !closed_) {
    auto [item, bytes] = std::move(deferred_.front());
    deferred_.pop_front();
    deferred_bytes_ -= bytes;
    if (auto* line = std::get_if<std::optional<std::string>>(&item)) {
      process_line(*line ? std::optional<std::string_view>(**line) : std::nullopt);
    } else if (auto* doc = std::get_if<KeptHeredoc>(&item)) {
      process_heredoc(InputReader::Heredoc{doc->run_line, doc->body, doc->too_long});
    } else {
      end_input(std::get<InputEnd>(item));
    }
  }
  replaying_ = false;
  if (exited_) {
    deferred_.clear();
    deferred_bytes_ = 0;
  }
}

Conversation::SlotPtr Conversation::add_slot() {
  slots_.push_back(std::make_shared<Slot>());
  return slots_.back();
}

void Conversation::fill(const SlotPtr& slot, std::string text, bool close_after) {
  slot->text = std::move(text);
  slot->ready = true;
  slot->close_after = close_after;
}

template <class F>
auto Conversation::later(SlotPtr slot, F format) {
  // Holds the shell: after the client's EOF nothing else does, and the
  // reply is still owed.
  return [this, hold = hold_(), slot = std::move(slot), format](auto&&... args) {
    if (closed_) return;
    fill(slot, format(std::forward<decltype(args)>(args)...));
    wake_();
  };
}

void Conversation::schedule(protocol::JobSpec& spec, const Schedule& s) const {
  // The delay counts from now, when the job is accepted.
  spec.priority = s.priority;
  spec.not_before_ms = s.delay_ms > 0 ? backend_.now() + static_cast<TimeMs>(s.delay_ms) : 0;
}

bool Conversation::tokens_on() const { return backend_.tokens().enabled(); }

protocol::JobReport Conversation::visible(const protocol::JobReport& r) const {
  // An expired job's owner is gone with it: "expired" is all anyone learns.
  if (r.state == protocol::JobState::kExpired) return r;
  if (protocol::may_access(backend_.tokens(), name_, r.owner)) return r;
  protocol::JobReport unknown;
  unknown.ticket = r.ticket;
  return unknown;
}

void Conversation::authenticate(const CmdAuth& auth, const SlotPtr& slot, bool json) {
  auto log = log::get("client");
  if (!tokens_on()) {
    fill(slot, replies::error("auth is not needed: this node has no CLIENT_TOKENS", json));
    return;
  }
  auto name = backend_.tokens().authenticate(auth.token);
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
    if (last) stop_reading_ = exited_ = true;
    return;
  }
  log->debug("client authenticated peer={} name={}", peer_, *name);
  name_ = std::move(name);
  fill(slot, replies::authenticated(*name_, json));
}

void Conversation::handle_line(std::string_view line, const InputReader::Heredoc* doc) {
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
          if (backend_.storage_full() || backend_.queue_full(1)) {
            fill(slot, replies::error(backend_.storage_full() ? kStorageFull : kQueueFull, json));
            return;
          }
          protocol::JobSpec spec;
          spec.kind = protocol::JobKind::kSleep;
          spec.sleep_ms = c.ms;
          spec.owner = owner;
          schedule(spec, c.schedule);
          backend_.submit(std::move(spec), later(slot, [json](const std::string& t) {
                            return replies::ticket(t, json);
                          }));
        } else if constexpr (std::is_same_v<T, CmdRun>) {
          submit_run(c, doc, slot, json);
        } else if constexpr (std::is_same_v<T, CmdResult>) {
          backend_.lookup({c.ticket, false, std::nullopt, false},
                          later(slot, [this, json](const protocol::JobReport& r, bool unreachable) {
                            return replies::result(visible(r), unreachable, json);
                          }));
        } else if constexpr (std::is_same_v<T, CmdStatus>) {
          backend_.lookup({c.ticket, false, std::nullopt, false},
                          later(slot, [this, json](const protocol::JobReport& r, bool unreachable) {
                            return replies::status(visible(r), unreachable, json);
                          }));
        } else if constexpr (std::is_same_v<T, CmdWait>) {
          // The lines after it wait for its answer (input()).
          ++waits_pending_;
          backend_.lookup({c.ticket, true, c.seconds, false},
                          [this, hold = hold_(), slot, json](const protocol::JobReport& r,
                                                             bool unreachable) {
                            if (closed_) return;
                            fill(slot, replies::result(visible(r), unreachable, json));
                            --waits_pending_;
                            replay();
                            wake_();
                          });
        } else if constexpr (std::is_same_v<T, CmdCancel>) {
          if (!backend_.proxy_connected()) {
            fill(slot, replies::error("cannot cancel now: the proxy is unreachable; try again",
                                      json));
            return;
          }
          // Another name's job is neither cancelled (the proxy refuses) nor
          // shown: it answers as an unknown ticket.
          std::string requester =
              tokens_on() && !backend_.tokens().is_admin(owner) ? owner : std::string();
          backend_.cancel(c.ticket, requester,
                          later(slot, [requester, json](const protocol::JobReport& r,
                                                        bool unreachable) {
                            if (!requester.empty() && r.owner != requester &&
                                r.state != protocol::JobState::kExpired) {
                              protocol::JobReport unknown;
                              unknown.ticket = r.ticket;
                              return replies::cancelled(unknown, unreachable, json);
                            }
                            return replies::cancelled(r, unreachable, json);
                          }));
        } else if constexpr (std::is_same_v<T, CmdGetAll>) {
          backend_.getall(later(slot, [this, json](const std::vector<protocol::GetAllEntry>& jobs) {
            if (!tokens_on()) return replies::getall(jobs, json);
            std::vector<protocol::GetAllEntry> mine;
            for (const auto& j : jobs) {
              if (protocol::may_access(backend_.tokens(), name_, j.owner)) mine.push_back(j);
            }
            return replies::getall(mine, json);
          }));
        } else if constexpr (std::is_same_v<T, CmdStats>) {
          backend_.stats(later(slot, [this, json](const protocol::ClusterStats& s, bool up) {
            return replies::stats(s, up, json, backend_.now());
          }));
        } else if constexpr (std::is_same_v<T, CmdHelp>) {
          fill(slot, replies::help(json));
        } else if constexpr (std::is_same_v<T, CmdExit>) {
          fill(slot, replies::goodbye(json), true);
          stop_reading_ = exited_ = true;
        } else if constexpr (std::is_same_v<T, CmdFormat>) {
          json_ = c.json;
          fill(slot, replies::format_switched(c.json));
        } else if constexpr (std::is_same_v<T, CmdDrain>) {
          // Taking a node out of service is an operator's act: only from the
          // machine it runs on, or from an admin.
          if (tokens_on() && !backend_.tokens().is_admin(owner)) {
            fill(slot, replies::error("drain needs a name listed in ADMIN_NAMES", json));
          } else if (!tokens_on() && !loopback(peer_)) {
            fill(slot, replies::error("drain is accepted only from this machine (a loopback "
                                      "connection); or send the node SIGTERM",
                                      json));
          } else {
            backend_.drain();
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

void Conversation::submit_run(const CmdRun& run, const InputReader::Heredoc* doc,
                              const SlotPtr& slot, bool json) {
  if (doc != nullptr && doc->too_long) {
    fill(slot, replies::error(fmt::format("the here-document is over the limit of {} bytes "
                                          "(lines at most {} bytes)",
                                          kMaxHeredocBytes, kMaxLineBytes),
                              json));
    return;
  }
  protocol::JobSpec spec;
  std::string err = build_run_spec(run, doc != nullptr ? doc->body : "", spec);
  spec.owner = name_.value_or("");
  schedule(spec, run.options.schedule);
  if (err.empty()) err = apply_limits(backend_.limits(), spec);
  for (const auto& need : spec.needs) {
    if (!err.empty()) break;
    if (!backend_.offered(need)) {
      err = fmt::format("no node of this cluster offers {} (NODE_LABELS): the job could never run",
                        need.substr(need.find(':') + 1));
    }
  }
  if (err.empty() && backend_.storage_full()) err = kStorageFull;
  if (err.empty() && backend_.queue_full(1)) err = kQueueFull;
  if (!err.empty()) {
    fill(slot, replies::error(err, json));
    return;
  }
  backend_.submit(std::move(spec),
                  later(slot, [json](const std::string& t) { return replies::ticket(t, json); }));
}

}  // namespace jc::client
