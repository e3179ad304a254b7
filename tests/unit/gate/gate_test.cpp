#include <livebase/gate/gate.hpp>

#include <gtest/gtest.h>

using namespace livebase;

namespace {
address_set proxies(std::vector<std::string> entries) {
    auto s = address_set::parse(entries);
    EXPECT_TRUE(s);
    return s ? *s : address_set{};
}
}  // namespace

TEST(gate, without_an_authenticator_every_caller_is_anonymous_and_credentials_are_not_read) {
    gate g;
    auto cred = g.credentials("Bearer abc", "livebase_session=def");
    EXPECT_TRUE(cred.token.empty());
    auto a = g.admit_now(cred);
    ASSERT_TRUE(a);
    EXPECT_FALSE(a->who.authenticated());
    EXPECT_FALSE(a->refused);
    EXPECT_FALSE(a->clear_cookie);
    EXPECT_FALSE(g.authenticates());
}

TEST(gate, the_client_is_the_peer_unless_the_peer_is_a_trusted_proxy) {
    gate_options o;
    o.trusted_proxies = proxies({"10.0.0.0/8"});
    gate g(o);
    auto direct = g.client("192.0.2.7", {"203.0.113.9"}, "https");
    EXPECT_EQ(direct.address, "192.0.2.7");  // anyone can send the headers
    EXPECT_FALSE(direct.https);
    auto proxied = g.client("10.1.2.3", {"203.0.113.9, 10.4.5.6"}, "http, https");
    EXPECT_EQ(proxied.address, "203.0.113.9");
    EXPECT_TRUE(proxied.https);  // the nearest proxy's word
    EXPECT_FALSE(g.client("10.1.2.3", {}, " HTTP ").https);
    EXPECT_TRUE(g.client("10.1.2.3", {}, " HTTPS ").https);
}

TEST(gate, secure_cookie_makes_every_request_https) {
    gate_options o;
    o.secure_cookie = true;
    gate g(o);
    EXPECT_TRUE(g.https(client_view{"192.0.2.7", false}));
    EXPECT_FALSE(gate().https(client_view{"192.0.2.7", false}));
    EXPECT_TRUE(gate().https(client_view{"192.0.2.7", true}));
}

TEST(gate, origins_are_judged_with_the_request_scheme_and_the_listed_origins) {
    gate_options o;
    o.allowed_origins = {"https://app.example.com"};
    gate g(o);
    EXPECT_TRUE(g.origin_allowed("https://app.example.com", "api.example.com", false));
    EXPECT_TRUE(g.origin_allowed("https://api.example.com", "api.example.com", true));
    EXPECT_FALSE(g.origin_allowed("http://api.example.com", "api.example.com", true));
    EXPECT_FALSE(g.origin_allowed("https://evil.example", "api.example.com", true));
}

TEST(gate, throttling_takes_from_the_callers_bucket_and_says_how_long_to_wait) {
    throttle t;
    gate_options o;
    o.limiter = &t;
    o.anonymous = rate{2, std::chrono::hours(1)};
    o.user = rate{0, std::chrono::hours(1)};  // unlimited
    gate g(o);
    principal anon;
    EXPECT_FALSE(g.take(anon, "192.0.2.1"));
    EXPECT_FALSE(g.take(anon, "192.0.2.1"));
    auto wait = g.take(anon, "192.0.2.1");
    ASSERT_TRUE(wait);
    EXPECT_GT(wait->count(), 0);
    EXPECT_FALSE(g.take(anon, "192.0.2.2"));  // another address, another bucket
    principal user;
    user.user_id = "u1";
    ASSERT_TRUE(user.authenticated());
    for (int i = 0; i < 10; ++i) EXPECT_FALSE(g.take(user, "192.0.2.1"));

    auto p = gate::throttled(std::chrono::milliseconds(1500));
    EXPECT_EQ(p.status, 429);
    ASSERT_TRUE(p.extra.contains("retry_after"));
    EXPECT_EQ(p.extra.at("retry_after").as_int64(), 2);  // whole seconds, rounded up
    EXPECT_EQ(gate::throttled(std::chrono::milliseconds(0)).extra.at("retry_after").as_int64(), 1);
    EXPECT_FALSE(gate().take(anon, "192.0.2.1"));  // no limiter: never throttled
}

TEST(gate, session_cookies_are_http_only_lax_and_secure_over_https) {
    gate_options o;
    o.token_ttl = std::chrono::hours(2);
    gate g(o);
    EXPECT_EQ(g.session_cookie("tok", false),
              "livebase_session=tok; Path=/; Max-Age=7200; HttpOnly; SameSite=Lax");
    EXPECT_EQ(g.session_cookie("tok", true),
              "livebase_session=tok; Path=/; Max-Age=7200; HttpOnly; SameSite=Lax; Secure");
    EXPECT_EQ(gate::cleared_cookie(false),
              "livebase_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
    EXPECT_EQ(gate::cleared_cookie(true),
              "livebase_session=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax; Secure");
}
