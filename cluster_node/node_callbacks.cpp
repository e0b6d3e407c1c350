// Callbacks owed to the judge0-compatible API's clients: a few sent at once,
// retried until CALLBACK_RETRY_S passes.
#include "cluster_node/node_server.h"

namespace jc::node {

using boost::system::error_code;
using std::chrono::milliseconds;

void NodeServer::schedule_callbacks() {
  callback_timer_.expires_after(milliseconds(200));
  callback_timer_.async_wait([this](const error_code& ec) {
    if (ec || stopping_) return;
    send_callbacks();
    schedule_callbacks();
  });
}

void NodeServer::send_callbacks() {
  auto& book = core_.callbacks();
  if (book.size() == 0 || callbacks_in_flight_.size() >= kCallbacksAtOnce) return;
  TimeMs now = now_ms();
  for (const auto& t : book.due(now, kCallbacksAtOnce - callbacks_in_flight_.size(),
                                callbacks_in_flight_)) {
    auto spec = core_.origin_spec(t);
    protocol::JobReport report = core_.lookup(t, now);
    if (!spec || !spec->is_api || !report.has_result) {
      book.forget(t);  // its job is gone (RESULT_TTL)
      continue;
    }
    // As judge0 sends it: the default attributes, Base64-encoded.
    auto body = api::render_submission(report, &*spec, api::parse_fields(""), true,
                                       api_router_ ? api_router_->context().table
                                                   : config_.language_table);
    callbacks_in_flight_.insert(t);
    log_->debug("callback ticket={} url={}", t, spec->api.callback_url);
    callback_sender_->put(
        spec->api.callback_url, body ? body->dump() : "{}", [this, t](const std::string& failure) {
          callbacks_in_flight_.erase(t);
          if (stopping_) return;
          auto& b = core_.callbacks();
          if (failure.empty()) {
            b.answered(t);
            log_->info("callback delivered ticket={}", t);
          } else if (b.failed(t, now_ms(),
                              static_cast<TimeMs>(config_.api_settings.callback_retry_s) * 1000)) {
            log_->info("callback failed ticket={} reason=\"{}\" attempts={} (tried again later)", t,
                       failure, b.entry(t) ? b.entry(t)->attempts : 0);
          } else {
            log_->warn("callback given up ticket={} reason=\"{}\" (CALLBACK_RETRY_S passed)", t,
                       failure);
          }
          schedule_flush();
        });
  }
  schedule_flush();
}

}  // namespace jc::node
