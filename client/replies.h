// Formatting of replies to clients, in text or JSON: pure functions.
// Every text reply starts with a fixed word; a reply of several lines says in
// its first line how many lines follow ("Jobs: 3", "Stats: 4", "Help: 12").
#pragma once

#include <string>
#include <vector>

#include "protocol/messages.h"

namespace jc::client::replies {

std::string ticket(const std::string& t, bool json);
std::string error(const std::string& message, bool json);
// `r` and `wait`. `unreachable`: the ticket is unknown here and the proxy
// could not be asked.
std::string result(const protocol::JobReport& r, bool unreachable, bool json);
std::string status(const protocol::JobReport& r, bool unreachable, bool json);
// The reply to `cancel`, from the proxy's report after it acted.
std::string cancelled(const protocol::JobReport& r, bool unreachable, bool json);
std::string getall(const std::vector<protocol::GetAllEntry>& jobs, bool json);
// `proxy_up` false: only this node's own figures are known.
std::string stats(const protocol::ClusterStats& s, bool proxy_up, bool json, std::int64_t time_ms);
std::string help(bool json);
std::string goodbye(bool json);
std::string format_switched(bool json);
// `auth <token>` accepted: "OK auth <name>".
std::string authenticated(const std::string& name, bool json);

}  // namespace jc::client::replies
