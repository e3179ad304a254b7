#pragma once
/// The gate: what every door (HTTP, WebSocket) checks before it decodes a request, in one
/// place, like a chain of proxy filters in front of the api:
/// - who the client is, by address (trusted proxies' X-Forwarded-For / -Proto);
/// - who the caller is (caller -> principal): a Bearer token, else the session cookie;
/// - whether a browser request may act with the cookie (Origin / CSRF);
/// - whether the caller may send another request now (throttling);
/// - the session cookie's Set-Cookie values.
/// Policy only: the doors read headers and write answers. Thread-safe once built.
#include <livebase/auth/auth.hpp>
#include <livebase/core/client_address.hpp>
#include <livebase/core/principal.hpp>
#include <livebase/core/problem.hpp>
#include <livebase/core/result.hpp>
#include <livebase/core/units.hpp>
#include <livebase/gate/credentials.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace livebase {

struct gate_options {
    /// Resolves Bearer tokens and session cookies; null = every caller anonymous (credentials
    /// are not even read). Must outlive the gate.
    authenticator* auth = nullptr;
    /// One bucket per caller (user id, or client address when anonymous), shared by the doors;
    /// null = no throttling. Must outlive the gate.
    throttle* limiter = nullptr;
    rate anonymous{120, std::chrono::minutes(1)};  ///< auth.throttle.anonymous (count 0 = unlimited)
    rate user{2000, std::chrono::minutes(1)};      ///< auth.throttle.user
    std::chrono::milliseconds token_ttl{30LL * 24 * 3600 * 1000};  ///< the session cookie's Max-Age
    /// server.cors_origins: the origins besides the server's own that may use the cookie.
    std::vector<std::string> allowed_origins;
    /// server.secure_cookie: every request counts as https (cookie Secure, Origin scheme).
    bool secure_cookie = false;
    /// server.trusted_proxies: only from these are X-Forwarded-For/-Proto believed.
    address_set trusted_proxies;
};

/// Who a request's credentials say the caller is.
struct admission {
    principal who;              ///< anonymous without credentials, or with a stale cookie
    bool by_cookie = false;     ///< known by the session cookie (unsafe requests: Origin check)
    bool clear_cookie = false;  ///< a stale session cookie: the answer ends it
    /// An invalid or expired Bearer token: 401 (a client that sent one expects to be someone).
    std::optional<problem> refused;
};

/// The client of a request, by address.
struct client_view {
    std::string address;  ///< the socket's peer, or the client a trusted proxy names
    bool https = false;   ///< reached the server, or a trusted proxy, over https
};

class gate {
public:
    gate() = default;
    explicit gate(gate_options o) : o_(std::move(o)) {}

    const gate_options& options() const noexcept { return o_; }
    /// Whether callers can be someone (an authenticator is set).
    bool authenticates() const noexcept { return o_.auth != nullptr; }

    /// The client: `peer` (canonical text), unless it is a trusted proxy; then the
    /// X-Forwarded-For values (every field, in order) name the client and the last
    /// X-Forwarded-Proto (the nearest proxy's) says whether it came over https.
    client_view client(std::string_view peer, const std::vector<std::string_view>& forwarded_for,
                       std::string_view forwarded_proto) const;
    /// Whether `peer` is a trusted proxy (its X-Forwarded-* headers are read at all).
    bool trusts(std::string_view peer) const { return o_.trusted_proxies.contains(peer); }
    /// Whether a request of `c` counts as https (server.secure_cookie, or the proxy says so).
    bool https(const client_view& c) const noexcept { return o_.secure_cookie || c.https; }

    /// The credentials of a request's Authorization and Cookie headers; none when the gate
    /// does not authenticate.
    request_credentials credentials(std::string_view authorization,
                                    std::string_view cookie) const;
    /// The caller when it is known without waiting (no token, or a token in the
    /// authenticator's cache); nullopt: call admit().
    std::optional<admission> admit_now(const request_credentials& c) const;
    /// Resolves the caller; `done` runs on a store thread (or inline).
    void admit(const request_credentials& c, std::function<void(admission)> done) const;

    /// Whether a browser request with `Origin: origin` to `host` may act with the cookie
    /// (origin_allowed with server.cors_origins and the request's scheme).
    bool origin_allowed(std::string_view origin, std::string_view host, bool https) const;

    /// Takes one request token of the caller: nullopt when allowed, else how long to wait.
    std::optional<std::chrono::milliseconds> take(const principal& who,
                                                  std::string_view client_address) const;
    /// The 429 of a throttled request, with "retry_after" in whole seconds (at least 1),
    /// which every door also sends as Retry-After.
    static problem throttled(std::chrono::milliseconds wait);

    /// The Set-Cookie value of a new session (HttpOnly, SameSite=Lax, the whole site,
    /// expiring with the token; Secure over https).
    std::string session_cookie(std::string_view token, bool https) const;
    /// The Set-Cookie value that ends the session cookie.
    static std::string cleared_cookie(bool https);

private:
    static admission judged(result<principal> who, bool by_cookie);
    gate_options o_;
};

}  // namespace livebase
