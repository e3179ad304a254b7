// Loopback tests of the HTTP server refusing requests: size limits (413, 414, 431), bodies (415,
// 400), garbage, Transfer-Encoding not ending in chunked, and a missing or repeated Host.
#include "unit/http/server_fixture.hpp"

#include <boost/json/parse.hpp>
#include <boost/system/error_code.hpp>
#include <chrono>
#include <cstddef>
#include <livebase/core/json.hpp>
#include <string>
#include <string_view>

using namespace livebase;
using namespace std::chrono_literals;
using livebase::testing::http_client;
using livebase::testing::http_response;
using livebase::test::eventually;

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

namespace {

/// Counts the "HTTP/1.x " status lines in raw response bytes.
std::size_t responses_in(const std::string& bytes) {
    std::size_t n = 0;
    for (std::size_t at = bytes.find("HTTP/1."); at != std::string::npos;
         at = bytes.find("HTTP/1.", at + 1))
        if (at == 0 || bytes.compare(at - 2, 2, "\r\n") == 0) ++n;
    return n;
}

}  // namespace

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
