// Concurrency and bad peers: the server keeps serving and loses no acknowledged write.
#include "support/test_app.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>

#include <mutex>
#include <thread>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {
// Opens a raw socket, writes `bytes`, and drops the connection without reading.
void send_and_drop(std::uint16_t port, const std::string& bytes) {
    boost::asio::io_context ioc;
    boost::asio::ip::tcp::socket s(ioc);
    boost::system::error_code ec;
    s.connect({boost::asio::ip::make_address("127.0.0.1"), port}, ec);
    if (ec) return;
    boost::asio::write(s, boost::asio::buffer(bytes), ec);
    s.close(ec);
}
}  // namespace

using robustness = server_test;

TEST_F(robustness, concurrent_writers_and_abrupt_disconnects_lose_nothing) {
    constexpr int k_threads = 6;
    constexpr int k_per_thread = 60;
    std::mutex mu;
    std::vector<std::string> acknowledged;
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&, t] {
            http_client c(app_.port());
            for (int i = 0; i < k_per_thread; ++i) {
                if (i % 10 == 0) {
                    // a peer that vanishes mid-body, and one that sends garbage
                    send_and_drop(app_.port(),
                                  "POST /api/cars HTTP/1.1\r\nHost: x\r\nContent-Type: application/json\r\n"
                                  "Content-Length: 100\r\n\r\n{\"brand\": \"Hal");
                    send_and_drop(app_.port(), "\x16\x03\x01garbage\r\n\r\n");
                }
                auto r = c.post("/api/cars", json::object{{"brand", "T" + std::to_string(t)}, {"model", 2000 + i}});
                if (r.status == 201) {
                    std::lock_guard<std::mutex> lock(mu);
                    acknowledged.push_back(std::string(r.json().at("id").get_string()));
                } else {
                    ADD_FAILURE() << r.status << " " << r.body;
                }
            }
        });
    }
    for (auto& t : threads) t.join();
    EXPECT_EQ(acknowledged.size(), static_cast<std::size_t>(k_threads * k_per_thread));
    auto c = client();
    EXPECT_EQ(c.get("/api/cars?limit=1").json().at("count"), k_threads * k_per_thread);
    for (std::size_t i = 0; i < acknowledged.size(); i += 37)
        EXPECT_EQ(c.get("/api/cars/" + acknowledged[i]).status, 200);
    // no half-written record from the dropped bodies
    EXPECT_EQ(c.get("/api/cars?brand__startswith=Hal").json().at("count"), 0);
}

TEST_F(robustness, acknowledged_writes_survive_a_restart) {
    std::string id;
    {
        auto c = client();
        auto r = c.post("/api/cars", json::object{{"brand", "Durable"}});
        ASSERT_EQ(r.status, 201);
        id = std::string(r.json().at("id").get_string());
    }
    app_.stop();
    livebase::app again;
    ASSERT_TRUE(again.load_config_string(test_config(dir_.path() / "test.db"), "test.toml"));
    again.log().set_level(log_level::warn);
    ASSERT_TRUE(again.start());
    http_client c(again.port());
    auto r = c.get("/api/cars/" + id);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.json().at("brand"), "Durable");
    again.stop();
}

TEST_F(robustness, oversized_body_is_413_and_server_keeps_serving) {
    auto c = client();
    std::string big = "{\"brand\": \"" + std::string(70 * 1024, 'x') + "\"}";
    auto r = c.request("POST", "/api/cars", big);
    EXPECT_EQ(r.status, 413);
    auto c2 = client();
    EXPECT_EQ(c2.get("/api/health").status, 200);
}
