// Authentication over the WebSocket door (realtime.md "auth stream", "Events", "Flow control";
// http.md section 5), over real sockets: credentials at the upgrade (Bearer, cookie) and by
// `login`; Origin refusals (1008); 4401 on logout, revocation, password change and disabling;
// the rules on every request and on every event and live-query diff (no leak to other users
// or anonymous sockets); and throttling (429, then 4429), shared with REST.
//
// Users are created through an authenticator of the test's own on the app's store: its writes
// reach the server through the change log exactly as another process's would, which is also
// how revocations must travel.
#include <livebase/auth/auth.hpp>
#include <support/ws_client.hpp>

#include <set>

#include "support/test_app.hpp"

#include <array>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

/// The first error string of a reply ("" when none).
std::string first_error(const std::optional<json::value>& r) {
    if (!r) return "";
    const auto& e = payload_of(*r, "errors");
    if (!e.is_array() || e.get_array().empty() || !e.get_array()[0].is_string()) return "";
    return std::string(e.get_array()[0].get_string());
}

struct signed_in {
    std::string id;     ///< user id
    std::string token;  ///< bearer token
};

class auth_ws : public ::testing::Test {
protected:
    void TearDown() override {
        users_.reset();
        app_.stop();
    }

    void start(const std::string& extra = "", std::string cars_rules = k_owner_rules) {
        auto r = app_.load_config_string(test_config(dir_.path() / "auth_ws.db", extra, std::move(cars_rules)),
                                         "auth_ws.toml");
        ASSERT_TRUE(r) << r.error().detail;
        app_.log().set_level(log_level::warn);
        auto s = app_.start();
        ASSERT_TRUE(s) << s.error().detail;
        rest_ = std::make_unique<http_client>(app_.port(), 30s);
        users_ = std::make_unique<authenticator>(app_.store(), auth_settings{}, app_.log());
    }

    std::string create_user(const std::string& name, bool admin = false) {
        auto u = users_->create_user_sync(name, "pw-" + name + "-secret", admin);
        EXPECT_TRUE(u) << (u ? "" : u.error().detail);
        return u ? std::string(get_string(*u, "id")) : "";
    }

    /// A fresh token of `name` through REST login.
    /// ann and bob (users) and root (an administrator), created and signed in.
    std::array<signed_in, 3> ann_bob_root() {
        for (auto [name, admin] : {std::pair{"ann", false}, {"bob", false}, {"root", true}}) create_user(name, admin);
        return {login("ann"), login("bob"), login("root")};
    }

    signed_in login(const std::string& name) {
        auto r = rest_->post("/api/auth/login",
                             json::object{{"username", name}, {"password", "pw-" + name + "-secret"}});
        EXPECT_EQ(r.status, 200) << r.body;
        auto body = obj(r.json());
        return {field(body["user"], "id"), std::string(get_string(body, "token"))};
    }

    std::unique_ptr<ws_client> connect(header_list headers = {}, bool expect_hello = true) {
        auto c = std::make_unique<ws_client>();
        ws_connect_options o;
        o.headers = std::move(headers);
        o.expect_hello = expect_hello;
        auto r = c->connect(app_.port(), std::move(o));
        EXPECT_TRUE(r) << (r ? "" : r.error().detail);
        return c;
    }
    std::unique_ptr<ws_client> connect_as(const signed_in& u) {
        return connect({{"Authorization", "Bearer " + u.token}});
    }

    /// Creates a car as `u` over REST and returns its id.
    std::string create_car(const signed_in& u, const std::string& brand) {
        auto r = rest_->post("/api/cars", json::object{{"brand", brand}},
                             {{"Authorization", "Bearer " + u.token}});
        EXPECT_EQ(r.status, 201) << r.body;
        return field(r.json(), "id");
    }

    /// Still open and served: a request gets its reply.
    static bool serves(ws_client& c) {
        auto r = c.request("auth", req("me"));
        return r.has_value();
    }

    static void expect_closed_with(ws_client& c, std::uint16_t code) {
        auto closed = c.wait_closed(k_wait);
        ASSERT_TRUE(closed) << "still open";
        EXPECT_EQ(closed->code, code) << closed->reason;
    }

    temp_dir dir_;
    livebase::app app_;
    std::unique_ptr<http_client> rest_;
    std::unique_ptr<authenticator> users_;
};

// ---- credentials at the upgrade ----

TEST_F(auth_ws, bearer_and_cookie_at_the_upgrade_name_the_user_in_hello) {
    start();
    auto ann_id = create_user("ann");
    auto ann = login("ann");
    ASSERT_EQ(ann.id, ann_id);

    auto bearer = connect_as(ann);
    const auto& user = payload_of(bearer->hello(), "data");
    ASSERT_TRUE(user.is_object());
    EXPECT_EQ(field(user.get_object().at("user"), "id"), ann_id);
    EXPECT_EQ(field(user.get_object().at("user"), "username"), "ann");

    auto cookie = connect({{"Cookie", "theme=dark; livebase_session=" + ann.token}});
    EXPECT_EQ(field(payload_of(cookie->hello(), "data").get_object().at("user"), "id"), ann_id);

    // The socket acts as ann: what it creates is hers.
    auto created = cookie->request("cars", req("create", {{"data", json::object{{"brand", "Ford"}}}}));
    ASSERT_EQ(status_of(created), 201) << json::serialize(*created);
    EXPECT_EQ(field(data_of(*created), "owner"), ann_id);

    auto anonymous = connect();
    EXPECT_TRUE(payload_of(anonymous->hello(), "data").get_object().at("user").is_null());
}

TEST_F(auth_ws, a_bad_token_refuses_the_upgrade_and_a_stale_cookie_is_dropped) {
    start();
    ws_client c;
    ws_connect_options o;
    o.headers = {{"Authorization", "Bearer not-a-real-token"}};
    auto r = c.connect(app_.port(), o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status, 401);

    // A browser cannot drop an HttpOnly cookie itself: the socket opens anonymously and the
    // 101 clears the cookie, as REST responses do.
    auto stale = connect({{"Cookie", "livebase_session=expired-or-revoked"}});
    EXPECT_TRUE(payload_of(stale->hello(), "data").get_object().at("user").is_null());
    EXPECT_NE(stale->response_header("Set-Cookie").find("livebase_session=;"), std::string::npos);
}

// ---- the auth stream ----

TEST_F(auth_ws, login_by_password_and_by_token) {
    start();
    auto ann_id = create_user("ann");
    auto c = connect();

    auto wrong = c->request("auth", req("login", {{"data", json::object{{"username", "ann"}, {"password", "nope-nope"}}}}));
    EXPECT_EQ(status_of(wrong), 401) << dump(wrong);
    // Still open, still anonymous.
    EXPECT_EQ(status_of(c->request("auth", req("me"))), 401);

    auto ok = c->request("auth", req("login", {{"data", json::object{{"username", "ann"}, {"password", "pw-ann-secret"}}}}));
    ASSERT_EQ(status_of(ok), 200) << dump(ok);
    EXPECT_FALSE(field(data_of(*ok), "token").empty());
    EXPECT_EQ(field(obj(data_of(*ok)).at("user"), "id"), ann_id);
    auto me = c->request("auth", req("me"));
    ASSERT_EQ(status_of(me), 200);
    EXPECT_EQ(field(data_of(*me), "id"), ann_id);
    auto created = c->request("cars", req("create", {{"data", json::object{{"brand", "Kia"}}}}));
    ASSERT_EQ(status_of(created), 201);
    EXPECT_EQ(field(data_of(*created), "owner"), ann_id);

    // With a token (e.g. from REST login), on another socket.
    auto token = login("ann").token;
    auto d = connect();
    auto bad = d->request("auth", req("login", {{"data", json::object{{"token", "forged"}}}}));
    EXPECT_EQ(status_of(bad), 401);
    auto good = d->request("auth", req("login", {{"data", json::object{{"token", token}}}}));
    ASSERT_EQ(status_of(good), 200) << dump(good);
    EXPECT_EQ(field(obj(data_of(*good)).at("user"), "id"), ann_id);
    EXPECT_EQ(field(obj(data_of(*good)).at("user"), "username"), "ann");

    // Logging out an anonymous socket is refused and changes nothing.
    auto e = connect();
    EXPECT_EQ(status_of(e->request("auth", req("logout"))), 401);
    EXPECT_TRUE(e->is_open());
}

TEST_F(auth_ws, a_login_changes_what_the_socket_is_sent) {
    start();
    create_user("ann");
    auto ann = login("ann");
    auto c = connect();
    // Anonymous: an owner-rule collection's feed is a list, and anonymous lists are refused.
    EXPECT_EQ(status_of(c->request("cars", req("subscribe"))), 401);
    EXPECT_EQ(status_of(c->request("cars", req("observe"))), 401);
    ASSERT_EQ(status_of(c->request("auth", req("login", {{"data", json::object{{"token", ann.token}}}}))), 200);
    auto sub = c->request("cars", req("subscribe"));
    ASSERT_EQ(status_of(sub), 201);
    const auto sid = field(data_of(*sub), "subscription");
    auto id = create_car(ann, "Fiat");
    auto e = c->receive_until([&](const json::value& f) { return is_event(f, sid); }, k_wait);
    ASSERT_TRUE(e);
    EXPECT_EQ(payload_string(*e, "pk"), id);
}

// ---- Origin ----

TEST_F(auth_ws, a_foreign_origin_is_closed_with_1008) {
    start();
    auto evil = connect({{"Origin", "http://evil.example"}}, false);
    expect_closed_with(*evil, 1008);
    EXPECT_EQ(evil->queue_count(), 0u);  // no hello: it learned nothing

    auto same = connect({{"Origin", "http://127.0.0.1:" + std::to_string(app_.port())}});
    EXPECT_FALSE(same->subscriber().empty());
    EXPECT_TRUE(serves(*same));
}

// ---- 4401 ----

TEST_F(auth_ws, logout_closes_every_socket_of_the_token) {
    start();
    create_user("ann");
    auto a = login("ann");
    auto b = login("ann");  // another token of the same user
    auto one = connect_as(a);
    auto two = connect_as(a);
    auto other = connect_as(b);

    auto out = one->request("auth", req("logout"));
    EXPECT_EQ(status_of(out), 204) << dump(out);
    expect_closed_with(*one, 4401);
    expect_closed_with(*two, 4401);
    // Only that token ended.
    EXPECT_TRUE(serves(*other));
    auto again = rest_->get("/api/auth/me", {{"Authorization", "Bearer " + a.token}});
    EXPECT_EQ(again.status, 401);
}

TEST_F(auth_ws, rest_logout_closes_the_socket_opened_with_its_token) {
    start();
    create_user("ann");
    auto a = login("ann");
    auto c = connect_as(a);
    auto r = rest_->post("/api/auth/logout", json::object{}, {{"Authorization", "Bearer " + a.token}});
    EXPECT_EQ(r.status, 204) << r.body;
    expect_closed_with(*c, 4401);
}

TEST_F(auth_ws, password_change_and_disabling_close_that_users_sockets) {
    start();
    create_user("ann");
    create_user("bob");
    auto a1 = login("ann");
    auto a2 = login("ann");
    auto b = login("bob");
    auto ann_bearer = connect_as(a1);
    auto ann_login = connect();
    ASSERT_EQ(status_of(ann_login->request("auth", req("login", {{"data", json::object{{"token", a2.token}}}}))), 200);
    auto bob = connect_as(b);

    ASSERT_TRUE(users_->set_password_sync("ann", "a-new-password"));
    expect_closed_with(*ann_bearer, 4401);
    expect_closed_with(*ann_login, 4401);
    EXPECT_TRUE(serves(*bob));

    ASSERT_TRUE(users_->disable_sync("bob"));
    expect_closed_with(*bob, 4401);
    // The old token no longer opens a socket.
    ws_client late;
    ws_connect_options o;
    o.headers = {{"Authorization", "Bearer " + b.token}};
    auto r = late.connect(app_.port(), o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status, 401);
}

// ---- the leak matrix ----

TEST_F(auth_ws, rules_hold_for_every_request_event_and_diff) {
    start();
    auto [ann, bob, root] = ann_bob_root();
    auto anon_ws = connect();
    auto bob_ws = connect_as(bob);
    auto ann_ws = connect_as(ann);
    auto root_ws = connect_as(root);

    const auto car = create_car(ann, "Secret");
    const auto missing = make_ulid();
    auto retrieve = [](ws_client& c, const std::string& pk) { return c.request("cars", req("retrieve", {{"pk", pk}})); };

    // list: narrowed for bob, refused for anonymous.
    auto list_of = [](ws_client& c) { return c.request("cars", req("list")); };
    EXPECT_EQ(status_of(list_of(*anon_ws)), 401);
    auto bl = list_of(*bob_ws);
    ASSERT_EQ(status_of(bl), 200);
    EXPECT_EQ(obj(data_of(*bl)).at("count").to_number<std::int64_t>(), 0);
    auto al = list_of(*ann_ws);
    ASSERT_EQ(status_of(al), 200);
    EXPECT_EQ(obj(data_of(*al)).at("count").to_number<std::int64_t>(), 1);
    auto rl = list_of(*root_ws);
    ASSERT_EQ(status_of(rl), 200);
    EXPECT_EQ(obj(data_of(*rl)).at("count").to_number<std::int64_t>(), 1);

    // retrieve: bob's 404 is exactly a missing pk's.
    EXPECT_EQ(status_of(retrieve(*anon_ws, car)), 401);
    auto hidden = retrieve(*bob_ws, car);
    auto absent = retrieve(*bob_ws, missing);
    EXPECT_EQ(status_of(hidden), 404);
    EXPECT_EQ(status_of(absent), 404);
    EXPECT_EQ(first_error(hidden), first_error(absent));
    EXPECT_EQ(status_of(retrieve(*ann_ws, car)), 200);
    EXPECT_EQ(status_of(retrieve(*root_ws, car)), 200);

    // update and delete by others.
    auto patch = [&](ws_client& c, const std::string& pk, const std::string& color) {
        return c.request("cars", req("patch", {{"pk", pk}, {"data", json::object{{"color", color}}}}));
    };
    EXPECT_EQ(status_of(patch(*anon_ws, car, "Red")), 401);
    auto bob_patch = patch(*bob_ws, car, "Red");
    EXPECT_EQ(status_of(bob_patch), 404);
    EXPECT_EQ(first_error(bob_patch), first_error(patch(*bob_ws, missing, "Red")));
    EXPECT_EQ(status_of(anon_ws->request("cars", req("delete", {{"pk", car}}))), 401);
    EXPECT_EQ(status_of(bob_ws->request("cars", req("delete", {{"pk", car}}))), 404);
    EXPECT_EQ(status_of(retrieve(*ann_ws, car)), 200);  // still there, unchanged

    // subscriptions by pk: 404 like a missing pk for whoever may not see it.
    auto sub_pk = [](ws_client& c, const std::string& pk) { return c.request("cars", req("subscribe", {{"pk", pk}})); };
    EXPECT_EQ(status_of(sub_pk(*anon_ws, car)), 404);
    EXPECT_EQ(status_of(sub_pk(*bob_ws, car)), 404);
    EXPECT_EQ(first_error(sub_pk(*bob_ws, car)), first_error(sub_pk(*bob_ws, missing)));
    auto ann_pk = sub_pk(*ann_ws, car);
    ASSERT_EQ(status_of(ann_pk), 201);
    ASSERT_EQ(status_of(sub_pk(*root_ws, car)), 201);

    // collection subscriptions and live queries.
    EXPECT_EQ(status_of(anon_ws->request("cars", req("subscribe"))), 401);
    EXPECT_EQ(status_of(anon_ws->request("cars", req("observe"))), 401);
    auto bob_sub = bob_ws->request("cars", req("subscribe"));
    ASSERT_EQ(status_of(bob_sub), 201);
    const auto bob_sid = field(data_of(*bob_sub), "subscription");
    auto bob_obs = bob_ws->request("cars", req("observe", {{"data", json::object{{"ordering", "brand"}, {"limit", 5}}}}));
    ASSERT_EQ(status_of(bob_obs), 201);
    const auto bob_oid = field(data_of(*bob_obs), "observer");
    EXPECT_TRUE(obj(data_of(*bob_obs)).at("items").get_array().empty());
    auto ann_obs = ann_ws->request("cars", req("observe", {{"data", json::object{{"ordering", "brand"}, {"limit", 5}}}}));
    ASSERT_EQ(status_of(ann_obs), 201);
    EXPECT_EQ(obj(data_of(*ann_obs)).at("items").get_array().size(), 1u);
    auto root_sub = root_ws->request("cars", req("subscribe"));
    ASSERT_EQ(status_of(root_sub), 201);
    const auto root_sid = field(data_of(*root_sub), "subscription");

    // The owner changes, then deletes, the record; bob and anonymous must hear nothing of it.
    ASSERT_EQ(status_of(patch(*ann_ws, car, "Blue")), 200);
    ASSERT_EQ(status_of(ann_ws->request("cars", req("delete", {{"pk", car}}))), 204);

    // Barrier: bob's own car. Its event follows every earlier event on bob's socket, and its
    // diff follows the diffs of every earlier pass (a pass sends its events, then its diffs).
    const auto own = create_car(bob, "Own");
    auto ev = bob_ws->receive_until(
        [&](const json::value& f) { return is_event(f, bob_sid) && payload_string(f, "pk") == own; }, k_wait);
    ASSERT_TRUE(ev) << "bob's barrier event missing";
    auto diff = bob_ws->receive_until(
        [&](const json::value& f) { return is_diff(f, bob_oid) && field(data_of(f), "pk") == own; }, k_wait);
    ASSERT_TRUE(diff) << "bob's barrier diff missing";

    // The owner and the admin did get the events (the matrix is not vacuous).
    auto root_seen = root_ws->receive_until(
        [&](const json::value& f) {
            return is_event(f, root_sid) && payload_string(f, "pk") == car && payload_string(f, "action") == "delete";
        },
        k_wait);
    EXPECT_TRUE(root_seen);
    auto ann_seen = ann_ws->receive_until(
        [&](const json::value& f) { return is_diff(f) && field(data_of(f), "pk") == car && field(data_of(f), "msg") == "removed"; },
        k_wait);
    EXPECT_TRUE(ann_seen);

    // Everything bob and anonymous were sent, searched for the owner's record.
    for (auto* c : {bob_ws.get(), anon_ws.get()}) {
        while (auto f = c->receive(0ms)) EXPECT_EQ(json::serialize(*f).find(car), std::string::npos) << json::serialize(*f);
    }
    ASSERT_TRUE(anon_ws->queue_empty(200ms));
}

// ---- throttling ----

TEST_F(auth_ws, persistent_abuse_is_answered_429_then_closed_with_4429) {
    start("[auth]\nthrottle.anonymous = \"5/min\"\nthrottle.user = \"unlimited\"\n", k_public_rules);
    auto c = connect();
    // The server may close before the last frames are written: a failed send ends the loop.
    for (int i = 0; i < 40; ++i)
        if (!c->send_json(json::object{{"stream", "cars"},
                                       {"payload", json::object{{"action", "list"}, {"request_id", i}}}}))
            break;
    expect_closed_with(*c, 4429);
    int ok = 0, throttled = 0;
    while (auto f = c->receive(0ms)) {
        const auto s = status_of(f);
        if (s == 200) ++ok;
        if (s == 429) {
            ++throttled;
            EXPECT_GE(payload_int(*f, "retry_after"), 1);
            EXPECT_TRUE(payload_of(*f, "request_id").is_int64());
        }
    }
    EXPECT_LE(ok, 5);
    EXPECT_GE(throttled, 20);
}

TEST_F(auth_ws, rest_and_websocket_drain_one_bucket) {
    start("[auth]\nthrottle.anonymous = \"5/min\"\nthrottle.user = \"unlimited\"\n", k_public_rules);
    int refused = 0;
    for (int i = 0; i < 10 && refused == 0; ++i)
        if (rest_->get("/api/cars").status == 429) ++refused;
    ASSERT_EQ(refused, 1) << "REST was never throttled";
    auto c = connect();
    auto r = c->request("cars", req("list"));
    EXPECT_EQ(status_of(r), 429);
    EXPECT_GE(payload_int(*r, "retry_after"), 1);
    EXPECT_TRUE(c->is_open());
}

}  // namespace
