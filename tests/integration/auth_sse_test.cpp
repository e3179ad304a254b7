// Auth on the HTTP door's streams and credentials (http.md sections 4 and 5): SSE change
// streams show only what the caller may retrieve, end when its credentials end; the session
// cookie, its CSRF Origin check, stale cookies, and the REST throttle.
#include <functional>
#include <thread>

#include "support/test_app.hpp"

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

class auth_sse : public ::testing::Test {
protected:
    void start(const std::string& extra = {}) {
        auto r = app_.load_config_string(test_config(dir_.path() / "auth.db", extra, k_owner_rules),
                                         "auth.toml");
        ASSERT_TRUE(r) << r.error().detail;
        app_.log().set_level(log_level::error);
        auto s = app_.start();
        ASSERT_TRUE(s) << s.error().detail;
        for (const char* name : {"ann", "bob"})
            ASSERT_TRUE(app_.auth().create_user_sync(name, std::string(name) + "-password", false));
        ann_ = login("ann");
        bob_ = login("bob");
    }
    void TearDown() override { app_.stop(); }

    http_client client() { return http_client(app_.port(), 10s); }

    std::string login(const std::string& name) {
        auto c = client();
        auto r = c.post("/api/auth/login", json::object{{"username", name}, {"password", name + "-password"}});
        EXPECT_EQ(r.status, 200) << r.body;
        return str(obj(r.json())["token"]);
    }
    static header_list bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }

    std::string create_as(const std::string& token, json::object body) {
        auto c = client();
        auto r = c.post("/api/cars", body, bearer(token));
        EXPECT_EQ(r.status, 201) << r.body;
        return str(obj(r.json())["id"]);
    }

    temp_dir dir_;
    livebase::app app_;
    std::string ann_, bob_;
};

TEST_F(auth_sse, a_stream_shows_only_what_its_caller_may_retrieve) {
    start();
    // Anonymous callers may not list owner-ruled cars at all.
    auto anon = client();
    auto refused = anon.start_stream("/api/cars/events");
    EXPECT_EQ(refused.status, 401) << refused.body;
    EXPECT_EQ(refused.header("WWW-Authenticate"), "Bearer");

    auto bob_stream = client();
    auto head = bob_stream.start_stream("/api/cars/events", bearer(bob_));
    ASSERT_EQ(head.status, 200) << head.body;
    auto ann_stream = client();
    ASSERT_EQ(ann_stream.start_stream("/api/cars/events", bearer(ann_)).status, 200);

    // Ann's car is invisible to Bob; Bob's own car (written after it) is the first event he gets.
    auto secret = create_as(ann_, {{"brand", "Secret"}});
    auto w = client();
    ASSERT_EQ(w.request("PATCH", "/api/cars/" + secret, R"({"model": 2001})", bearer(ann_)).status, 200);
    auto mine = create_as(bob_, {{"brand", "Mine"}});

    auto first = bob_stream.next_event(10s);
    ASSERT_TRUE(first);
    auto data = parse_json(first->data);
    ASSERT_TRUE(data);
    EXPECT_EQ(str(obj(*data)["id"]), mine);

    auto a1 = ann_stream.next_event(10s);
    auto a2 = ann_stream.next_event(10s);
    ASSERT_TRUE(a1 && a2);
    EXPECT_EQ(a1->event, "create");
    EXPECT_EQ(a2->event, "update");
    EXPECT_EQ(str(obj(*parse_json(a1->data))["id"]), secret);

    // The same 404 for Bob as for a record that does not exist, and the list leaves it out.
    auto c = client();
    auto hidden = c.get("/api/cars/" + secret, bearer(bob_));
    auto missing = c.get("/api/cars/01ARZ3NDEKTSV4RRFFQ69G5FAV", bearer(bob_));
    EXPECT_EQ(hidden.status, 404);
    EXPECT_EQ(hidden.body, missing.body);
    auto list = obj(c.get("/api/cars", bearer(bob_)).json());
    EXPECT_EQ(list["count"], 1);
}

TEST_F(auth_sse, logout_ends_the_streams_opened_with_the_token) {
    start();
    auto s = client();
    ASSERT_EQ(s.start_stream("/api/cars/events", bearer(ann_)).status, 200);
    auto other = login("ann");  // a second session of the same user lives on
    auto s2 = client();
    ASSERT_EQ(s2.start_stream("/api/cars/events", bearer(other)).status, 200);

    auto c = client();
    ASSERT_EQ(c.request("POST", "/api/auth/logout", {}, bearer(ann_)).status, 204);
    // The stream ends (no event arrives, the response is complete) within a bounded wait.
    for (int i = 0; i < 50 && !s.stream_ended(); ++i) s.next_event(200ms);
    EXPECT_TRUE(s.stream_ended());
    EXPECT_EQ(c.get("/api/auth/me", bearer(ann_)).status, 401);

    // The other session still streams.
    auto id = create_as(other, {{"brand", "Still"}});
    auto e = s2.next_event(10s);
    ASSERT_TRUE(e);
    EXPECT_EQ(str(obj(*parse_json(e->data))["id"]), id);
}

TEST_F(auth_sse, disabling_a_user_ends_their_streams) {
    start();
    auto s = client();
    ASSERT_EQ(s.start_stream("/api/cars/events", bearer(bob_)).status, 200);
    ASSERT_TRUE(app_.auth().disable_sync("bob"));
    for (int i = 0; i < 50 && !s.stream_ended(); ++i) s.next_event(200ms);
    EXPECT_TRUE(s.stream_ended());
    auto c = client();
    EXPECT_EQ(c.get("/api/cars", bearer(bob_)).status, 401);
}

TEST_F(auth_sse, the_session_cookie_and_its_origin_check) {
    start();
    auto c = client();
    auto r = c.post("/api/auth/login", json::object{{"username", "ann"}, {"password", "ann-password"}});
    ASSERT_EQ(r.status, 200);
    auto set = r.header("Set-Cookie");
    EXPECT_NE(set.find("livebase_session=" + str(obj(r.json())["token"])), std::string::npos);
    EXPECT_NE(set.find("HttpOnly"), std::string::npos);
    EXPECT_NE(set.find("SameSite=Lax"), std::string::npos);
    const std::string cookie = "livebase_session=" + str(obj(r.json())["token"]);
    const std::string self = "http://127.0.0.1:" + std::to_string(app_.port());

    // Reads need no Origin; an unsafe request needs an allowed one.
    EXPECT_EQ(c.get("/api/auth/me", {{"Cookie", cookie}}).status, 200);
    const std::string car = R"({"brand": "Ford"})";
    auto none = c.request("POST", "/api/cars", car, {{"Cookie", cookie}, {"Content-Type", "application/json"}});
    EXPECT_EQ(none.status, 403) << none.body;
    auto evil = c.request("POST", "/api/cars", car,
                          {{"Cookie", cookie}, {"Content-Type", "application/json"}, {"Origin", "http://evil.example"}});
    EXPECT_EQ(evil.status, 403);
    auto same = c.request("POST", "/api/cars", car,
                          {{"Cookie", cookie}, {"Content-Type", "application/json"}, {"Origin", self}});
    EXPECT_EQ(same.status, 201) << same.body;
    EXPECT_EQ(str(obj(same.json())["owner"]), str(obj(obj(r.json())["user"])["id"]));
    // A Bearer request is not subject to the check: browsers never add that header themselves.
    auto bearer_post = c.request("POST", "/api/cars", car,
                                 {{"Authorization", "Bearer " + ann_}, {"Content-Type", "application/json"},
                                  {"Origin", "http://evil.example"}});
    EXPECT_EQ(bearer_post.status, 201);

    // Logout by cookie clears it; the stale cookie then reads anonymously and is cleared again.
    auto out = c.request("POST", "/api/auth/logout", {}, {{"Cookie", cookie}, {"Origin", self}});
    EXPECT_EQ(out.status, 204);
    EXPECT_NE(out.header("Set-Cookie").find("Max-Age=0"), std::string::npos);
    auto stale = c.get("/api/auth/me", {{"Cookie", cookie}});
    EXPECT_EQ(stale.status, 401);
    EXPECT_NE(stale.header("Set-Cookie").find("Max-Age=0"), std::string::npos);
    // A bad Bearer token is an error, not anonymity.
    auto bad = c.get("/api/health");
    EXPECT_EQ(bad.status, 200);
    EXPECT_EQ(c.get("/api/auth/me", {{"Authorization", "Bearer nope"}}).status, 401);
}

TEST_F(auth_sse, rest_requests_are_throttled_per_caller) {
    start(R"(
[auth]
throttle.anonymous = "5/min"
throttle.user = "8/min"
)");
    auto c = client();
    int ok = 0, limited = 0;
    std::string retry_after;
    for (int i = 0; i < 12; ++i) {
        auto r = c.get("/api/owners");
        if (r.status == 200) ++ok;
        if (r.status == 429) {
            ++limited;
            retry_after = r.header("Retry-After");
        }
    }
    // The logins of start() came from this address too: at most 5 anonymous requests pass.
    EXPECT_LE(ok, 5);
    EXPECT_GE(limited, 7);
    ASSERT_FALSE(retry_after.empty());
    EXPECT_GE(std::stoi(retry_after), 1);
    // A user has a bucket of their own, unaffected by the address's.
    int user_ok = 0;
    for (int i = 0; i < 8; ++i) user_ok += c.get("/api/owners", bearer(ann_)).status == 200;
    EXPECT_EQ(user_ok, 8);
    EXPECT_EQ(c.get("/api/owners", bearer(ann_)).status, 429);
}

}  // namespace
