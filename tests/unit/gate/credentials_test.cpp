#include <livebase/gate/credentials.hpp>

#include <gtest/gtest.h>

using namespace livebase;

TEST(origin, same_host_or_listed) {
    const std::vector<std::string> none;
    EXPECT_TRUE(origin_allowed("http://127.0.0.1:8080", "127.0.0.1:8080", none));
    EXPECT_TRUE(origin_allowed("https://App.Example.com", "app.example.com", none, "https"));
    EXPECT_FALSE(origin_allowed("http://evil.example", "127.0.0.1:8080", none));
    EXPECT_FALSE(origin_allowed("http://127.0.0.1:9090", "127.0.0.1:8080", none));  // another port
    EXPECT_FALSE(origin_allowed("null", "127.0.0.1:8080", none));
    EXPECT_FALSE(origin_allowed("", "127.0.0.1:8080", none));
    EXPECT_FALSE(origin_allowed("127.0.0.1:8080", "127.0.0.1:8080", none));  // not an origin
    EXPECT_FALSE(origin_allowed("http://127.0.0.1:8080/path", "127.0.0.1:8080", none));
    EXPECT_FALSE(origin_allowed("http://user@127.0.0.1:8080", "127.0.0.1:8080", none));
    EXPECT_FALSE(origin_allowed("http://127.0.0.1:8080", "", none));

    const std::vector<std::string> listed{"https://app.example.com"};
    EXPECT_TRUE(origin_allowed("https://app.example.com", "api.example.com", listed));
    EXPECT_TRUE(origin_allowed("HTTPS://APP.EXAMPLE.COM", "api.example.com", listed));
    EXPECT_FALSE(origin_allowed("https://app.example.com.evil", "api.example.com", listed));
    EXPECT_TRUE(origin_allowed("null", "x", {"null"}));
    EXPECT_TRUE(origin_allowed("http://anything", "x", {"*"}));
}

TEST(origin, same_origin_needs_the_same_scheme) {
    const std::vector<std::string> none;
    // An http page (e.g. a spoofed one on an open network) may not act on the https site.
    EXPECT_FALSE(origin_allowed("http://app.example.com", "app.example.com", none, "https"));
    EXPECT_FALSE(origin_allowed("https://app.example.com", "app.example.com", none, "http"));
    EXPECT_FALSE(origin_allowed("ftp://app.example.com", "app.example.com", none, "http"));
    EXPECT_TRUE(origin_allowed("HTTPS://app.example.com", "app.example.com", none, "https"));
    EXPECT_TRUE(origin_allowed("http://app.example.com", "app.example.com", none));
}

TEST(origin, cookies) {
    EXPECT_EQ(cookie_value("livebase_session=abc", "livebase_session"), "abc");
    EXPECT_EQ(cookie_value("a=1; livebase_session=abc; b=2", "livebase_session"), "abc");
    EXPECT_EQ(cookie_value("a=1;livebase_session=\"q\"", "livebase_session"), "q");
    EXPECT_EQ(cookie_value("xlivebase_session=abc", "livebase_session"), "");
    EXPECT_EQ(cookie_value("livebase_session", "livebase_session"), "");
    EXPECT_EQ(cookie_value("", "livebase_session"), "");
    EXPECT_EQ(cookie_value(";;; =; a", "livebase_session"), "");
}

TEST(origin, bearer) {
    EXPECT_EQ(bearer_token("Bearer abc"), "abc");
    EXPECT_EQ(bearer_token("bearer   abc  "), "abc");
    EXPECT_EQ(bearer_token("Basic abc"), "");
    EXPECT_EQ(bearer_token("Bearer"), "");
    EXPECT_EQ(bearer_token("Bearerabc"), "");
    EXPECT_EQ(bearer_token(""), "");
}

TEST(origin, credentials_prefer_the_bearer_token) {
    auto both = credentials_of("Bearer abc", "livebase_session=def");
    EXPECT_EQ(both.token, "abc");
    EXPECT_FALSE(both.by_cookie);
    auto cookie = credentials_of("", "livebase_session=def");
    EXPECT_EQ(cookie.token, "def");
    EXPECT_TRUE(cookie.by_cookie);
    auto basic = credentials_of("Basic x", "other=1");
    EXPECT_EQ(basic.token, "");
    EXPECT_FALSE(basic.by_cookie);
}
