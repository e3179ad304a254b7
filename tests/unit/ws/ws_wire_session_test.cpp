// The session's own wire path seen from a raw TCP client: gathered writes (many frames, in
// order, intact, whatever their length encoding), permessage-deflate negotiation (off by
// default, on with a threshold, compressed requests), control frames (ping -> pong).
#include "unit/ws/ws_session_fixture.hpp"

#include "ws/wire.hpp"

#include <boost/asio/connect.hpp>
#include <boost/asio/read.hpp>
#include <boost/asio/read_until.hpp>
#include <boost/asio/write.hpp>
#include <sys/socket.h>
#include <sys/time.h>

using namespace livebase;
using namespace livebase::ws_test;
namespace net = boost::asio;
using tcp = net::ip::tcp;

namespace {

struct raw_frame {
    unsigned op = 0;
    bool rsv1 = false;
    std::string payload;
};

/// A blocking WebSocket client on a plain socket; every read gives up after k_deadline (a
/// receive timeout on the socket), so a missing frame fails the test instead of hanging it.
class raw_ws {
public:
    /// Connects and upgrades; `extensions` is sent as Sec-WebSocket-Extensions when not empty.
    bool open(std::uint16_t port, const std::string& extensions = {}) {
        boost::system::error_code ec;
        sock_.connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port), ec);
        if (ec) return false;
        timeval tv{};
        tv.tv_sec = std::chrono::duration_cast<std::chrono::seconds>(k_deadline).count();
        setsockopt(sock_.native_handle(), SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
        std::string req =
            "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
            "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n";
        if (!extensions.empty()) req += "Sec-WebSocket-Extensions: " + extensions + "\r\n";
        req += "\r\n";
        net::write(sock_, net::buffer(req), ec);
        if (ec) return false;
        const auto n = net::read_until(sock_, net::dynamic_buffer(in_), "\r\n\r\n", ec);
        if (ec) return false;
        response_ = in_.substr(0, n);
        in_.erase(0, n);
        return response_.rfind("HTTP/1.1 101", 0) == 0;
    }

    /// The 101 response's headers, as sent.
    const std::string& response() const { return response_; }

    std::optional<raw_frame> read() {
        auto need = [&](std::size_t n) {
            boost::system::error_code ec;
            if (in_.size() < n) net::read(sock_, net::dynamic_buffer(in_), net::transfer_at_least(n - in_.size()), ec);
            return in_.size() >= n;
        };
        if (!need(2)) return std::nullopt;
        const auto b0 = static_cast<unsigned char>(in_[0]);
        const auto b1 = static_cast<unsigned char>(in_[1]);
        EXPECT_EQ(b1 & 0x80, 0) << "server frames are not masked";
        std::uint64_t len = b1 & 0x7f;
        std::size_t h = 2;
        if (len == 126) {
            if (!need(4)) return std::nullopt;
            len = (std::uint64_t{static_cast<unsigned char>(in_[2])} << 8) | static_cast<unsigned char>(in_[3]);
            h = 4;
        } else if (len == 127) {
            if (!need(10)) return std::nullopt;
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | static_cast<unsigned char>(in_[2 + i]);
            h = 10;
        }
        if (!need(h + len)) return std::nullopt;
        raw_frame f;
        f.op = b0 & 0x0f;
        f.rsv1 = b0 & 0x40;
        EXPECT_TRUE(b0 & 0x80) << "server frames are not fragmented";
        f.payload = in_.substr(h, static_cast<std::size_t>(len));
        in_.erase(0, h + static_cast<std::size_t>(len));
        return f;
    }

    /// The next text message, inflated when it came compressed.
    std::optional<std::string> read_text(bool* was_compressed = nullptr) {
        for (;;) {
            auto f = read();
            if (!f) return std::nullopt;
            if (f->op != 1) continue;
            if (was_compressed) *was_compressed = f->rsv1;
            if (!f->rsv1) return f->payload;
            auto t = ws_detail::inflate_message(f->payload, 1 << 24);
            EXPECT_TRUE(t) << "bad compressed frame";
            return t;
        }
    }

    /// Sends one masked frame.
    void send(unsigned op, std::string_view payload, bool rsv1 = false) {
        std::string f;
        f += static_cast<char>(0x80 | (rsv1 ? 0x40 : 0) | op);
        if (payload.size() < 126) {
            f += static_cast<char>(0x80 | payload.size());
        } else {
            f += static_cast<char>(0x80 | 126);
            f += static_cast<char>(payload.size() >> 8);
            f += static_cast<char>(payload.size() & 0xff);
        }
        const char key[4] = {0x01, 0x02, 0x03, 0x04};
        f.append(key, 4);
        for (std::size_t i = 0; i < payload.size(); ++i) f += static_cast<char>(payload[i] ^ key[i & 3]);
        boost::system::error_code ec;
        net::write(sock_, net::buffer(f), ec);
        EXPECT_FALSE(ec) << ec.message();
    }

    void send_json(const json::value& v) { send(1, json::serialize(v)); }

private:
    net::io_context ioc_;
    tcp::socket sock_{ioc_};
    std::string in_;
    std::string response_;
};

json::value parse_or_fail(const std::string& text) {
    auto v = parse_json(text);
    EXPECT_TRUE(v) << text.substr(0, 200);
    return v ? *v : json::value();
}

std::string payload_string(const json::value& v, const char* key) {
    if (!v.is_object()) return {};
    const auto* p = v.get_object().if_contains("payload");
    if (!p || !p->is_object()) return {};
    const auto* x = p->get_object().if_contains(key);
    return x && x->is_string() ? std::string(x->get_string()) : std::string();
}

std::int64_t payload_int(const json::value& v, const char* key) {
    if (!v.is_object()) return -1;
    const auto* p = v.get_object().if_contains("payload");
    if (!p || !p->is_object()) return -1;
    const auto* x = p->get_object().if_contains(key);
    return x && x->is_int64() ? x->get_int64() : -1;
}

/// Opens a raw socket, reads the hello and subscribes to cars.
void subscribe(raw_ws& c, std::uint16_t port, const std::string& extensions = {}) {
    ASSERT_TRUE(c.open(port, extensions));
    auto hello = c.read_text();
    ASSERT_TRUE(hello);
    ASSERT_EQ(payload_string(parse_or_fail(*hello), "action"), "hello");
    c.send_json(json::object{{"stream", "cars"},
                             {"payload", json::object{{"action", "subscribe"}, {"data", json::object{}}}}});
    auto reply = c.read_text();
    ASSERT_TRUE(reply);
    ASSERT_EQ(payload_int(parse_or_fail(*reply), "response_status"), 201) << *reply;
}

}  // namespace

TEST_F(ws_session_test, many_frames_arrive_intact_and_in_order_from_gathered_writes) {
    start();
    raw_ws c;
    subscribe(c, port());
    // Every length encoding (7-bit, 16-bit, 64-bit) in one stream of events written while the
    // socket is busy, so the session gathers several frames per write.
    constexpr int n = 300;
    std::vector<std::string> pks;
    for (int i = 0; i < n; ++i) {
        const std::size_t size = i % 50 == 7 ? 70000 : i % 10 == 3 ? 300 : 0;
        auto rec = create_car({{"brand", "B" + std::to_string(i)}, {"notes", std::string(size, 'n')}});
        pks.push_back(std::string(rec.at("id").get_string()));
    }
    std::int64_t last_seq = 0;
    for (int i = 0; i < n; ++i) {
        auto text = c.read_text();
        ASSERT_TRUE(text) << "event " << i;
        auto v = parse_or_fail(*text);
        ASSERT_EQ(payload_string(v, "action"), "create") << i;
        EXPECT_EQ(payload_string(v, "pk"), pks[static_cast<std::size_t>(i)]) << "out of order at " << i;
        const auto seq = payload_int(v, "seq");
        EXPECT_GT(seq, last_seq);
        last_seq = seq;
    }
}

TEST_F(ws_session_test, deflate_is_off_by_default) {
    start();
    raw_ws c;
    subscribe(c, port(), "permessage-deflate; client_max_window_bits");
    EXPECT_EQ(c.response().find("permessage-deflate"), std::string::npos) << c.response();
    create_car({{"brand", "Ford"}, {"notes", std::string(4096, 'z')}});
    bool compressed = true;
    auto text = c.read_text(&compressed);
    ASSERT_TRUE(text);
    EXPECT_FALSE(compressed);
    EXPECT_EQ(payload_string(parse_or_fail(*text), "action"), "create");
}

TEST_F(ws_session_test, deflate_compresses_frames_over_the_threshold_and_reads_compressed_requests) {
    ws_options o;
    o.deflate = true;
    o.deflate_threshold = 1000;
    start(o);
    raw_ws plain;  // offers nothing: gets nothing
    subscribe(plain, port());
    EXPECT_EQ(plain.response().find("permessage-deflate"), std::string::npos);
    raw_ws c;
    subscribe(c, port(), "permessage-deflate; client_max_window_bits");
    EXPECT_NE(c.response().find("Sec-WebSocket-Extensions: permessage-deflate; server_no_context_takeover; "
                                "client_no_context_takeover"),
              std::string::npos)
        << c.response();

    create_car({{"brand", "Small"}});
    create_car({{"brand", "Big"}, {"notes", std::string(5000, 'z')}});
    bool compressed = true;
    auto small = c.read_text(&compressed);
    ASSERT_TRUE(small);
    EXPECT_FALSE(compressed) << "under the threshold";
    auto big = c.read_text(&compressed);
    ASSERT_TRUE(big);
    EXPECT_TRUE(compressed);
    auto v = parse_or_fail(*big);
    EXPECT_EQ(payload_string(v, "action"), "create");
    EXPECT_NE(big->find(std::string(5000, 'z')), std::string::npos);
    auto plain_small = plain.read_text(&compressed);
    auto plain_big = plain.read_text(&compressed);
    ASSERT_TRUE(plain_big);
    EXPECT_FALSE(compressed);
    EXPECT_EQ(*plain_big, *big);

    // A compressed request is inflated and answered.
    const std::string req = R"({"stream":"cars","payload":{"action":"list","request_id":"z"}})";
    c.send(1, ws_detail::deflate_message(req, {}), true);
    auto reply = c.read_text();
    ASSERT_TRUE(reply);
    EXPECT_EQ(payload_int(parse_or_fail(*reply), "response_status"), 200) << *reply;
}

TEST_F(ws_session_test, pings_are_answered_and_bad_frames_close_with_1002) {
    start();
    raw_ws c;
    ASSERT_TRUE(c.open(port()));
    ASSERT_TRUE(c.read_text());  // hello
    c.send(9, "abc");
    auto pong = c.read();
    ASSERT_TRUE(pong);
    EXPECT_EQ(pong->op, 10u);
    EXPECT_EQ(pong->payload, "abc");
    c.send(3, "reserved opcode");
    auto close = c.read();
    ASSERT_TRUE(close);
    EXPECT_EQ(close->op, 8u);
    ASSERT_GE(close->payload.size(), 2u);
    EXPECT_EQ((static_cast<unsigned char>(close->payload[0]) << 8) | static_cast<unsigned char>(close->payload[1]),
              1002);
    EXPECT_TRUE(eventually([&] { return ws_->sockets() == 0; }));
}
