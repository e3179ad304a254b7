// Loopback tests of the HTTP server's realtime routes: the WebSocket hand-off (after earlier
// responses, out of close_all()'s reach, 426, 404 and 503), and realtime routes without a hub.
#include "unit/http/server_fixture.hpp"

#include <boost/asio/buffer.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <chrono>
#include <cstddef>
#include <functional>
#include <livebase/gate/upgrade.hpp>
#include <memory>
#include <mutex>
#include <string>
#include <string_view>
#include <thread>
#include <utility>
#include <vector>

using namespace livebase;
using namespace std::chrono_literals;
using livebase::testing::http_client;
using livebase::testing::http_response;
using livebase::test::eventually;

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
