// Hardening over real HTTP: the login throttle per address and username behind a trusted proxy,
// X-Forwarded-For and X-Forwarded-Proto believed only from trusted proxies, the session
// cookie's Secure flag, the Origin check's scheme, cookie-only cross-site GETs that would start
// work, /metrics behind a token, usernames unique ignoring case, blank passwords.
#include <livebase/auth/auth.hpp>

#include "support/test_app.hpp"

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {

const std::string k_extra = R"(
[auth]
throttle.anonymous = "unlimited"
throttle.user = "unlimited"
throttle.login = "5/h"
throttle.login_address = "20/h"

[tasks]
workers = 1

)" + endpoint_toml("report", "GET", "report", "authenticated");

class hardening : public ::testing::Test {
protected:
    void SetUp() override {
        LIVEBASE_REQUIRE_BACKEND();
        auto r = app_.load_config_string(test_config(dir_.path() / "hardening.db", k_extra),
                                         "hardening.toml");
        ASSERT_TRUE(r) << r.error().detail;
        // The test client connects from 127.0.0.1: it plays the load balancer.
        app_.config().server.trusted_proxies = {"127.0.0.0/8"};
        app_.config().server.metrics_token = "metrics-secret";
        app_.log().set_level(log_level::error);
        ASSERT_TRUE(app_.add_task_kind("report", [](task_context&) -> result<outcome> {
            return outcome::json_body(200, json::object{{"report", true}});
        }));
        auto s = app_.start();
        ASSERT_TRUE(s) << s.error().detail;
        ASSERT_TRUE(app_.auth().create_user_sync("alice", "alice password", false));
        ASSERT_TRUE(app_.auth().create_user_sync("root", "root password", true));
    }
    void TearDown() override { app_.stop(); }

    http_client client() { return http_client(app_.port(), std::chrono::seconds(15)); }

    http_response login(http_client& c, const std::string& user, const std::string& password,
                        const std::string& from, header_list more = {}) {
        more.emplace_back("X-Forwarded-For", from);
        return c.post("/api/auth/login", json::object{{"username", user}, {"password", password}},
                      more);
    }
    std::string token_of(const std::string& user, const std::string& password) {
        auto c = client();
        auto r = login(c, user, password, "192.0.2.200");
        EXPECT_EQ(r.status, 200) << r.body;
        return str(obj(r.json())["token"]);
    }

    temp_dir dir_;
    livebase::app app_;
};

TEST_F(hardening, guesses_from_many_addresses_do_not_lock_the_owner_out) {
    auto c = client();
    // More wrong passwords for one username than throttle.login allows, each from its own
    // address (the balancer's X-Forwarded-For): none is throttled, and the owner still gets in.
    for (int i = 1; i <= 12; ++i) {
        auto r = login(c, "alice", "guess " + std::to_string(i), "198.51.100." + std::to_string(i));
        EXPECT_EQ(r.status, 401) << i << r.body;
    }
    EXPECT_EQ(login(c, "alice", "alice password", "203.0.113.7").status, 200);
    // From one address, guesses at one account are limited (5/h).
    int status = 0;
    for (int i = 0; i < 8 && status != 429; ++i)
        status = login(c, "alice", "guess", "198.51.100.50").status;
    EXPECT_EQ(status, 429);
    // ... without blocking the owner elsewhere.
    EXPECT_EQ(login(c, "ALICE", "wrong", "203.0.113.8").status, 401);
    EXPECT_EQ(login(c, "alice", "alice password", "203.0.113.8").status, 200);
}

TEST_F(hardening, one_address_hammering_does_not_block_other_addresses) {
    auto c = client();
    int status = 0, sent = 0;
    for (; sent < 30 && status != 429; ++sent)
        status = login(c, "user" + std::to_string(sent), "some password", "198.51.100.99").status;
    EXPECT_EQ(status, 429);
    EXPECT_EQ(sent, 21);  // throttle.login_address = 20/h (refills take minutes)
    EXPECT_FALSE(login(c, "alice", "alice password", "198.51.100.99").header("Retry-After").empty());
    EXPECT_EQ(login(c, "alice", "alice password", "198.51.100.100").status, 200);
    // A chain of proxies: the address the nearest untrusted hop reports is the client's.
    EXPECT_EQ(login(c, "alice", "alice password", "198.51.100.99, 127.0.0.5").status, 429);
    EXPECT_EQ(login(c, "alice", "alice password", "198.51.100.99, 198.51.100.101").status, 200);
}

TEST_F(hardening, the_session_cookie_is_secure_behind_an_https_proxy) {
    auto c = client();
    auto https = login(c, "alice", "alice password", "203.0.113.9", {{"X-Forwarded-Proto", "https"}});
    ASSERT_EQ(https.status, 200);
    EXPECT_NE(https.header("Set-Cookie").find("; Secure"), std::string::npos) << https.header("Set-Cookie");
    auto plain = login(c, "alice", "alice password", "203.0.113.9");
    ASSERT_EQ(plain.status, 200);
    EXPECT_EQ(plain.header("Set-Cookie").find("Secure"), std::string::npos) << plain.header("Set-Cookie");
}

TEST_F(hardening, the_origin_check_compares_the_scheme) {
    const auto token = token_of("alice", "alice password");
    auto c = client();
    const std::string host = "127.0.0.1:" + std::to_string(app_.port());
    const header_list cookie{{"Cookie", "livebase_session=" + token}};
    auto with_origin = [&](const std::string& origin) {
        auto h = cookie;
        h.emplace_back("Origin", origin);
        return c.post("/api/cars", json::object{{"brand", "Ford"}}, h).status;
    };
    EXPECT_EQ(with_origin("https://" + host), 403);  // the request came over http
    EXPECT_EQ(with_origin("http://" + host), 201);
    // Behind a proxy that says https, the page's origin is https.
    auto h = cookie;
    h.emplace_back("Origin", "https://" + host);
    h.emplace_back("X-Forwarded-Proto", "https");
    EXPECT_EQ(c.post("/api/cars", json::object{{"brand", "Ford"}}, h).status, 201);
}

TEST_F(hardening, a_cross_site_get_with_only_the_cookie_starts_no_task) {
    const auto token = token_of("alice", "alice password");
    auto c = client();
    const header_list cookie{{"Cookie", "livebase_session=" + token}};
    auto get = [&](header_list more) {
        auto h = cookie;
        for (auto& kv : more) h.push_back(kv);
        return c.get("/api/report", h).status;
    };
    EXPECT_EQ(get({{"Sec-Fetch-Site", "cross-site"}}), 403);
    EXPECT_EQ(get({{"Sec-Fetch-Site", "same-site"}}), 403);
    EXPECT_EQ(get({{"Origin", "http://evil.example"}}), 403);
    auto tasks = c.get("/api/tasks", {{"Authorization", "Bearer " + token}});
    ASSERT_EQ(tasks.status, 200) << tasks.body;
    EXPECT_EQ(obj(tasks.json())["count"], 0) << tasks.body;
    // The site itself, a typed address, and a Bearer token start it.
    EXPECT_EQ(get({{"Sec-Fetch-Site", "same-origin"}}), 202);
    EXPECT_EQ(get({{"Sec-Fetch-Site", "none"}}), 202);
    EXPECT_EQ(c.get("/api/report", {{"Authorization", "Bearer " + token},
                                    {"Sec-Fetch-Site", "cross-site"}})
                  .status,
              202);
    // Reads are not affected.
    EXPECT_EQ(c.get("/api/cars", {{"Cookie", "livebase_session=" + token},
                                  {"Sec-Fetch-Site", "cross-site"}})
                  .status,
              200);
}

TEST_F(hardening, text_that_is_not_utf8_never_reaches_a_task) {
    const auto token = token_of("alice", "alice password");
    auto c = client();
    const header_list bearer{{"Authorization", "Bearer " + token}};
    for (const char* target : {"/api/report?x=%FF", "/api/report?%C3%28=1", "/api/report/%FF"}) {
        auto r = c.get(target, bearer);
        EXPECT_EQ(r.status, 400) << target << " " << r.body;
        EXPECT_TRUE(valid_utf8(r.body)) << target;
    }
    auto keyed = c.get("/api/report", {{"Authorization", "Bearer " + token},
                                        {"Idempotency-Key", "k\xff\xfe"}});
    EXPECT_EQ(keyed.status, 400) << keyed.body;
    auto tasks = c.get("/api/tasks", bearer);
    ASSERT_EQ(tasks.status, 200) << tasks.body;
    EXPECT_EQ(obj(tasks.json())["count"], 0) << tasks.body;
    // Valid text still runs, and the echo it stores reads back.
    EXPECT_EQ(c.get("/api/report?x=%C3%A9", bearer).status, 202);
    auto after = c.get("/api/tasks", bearer);
    ASSERT_EQ(after.status, 200);
    EXPECT_TRUE(valid_utf8(after.body));
    EXPECT_EQ(obj(after.json())["count"], 1) << after.body;
}

TEST_F(hardening, metrics_need_the_metrics_token) {
    auto c = client();
    EXPECT_EQ(c.get("/metrics").status, 401);
    EXPECT_EQ(c.get("/metrics", {{"Authorization", "Bearer wrong"}}).status, 401);
    auto ok = c.get("/metrics", {{"Authorization", "Bearer metrics-secret"}});
    EXPECT_EQ(ok.status, 200);
    EXPECT_NE(ok.body.find("livebase_"), std::string::npos);
}

TEST_F(hardening, usernames_are_unique_ignoring_case_and_blank_passwords_are_refused) {
    const auto root = token_of("root", "root password");
    auto c = client();
    const header_list admin{{"Authorization", "Bearer " + root}};
    auto taken = c.post("/api/users", json::object{{"username", "Alice"}, {"password", "a password"}}, admin);
    EXPECT_EQ(taken.status, 400) << taken.body;
    EXPECT_NE(taken.body.find("username"), std::string::npos);
    EXPECT_FALSE(app_.auth().create_user_sync("ALICE", "a password", false));

    auto carol = c.post("/api/users", json::object{{"username", "carol"}, {"password", "a password"}}, admin);
    ASSERT_EQ(carol.status, 201) << carol.body;
    auto rename = c.request("PATCH", "/api/users/" + str(obj(carol.json())["id"]),
                            R"({"username":"aLiCe"})", admin);
    EXPECT_EQ(rename.status, 400) << rename.body;
    auto same = c.request("PATCH", "/api/users/" + str(obj(carol.json())["id"]),
                          R"({"username":"Carol"})", admin);
    EXPECT_EQ(same.status, 200) << same.body;  // a user's own name in another case

    for (const std::string& pw : {std::string(12, ' '), std::string(9, '\0'), std::string(" \t \n    ")}) {
        json::object body{{"username", "dave"}, {"password", pw}};
        auto r = c.post("/api/users", body, admin);
        EXPECT_EQ(r.status, 400) << r.body;
        EXPECT_NE(r.body.find("password"), std::string::npos) << r.body;
    }
}

}  // namespace
