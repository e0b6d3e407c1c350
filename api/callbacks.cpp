#include "api/callbacks.h"

#include <boost/asio/ssl.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/ssl.hpp>
#include <fmt/format.h>

#include <algorithm>

namespace jc::api {

namespace asio = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace ssl = asio::ssl;
using asio::ip::address;
using asio::ip::tcp;

std::optional<Url> parse_url(std::string_view text) {
  if (text.size() > 2048) return std::nullopt;
  Url u;
  if (text.rfind("http://", 0) == 0) {
    text.remove_prefix(7);
    u.port = "80";
  } else if (text.rfind("https://", 0) == 0) {
    text.remove_prefix(8);
    u.tls = true;
    u.port = "443";
  } else {
    return std::nullopt;
  }
  auto slash = text.find_first_of("/?#");
  std::string_view authority = text.substr(0, slash);
  std::string_view rest = slash == std::string_view::npos ? "" : text.substr(slash);
  if (authority.find('@') != std::string_view::npos) return std::nullopt;  // no credentials
  if (!authority.empty() && authority.front() == '[') {
    auto close = authority.find(']');
    if (close == std::string_view::npos) return std::nullopt;
    u.host = std::string(authority.substr(1, close - 1));
    authority.remove_prefix(close + 1);
    if (!authority.empty()) {
      if (authority.front() != ':') return std::nullopt;
      u.port = std::string(authority.substr(1));
    }
  } else {
    auto colon = authority.rfind(':');
    u.host = std::string(authority.substr(0, colon));
    if (colon != std::string_view::npos) u.port = std::string(authority.substr(colon + 1));
  }
  if (u.host.empty() || u.port.empty() || u.port.size() > 5 ||
      !std::all_of(u.port.begin(), u.port.end(), [](char c) { return c >= '0' && c <= '9'; }) ||
      std::stoi(u.port) < 1 || std::stoi(u.port) > 65535) {
    return std::nullopt;
  }
  for (char c : u.host) {
    bool ok = std::isalnum(static_cast<unsigned char>(c)) || c == '.' || c == '-' || c == ':' ||
              c == '_';
    if (!ok) return std::nullopt;
  }
  auto hash = rest.find('#');
  u.target = std::string(rest.substr(0, hash));
  if (u.target.empty() || u.target.front() != '/') u.target = "/" + u.target;
  for (char c : u.target) {
    if (static_cast<unsigned char>(c) <= 0x20 || c == 0x7f) return std::nullopt;
  }
  return u;
}

std::optional<std::vector<Cidr>> parse_cidrs(std::string_view text) {
  std::vector<Cidr> out;
  while (!text.empty()) {
    auto comma = text.find(',');
    std::string item(text.substr(0, comma));
    text.remove_prefix(comma == std::string_view::npos ? text.size() : comma + 1);
    item.erase(0, item.find_first_not_of(' '));
    item.erase(item.find_last_not_of(' ') + 1);
    if (item.empty()) continue;
    auto slash = item.find('/');
    boost::system::error_code ec;
    Cidr c;
    c.network = asio::ip::make_address(item.substr(0, slash), ec);
    if (ec) return std::nullopt;
    unsigned max = c.network.is_v4() ? 32 : 128;
    c.prefix = max;
    if (slash != std::string::npos) {
      std::string p = item.substr(slash + 1);
      if (p.empty() || p.size() > 3 || !std::all_of(p.begin(), p.end(), ::isdigit)) return std::nullopt;
      c.prefix = static_cast<unsigned>(std::stoi(p));
      if (c.prefix > max) return std::nullopt;
    }
    out.push_back(c);
  }
  return out;
}

namespace {

// The address as 16 bytes (IPv4 mapped), and its prefix length offset.
std::array<unsigned char, 16> bytes_of(const address& a, unsigned& offset) {
  if (a.is_v4()) {
    offset = 96;
    return asio::ip::make_address_v6(asio::ip::v4_mapped, a.to_v4()).to_bytes();
  }
  offset = 0;
  return a.to_v6().to_bytes();
}

bool matches(const address& a, const Cidr& c) {
  address x = a;
  if (x.is_v6() && x.to_v6().is_v4_mapped()) x = asio::ip::make_address_v4(asio::ip::v4_mapped, x.to_v6());
  if (x.is_v4() != c.network.is_v4()) return false;
  unsigned oa = 0, oc = 0;
  auto ba = bytes_of(x, oa), bc = bytes_of(c.network, oc);
  unsigned bits = c.prefix + oc;
  for (unsigned i = 0; i < bits; ++i) {
    unsigned byte = i / 8, bit = 7 - i % 8;
    if (((ba[byte] >> bit) & 1) != ((bc[byte] >> bit) & 1)) return false;
  }
  return true;
}

bool in(const address& a, const char* cidr) {
  auto r = parse_cidrs(cidr);
  return r && !r->empty() && matches(a, r->front());
}

}  // namespace

bool in_ranges(const address& a, const std::vector<Cidr>& ranges) {
  return std::any_of(ranges.begin(), ranges.end(), [&](const Cidr& c) { return matches(a, c); });
}

bool reachable(const address& a, const std::vector<Cidr>& allow) {
  if (in_ranges(a, allow)) return true;
  address x = a;
  if (x.is_v6() && x.to_v6().is_v4_mapped()) x = asio::ip::make_address_v4(asio::ip::v4_mapped, x.to_v6());
  if (x.is_unspecified() || x.is_loopback() || x.is_multicast()) return false;
  for (const char* inner : {"10.0.0.0/8", "172.16.0.0/12", "192.168.0.0/16", "169.254.0.0/16",
                            "100.64.0.0/10", "0.0.0.0/8", "255.255.255.255/32", "fc00::/7",
                            "fe80::/10"}) {
    if (in(x, inner)) return false;
  }
  return true;
}

std::string check_callback_url(std::string_view text, const std::vector<Cidr>& allow) {
  auto u = parse_url(text);
  if (!u) return "must be an http:// or https:// URL with a host";
  boost::system::error_code ec;
  address a = asio::ip::make_address(u->host, ec);
  bool local_name = u->host == "localhost" ||
                    (u->host.size() > 10 && u->host.compare(u->host.size() - 10, 10, ".localhost") == 0);
  if (local_name) a = asio::ip::make_address("127.0.0.1");
  if ((!ec || local_name) && !reachable(a, allow)) {
    return "may not reach a loopback, link-local or private address (unless CALLBACK_ALLOW names it)";
  }
  return "";
}

// ---- the sender -------------------------------------------------------------

struct CallbackSender::Context {
  std::vector<Cidr> allow;
  std::set<std::uint16_t> own_ports;
  // Made at the first https callback, not at start: reading the system's
  // CA certificates costs a node about 0.1 s of CPU, and OpenSSL's tables,
  // once started, about 3 MB of its memory.
  ssl::context& client_tls() {
    if (!tls) {
      tls.emplace(ssl::context::tls_client);
      boost::system::error_code ec;
      tls->set_default_verify_paths(ec);  // none: every handshake fails, and says so
      tls->set_verify_mode(ssl::verify_peer);
    }
    return *tls;
  }

 private:
  std::optional<ssl::context> tls;
};

namespace {

template <class Stream>
class Exchange : public std::enable_shared_from_this<Exchange<Stream>> {
 public:
  Exchange(asio::io_context& io, std::shared_ptr<CallbackSender::Context> context, Url url,
           std::string body, CallbackSender::Done done, Stream stream)
      : io_(io),
        context_(std::move(context)),
        url_(std::move(url)),
        done_(std::move(done)),
        stream_(std::move(stream)),
        timer_(io) {
    req_.method(http::verb::put);
    req_.target(url_.target);
    req_.version(11);
    req_.set(http::field::host, url_.host);
    req_.set(http::field::user_agent, "jobcluster");
    req_.set(http::field::content_type, "application/json");
    req_.keep_alive(false);
    req_.body() = std::move(body);
    req_.prepare_payload();
  }

  void start(tcp::resolver::results_type endpoints) {
    auto self = this->shared_from_this();
    timer_.expires_after(CallbackSender::kDeadline);
    timer_.async_wait([self](const boost::system::error_code& ec) {
      if (!ec) self->end("no answer within the deadline");
    });
    asio::async_connect(lowest(), endpoints, [self](const boost::system::error_code& ec, const tcp::endpoint&) {
      if (ec) return self->end("cannot connect: " + ec.message());
      self->after_connect();
    });
  }

 private:
  tcp::socket& lowest() { return beast::get_lowest_layer(stream_).socket(); }

  void after_connect() {
    auto self = this->shared_from_this();
    if constexpr (std::is_same_v<Stream, beast::ssl_stream<beast::tcp_stream>>) {
      if (!SSL_set_tlsext_host_name(stream_.native_handle(), url_.host.c_str())) {
        return end("cannot set the TLS server name");
      }
      stream_.set_verify_callback(ssl::host_name_verification(url_.host));
      stream_.async_handshake(ssl::stream_base::client, [self](const boost::system::error_code& ec) {
        if (ec) return self->end("TLS: " + ec.message());
        self->write();
      });
    } else {
      write();
    }
  }

  void write() {
    auto self = this->shared_from_this();
    http::async_write(stream_, req_, [self](const boost::system::error_code& ec, std::size_t) {
      if (ec) return self->end("cannot send: " + ec.message());
      self->parser_.body_limit(CallbackSender::kMaxAnswerBytes);
      http::async_read(self->stream_, self->buffer_, self->parser_,
                       [self](const boost::system::error_code& rec, std::size_t) {
                         if (rec) return self->end("no answer: " + rec.message());
                         unsigned status = self->parser_.get().result_int();
                         self->end(status >= 200 && status < 300
                                       ? ""
                                       : fmt::format("answered HTTP {}", status));
                       });
    });
  }

  void end(const std::string& failure) {
    if (!done_) return;
    auto done = std::move(done_);
    done_ = nullptr;
    timer_.cancel();
    boost::system::error_code ignored;
    lowest().close(ignored);
    done(failure);
  }

  asio::io_context& io_;
  std::shared_ptr<CallbackSender::Context> context_;
  Url url_;
  CallbackSender::Done done_;
  Stream stream_;
  asio::steady_timer timer_;
  http::request<http::string_body> req_;
  beast::flat_buffer buffer_;
  http::response_parser<http::string_body> parser_;
};

}  // namespace

CallbackSender::CallbackSender(asio::io_context& io, std::vector<Cidr> allow,
                               std::set<std::uint16_t> own_ports)
    : io_(io), context_(std::make_shared<Context>()) {
  context_->allow = std::move(allow);
  context_->own_ports = std::move(own_ports);
}

CallbackSender::~CallbackSender() = default;

void CallbackSender::put(const std::string& url_text, std::string body, Done done) {
  auto url = parse_url(url_text);
  if (!url) {
    asio::post(io_, [done = std::move(done)] { done("not an http or https URL"); });
    return;
  }
  auto resolver = std::make_shared<tcp::resolver>(io_);
  auto ctx = context_;
  resolver->async_resolve(
      url->host, url->port,
      [this, resolver, ctx, url = *url, body = std::move(body), done = std::move(done)](
          const boost::system::error_code& ec, tcp::resolver::results_type found) mutable {
        if (ec) return done("cannot resolve " + url.host + ": " + ec.message());
        // Only the addresses a callback may reach, and never this node's
        // own ports on its own host.
        std::vector<tcp::endpoint> allowed;
        for (const auto& e : found) {
          const address a = e.endpoint().address();
          bool own = (a.is_loopback() || a.is_unspecified()) &&
                     ctx->own_ports.count(e.endpoint().port()) > 0;
          if (reachable(a, ctx->allow) && !own) allowed.push_back(e.endpoint());
        }
        if (allowed.empty()) {
          return done(url.host + " resolves only to addresses a callback may not reach");
        }
        auto endpoints = tcp::resolver::results_type::create(allowed.begin(), allowed.end(),
                                                             url.host, url.port);
        if (url.tls) {
          using S = beast::ssl_stream<beast::tcp_stream>;
          std::make_shared<Exchange<S>>(io_, ctx, url, std::move(body), std::move(done),
                                        S(beast::tcp_stream(io_), ctx->client_tls()))
              ->start(endpoints);
        } else {
          using S = beast::tcp_stream;
          std::make_shared<Exchange<S>>(io_, ctx, url, std::move(body), std::move(done), S(io_))
              ->start(endpoints);
        }
      });
}

}  // namespace jc::api
