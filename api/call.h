// One HTTP request on its way through the router (api/router.h), shared by
// the endpoints' files, and the answers they build.
#pragma once

#include <map>
#include <optional>
#include <string>
#include <utility>
#include <vector>

#include "api/router.h"

namespace jc::api {

HttpResponse json_response(int status, const Json& body);
HttpResponse error_response(int status, const std::string& message);  // {"error": message}
HttpResponse empty_response(int status);                               // no body

// judge0's default eight attributes: one copy for every call that names none.
const Fields& default_fields();

struct Router::Call {
  HttpRequest request;
  Respond respond;
  std::string path;
  std::map<std::string, std::string> query;
  std::optional<std::string> name;  // CLIENT_TOKENS: who asks
  bool admin = false;
  bool base64 = false;
  Fields asked_fields;                       // `fields` when the query names some
  const Fields* fields = &default_fields();  // what the answer shows
  bool answered = false;
  std::vector<std::pair<std::string, std::string>> cors;

  void answer(HttpResponse r) {
    if (answered) return;
    answered = true;
    for (auto& h : cors) r.headers.push_back(h);
    respond(std::move(r));
  }
  bool flag(const char* key) const {
    auto it = query.find(key);
    return it != query.end() && it->second == "true";
  }
};

}  // namespace jc::api
