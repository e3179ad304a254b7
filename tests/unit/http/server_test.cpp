// Loopback tests of the HTTP server: a real http_server on 127.0.0.1 port 0, a real SQLite store
// and api behind it, and the synchronous test client.
#include "support/test_backend.hpp"
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <livebase/api/api.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/http/server.hpp>
#include <livebase/gate/upgrade.hpp>
#include <livebase/store/store.hpp>
#include <mutex>
#include <optional>
#include <thread>

#include "support/cars.hpp"
#include "support/http_client.hpp"
#include "support/wait.hpp"

using namespace livebase;
using namespace std::chrono_literals;
using livebase::testing::http_client;
using livebase::testing::http_response;
using livebase::test::eventually;

namespace {

namespace fs = std::filesystem;

collection_def cars_collection() {
    auto c = test::small_cars();
    test::open_to_everyone(c);
    return c;
}

std::string raw_get(std::string_view target, std::string_view extra_headers = "") {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n" +
           std::string(extra_headers) + "\r\n";
}

class http_server_test : public ::testing::Test {
protected:
    /// `setup` runs before listen() (set_upgrade_handler, set_hub).
    void start(server_options o = {}, std::function<void(http_server&)> setup = {}) {
        dir_ = fs::temp_directory_path() / ("livebase-http-" + make_ulid());
        fs::create_directories(dir_);
        LIVEBASE_REQUIRE_BACKEND();
        auto opened = open_store(test::storage_url((dir_ / "test.db").string()));
        ASSERT_TRUE(opened) << opened.error().detail;
        store_ = std::move(*opened);
        auto c = cars_collection();
        ASSERT_EQ(finalize(c), "");
        reg_.add_collection(std::move(c));
        auto plan = store_->migrate(reg_.collections(), false, false);
        ASSERT_TRUE(plan) << plan.error().detail;
        api_ = std::make_unique<api>(reg_, *store_, log_, "/api");

        o.host = "127.0.0.1";
        o.port = 0;
        opts_ = o;
        server_ = std::make_unique<http_server>(ioc_, *api_, o, log_, metrics_);
        if (setup) setup(*server_);
        auto listening = server_->listen();
        ASSERT_TRUE(listening) << listening.error().detail;
        ASSERT_NE(server_->port(), 0);
        work_.emplace(ioc_.get_executor());
        for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
    }

    void TearDown() override {
        if (server_) {
            server_->close_all();
            eventually([&] { return server_->connections() == 0; }, 2s);
        }
        work_.reset();
        ioc_.stop();
        for (auto& t : threads_) t.join();
        server_.reset();
        api_.reset();
        if (store_) store_->close();
        store_.reset();
        std::error_code ec;
        if (!dir_.empty()) fs::remove_all(dir_, ec);
        if (log_file_) std::fclose(log_file_);
    }

    http_client client(std::chrono::milliseconds timeout = 5s) {
        return http_client(server_->port(), timeout);
    }

    std::string log_text() {
        std::fflush(log_file_);
        std::string out;
        std::rewind(log_file_);
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, log_file_)) > 0;)
            out.append(buf, n);
        std::fseek(log_file_, 0, SEEK_END);
        return out;
    }

    fs::path dir_;
    std::unique_ptr<store> store_;
    registry reg_;
    std::FILE* log_file_ = std::tmpfile();
    logger log_{log_file_};
    metrics metrics_;
    std::unique_ptr<api> api_;
    boost::asio::io_context ioc_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::vector<std::thread> threads_;
    server_options opts_;
    std::unique_ptr<http_server> server_;
};

void expect_problem(const http_response& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    auto body = r.json();
    ASSERT_TRUE(body.is_object()) << r.body;
    EXPECT_EQ(body.at("status").as_int64(), status);
    EXPECT_FALSE(body.at("title").as_string().empty());
}

}  // namespace

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

TEST_F(http_server_test, body_over_limit_is_413_and_closes) {
    server_options o;
    o.max_body = 1024;
    start(o);
    auto c = client();
    auto r = c.request("POST", "/api/cars", "{\"brand\":\"" + std::string(4096, 'x') + "\"}");
    expect_problem(r, 413);
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_TRUE(c.read_until_close(2s).closed);
    auto fresh = client();
    EXPECT_EQ(fresh.get("/api/health").status, 200);
}

TEST_F(http_server_test, huge_header_is_431) {
    server_options o;
    o.max_header = 2048;
    start(o);
    auto c = client();
    auto r = c.get("/api/health", {{"X-Big", std::string(4096, 'b')}});
    expect_problem(r, 431);
    EXPECT_TRUE(c.read_until_close(2s).closed);
}

TEST_F(http_server_test, long_uri_is_414) {
    server_options o;
    o.max_uri = 256;
    start(o);
    auto c = client();
    expect_problem(c.get("/api/cars?brand=" + std::string(400, 'f')), 414);
    EXPECT_EQ(c.get("/api/cars?brand=" + std::string(100, 'f')).status,
              200);  // keep-alive survives
}

TEST_F(http_server_test, non_json_body_is_415) {
    start();
    auto c = client();
    expect_problem(c.request("POST", "/api/cars", "brand=Ford", {{"Content-Type", "text/plain"}}),
                   415);
    expect_problem(c.request("POST", "/api/cars", "{\"brand\":\"Ford\"}",
                             {{"Content-Type", "application/merge-patch+json"}}),
                   415);
}

TEST_F(http_server_test, malformed_json_and_invalid_utf8_are_400) {
    start();
    auto c = client();
    auto r = c.request("POST", "/api/cars", "{\"brand\": ");
    expect_problem(r, 400);
    EXPECT_EQ(r.json().at("type").as_string(), "/problems/malformed-json");
    auto u = c.request("POST", "/api/cars", "{\"brand\": \"\xff\xfe\"}");
    expect_problem(u, 400);
    EXPECT_EQ(u.json().at("type").as_string(), "/problems/malformed-json");
    expect_problem(c.request("POST", "/api/cars", "[1,2]"), 400);
    expect_problem(c.request("PUT", "/api/cars/x", "{}", {{"If-Match", "v1"}}), 400);
}

TEST_F(http_server_test, invalid_utf8_in_path_or_query_is_400_with_a_json_body) {
    start();
    auto c = client();
    for (const char* target : {"/api/cars/%FF%FE", "/api/%FF", "/api/cars?%FF%FE=1",
                               "/api/cars?brand=%C3%28", "/api/cars/x:%FF",
                               "/api/cars/x?fields=%FF"}) {
        SCOPED_TRACE(target);
        auto r = c.get(target);
        EXPECT_EQ(r.status, 400);
        boost::system::error_code ec;
        boost::json::parse(r.body, ec);
        EXPECT_FALSE(ec) << r.body;
    }
    auto dup = c.request("POST", "/api/cars", R"({"brand":"Ford","brand":"Audi"})");
    expect_problem(dup, 400);
    EXPECT_EQ(dup.json().at("type").as_string(), "/problems/malformed-json");
    EXPECT_EQ(c.get("/api/cars").json().at("count").as_int64(), 0);
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

TEST_F(http_server_test, garbage_is_400_and_closes) {
    start();
    auto c = client();
    c.send_raw("THIS IS NOT HTTP\r\n\r\n");
    auto d = c.read_until_close(2s);
    EXPECT_TRUE(d.closed);
    EXPECT_EQ(d.bytes.rfind("HTTP/1.1 400", 0), 0u) << d.bytes;
    EXPECT_NE(d.bytes.find("application/problem+json"), std::string::npos);
    EXPECT_NE(d.bytes.find("X-Request-Id: "), std::string::npos);
    EXPECT_EQ(client().get("/api/health").status, 200);
}

/// Counts the "HTTP/1.x " status lines in raw response bytes.
std::size_t responses_in(const std::string& bytes) {
    std::size_t n = 0;
    for (std::size_t at = bytes.find("HTTP/1."); at != std::string::npos;
         at = bytes.find("HTTP/1.", at + 1))
        if (at == 0 || bytes.compare(at - 2, 2, "\r\n") == 0) ++n;
    return n;
}

TEST_F(http_server_test, transfer_encoding_not_ending_in_chunked_is_400_and_nothing_after_runs) {
    start();
    const std::string smuggled_body = R"({"brand":"Smuggled"})";
    const std::string smuggled = "POST /api/cars HTTP/1.1\r\nHost: x\r\nContent-Type: "
                                 "application/json\r\nContent-Length: " +
                                 std::to_string(smuggled_body.size()) + "\r\n\r\n" +
                                 smuggled_body;
    struct attempt {
        const char* version;
        const char* te;
        int status;
    };
    const attempt attempts[] = {
        {"HTTP/1.1", "gzip", 400},
        {"HTTP/1.1", "chunked, identity", 400},
        {"HTTP/1.1", "chunked, chunked", 400},
        {"HTTP/1.1", ",", 400},
        {"HTTP/1.0", "chunked", 400},
        {"HTTP/1.1", "gzip, chunked", 501},
        {"HTTP/1.1", "x-\xff\xfe, chunked", 501},
    };
    for (const auto& a : attempts) {
        SCOPED_TRACE(std::string(a.version) + " Transfer-Encoding: " + a.te);
        auto c = client();
        // The "body" is the smuggled request; a 501 request carries a valid chunked body first.
        std::string first = std::string("POST /api/cars ") + a.version +
                            "\r\nHost: x\r\nContent-Type: application/json\r\n"
                            "Transfer-Encoding: " + a.te + "\r\n\r\n";
        if (a.status == 501) first += "0\r\n\r\n";
        c.send_raw(first + smuggled);
        auto d = c.read_until_close(3s);
        EXPECT_TRUE(d.closed);
        EXPECT_EQ(d.bytes.find(" " + std::to_string(a.status) + " "), 8u) << d.bytes;
        EXPECT_EQ(responses_in(d.bytes), 1u) << d.bytes;
        if (std::string_view(a.version) == "HTTP/1.1") {  // 1.0 closes without saying so
            EXPECT_NE(d.bytes.find("Connection: close"), std::string::npos) << d.bytes;
        }
        // The problem body is valid JSON even when the coding was not.
        auto body = d.bytes.substr(d.bytes.find("\r\n\r\n") + 4);
        boost::system::error_code ec;
        auto parsed = boost::json::parse(body, ec);
        EXPECT_FALSE(ec) << body;
    }
    auto list = client().get("/api/cars?brand=Smuggled");
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.json().at("count").as_int64(), 0) << list.body;

    // A chunked body is still served, and the connection stays open.
    auto c = client();
    c.send_raw("POST /api/cars HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
               "Transfer-Encoding: chunked\r\n\r\n10\r\n{\"brand\":\"Ford\"}\r\n0\r\n\r\n");
    EXPECT_EQ(c.read_response().status, 201);
    EXPECT_EQ(c.get("/api/health").status, 200);
}

TEST_F(http_server_test, http11_request_without_exactly_one_host_is_400) {
    start();
    for (const char* head : {"GET /api/health HTTP/1.1\r\n\r\n",
                             "GET /api/health HTTP/1.1\r\nHost: a\r\nHost: b\r\n\r\n",
                             "GET /api/health HTTP/1.1\r\nHost: a b\r\n\r\n"}) {
        SCOPED_TRACE(head);
        auto c = client();
        c.send_raw(head);
        auto d = c.read_until_close(2s);
        EXPECT_TRUE(d.closed);
        EXPECT_EQ(d.bytes.rfind("HTTP/1.1 400", 0), 0u) << d.bytes;
    }
    auto c = client();
    c.send_raw("GET /api/health HTTP/1.1\r\nHost: [::1]:8080\r\n\r\n");
    EXPECT_EQ(c.read_response().status, 200);
}

TEST_F(http_server_test, max_header_counts_the_request_line_and_fields_together) {
    server_options o;
    o.max_header = 2048;
    start(o);
    // A request of exactly `size` header bytes, half in the target and half in a field.
    auto request_of = [](std::size_t size) {
        std::string head = "GET /api/health?pad= HTTP/1.1\r\nHost: x\r\nX-Pad: \r\n\r\n";
        const std::size_t pad = size - head.size();
        return "GET /api/health?pad=" + std::string(pad / 2, 'p') + " HTTP/1.1\r\nHost: x\r\nX-Pad: " +
               std::string(pad - pad / 2, 'q') + "\r\n\r\n";
    };
    ASSERT_EQ(request_of(2048).size(), 2048u);
    {
        auto c = client();
        c.send_raw(request_of(2048));
        EXPECT_EQ(c.read_response().status, 200);
    }
    {
        auto c = client();
        c.send_raw(request_of(2049));
        auto d = c.read_until_close(2s);
        EXPECT_TRUE(d.closed);
        EXPECT_EQ(d.bytes.rfind("HTTP/1.1 431", 0), 0u) << d.bytes;
    }
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

//------------------------------------------------------------------------------ WebSocket hand-off

namespace {

std::string upgrade_request(std::string_view target = "/ws", std::string_view extra = "") {
    return "GET " + std::string(target) +
           " HTTP/1.1\r\nHost: x\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n"
           "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n" +
           std::string(extra) + "\r\n";
}

/// Takes upgrades from the server's strand to the test thread.
struct upgrade_catcher {
    std::mutex mu;
    std::vector<std::unique_ptr<websocket_upgrade>> got;
    std::size_t count() {
        std::lock_guard lock(mu);
        return got.size();
    }
    std::unique_ptr<websocket_upgrade> take() {
        std::lock_guard lock(mu);
        if (got.empty()) return nullptr;
        auto up = std::move(got.front());
        got.erase(got.begin());
        return up;
    }
    std::function<void(http_server&)> install() {
        return [this](http_server& s) {
            s.set_upgrade_handler("/ws", [this](websocket_upgrade&& up) {
                std::lock_guard lock(mu);
                got.push_back(std::make_unique<websocket_upgrade>(std::move(up)));
            });
        };
    }
};

/// Reads from a handed-over connection until `want` bytes arrived past what the upgrade
/// already buffered, or the deadline passes (never blocks: polls available()).
std::string read_handed_over(websocket_upgrade& up, std::size_t want) {
    std::string out = boost::beast::buffers_to_string(up.buffer.data());
    auto& sock = up.stream.socket();
    const auto deadline = std::chrono::steady_clock::now() + 5s;
    while (out.size() < want && std::chrono::steady_clock::now() < deadline) {
        boost::system::error_code ec;
        auto n = sock.available(ec);
        if (ec) break;
        if (n == 0) {
            std::this_thread::sleep_for(5ms);
            continue;
        }
        std::string chunk(n, '\0');
        n = sock.read_some(boost::asio::buffer(chunk), ec);
        if (ec) break;
        out.append(chunk, 0, n);
    }
    return out;
}

}  // namespace

TEST_F(http_server_test, upgrade_is_handed_over_after_earlier_responses) {
    upgrade_catcher catcher;
    start({}, catcher.install());
    auto c = client();
    // A pipelined request before the upgrade, and the first WebSocket bytes right behind it.
    c.send_raw(raw_get("/api/health") + upgrade_request("/ws", "X-Request-Id: up-1\r\n") +
               "first-frame");
    auto health = c.read_response();
    EXPECT_EQ(health.status, 200);
    ASSERT_TRUE(eventually([&] { return catcher.count() == 1; }));
    auto up = catcher.take();
    ASSERT_TRUE(up);
    EXPECT_EQ(up->request.target(), "/ws");
    EXPECT_EQ(up->request["Sec-WebSocket-Key"], "dGhlIHNhbXBsZSBub25jZQ==");
    EXPECT_EQ(up->request_id, "up-1");
    // No byte after the request is lost, whether the session had read it or not.
    EXPECT_EQ(read_handed_over(*up, 11), "first-frame");

    // The HTTP session let go: not counted, but the socket is open and the handler's.
    EXPECT_TRUE(eventually([&] { return server_->connections() == 0; }));
    boost::asio::write(up->stream,
                       boost::asio::buffer(std::string_view("HTTP/1.1 101 x\r\n\r\nhi")));
    up.reset();  // closes it
    auto rest = c.read_until_close(3s);
    EXPECT_TRUE(rest.closed);
    EXPECT_EQ(rest.bytes, "HTTP/1.1 101 x\r\n\r\nhi");

    // Logged and counted as a 101 on the WebSocket route.
    ASSERT_TRUE(eventually([&] { return log_text().find("\"up-1\"") != std::string::npos; }));
    EXPECT_NE(log_text().find("\"status\":101"), std::string::npos) << log_text();
    EXPECT_NE(metrics_.render().find(
                  R"(livebase_http_requests_total{route="/ws",method="GET",status="101"} 1)"),
              std::string::npos);
}

TEST_F(http_server_test, close_all_does_not_reach_a_handed_over_socket) {
    upgrade_catcher catcher;
    start({}, catcher.install());
    auto c = client();
    c.send_raw(upgrade_request());
    ASSERT_TRUE(eventually([&] { return catcher.count() == 1; }));
    auto up = catcher.take();
    ASSERT_TRUE(eventually([&] { return server_->connections() == 0; }));
    server_->close_all();
    std::this_thread::sleep_for(50ms);
    // Still writable from the handler's side.
    boost::system::error_code ec;
    boost::asio::write(up->stream, boost::asio::buffer(std::string_view("still here")), ec);
    EXPECT_FALSE(ec) << ec.message();
    up.reset();
    auto rest = c.read_until_close(3s);
    EXPECT_EQ(rest.bytes, "still here");
}

TEST_F(http_server_test, websocket_path_without_upgrade_is_426) {
    upgrade_catcher catcher;
    start({}, catcher.install());
    auto c = client();
    auto r = c.get("/ws");
    expect_problem(r, 426);
    EXPECT_EQ(r.header("Upgrade"), "websocket");
    // HTTP/1.0 cannot upgrade either; the connection stays usable after a 426.
    EXPECT_EQ(c.get("/api/health").status, 200);
    c.send_raw("GET /ws HTTP/1.0\r\nConnection: Upgrade\r\nUpgrade: websocket\r\n\r\n");
    EXPECT_EQ(c.read_response().status, 426);
    auto other = client();
    auto post = other.request("POST", "/ws", "{}");
    EXPECT_EQ(post.status, 405);
    EXPECT_EQ(post.header("Allow"), "GET");
    EXPECT_EQ(catcher.count(), 0u);
}

TEST_F(http_server_test, websocket_path_without_handler_is_404) {
    start();
    auto c = client();
    c.send_raw(upgrade_request());
    expect_problem(c.read_response(), 404);
}

TEST_F(http_server_test, upgrade_while_draining_is_503) {
    upgrade_catcher catcher;
    start({}, catcher.install());
    auto busy = client();
    auto req = upgrade_request();
    busy.send_raw(req.substr(0, req.size() - 2));  // all but the final CRLF: in progress
    ASSERT_TRUE(eventually([&] { return server_->connections() == 1; }));
    std::this_thread::sleep_for(50ms);
    server_->drain();
    busy.send_raw("\r\n");
    auto r = busy.read_response();
    expect_problem(r, 503);
    EXPECT_EQ(r.header("Retry-After"), "1");
    EXPECT_TRUE(busy.read_until_close(2s).closed);
    EXPECT_EQ(catcher.count(), 0u);
}

TEST_F(http_server_test, realtime_routes_without_a_hub_are_404) {
    start();
    auto c = client();
    expect_problem(c.get("/api/cars/events"), 404);  // a stream is its connection's last
    auto d = client();
    auto r = d.get("/api/cars?observe=abc");
    expect_problem(r, 404);
    EXPECT_EQ(d.get("/api/cars?observe=").status, 400);
    EXPECT_EQ(d.get("/api/cars").status, 200);
}
