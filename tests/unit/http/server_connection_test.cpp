// Loopback tests of the HTTP server's connections: keep-alive, pipelining and its limit,
// Connection: close, timeouts, abrupt peers, max_connections, drain, readiness and close_all().
#include "unit/http/server_fixture.hpp"

#include <chrono>
#include <string>
#include <thread>

using namespace livebase;
using namespace std::chrono_literals;
using livebase::testing::http_client;
using livebase::testing::http_response;
using livebase::test::eventually;

TEST_F(http_server_test, keep_alive_serves_many_requests) {
    start();
    auto c = client();
    for (int i = 0; i < 10; ++i) {
        auto r = c.get(i % 2 ? "/api/health" : "/api/cars",
                       {{"X-Request-Id", "ka-" + std::to_string(i)}});
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.header("X-Request-Id"), "ka-" + std::to_string(i));
        EXPECT_TRUE(c.is_open());
    }
    EXPECT_EQ(server_->connections(), 1u);
}

TEST_F(http_server_test, pipelined_responses_in_request_order) {
    start();
    auto c = client();
    // Mixed work: store writes, store reads and immediate answers finish out of order.
    std::string batch;
    const char* targets[] = {"/api/cars", "/api/health", "/api/cars/none", "/nowhere", "/metrics"};
    for (int i = 0; i < 5; ++i) {
        if (i == 0) {
            std::string body = R"({"brand":"Pipelined"})";
            batch +=
                "POST /api/cars HTTP/1.1\r\nHost: x\r\nX-Request-Id: p-0\r\nContent-Type: "
                "application/json\r\n"
                "Content-Length: " +
                std::to_string(body.size()) + "\r\n\r\n" + body;
        } else {
            batch += raw_get(targets[i], "X-Request-Id: p-" + std::to_string(i) + "\r\n");
        }
    }
    c.send_raw(batch);
    const int expected[] = {201, 200, 404, 404, 200};
    for (int i = 0; i < 5; ++i) {
        auto r = c.read_response();
        EXPECT_EQ(r.header("X-Request-Id"), "p-" + std::to_string(i));
        EXPECT_EQ(r.status, expected[i]) << i << " " << r.body;
    }
    EXPECT_EQ(c.get("/api/health").status, 200);
}

TEST_F(http_server_test, pipeline_limit_applies_backpressure_without_losing_requests) {
    server_options o;
    o.pipeline_limit = 2;
    start(o);
    auto c = client();
    std::string batch;
    for (int i = 0; i < 20; ++i)
        batch += raw_get("/api/cars", "X-Request-Id: q-" + std::to_string(i) + "\r\n");
    c.send_raw(batch);
    for (int i = 0; i < 20; ++i) {
        auto r = c.read_response();
        EXPECT_EQ(r.status, 200);
        EXPECT_EQ(r.header("X-Request-Id"), "q-" + std::to_string(i));
    }
}

TEST_F(http_server_test, connection_close_is_honoured) {
    start();
    auto c = client();
    auto r = c.get("/api/health", {{"Connection", "close"}});
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_FALSE(c.is_open());
    EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));

    // HTTP/1.0 without keep-alive closes as well.
    auto old = client();
    old.send_raw("GET /api/health HTTP/1.0\r\n\r\n");
    auto d = old.read_until_close(2s);
    EXPECT_TRUE(d.closed);
    EXPECT_EQ(d.bytes.rfind("HTTP/1.0 200", 0), 0u) << d.bytes;
}

TEST_F(http_server_test, slow_header_is_cut_after_read_timeout) {
    server_options o;
    o.read_timeout = 300ms;
    start(o);
    auto c = client();
    c.send_raw("GET /api/health HTTP/1.1\r\nHost: x\r\n");  // never finishes the header
    const auto t0 = std::chrono::steady_clock::now();
    auto d = c.read_until_close(3s);
    const auto waited = std::chrono::steady_clock::now() - t0;
    EXPECT_TRUE(d.closed);
    EXPECT_LT(waited, 2s);
    EXPECT_GE(waited, 200ms);
    EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(http_server_test, idle_keep_alive_connection_is_closed) {
    server_options o;
    o.idle_timeout = 300ms;
    start(o);
    auto c = client();
    ASSERT_EQ(c.get("/api/health").status, 200);
    auto d = c.read_until_close(3s);
    EXPECT_TRUE(d.closed);
    EXPECT_TRUE(d.bytes.empty());
}

TEST_F(http_server_test, abrupt_disconnect_mid_body_does_not_hurt_others) {
    start();
    {
        auto a = client();
        a.send_raw(
            "POST /api/cars HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
            "Content-Length: 1000\r\n\r\n{\"brand\":");
        a.close();
    }
    {
        auto b = client();
        b.send_raw(raw_get("/api/health"));
        b.close();  // leaves without reading the response
    }
    auto c = client();
    EXPECT_EQ(c.get("/api/health").status, 200);
    EXPECT_TRUE(eventually([&] { return server_->connections() == 1; }));
}

TEST_F(http_server_test, over_max_connections_is_503) {
    server_options o;
    o.max_connections = 2;
    start(o);
    auto a = client();
    auto b = client();
    ASSERT_EQ(a.get("/api/health").status, 200);
    ASSERT_EQ(b.get("/api/health").status, 200);
    auto c = client();
    c.connect();
    c.send_raw(raw_get("/api/health"));
    auto r = c.read_response();
    expect_problem(r, 503);
    EXPECT_EQ(r.header("Retry-After"), "1");
    EXPECT_TRUE(c.read_until_close(2s).closed);
    EXPECT_EQ(server_->connections(), 2u);
    a.close();
    ASSERT_TRUE(eventually([&] { return server_->connections() == 1; }));
    EXPECT_EQ(client().get("/api/health").status, 200);
}

TEST_F(http_server_test, drain_refuses_new_work_and_closes_idle) {
    start();
    auto idle = client();
    ASSERT_EQ(idle.get("/api/health").status, 200);
    auto busy = client();
    busy.send_raw("GET /api/health HTTP/1.1\r\nHost: x\r\n");  // a request in progress
    ASSERT_TRUE(eventually([&] { return server_->connections() == 2; }));
    std::this_thread::sleep_for(50ms);

    server_->drain();
    EXPECT_TRUE(idle.read_until_close(2s).closed);
    std::this_thread::sleep_for(50ms);
    busy.send_raw("\r\n");
    auto r = busy.read_response();
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, R"({"status":"draining"})");
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_TRUE(busy.read_until_close(2s).closed);

    auto late = client(1s);
    EXPECT_FALSE(late.try_connect());
    EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}

TEST_F(http_server_test, readiness_is_200_while_serving_and_503_with_retry_after_while_draining) {
    start();
    auto c = client();
    auto r = c.get("/api/health/ready");
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.body, R"({"status":"ok"})");
    server_->drain();  // idle: stays open for a short grace, so this request is still answered
    r = c.get("/api/health/ready");
    EXPECT_EQ(r.status, 503);
    EXPECT_EQ(r.body, R"({"status":"draining"})");
    EXPECT_EQ(r.header("Retry-After"), "1");
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_TRUE(c.read_until_close(2s).closed);
}

TEST_F(http_server_test, close_all_closes_everything) {
    start();
    auto a = client();
    auto b = client();
    ASSERT_EQ(a.get("/api/health").status, 200);
    ASSERT_EQ(b.get("/api/health").status, 200);
    server_->close_all();
    EXPECT_TRUE(a.read_until_close(2s).closed);
    EXPECT_TRUE(b.read_until_close(2s).closed);
    EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
}
