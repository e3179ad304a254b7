// WebSocket sessions over loopback with chosen ws_options: handshake, pings and idle peers,
// read-ahead, bounded send queues (4008), throttling (4429), 1009, drain (1001).
#include <livebase/testing/ws_client.hpp>

#include "unit/ws/ws_session_fixture.hpp"

using namespace livebase;
using namespace livebase::ws_test;
using livebase::testing::payload_of;
using livebase::testing::stream_of;
using namespace std::chrono_literals;
namespace lt = livebase::testing;

namespace {

constexpr auto k_wait = std::chrono::duration_cast<std::chrono::milliseconds>(k_deadline);

int status_of(const std::optional<json::value>& reply) {
    if (!reply) return 0;
    const auto& s = payload_of(*reply, "response_status");
    return s.is_int64() ? static_cast<int>(s.get_int64()) : 0;
}

json::object subscribe_payload(json::object data = {}) {
    return json::object{{"action", "subscribe"}, {"data", std::move(data)}};
}

bool is_event(const json::value& f, std::string_view action) {
    const auto& a = payload_of(f, "action");
    return payload_of(f, "response_status").is_null() && a.is_string() &&
           a.get_string() == action && !payload_of(f, "subscription").is_null();
}

TEST_F(ws_session_test, handshake_sends_hello_and_echoes_the_subprotocol) {
    start();
    lt::ws_connect_options o;
    o.subprotocols = {"other", "livebase.v1"};
    auto c = connect(o);
    EXPECT_FALSE(c->subscriber().empty());
    EXPECT_EQ(c->subprotocol(), "livebase.v1");
    EXPECT_EQ(c->response_header("X-Request-Id"), "test-rid");
    EXPECT_EQ(c->response_header("Server"), "livebase");
    EXPECT_EQ(payload_of(c->hello(), "data"),
              (json::object{{"subscriber", c->subscriber()}, {"user", nullptr}}));
    EXPECT_TRUE(eventually([&] { return ws_->sockets() == 1; }));
    EXPECT_TRUE(eventually([&] { return gauge("livebase_ws_sockets") == 1; }));

    auto plain = connect();  // no subprotocol offered: none chosen
    EXPECT_EQ(plain->subprotocol(), "");
    EXPECT_NE(plain->subscriber(), c->subscriber());

    c->close(1000);
    auto closed = c->wait_closed(k_wait);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 1000) << closed->reason;
    EXPECT_TRUE(
        eventually([&] { return ws_->sockets() == 1 && gauge("livebase_ws_sockets") == 1; }));
}

TEST_F(ws_session_test, an_invalid_close_code_fails_the_connection_with_1002) {
    start();
    // 5000 and up are not close codes (RFC 6455 7.4): not echoed, the connection is failed.
    for (std::uint16_t code : {5000, 65535, 1005, 2999}) {
        SCOPED_TRACE(code);
        auto c = connect();
        ASSERT_TRUE(c->is_open());
        c->close(code);
        auto closed = c->wait_closed(k_wait);
        ASSERT_TRUE(closed);
        EXPECT_EQ(closed->code, 1002) << closed->reason;
    }
    auto c = connect();  // a private code is echoed as before
    c->close(4000);
    auto closed = c->wait_closed(k_wait);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4000);
    EXPECT_TRUE(eventually([&] { return ws_->sockets() == 0; }));
}

TEST_F(ws_session_test, a_plain_http_request_is_refused_with_400) {
    start();
    lt::ws_client c;
    lt::ws_connect_options o;
    o.headers = {{"Upgrade", "h2c"}};  // Beast's client sets websocket; override to break it
    auto r = c.connect(port(), o);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status, 400) << r.error().detail;
}

TEST_F(ws_session_test, a_silent_peer_is_dropped_and_a_listening_one_is_kept) {
    ws_options o;
    o.ping_interval = 200ms;
    o.idle_timeout = 3s;
    start(o);
    auto listening = connect();  // Beast answers pings while it reads
    auto silent = connect();
    silent->pause_reading();  // neither reads nor answers pings
    // Wait on the silent one's server side: it must go, while the listening one stays.
    ASSERT_TRUE(eventually([&] { return ws_->sockets() == 1; }));
    auto closed = silent->wait_closed(k_wait);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 1006);  // dropped without a close frame: it was not listening
    EXPECT_TRUE(listening->is_open());
    auto reply = listening->request("cars", json::object{{"action", "list"}});
    EXPECT_EQ(status_of(reply), 200);
}

TEST_F(ws_session_test, requests_run_in_order_beyond_the_read_ahead) {
    ws_options o;
    o.max_inflight = 2;
    start(o);
    auto c = connect();
    constexpr int n = 40;
    for (int i = 0; i < n; ++i) {
        json::object payload{{"action", i % 2 ? "list" : "create"}, {"request_id", i}};
        if (i % 2 == 0) payload["data"] = json::object{{"brand", "B" + std::to_string(i)}};
        ASSERT_TRUE(c->send_json(json::object{{"stream", "cars"}, {"payload", payload}}));
    }
    for (int i = 0; i < n; ++i) {
        auto f = c->receive(k_wait);
        ASSERT_TRUE(f) << i;
        EXPECT_EQ(payload_of(*f, "request_id"), i);
        EXPECT_EQ(status_of(f), i % 2 ? 200 : 201) << json::serialize(*f);
        if (i % 2) {  // a list sees every create before it
            EXPECT_EQ(payload_of(*f, "data").at("count"), (i + 1) / 2);
        }
    }
}

TEST_F(ws_session_test, a_paused_reader_gets_4008_while_another_keeps_every_event) {
    ws_options o;
    o.send_queue = 64 * 1024;
    start(o);
    lt::ws_connect_options small;
    small.receive_buffer = 4096;
    auto slow = connect(small);
    auto fast = connect();
    ASSERT_EQ(status_of(slow->request("cars", subscribe_payload())), 201);
    ASSERT_EQ(status_of(fast->request("cars", subscribe_payload())), 201);
    slow->pause_reading();

    // Big records fill the kernel buffers, then the server's queue. Bounded in count; each
    // write waits for the fast socket's copy so only the paused socket falls behind.
    const std::string notes(16 * 1024, 'n');
    int written = 0;
    for (; written < 1000 && gauge("livebase_ws_slow_consumer_closes") < 1; ++written) {
        auto rec = create_car({{"brand", "B" + std::to_string(written)}, {"notes", notes}});
        auto e =
            fast->receive_until([](const json::value& f) { return is_event(f, "create"); }, k_wait);
        ASSERT_TRUE(e) << "event " << written;
        EXPECT_EQ(payload_of(*e, "pk"), rec.at("id")) << "events out of order at " << written;
    }
    ASSERT_GE(gauge("livebase_ws_slow_consumer_closes"), 1)
        << "no 4008 after " << written << " writes";
    auto closed = slow->wait_closed(k_wait);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4008);
    EXPECT_EQ(closed->reason, "slow consumer");
    EXPECT_TRUE(fast->is_open());
    EXPECT_TRUE(eventually([&] { return ws_->sockets() == 1; }));
}

TEST_F(ws_session_test, a_frame_over_max_message_closes_with_1009) {
    ws_options o;
    o.max_message = 1024;
    start(o);
    auto c = connect();
    // Exactly at the limit is fine (a bad frame: 400, still open).
    ASSERT_TRUE(c->send_text(std::string(1024, ' ')));
    auto r = c->receive(k_wait);
    ASSERT_TRUE(r);
    EXPECT_EQ(stream_of(*r), "error");
    c->send_text(std::string(1025, ' '));
    auto closed = c->wait_closed(k_wait);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 1009);
}

TEST_F(ws_session_test, too_many_subscriptions_answer_429_then_close_4429) {
    hub_options ho;
    ho.max_subscriptions = 2;
    start({}, ho);
    auto c = connect();
    EXPECT_EQ(status_of(c->request("cars", subscribe_payload())), 201);
    EXPECT_EQ(status_of(c->request("cars", subscribe_payload())), 201);
    auto third = c->request("cars", subscribe_payload());
    EXPECT_EQ(status_of(third), 429);
    auto closed = c->wait_closed(k_wait);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4429);
}

TEST_F(ws_session_test, binary_and_bad_frames_keep_the_socket_open) {
    start();
    auto c = connect();
    ASSERT_TRUE(c->send_binary("\x01\x02"));
    auto b = c->receive(k_wait);
    ASSERT_TRUE(b);
    EXPECT_EQ(stream_of(*b), "error");
    EXPECT_EQ(payload_of(*b, "response_status"), 400);
    ASSERT_TRUE(c->send_text("{nope"));
    auto j = c->receive(k_wait);
    ASSERT_TRUE(j);
    EXPECT_EQ(stream_of(*j), "error");
    EXPECT_EQ(status_of(c->request("cars", json::object{{"action", "list"}})), 200);
}

TEST_F(ws_session_test, drain_closes_with_1001_and_refuses_new_sockets) {
    start();
    auto a = connect();
    auto b = connect();
    ASSERT_EQ(status_of(a->request("cars", subscribe_payload())), 201);
    ws_->drain();
    for (auto* c : {a.get(), b.get()}) {
        auto closed = c->wait_closed(k_wait);
        ASSERT_TRUE(closed);
        EXPECT_EQ(closed->code, 1001);
    }
    EXPECT_TRUE(
        eventually([&] { return ws_->sockets() == 0 && gauge("livebase_ws_sockets") == 0; }));
    lt::ws_client late;
    auto r = late.connect(port());
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status, 503);
}

TEST_F(ws_session_test, close_all_drops_every_socket) {
    start();
    std::vector<std::unique_ptr<lt::ws_client>> clients;
    for (int i = 0; i < 5; ++i) clients.push_back(connect());
    ASSERT_TRUE(eventually([&] { return ws_->sockets() == 5; }));
    ws_->close_all();
    for (auto& c : clients) ASSERT_TRUE(c->wait_closed(k_wait));
    EXPECT_TRUE(eventually([&] { return ws_->sockets() == 0; }));
}

TEST_F(ws_session_test, a_subscription_reply_precedes_its_events) {
    start();
    auto c = connect();
    // Writes race the subscribe: whatever the interleaving, the reply comes first and every
    // event after it is newer than the seq it names, in order.
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (int i = 0; i < 100 && !stop; ++i) create_car({{"brand", "W"}});
    });
    ASSERT_TRUE(c->send_json(
        json::object{{"stream", "cars"},
                     {"payload", json::object{{"action", "subscribe"}, {"request_id", "s"}}}}));
    auto first = c->receive(k_wait);
    writer.join();
    ASSERT_TRUE(first);
    ASSERT_EQ(payload_of(*first, "request_id"), "s") << json::serialize(*first);
    ASSERT_EQ(status_of(first), 201);
    auto last = payload_of(*first, "data").at("seq").as_int64();
    create_car({{"brand", "after"}});
    for (;;) {
        auto e = c->receive(k_wait);
        ASSERT_TRUE(e);
        ASSERT_TRUE(is_event(*e, "create")) << json::serialize(*e);
        auto seq = payload_of(*e, "seq").as_int64();
        EXPECT_GT(seq, last);
        last = seq;
        if (payload_of(*e, "data").at("brand") == "after") break;
    }
}

}  // namespace
