#pragma once
/// Credentials and Origin checks (CSRF for cookie-authenticated unsafe requests, and WebSocket
/// upgrades): policy without I/O, shared by the HTTP and WebSocket doors through the gate.
#include <string>
#include <string_view>
#include <vector>

namespace livebase {

/// Whether a request carrying `Origin: origin` may proceed: the origin is listed in `allowed`
/// (server.cors_origins, compared exactly, case-insensitively; "*" allows every origin), or it
/// is the request's own origin: the same scheme (`scheme`, "http" or "https", as the request
/// reached the server or its trusted proxy) and the same host and port (`host` is the Host
/// header). An absent Origin is for the caller to judge (non-browser clients send none);
/// "null" is never allowed unless listed.
bool origin_allowed(std::string_view origin, std::string_view host,
                    const std::vector<std::string>& allowed, std::string_view scheme = "http");

/// The value of cookie `name` in a Cookie header ("" when absent).
std::string cookie_value(std::string_view cookie_header, std::string_view name);

/// The token of `Authorization: Bearer <token>` ("" when the header is absent or another
/// scheme; the scheme name is case-insensitive).
std::string bearer_token(std::string_view authorization);

/// Whether `given` equals `expected` (a configured secret such as server.metrics_token), in
/// time that does not depend on where they differ. An empty `expected` matches nothing.
bool token_matches(std::string_view given, std::string_view expected) noexcept;

/// The token a request carries: `Authorization: Bearer`, else the session cookie (then
/// `by_cookie`, which makes unsafe requests subject to the Origin check and a bad token a
/// stale cookie rather than an error). Empty token: anonymous.
struct request_credentials {
    std::string token;
    bool by_cookie = false;
};
request_credentials credentials_of(std::string_view authorization, std::string_view cookie_header);

/// The session cookie's name.
inline constexpr std::string_view k_session_cookie = "livebase_session";

}  // namespace livebase
