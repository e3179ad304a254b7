#include "http/router.hpp"

#include <gtest/gtest.h>

using livebase::op_kind;
using livebase::http_detail::route_kind;
using livebase::http_detail::router;

TEST(router, health_and_metrics) {
    router r("/api");
    auto h = r.match("GET", "/api/health");
    EXPECT_EQ(h.kind, route_kind::health);
    EXPECT_EQ(h.route, "/api/health");
    EXPECT_EQ(r.match("GET", "/api/health/").kind, route_kind::health);
    auto bad = r.match("POST", "/api/health");
    EXPECT_EQ(bad.kind, route_kind::method_not_allowed);
    EXPECT_EQ(bad.allow, "GET");
    auto ready = r.match("GET", "/api/health/ready");
    EXPECT_EQ(ready.kind, route_kind::ready);
    EXPECT_EQ(ready.route, "/api/health/ready");
    EXPECT_EQ(r.match("POST", "/api/health/ready").kind, route_kind::method_not_allowed);
    EXPECT_EQ(r.match("GET", "/api/health/other").kind, route_kind::records);

    auto m = r.match("GET", "/metrics");
    EXPECT_EQ(m.kind, route_kind::metrics);
    EXPECT_EQ(m.route, "/metrics");
    EXPECT_EQ(r.match("GET", "/metrics/").kind, route_kind::metrics);
    EXPECT_EQ(r.match("DELETE", "/metrics").kind, route_kind::method_not_allowed);
    EXPECT_EQ(r.match("GET", "/api/metrics").kind, route_kind::records);  // a collection
}

TEST(router, collection_routes) {
    router r("/api");
    auto list = r.match("GET", "/api/cars");
    ASSERT_EQ(list.kind, route_kind::records);
    EXPECT_EQ(list.op.kind, op_kind::list);
    EXPECT_EQ(list.op.collection, "cars");
    EXPECT_EQ(list.route, "/api/{c}");

    auto create = r.match("POST", "/api/cars/");
    ASSERT_EQ(create.kind, route_kind::records);
    EXPECT_EQ(create.op.kind, op_kind::create);
    EXPECT_EQ(create.op.method, "POST");

    for (const char* m : {"PUT", "PATCH", "DELETE", "HEAD", "OPTIONS"}) {
        auto bad = r.match(m, "/api/cars");
        EXPECT_EQ(bad.kind, route_kind::method_not_allowed) << m;
        EXPECT_EQ(bad.allow, "GET, POST") << m;
        EXPECT_EQ(bad.route, "/api/{c}");
    }
}

TEST(router, detail_routes) {
    router r("/api");
    const std::pair<const char*, op_kind> cases[] = {{"GET", op_kind::retrieve},
                                                     {"PUT", op_kind::replace},
                                                     {"PATCH", op_kind::patch},
                                                     {"DELETE", op_kind::remove}};
    for (auto [method, kind] : cases) {
        auto m = r.match(method, "/api/cars/01JD2ABC");
        ASSERT_EQ(m.kind, route_kind::records) << method;
        EXPECT_EQ(m.op.kind, kind) << method;
        EXPECT_EQ(m.op.collection, "cars");
        EXPECT_EQ(m.op.id, "01JD2ABC");
        EXPECT_EQ(m.route, "/api/{c}/{id}");
    }
    auto bad = r.match("POST", "/api/cars/1/");
    EXPECT_EQ(bad.kind, route_kind::method_not_allowed);
    EXPECT_EQ(bad.allow, "GET, PUT, PATCH, DELETE");
}

TEST(router, actions_pass_any_method) {
    router r("/api");
    auto la = r.match("POST", "/api/cars:recount");
    ASSERT_EQ(la.kind, route_kind::records);
    EXPECT_EQ(la.op.kind, op_kind::action);
    EXPECT_EQ(la.op.collection, "cars");
    EXPECT_EQ(la.op.action, "recount");
    EXPECT_TRUE(la.op.id.empty());
    EXPECT_EQ(la.route, "/api/{c}:{action}");

    auto da = r.match("GET", "/api/cars/42:paint/");
    ASSERT_EQ(da.kind, route_kind::records);
    EXPECT_EQ(da.op.kind, op_kind::action);
    EXPECT_EQ(da.op.id, "42");
    EXPECT_EQ(da.op.action, "paint");
    EXPECT_EQ(da.op.method, "GET");
    EXPECT_EQ(da.route, "/api/{c}/{id}:{action}");

    EXPECT_EQ(r.match("DELETE", "/api/cars/42:paint").kind, route_kind::records);
}

TEST(router, percent_decoding) {
    router r("/api");
    auto m = r.match("GET", "/api/my%20cars/a%2Bb+c");
    ASSERT_EQ(m.kind, route_kind::records);
    EXPECT_EQ(m.op.collection, "my cars");
    EXPECT_EQ(m.op.id, "a+b+c");  // '+' is not a space in a path

    auto colon = r.match("GET", "/api/cars/a%3Ab");  // an encoded colon is part of the id
    ASSERT_EQ(colon.kind, route_kind::records);
    EXPECT_EQ(colon.op.kind, op_kind::retrieve);
    EXPECT_EQ(colon.op.id, "a:b");

    EXPECT_EQ(r.match("GET", "/api/cars/a%2Fb").kind, route_kind::not_found);
    EXPECT_EQ(r.match("GET", "/api/cars/%zz").kind, route_kind::not_found);
    EXPECT_EQ(r.match("GET", "/api/cars/%00").kind, route_kind::not_found);
}

TEST(router, unknown_paths) {
    router r("/api");
    for (const char* p :
         {"/", "", "/api", "/api/", "/api//", "/api/cars//", "/api//1", "/apix/cars", "/other/cars",
          "/api/cars/1/2", "/api/cars:", "/api/:x", "/api/c:a/1", "/api/cars/:x", "*"}) {
        auto m = r.match("GET", p);
        EXPECT_EQ(m.kind, route_kind::not_found) << p;
        EXPECT_EQ(m.route, "unmatched") << p;
    }
}

TEST(router, base_path_normalization) {
    router v1("v1/");
    EXPECT_EQ(v1.base_path(), "/v1");
    EXPECT_EQ(v1.match("GET", "/v1/cars").route, "/v1/{c}");
    EXPECT_EQ(v1.match("GET", "/v1/health").kind, route_kind::health);
    EXPECT_EQ(v1.match("GET", "/api/cars").kind, route_kind::not_found);

    router root("/");
    EXPECT_EQ(root.base_path(), "");
    auto m = root.match("GET", "/cars/7");
    ASSERT_EQ(m.kind, route_kind::records);
    EXPECT_EQ(m.op.id, "7");
    EXPECT_EQ(m.route, "/{c}/{id}");
    EXPECT_EQ(root.match("GET", "/metrics").kind, route_kind::metrics);
}

TEST(router, events_route) {
    router r("/api");
    auto e = r.match("GET", "/api/cars/events");
    ASSERT_EQ(e.kind, route_kind::events);
    EXPECT_EQ(e.op.collection, "cars");
    EXPECT_EQ(e.route, "/api/{c}/events");
    EXPECT_EQ(r.match("GET", "/api/cars/events/").kind, route_kind::events);
    EXPECT_EQ(r.match("GET", "/api/tasks/events").kind, route_kind::events);

    // "events" is never a record id: every other method is refused on the stream's path.
    for (const char* m : {"PUT", "PATCH", "DELETE", "POST"}) {
        auto bad = r.match(m, "/api/cars/events");
        EXPECT_EQ(bad.kind, route_kind::method_not_allowed) << m;
        EXPECT_EQ(bad.allow, "GET") << m;
        EXPECT_EQ(bad.route, "/api/{c}/events") << m;
    }
    // An action on it stays an action (the api answers it); an encoded name is an ordinary id.
    EXPECT_EQ(r.match("POST", "/api/cars/events:x").op.kind, op_kind::action);
    auto encoded = r.match("GET", "/api/cars/%65vents");
    ASSERT_EQ(encoded.kind, route_kind::records);
    EXPECT_EQ(encoded.op.kind, op_kind::retrieve);
    // Deeper paths and the collection itself are unchanged.
    EXPECT_EQ(r.match("GET", "/api/cars/events/1").kind, route_kind::not_found);
    EXPECT_EQ(r.match("GET", "/api/events").kind, route_kind::records);
    EXPECT_EQ(r.match("GET", "/api/events").op.kind, op_kind::list);
}

TEST(router, websocket_path) {
    router none("/api");
    EXPECT_EQ(none.match("GET", "/ws").kind, route_kind::not_found);

    router r("/api", "/ws");
    auto w = r.match("GET", "/ws");
    EXPECT_EQ(w.kind, route_kind::websocket);
    EXPECT_EQ(w.route, "/ws");
    EXPECT_EQ(r.match("GET", "/ws/").kind, route_kind::websocket);
    auto bad = r.match("POST", "/ws");
    EXPECT_EQ(bad.kind, route_kind::method_not_allowed);
    EXPECT_EQ(bad.allow, "GET");
    EXPECT_EQ(r.match("GET", "/ws/x").kind, route_kind::not_found);
    EXPECT_EQ(r.match("GET", "/api/ws").kind, route_kind::records);  // a collection
    EXPECT_EQ(r.match("GET", "/api/health").kind, route_kind::health);

    router root("/", "ws");  // the WebSocket path shadows a collection of that name
    EXPECT_EQ(root.match("GET", "/ws").kind, route_kind::websocket);
    EXPECT_EQ(root.match("GET", "/cars").kind, route_kind::records);
}

TEST(router, auth_routes) {
    router r("/api");
    auto login = r.match("POST", "/api/auth/login");
    ASSERT_EQ(login.kind, route_kind::records);
    EXPECT_EQ(login.op.collection, "auth");
    EXPECT_EQ(login.op.kind, op_kind::action);
    EXPECT_EQ(login.op.action, "login");
    EXPECT_EQ(login.route, "/api/auth/login");
    EXPECT_EQ(r.match("POST", "/api/auth/logout/").op.action, "logout");
    EXPECT_EQ(r.match("POST", "/api/auth/register").op.action, "register");
    auto me = r.match("GET", "/api/auth/me");
    EXPECT_EQ(me.op.action, "me");
    EXPECT_EQ(me.op.method, "GET");

    auto wrong = r.match("GET", "/api/auth/login");
    EXPECT_EQ(wrong.kind, route_kind::method_not_allowed);
    EXPECT_EQ(wrong.allow, "POST");
    EXPECT_EQ(r.match("POST", "/api/auth/me").allow, "GET");
    EXPECT_EQ(r.match("POST", "/api/auth/nope").kind, route_kind::not_found);
    EXPECT_EQ(r.match("POST", "/api/auth/login/x").kind, route_kind::not_found);
    EXPECT_EQ(r.match("GET", "/api/auth").kind, route_kind::not_found);
}
