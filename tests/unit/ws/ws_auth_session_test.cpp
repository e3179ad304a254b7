// The WebSocket session's part of authentication, without the HTTP server: credentials at the
// upgrade, the auth stream, 4401 when the hub reports a revocation, Origin refusals (1008) and
// throttling (429, then 4429).
#include <livebase/auth/auth.hpp>

#include <future>

#include "unit/ws/ws_session_fixture.hpp"

namespace livebase::ws_test {
namespace {

using testing::payload_of;
using testing::ws_client;
using testing::ws_connect_options;

int status(const std::optional<json::value>& r) {
    if (!r) return 0;
    const auto& s = payload_of(*r, "response_status");
    return s.is_int64() ? static_cast<int>(s.get_int64()) : 0;
}

json::object payload(std::string action, json::object more = {}) {
    more["action"] = std::move(action);
    return more;
}

class ws_auth_session_test : public ws_session_test {
protected:
    /// A user and a fresh token of theirs.
    std::pair<std::string, std::string> user_with_token(const std::string& name) {
        auto u = auth_->create_user_sync(name, "pw-" + name + "-secret", false);
        EXPECT_TRUE(u) << (u ? "" : u.error().detail);
        std::promise<result<login_grant>> p;
        auto f = p.get_future();
        auth_->login(name, "pw-" + name + "-secret", [&p](result<login_grant> g) { p.set_value(std::move(g)); });
        EXPECT_EQ(f.wait_for(k_deadline), std::future_status::ready);
        auto g = f.get();
        EXPECT_TRUE(g) << (g ? "" : g.error().detail);
        return {u ? std::string(get_string(*u, "id")) : "", g ? g->token : ""};
    }

    std::unique_ptr<ws_client> connect_bearer(const std::string& token) {
        ws_connect_options o;
        o.headers = {{"Authorization", "Bearer " + token}};
        return connect(o);
    }

    static json::value hello_user(const ws_client& c) {
        const auto& d = payload_of(c.hello(), "data");
        return d.is_object() && d.get_object().contains("user") ? d.get_object().at("user") : json::value("absent");
    }
};

TEST_F(ws_auth_session_test, without_auth_the_auth_stream_is_unknown_and_hello_has_no_user) {
    start();
    auto c = connect();
    EXPECT_TRUE(hello_user(*c).is_null());
    auto r = c->request("auth", payload("login", {{"data", json::object{{"token", "x"}}}}));
    EXPECT_EQ(status(r), 404);
}

TEST_F(ws_auth_session_test, a_bearer_token_names_the_user_and_a_bad_one_is_refused) {
    with_auth_ = true;
    start();
    auto [id, token] = user_with_token("ann");
    auto c = connect_bearer(token);
    auto user = hello_user(*c);
    ASSERT_TRUE(user.is_object());
    EXPECT_EQ(get_string(user.get_object(), "id"), id);
    EXPECT_EQ(get_string(user.get_object(), "username"), "ann");
    EXPECT_FALSE(user.get_object().at("admin").as_bool());

    ws_client bad;
    ws_connect_options o;
    o.headers = {{"Authorization", "Bearer forged"}};
    auto r = bad.connect(port(), o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status, 401);
    EXPECT_EQ(bad.response_header("WWW-Authenticate"), "Bearer");
}

TEST_F(ws_auth_session_test, login_then_logout_closes_with_4401_after_the_reply) {
    with_auth_ = true;
    start();
    auto [id, token] = user_with_token("ann");
    auto c = connect();
    EXPECT_EQ(status(c->request("auth", payload("logout"))), 401);
    auto in = c->request("auth", payload("login", {{"data", json::object{{"token", token}}}}));
    ASSERT_EQ(status(in), 200);
    EXPECT_EQ(get_string(payload_of(*in, "data").get_object().at("user").get_object(), "id"), id);
    auto out = c->request("auth", payload("logout"));
    EXPECT_EQ(status(out), 204);
    auto closed = c->wait_closed(k_deadline);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4401);
    EXPECT_EQ(closed->reason, "credentials no longer valid");
}

TEST_F(ws_auth_session_test, a_revocation_from_the_log_closes_the_users_sockets_only) {
    with_auth_ = true;
    start();
    auto [ann_id, ann_token] = user_with_token("ann");
    auto [bob_id, bob_token] = user_with_token("bob");
    auto ann = connect_bearer(ann_token);
    auto bob = connect_bearer(bob_token);
    ASSERT_TRUE(auth_->disable_sync("ann"));
    auto closed = ann->wait_closed(k_deadline);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4401);
    EXPECT_TRUE(bob->request("auth", payload("me")).has_value());
    EXPECT_TRUE(bob->is_open());
}

TEST_F(ws_auth_session_test, a_foreign_origin_is_closed_with_1008_before_the_hello) {
    ws_options o;
    o.gate.allowed_origins = {"https://app.example"};
    start(o);
    ws_connect_options evil;
    evil.headers = {{"Origin", "https://evil.example"}};
    evil.expect_hello = false;
    auto e = connect(evil);
    auto closed = e->wait_closed(k_deadline);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 1008);
    EXPECT_EQ(closed->reason, "origin not allowed");
    EXPECT_EQ(e->queue_count(), 0u);

    ws_connect_options listed;
    listed.headers = {{"Origin", "https://app.example"}};
    auto ok = connect(listed);
    EXPECT_FALSE(ok->subscriber().empty());
    auto none = connect();  // non-browser clients send no Origin
    EXPECT_FALSE(none->subscriber().empty());
}

TEST_F(ws_auth_session_test, throttled_frames_get_429_then_the_socket_closes_with_4429) {
    throttle limiter;
    ws_options o;
    o.gate.limiter = &limiter;
    o.gate.anonymous = rate{3, std::chrono::minutes(10)};
    o.max_throttled = 5;
    start(o);
    auto c = connect();
    for (int i = 0; i < 3; ++i) EXPECT_EQ(status(c->request("cars", payload("list"))), 200);
    // A bad frame counts and is answered on "error".
    ASSERT_TRUE(c->send_text("not json"));
    auto bad = c->receive(k_deadline);
    ASSERT_TRUE(bad);
    EXPECT_EQ(testing::stream_of(*bad), "error");
    EXPECT_EQ(status(bad), 429);
    auto r = c->request("cars", payload("list"));
    EXPECT_EQ(status(r), 429);
    ASSERT_TRUE(r);
    EXPECT_GE(payload_of(*r, "retry_after").as_int64(), 1);
    for (int i = 0; i < 3; ++i) EXPECT_EQ(status(c->request("cars", payload("list"))), 429);  // the 5th refusal closes
    auto closed = c->wait_closed(k_deadline);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4429);
    EXPECT_EQ(closed->reason, "too many messages");

    // Another address would have its own bucket; a count of 0 is unlimited.
    EXPECT_EQ(limiter.size(), 1u);
}

TEST_F(ws_auth_session_test, users_have_their_own_rate) {
    with_auth_ = true;
    throttle limiter;
    ws_options o;
    o.gate.limiter = &limiter;
    o.gate.anonymous = rate{1, std::chrono::minutes(10)};
    o.gate.user = rate{0, std::chrono::minutes(1)};  // unlimited
    start(o);
    auto [id, token] = user_with_token("ann");
    auto c = connect_bearer(token);
    for (int i = 0; i < 5; ++i) EXPECT_EQ(status(c->request("cars", payload("list"))), 200);
    auto anon = connect();
    EXPECT_EQ(status(anon->request("cars", payload("list"))), 200);
    EXPECT_EQ(status(anon->request("cars", payload("list"))), 429);
}

}  // namespace
}  // namespace livebase::ws_test
