// Loopback tests of the HTTP server (server_fixture.hpp): health, metrics, request ids, the access
// log, unknown routes (404) and methods (405), and a record's round trip over REST.
#include "unit/http/server_fixture.hpp"

#include <livebase/core/json.hpp>
#include <livebase/core/ulid.hpp>
#include <string>

using namespace livebase;
using namespace std::chrono_literals;
using livebase::testing::http_client;
using livebase::testing::http_response;
using livebase::test::eventually;

TEST_F(http_server_test, health) {
    start();
    auto c = client();
    auto r = c.get("/api/health");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_EQ(r.body, R"({"status":"ok"})");
    EXPECT_EQ(r.header("Server"), "livebase");
    EXPECT_EQ(r.header("Content-Length"), std::to_string(r.body.size()));
    EXPECT_TRUE(is_ulid(r.header("X-Request-Id"))) << r.header("X-Request-Id");
    EXPECT_EQ(c.get("/api/health/").status, 200);  // trailing slash, no redirect
}

TEST_F(http_server_test, metrics_endpoint) {
    start();
    auto c = client();
    ASSERT_EQ(c.get("/api/health").status, 200);
    auto r = c.get("/metrics");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Content-Type").rfind("text/plain; version=0.0.4", 0), 0u)
        << r.header("Content-Type");
    EXPECT_NE(r.body.find("livebase_http_requests_total{route=\"/api/"
                          "health\",method=\"GET\",status=\"200\"} 1\n"),
              std::string::npos)
        << r.body;
    EXPECT_NE(
        r.body.find("livebase_http_request_duration_seconds_count{route=\"/api/health\"} 1\n"),
        std::string::npos);
    EXPECT_NE(r.body.find("livebase_open_connections 1\n"), std::string::npos);
    EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(http_server_test, request_id_echo_and_generation) {
    start();
    auto c = client();
    EXPECT_EQ(c.get("/api/health", {{"X-Request-Id", "abc-123_x.y"}}).header("X-Request-Id"),
              "abc-123_x.y");
    auto bad = c.get("/api/health", {{"X-Request-Id", "not valid!"}}).header("X-Request-Id");
    EXPECT_TRUE(is_ulid(bad)) << bad;
    auto too_long =
        c.get("/api/health", {{"X-Request-Id", std::string(201, 'a')}}).header("X-Request-Id");
    EXPECT_TRUE(is_ulid(too_long));
    // Error responses carry it too.
    EXPECT_EQ(c.get("/nowhere", {{"X-Request-Id", "err-1"}}).header("X-Request-Id"), "err-1");
}

TEST_F(http_server_test, access_log_line) {
    start();
    auto c = client();
    ASSERT_EQ(c.get("/api/health?verbose=1", {{"X-Request-Id", "log-test-1"}}).status, 200);
    // The whole line: the log may be read while the line is being written.
    ASSERT_TRUE(eventually([&] {
        auto t = log_text();
        auto at = t.find("log-test-1");
        return at != std::string::npos && t.find('\n', at) != std::string::npos;
    }));
    std::string line;
    auto text = log_text();
    auto at = text.find("log-test-1");
    auto begin = text.rfind('\n', at);
    line = text.substr(begin == std::string::npos ? 0 : begin + 1,
                       text.find('\n', at) - (begin == std::string::npos ? 0 : begin + 1));
    auto v = parse_json(line);
    ASSERT_TRUE(v && v->is_object()) << line;
    const auto& o = v->as_object();
    EXPECT_EQ(get_string(o, "msg"), "request");
    EXPECT_EQ(get_string(o, "method"), "GET");
    EXPECT_EQ(get_string(o, "path"), "/api/health");  // no query string
    EXPECT_EQ(get_int(o, "status"), 200);
    EXPECT_TRUE(o.contains("ms"));
    EXPECT_GT(get_int(o, "bytes").value_or(0), 0);
}

TEST_F(http_server_test, unknown_route_is_404_problem) {
    start();
    auto c = client();
    expect_problem(c.get("/nowhere"), 404);
    expect_problem(c.get("/api/cars/1/2"), 404);
    expect_problem(c.get("/api/cars/a%2Fb"), 404);
    expect_problem(c.get("/api/nosuchcollection"), 404);  // decided by the api
    EXPECT_EQ(c.get("/api/health").status, 200);          // connection still usable
}

TEST_F(http_server_test, method_not_allowed_has_allow) {
    start();
    auto c = client();
    auto r = c.request("PUT", "/api/cars", "{}");
    expect_problem(r, 405);
    EXPECT_EQ(r.header("Allow"), "GET, POST");
    auto d = c.request("POST", "/api/cars/01ABC", "{}");
    expect_problem(d, 405);
    EXPECT_EQ(d.header("Allow"), "GET, PUT, PATCH, DELETE");
    auto h = c.request("DELETE", "/api/health");
    EXPECT_EQ(h.status, 405);
    EXPECT_EQ(h.header("Allow"), "GET");
    auto head = c.request("HEAD", "/api/health");  // HEAD is not served (documented)
    EXPECT_EQ(head.status, 405);
}

TEST_F(http_server_test, records_round_trip) {
    start();
    auto c = client();
    auto created = c.post("/api/cars", json::object{{"brand", "Ford"}, {"model", 2014}});
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_EQ(created.header("Content-Type"), "application/json");
    auto id = std::string(created.json().at("id").as_string());
    EXPECT_EQ(created.header("Location"), "/api/cars/" + id);
    EXPECT_EQ(created.header("ETag"), "\"v1\"");

    auto got = c.get("/api/cars/" + id);
    ASSERT_EQ(got.status, 200);
    EXPECT_EQ(got.header("ETag"), "\"v1\"");
    EXPECT_EQ(got.json().at("brand").as_string(), "Ford");

    auto not_modified = c.get("/api/cars/" + id, {{"If-None-Match", "\"v1\""}});
    EXPECT_EQ(not_modified.status, 304);
    EXPECT_TRUE(not_modified.body.empty());
    EXPECT_EQ(not_modified.header("ETag"), "\"v1\"");

    auto patched =
        c.request("PATCH", "/api/cars/" + id + "/", R"({"model":2015})",
                  {{"Content-Type", "application/merge-patch+json"}, {"If-Match", "\"v1\""}});
    ASSERT_EQ(patched.status, 200) << patched.body;
    EXPECT_EQ(patched.header("ETag"), "\"v2\"");

    auto stale =
        c.request("PUT", "/api/cars/" + id, R"({"brand":"Opel"})", {{"If-Match", "\"v1\""}});
    expect_problem(stale, 412);

    auto list = c.get("/api/cars?brand=Ford&ordering=-model");
    ASSERT_EQ(list.status, 200) << list.body;
    EXPECT_EQ(list.json().at("count").as_int64(), 1);
    auto none = c.get("/api/cars?brand=Ford+Focus");  // '+' decodes to a space
    ASSERT_EQ(none.status, 200);
    EXPECT_EQ(none.json().at("count").as_int64(), 0);

    auto removed = c.request("DELETE", "/api/cars/" + id);
    EXPECT_EQ(removed.status, 204);
    EXPECT_TRUE(removed.body.empty());
    EXPECT_FALSE(removed.has_header("Content-Length") && removed.header("Content-Length") != "0");
    expect_problem(c.get("/api/cars/" + id), 404);
}
