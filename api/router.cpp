#include "api/router.h"

#include <simdjson.h>

#include <algorithm>
#include <fmt/format.h>
#include <map>

#include "api/call.h"
#include "api/statuses.h"
#include "common/log.h"
#include "protocol/client_tokens.h"

namespace jc::api {

using nlohmann::json;

namespace {

std::string url_decode(std::string_view s) {
  std::string out;
  for (std::size_t i = 0; i < s.size(); ++i) {
    if (s[i] == '+') {
      out.push_back(' ');
    } else if (s[i] == '%' && i + 2 < s.size() && std::isxdigit(static_cast<unsigned char>(s[i + 1])) &&
               std::isxdigit(static_cast<unsigned char>(s[i + 2]))) {
      out.push_back(static_cast<char>(std::stoi(std::string(s.substr(i + 1, 2)), nullptr, 16)));
      i += 2;
    } else {
      out.push_back(s[i]);
    }
  }
  return out;
}

std::map<std::string, std::string> query_of(std::string_view q) {
  std::map<std::string, std::string> out;
  while (!q.empty()) {
    auto amp = q.find('&');
    std::string_view pair = q.substr(0, amp);
    auto eq = pair.find('=');
    std::string key = url_decode(pair.substr(0, eq));
    std::string value = eq == std::string_view::npos ? "" : url_decode(pair.substr(eq + 1));
    if (!key.empty()) out[key] = value;
    if (amp == std::string_view::npos) break;
    q.remove_prefix(amp + 1);
  }
  return out;
}

bool loopback(const std::string& peer) {
  return peer.rfind("127.", 0) == 0 || peer.rfind("::1", 0) == 0 || peer.rfind("[::1]", 0) == 0 ||
         peer.rfind("::ffff:127.", 0) == 0;
}

// judge0's 400 for a batch of `n` items that is empty or over the limit.
std::optional<HttpResponse> batch_size_error(std::size_t n, std::size_t max_batch) {
  if (n > max_batch) {
    return error_response(
        400, fmt::format("number of submissions in a batch should be less than or equal to {}",
                         max_batch));
  }
  if (n == 0) return error_response(400, "there should be at least one submission in a batch");
  return std::nullopt;
}

}  // namespace

HttpResponse json_response(int status, const Json& body) {
  HttpResponse r;
  r.status = status;
  r.body = body.dump();
  return r;
}

HttpResponse error_response(int status, const std::string& message) {
  return json_response(status, Json{{"error", message}});
}

HttpResponse empty_response(int status) {
  HttpResponse r;
  r.status = status;
  r.content_type = "text/plain; charset=utf-8";
  return r;
}

const Fields& default_fields() {
  static const Fields fields = parse_fields("");
  return fields;
}

Router::Router(client::Backend& backend, ApiContext context)
    : backend_(backend), context_(std::move(context)) {
  // The table names each language as this node's toolchain reports it.
  for (auto& l : context_.table) {
    l.full_name = l.name;
    for (const auto& mine : context_.languages) {
      if (mine.id == l.id) l.full_name = mine.full_name;
    }
  }
}

bool Router::visible(const Call& call, const protocol::JobReport& report) const {
  return report.state == protocol::JobState::kExpired ||
         protocol::may_access(backend_.tokens(), call.name, report.owner);
}

void Router::handle(HttpRequest request, Respond respond) {
  auto call = std::make_shared<Call>();
  call->request = std::move(request);
  call->respond = std::move(respond);
  std::string_view target = call->request.target;
  auto q = target.find('?');
  call->path = std::string(target.substr(0, q));
  if (q != std::string_view::npos) call->query = query_of(target.substr(q + 1));
  while (call->path.size() > 1 && call->path.back() == '/') call->path.pop_back();

  // CORS: a browser front end on an allowed origin may call the API.
  const std::string& origin = call->request.origin;
  if (!origin.empty()) {
    bool allowed = context_.cors_origins == "*";
    std::string_view list = context_.cors_origins;
    while (!allowed && !list.empty()) {
      auto comma = list.find(',');
      allowed = list.substr(0, comma) == origin;
      list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
    }
    if (allowed) {
      call->cors.push_back({"Access-Control-Allow-Origin", context_.cors_origins == "*" ? "*" : origin});
      if (context_.cors_origins != "*") call->cors.push_back({"Vary", "Origin"});
    }
  }
  // Views: compared with literals of known length (no strlen per comparison).
  const std::string_view method = call->request.method;
  if (method == "OPTIONS") {
    HttpResponse r = empty_response(204);
    r.headers = {{"Access-Control-Allow-Methods", "GET, POST, DELETE, OPTIONS"},
                 {"Access-Control-Allow-Headers",
                  "Content-Type, X-Auth-Token, X-Auth-User, Authorization"},
                 {"Access-Control-Max-Age", "600"}};
    call->answer(std::move(r));
    return;
  }
  if (method == "GET" && call->path == std::string_view("/")) {
    HttpResponse r;
    r.content_type = "text/html; charset=utf-8";
    r.body = context_.playground;
    call->answer(std::move(r));
    return;
  }

  // Who asks: judge0's X-Auth-Token (or a Bearer token), X-Auth-User for admins.
  const auto& tokens = backend_.tokens();
  if (tokens.enabled()) {
    std::string token = call->request.auth_token;
    const std::string& auth = call->request.authorization;
    if (token.empty() && auth.rfind("Bearer ", 0) == 0) token = auth.substr(7);
    call->name = tokens.authenticate(token);
    if (!call->name) {
      call->answer(empty_response(401));
      return;
    }
    auto admin = tokens.authenticate(call->request.auth_user);
    call->admin = admin && tokens.is_admin(*admin);
  } else {
    call->admin = loopback(call->request.peer);
  }
  call->base64 = call->flag("base64_encoded");

  const std::string_view path = call->path;
  auto starts = [&](std::string_view prefix) { return path.substr(0, prefix.size()) == prefix; };
  bool submissions = path == "/submissions" || starts("/submissions/");
  if (submissions && method != "DELETE" && !(method == "POST" && path == "/submissions/batch")) {
    // judge0 checks `fields` everywhere but in a batch create.
    if (auto asked = call->query.find("fields"); asked != call->query.end()) {
      call->asked_fields = parse_fields(asked->second);
      call->fields = &call->asked_fields;
    }
    if (!call->fields->invalid.empty()) {
      std::string names;
      for (const auto& f : call->fields->invalid) names += (names.empty() ? "" : ", ") + f;
      call->answer(error_response(400, "invalid fields: [" + names + "]"));
      return;
    }
  }

  if (method == "POST" && path == "/submissions") return submit(call);
  if (method == "POST" && path == "/submissions/batch") return submit_batch(call);
  if (method == "GET" && path == "/submissions/batch") return show_batch(call);
  if (method == "GET" && path == "/submissions") return list(call);
  if (method == "GET" && starts("/submissions/")) return show(call, std::string(path.substr(13)));
  if (method == "DELETE" && starts("/submissions/")) return cancel(call, std::string(path.substr(13)));
  if (method == "GET" && info(call)) return;
  if (method == "POST" && path == "/authenticate") return call->answer(empty_response(200));
  if (method == "POST" && path == "/authorize") {
    return call->answer(empty_response(call->admin ? 200 : 403));
  }
  bool known = submissions || path == "/languages" || starts("/languages/") ||
               path == "/statuses" || path == "/config_info" || path == "/about" ||
               path == "/version" || path == "/system_info" || path == "/workers" ||
               path == "/statistics";
  call->answer(error_response(known ? 405 : 404,
                              known ? "method not allowed" : "no such endpoint: " + std::string(path)));
}

void Router::submit(const std::shared_ptr<Call>& call) {
  const simdjson::dom::element* body = body_parser_.parse(call->request.body);
  if (body == nullptr) return call->answer(error_response(400, "the body is not valid JSON"));
  // As judge0 checks its queue: before the attributes.
  if (backend_.queue_full(1)) return call->answer(error_response(503, "queue is full"));
  Submission sub = parse_submission(*body, call->base64, context_.settings, context_.table,
                                    [this](const std::string& n) { return backend_.offered(n); });
  if (!sub.errors.empty()) return call->answer(json_response(422, errors_json(sub.errors)));
  if (backend_.storage_full()) return call->answer(error_response(503, "storage full, try again later"));
  sub.spec.owner = call->name.value_or("");
  sub.spec.submitted_ms = backend_.now();
  if (!call->flag("wait")) {
    // The answer is the token. A ticket is letters, digits and dashes:
    // nothing to escape. (The call alone is captured: the callback then
    // needs no allocation of its own.)
    backend_.submit(std::move(sub.spec), [call](const std::string& ticket) {
      HttpResponse r;
      r.status = 201;
      r.body.reserve(ticket.size() + 12);
      r.body.append(R"({"token":")").append(ticket).append("\"}");
      call->answer(std::move(r));
    });
    return;
  }
  // The answer is the result: the spec is kept for it.
  auto spec = std::make_shared<protocol::JobSpec>(sub.spec);
  backend_.submit(std::move(sub.spec), [this, call, spec](const std::string& ticket) {
    client::LookupRequest req{ticket, true, static_cast<double>(context_.settings.max_wait_s), false};
    backend_.lookup(req, [this, call, spec](const protocol::JobReport& r, bool) {
      auto out = render_submission(r, spec.get(), *call->fields, call->base64, context_.table);
      if (!out) {
        return call->answer(json_response(
            201, Json{{"token", r.ticket},
                      {"error",
                       "some attributes for this submission cannot be converted to UTF-8, use "
                       "base64_encoded=true query parameter"}}));
      }
      call->answer(json_response(201, *out));
    });
  });
}

void Router::submit_batch(const std::shared_ptr<Call>& call) {
  const simdjson::dom::element* body = body_parser_.parse(call->request.body);
  if (body == nullptr) return call->answer(error_response(400, "the body is not valid JSON"));
  simdjson::dom::array list;
  const bool listed = body->is_object() && (*body)["submissions"].get(list) == simdjson::SUCCESS;
  std::size_t n = listed ? list.size() : 0;
  if (backend_.queue_full(std::max<std::size_t>(n, 1))) {
    return call->answer(error_response(503, "queue is full"));
  }
  if (auto e = batch_size_error(n, context_.settings.max_batch)) return call->answer(std::move(*e));
  if (backend_.storage_full()) return call->answer(error_response(503, "storage full, try again later"));
  // Every valid item is submitted in this turn: one group commit, one
  // durable write, and the answer lists the items in order.
  struct Batch {
    std::vector<Json> answers;
    std::size_t pending = 0;
    bool any_valid = false;
  };
  auto batch = std::make_shared<Batch>();
  batch->answers.resize(n);
  std::vector<std::pair<std::size_t, protocol::JobSpec>> jobs;
  auto item = list.begin();
  for (std::size_t i = 0; i < n; ++i, ++item) {
    Submission sub = parse_submission(*item, call->base64, context_.settings, context_.table,
                                      [this](const std::string& n) { return backend_.offered(n); });
    if (!sub.errors.empty()) {
      batch->answers[i] = errors_json(sub.errors);
      continue;
    }
    sub.spec.owner = call->name.value_or("");
    sub.spec.submitted_ms = backend_.now();
    jobs.emplace_back(i, std::move(sub.spec));
  }
  batch->pending = jobs.size();
  batch->any_valid = !jobs.empty();
  auto finish = [call, batch] {
    call->answer(json_response(batch->any_valid ? 201 : 422, Json(batch->answers)));
  };
  if (jobs.empty()) return finish();
  for (auto& [i, spec] : jobs) {
    backend_.submit(std::move(spec), [batch, i = i, finish](const std::string& ticket) {
      batch->answers[i] = Json{{"token", ticket}};
      if (--batch->pending == 0) finish();
    });
  }
}

void Router::show(const std::shared_ptr<Call>& call, const std::string& token) {
  if (!protocol::is_valid_ticket(token)) {
    return call->answer(error_response(404, "no submission with token " + token));
  }
  backend_.lookup({token, false, std::nullopt, false}, [this, call](const protocol::JobReport& r,
                                                                     bool unreachable) {
    if (r.state == protocol::JobState::kExpired) {
      return call->answer(error_response(404, "submission " + r.ticket + " expired (RESULT_TTL)"));
    }
    if (r.state == protocol::JobState::kUnknown || !visible(*call, r)) {
      if (unreachable) return call->answer(error_response(503, "the cluster cannot be reached now"));
      return call->answer(error_response(404, "no submission with token " + r.ticket));
    }
    std::optional<protocol::JobSpec> spec = context_.spec_of ? context_.spec_of(r.ticket) : std::nullopt;
    auto out = render_submission(r, spec ? &*spec : nullptr, *call->fields, call->base64,
                                 context_.table);
    if (!out) {
      return call->answer(error_response(
          400, "some attributes for this submission cannot be converted to UTF-8, use "
               "base64_encoded=true query parameter"));
    }
    call->answer(json_response(200, *out));
  });
}

void Router::show_batch(const std::shared_ptr<Call>& call) {
  std::vector<std::string> tokens;
  const std::string param = call->query.count("tokens") ? call->query["tokens"] : "";
  std::string_view list = param;
  while (!list.empty()) {
    auto comma = list.find(',');
    std::string t(list.substr(0, comma));
    if (!t.empty()) tokens.push_back(t);
    list.remove_prefix(comma == std::string_view::npos ? list.size() : comma + 1);
  }
  if (auto e = batch_size_error(tokens.size(), context_.settings.max_batch)) {
    return call->answer(std::move(*e));
  }
  struct Batch {
    std::vector<Json> items;
    std::size_t pending = 0;
    bool unconvertible = false;
  };
  auto batch = std::make_shared<Batch>();
  batch->items.resize(tokens.size(), nullptr);
  batch->pending = tokens.size();
  for (std::size_t i = 0; i < tokens.size(); ++i) {
    auto done = [this, call, batch, i](const protocol::JobReport& r, bool) {
      if (r.state != protocol::JobState::kUnknown && r.state != protocol::JobState::kExpired &&
          visible(*call, r)) {
        auto spec = context_.spec_of ? context_.spec_of(r.ticket) : std::nullopt;
        auto out = render_submission(r, spec ? &*spec : nullptr, *call->fields, call->base64,
                                     context_.table);
        if (out) {
          batch->items[i] = std::move(*out);
        } else {
          batch->unconvertible = true;
        }
      }
      if (--batch->pending > 0) return;
      if (batch->unconvertible) {
        return call->answer(error_response(
            400, "some attributes for one or more submissions cannot be converted to UTF-8, use "
                 "base64_encoded=true query parameter"));
      }
      call->answer(json_response(200, Json{{"submissions", batch->items}}));
    };
    if (!protocol::is_valid_ticket(tokens[i])) {
      protocol::JobReport unknown;
      unknown.ticket = tokens[i];
      done(unknown, false);
      continue;
    }
    backend_.lookup({tokens[i], false, std::nullopt, false}, done);
  }
}

void Router::list(const std::shared_ptr<Call>& call) {
  if (!call->admin) return call->answer(empty_response(403));
  long page = 1, per_page = 20;
  try {
    if (call->query.count("page")) page = std::stol(call->query["page"]);
    if (call->query.count("per_page")) per_page = std::stol(call->query["per_page"]);
  } catch (...) {
    return call->answer(error_response(400, "page and per_page must be whole numbers"));
  }
  if (page <= 0) return call->answer(error_response(400, fmt::format("invalid page: {}", page)));
  if (per_page < 0) return call->answer(error_response(400, fmt::format("invalid per_page: {}", per_page)));
  per_page = std::min<long>(per_page, 100);
  backend_.getall([this, call, page, per_page](const std::vector<protocol::GetAllEntry>& entries) {
    // Newest first, as judge0 orders them; tickets of a node count up.
    std::vector<std::string> tickets;
    for (auto it = entries.rbegin(); it != entries.rend(); ++it) tickets.push_back(it->ticket);
    std::size_t total = tickets.size();
    std::size_t pages = per_page == 0 ? 0 : (total + per_page - 1) / per_page;
    std::size_t from = std::min(total, static_cast<std::size_t>((page - 1) * per_page));
    std::size_t to = std::min(total, from + static_cast<std::size_t>(per_page));
    Json meta{{"current_page", page},
              {"next_page", static_cast<std::size_t>(page) < pages ? Json(page + 1) : Json(nullptr)},
              {"prev_page", page > 1 ? Json(page - 1) : Json(nullptr)},
              {"total_pages", pages},
              {"total_count", total}};
    struct List {
      std::vector<Json> items;
      std::size_t pending = 0;
    };
    auto l = std::make_shared<List>();
    l->items.resize(to - from, nullptr);
    l->pending = to - from;
    if (l->pending == 0) {
      return call->answer(json_response(200, Json{{"submissions", Json::array()}, {"meta", meta}}));
    }
    for (std::size_t i = from; i < to; ++i) {
      backend_.lookup({tickets[i], false, std::nullopt, false},
                      [this, call, l, meta, k = i - from](const protocol::JobReport& r, bool) {
                        auto spec = context_.spec_of ? context_.spec_of(r.ticket) : std::nullopt;
                        auto out = render_submission(r, spec ? &*spec : nullptr, *call->fields,
                                                     true, context_.table);
                        if (out) l->items[k] = std::move(*out);
                        if (--l->pending == 0) {
                          call->answer(json_response(200, Json{{"submissions", l->items}, {"meta", meta}}));
                        }
                      });
    }
  });
}

void Router::cancel(const std::shared_ptr<Call>& call, const std::string& token) {
  if (!protocol::is_valid_ticket(token)) {
    return call->answer(error_response(404, "no submission with token " + token));
  }
  // Only its owner (or an admin) may; another name's is unknown to it.
  std::string requester = backend_.tokens().enabled() && !call->admin ? call->name.value_or("") : "";
  backend_.cancel(token, requester, [this, call](const protocol::JobReport& r, bool unreachable) {
    if (r.state == protocol::JobState::kUnknown || !visible(*call, r)) {
      if (unreachable) return call->answer(error_response(503, "the cluster cannot be reached now"));
      return call->answer(error_response(404, "no submission with token " + r.ticket));
    }
    auto spec = context_.spec_of ? context_.spec_of(r.ticket) : std::nullopt;
    // judge0's DELETE answers with base64_encoded=true forced.
    auto out = render_submission(r, spec ? &*spec : nullptr, *call->fields, true, context_.table);
    call->answer(json_response(200, out.value_or(Json::object())));
  });
}

}  // namespace jc::api
