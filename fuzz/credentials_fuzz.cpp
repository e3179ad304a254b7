// Fuzzes the credential headers the HTTP and WebSocket doors read before anything else:
// Cookie (the session cookie), Authorization (Bearer), the Origin check (with its scheme) and
// the constant-time comparison of configured tokens.
#include <cstdint>
#include <string>
#include <string_view>
#include <vector>

#include <livebase/gate/credentials.hpp>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace livebase;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    // The input is split at the first newline: an Origin, then a Host (and an allowed list).
    auto nl = in.find('\n');
    std::string_view first = in.substr(0, nl);
    std::string_view rest = nl == std::string_view::npos ? std::string_view{} : in.substr(nl + 1);

    auto cookie = cookie_value(in, k_session_cookie);
    if (cookie.size() > in.size()) __builtin_trap();
    auto token = bearer_token(in);
    if (token.size() > in.size()) __builtin_trap();

    const std::vector<std::string> allowed{std::string(rest.substr(0, 64)), "https://app.example.com"};
    const bool same = origin_allowed(first, rest, {});
    const bool listed = origin_allowed(first, rest, allowed);
    // A list only ever adds origins.
    if (same && !listed) __builtin_trap();
    // Same origin needs the same scheme: never both http and https for one Origin.
    if (origin_allowed(first, rest, {}, "http") && origin_allowed(first, rest, {}, "https"))
        __builtin_trap();
    // The metrics token comparison: equal texts only, and never an empty secret.
    if (token_matches(first, rest) != (!rest.empty() && first == rest)) __builtin_trap();
    return 0;
}
