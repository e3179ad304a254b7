#include <livebase/gate/gate.hpp>

#include <livebase/core/text.hpp>

namespace livebase {

client_view gate::client(std::string_view peer,
                         const std::vector<std::string_view>& forwarded_for,
                         std::string_view forwarded_proto) const {
    client_view c;
    if (o_.trusted_proxies.empty() || !o_.trusted_proxies.contains(peer)) {
        c.address = std::string(peer);
        return c;
    }
    c.address = resolve_client_address(peer, forwarded_for, o_.trusted_proxies);
    if (auto comma = forwarded_proto.rfind(','); comma != std::string_view::npos)
        forwarded_proto = forwarded_proto.substr(comma + 1);
    c.https = iequals(trim_ows(forwarded_proto), "https");
    return c;
}

request_credentials gate::credentials(std::string_view authorization,
                                      std::string_view cookie) const {
    if (!o_.auth) return {};
    return credentials_of(authorization, cookie);
}

admission gate::judged(result<principal> who, bool by_cookie) {
    admission a;
    if (who) {
        a.who = std::move(*who);
        a.by_cookie = by_cookie;
    } else if (!by_cookie) {
        a.refused = problem::unauthorized("Invalid or expired token.");
    } else {
        // A stale session cookie is dropped rather than failing every page the browser
        // loads: the caller continues anonymously and the answer clears the cookie.
        a.clear_cookie = true;
    }
    return a;
}

std::optional<admission> gate::admit_now(const request_credentials& c) const {
    if (c.token.empty() || !o_.auth) return admission{};
    // The usual case costs a hash and a map lookup.
    if (auto hit = o_.auth->resolve_cached(c.token)) return judged(std::move(*hit), c.by_cookie);
    return std::nullopt;
}

void gate::admit(const request_credentials& c, std::function<void(admission)> done) const {
    if (auto now = admit_now(c)) return done(std::move(*now));
    o_.auth->resolve(c.token, [by_cookie = c.by_cookie,
                               done = std::move(done)](result<principal> r) {
        done(judged(std::move(r), by_cookie));
    });
}

bool gate::origin_allowed(std::string_view origin, std::string_view host, bool https) const {
    return livebase::origin_allowed(origin, host, o_.allowed_origins, https ? "https" : "http");
}

std::optional<std::chrono::milliseconds> gate::take(const principal& who,
                                                    std::string_view client_address) const {
    if (!o_.limiter) return std::nullopt;
    const rate& r = who.authenticated() ? o_.user : o_.anonymous;
    if (r.count == 0) return std::nullopt;  // unlimited: no key to build
    return o_.limiter->take(throttle_key(who, client_address), r);
}

problem gate::throttled(std::chrono::milliseconds wait) {
    const auto seconds = retry_after_seconds(wait);
    auto p = problem::too_many_requests("Request was throttled. Expected available in " +
                                        std::to_string(seconds) + " seconds.");
    p.extra["retry_after"] = seconds;
    return p;
}

std::string gate::session_cookie(std::string_view token, bool https) const {
    const auto max_age = std::chrono::duration_cast<std::chrono::seconds>(o_.token_ttl).count();
    return std::string(k_session_cookie) + "=" + std::string(token) +
           "; Path=/; Max-Age=" + std::to_string(max_age) + "; HttpOnly; SameSite=Lax" +
           (https ? "; Secure" : "");
}

std::string gate::cleared_cookie(bool https) {
    return std::string(k_session_cookie) + "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" +
           (https ? "; Secure" : "");
}

}  // namespace livebase
