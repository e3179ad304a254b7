#include <livebase/gate/credentials.hpp>
#include <livebase/core/text.hpp>

#include <algorithm>
#include <cctype>

namespace livebase {

namespace {

// "https://app.example.com:8443" -> "app.example.com:8443"; "" for anything that is not a
// serialized origin (scheme://host[:port], nothing after).
std::string_view origin_authority(std::string_view origin) {
    auto sep = origin.find("://");
    if (sep == std::string_view::npos || sep == 0) return {};
    auto authority = origin.substr(sep + 3);
    if (authority.empty() || authority.find_first_of("/?#@ ") != std::string_view::npos) return {};
    return authority;
}

std::string_view origin_scheme(std::string_view origin) {
    auto sep = origin.find("://");
    return sep == std::string_view::npos ? std::string_view{} : origin.substr(0, sep);
}

}  // namespace

bool origin_allowed(std::string_view origin, std::string_view host,
                    const std::vector<std::string>& allowed, std::string_view scheme) {
    origin = trim_ows(origin);
    for (const auto& a : allowed)
        if (a == "*" || iequals(a, origin)) return true;
    if (iequals(origin, "null")) return false;
    auto authority = origin_authority(origin);
    host = trim_ows(host);
    if (authority.empty() || host.empty()) return false;
    // Same origin: the browser sent the request to the scheme and host it loaded the page from
    // (an http page may not act on an https site). Default ports are omitted by browsers in
    // both headers alike.
    return iequals(origin_scheme(origin), scheme) && iequals(authority, host);
}

std::string cookie_value(std::string_view header, std::string_view name) {
    while (!header.empty()) {
        auto semi = header.find(';');
        auto pair = trim_ows(header.substr(0, semi));
        header = semi == std::string_view::npos ? std::string_view{} : header.substr(semi + 1);
        auto eq = pair.find('=');
        if (eq == std::string_view::npos) continue;
        if (trim_ows(pair.substr(0, eq)) != name) continue;
        auto value = trim_ows(pair.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
            value = value.substr(1, value.size() - 2);
        return std::string(value);
    }
    return {};
}

std::string bearer_token(std::string_view authorization) {
    authorization = trim_ows(authorization);
    constexpr std::string_view scheme = "bearer";
    if (authorization.size() <= scheme.size() || !iequals(authorization.substr(0, scheme.size()), scheme) ||
        (authorization[scheme.size()] != ' ' && authorization[scheme.size()] != '\t'))
        return {};
    return std::string(trim_ows(authorization.substr(scheme.size() + 1)));
}

bool token_matches(std::string_view given, std::string_view expected) noexcept {
    if (expected.empty()) return false;
    unsigned char diff = given.size() == expected.size() ? 0 : 1;
    for (std::size_t i = 0; i < expected.size(); ++i)
        diff |= static_cast<unsigned char>(expected[i] ^ (i < given.size() ? given[i] : 0));
    return diff == 0;
}

request_credentials credentials_of(std::string_view authorization, std::string_view cookie_header) {
    request_credentials c;
    c.token = bearer_token(authorization);
    if (c.token.empty()) {
        c.token = cookie_value(cookie_header, k_session_cookie);
        c.by_cookie = !c.token.empty();
    }
    return c;
}

}  // namespace livebase
