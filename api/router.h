// judge0 CE 1.13.1's endpoints over the node, as the line protocol's
// conversation is: through client::Backend (submit durably, look up,
// cancel, stats), with the same tokens and ownership. The HTTP session
// (api/http_server.h) only moves bytes: it hands a request here and writes
// the response given to `respond`, now or once the node has answered.
//
// Credentials: where CLIENT_TOKENS is set, every endpoint but the
// playground page wants `X-Auth-Token` (or `Authorization: Bearer`) with a
// token of the file (401 otherwise), a submission belongs to its name, and
// another name's is a 404; the admin endpoints (GET /submissions) want
// `X-Auth-User` with the token of a name in ADMIN_NAMES (403 otherwise).
// Without tokens they are for loopback clients only.
//
// Runs on the node's event-loop thread.
#pragma once

#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

#include "api/languages.h"
#include "api/submission.h"
#include "client/conversation.h"

namespace jc::api {

struct HttpRequest {
  std::string method;
  std::string target;  // path and query
  std::string body;
  std::string auth_token;     // X-Auth-Token
  std::string auth_user;      // X-Auth-User
  std::string authorization;  // Authorization
  std::string origin;         // Origin
  std::string peer;           // address:port of the client
};

struct HttpResponse {
  int status = 200;
  // Always a literal: a view, so that an answer costs no allocation for it.
  std::string_view content_type = "application/json; charset=utf-8";
  std::string body;
  std::vector<std::pair<std::string, std::string>> headers;
};
using Respond = std::function<void(HttpResponse)>;

// What the API knows of the node beside its Backend.
struct ApiContext {
  std::string node_id;
  Settings settings;
  std::vector<Language> table;      // every language known (the table)
  std::vector<Language> languages;  // those this node runs
  std::string cors_origins = "*";   // API_CORS_ORIGINS: "*" or comma-separated origins
  std::string playground;           // the page served at GET /
  // The spec of a job submitted through this node (its origin record).
  std::function<std::optional<protocol::JobSpec>(const std::string& ticket)> spec_of;
};

// The playground page (api/playground.html, built into the binary).
std::string_view playground_page();

class Router {
 public:
  Router(client::Backend& backend, ApiContext context);
  void handle(HttpRequest request, Respond respond);
  const ApiContext& context() const { return context_; }

 private:
  struct Call;
  void submit(const std::shared_ptr<Call>& call);
  void submit_batch(const std::shared_ptr<Call>& call);
  void show(const std::shared_ptr<Call>& call, const std::string& token);
  void show_batch(const std::shared_ptr<Call>& call);
  void list(const std::shared_ptr<Call>& call);
  void cancel(const std::shared_ptr<Call>& call, const std::string& token);
  // The read-only endpoints (api/info.cpp): false when the path is none.
  bool info(const std::shared_ptr<Call>& call);
  void languages(const std::shared_ptr<Call>& call, const std::string& rest);
  void workers(const std::shared_ptr<Call>& call);
  void statistics(const std::shared_ptr<Call>& call);
  Json config_info() const;
  // A report as this client may see it (another name's job is unknown).
  bool visible(const Call& call, const protocol::JobReport& report) const;

  client::Backend& backend_;
  ApiContext context_;
  BodyParser body_parser_;  // request bodies, one at a time
};

}  // namespace jc::api
