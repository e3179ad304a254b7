// The change feed across serve nodes on one PostgreSQL (deploy.md "Several nodes"): a client
// that saw seq N on one node and resumes on the other at once is never refused (410) for a seq
// the other node's hub has not read yet, and sees every change once; the log is trimmed only
// below what every live node delivered; a node paused past realtime.node_timeout while the
// others trim closes its subscribers to resync (4008 / the SSE stream ends) instead of leaving
// a silent gap. Runs in the PostgreSQL pass of the suite, skipped otherwise.
#include "support/test_backend.hpp"
#include "support/nodes.hpp"
#include "support/test_app.hpp"

#include <livebase/testing/ws_client.hpp>

#include <chrono>
#include <csignal>
#include <fstream>
#include <regex>
#include <set>
#include <thread>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

node_config feed_config(const std::string& url, const std::string& realtime) {
    node_config c;
    c.url = url;
    c.server = "shutdown_grace = \"2s\"\n";
    c.storage = "# A node paused inside a transaction loses it (and its locks) after this.\nstatement_timeout = \"3s\"\n";
    c.rest = R"([tasks]
workers = 0

[realtime]
)" + realtime + R"(

[collections.cars]
rules = { list = "public", retrieve = "public", create = "public", update = "public", delete = "public" }
fields.brand = { type = "string", required = true, max_length = 100 }
)";
    return c;
}

class multinode_feed : public nodes_test {
protected:
    // Two serve nodes on one database; `trim_ms` > 0 trims (and beats) that often.
    void start(const std::string& realtime, int trim_ms = 0) {
        std::vector<std::string> env;
        if (trim_ms > 0) env.push_back("LIVEBASE_TEST_TRIM_EVERY_MS=" + std::to_string(trim_ms));
        start_nodes("feed", feed_config(database("feed"), realtime), env);
    }

    /// Starts the nodes trimming every 100 ms with history 5 and `node_timeout`, and subscribes
    /// `sock` to the cars on node B; the subscription ("" and a failure when not).
    std::string trim_often_and_subscribe_on_b(const std::string& node_timeout, ws_client& sock) {
        start("history = 5\nnode_timeout = \"" + node_timeout + "\"", 100);
        if (HasFatalFailure()) return "";
        EXPECT_TRUE(sock.connect(port_b_));
        return subscribe_cars(sock);
    }

    std::string create(http_client& c, const std::string& brand) {
        auto r = c.post("/api/cars", json::object{{"brand", brand}});
        EXPECT_EQ(r.status, 201) << r.body;
        return str(obj(r.json())["id"]);
    }

    // Waits (bounded) until a resume from `since` on `port` is refused with 410: the trim
    // passed it.
    bool trimmed_past(std::uint16_t port, std::int64_t since) {
        auto deadline = steady::now() + k_wait;
        while (steady::now() < deadline) {
            http_client c(port, 10s);
            auto r = c.start_stream("/api/cars/events", {{"Last-Event-ID", std::to_string(since)}});
            if (r.status == 410) return true;
            std::this_thread::sleep_for(20ms);
        }
        return false;
    }

};

// Each round: two writes on the current node, their events on its socket; one more write, and
// at once the client moves to the other node, subscribing with `since` = the last seq it saw.
// Every car arrives exactly once, in seq order, and no resume is refused.
TEST_F(multinode_feed, immediate_websocket_resumes_on_the_other_node_never_get_410_nor_a_gap) {
    start("");
    std::uint16_t ports[2] = {port_a_, port_b_};
    auto sock = std::make_unique<ws_client>();
    ASSERT_TRUE(sock->connect(ports[0]));
    auto sub = sock->request("cars", {{"action", "subscribe"}});
    ASSERT_EQ(status_of(sub), 201) << dump(sub);
    std::string subscription = field(data_of(*sub), "subscription");
    std::int64_t last = 0;
    std::vector<std::string> expected;  // car ids written and not seen yet, in commit order
    auto see = [&](std::size_t n) {
        for (std::size_t k = 0; k < n; ++k) {
            auto e = sock->receive_until([&](const json::value& f) { return is_event(f, subscription); }, k_wait);
            ASSERT_TRUE(e) << "an event never arrived (last seq " << last << ")\n" << logs();
            auto p = obj(obj(*e)["payload"]);
            ASSERT_FALSE(expected.empty()) << "an event nobody wrote: " << dump(e);
            EXPECT_EQ(str(p["pk"]), expected.front()) << "a gap or a duplicate: " << dump(e);
            expected.erase(expected.begin());
            ASSERT_TRUE(p["seq"].is_int64());
            EXPECT_GT(p["seq"].get_int64(), last);
            last = p["seq"].get_int64();
        }
    };
    for (int round = 0; round < 30; ++round) {
        const int here = round % 2;
        http_client w(ports[here], 10s);
        for (int k = 0; k < 2; ++k) expected.push_back(create(w, "R" + std::to_string(round)));
        see(2);
        expected.push_back(create(w, "F" + std::to_string(round)));
        sock->abort();
        sock = std::make_unique<ws_client>();
        ASSERT_TRUE(sock->connect(ports[1 - here]));
        auto resumed = sock->request("cars", {{"action", "subscribe"}, {"data", json::object{{"since", last}}}});
        ASSERT_EQ(status_of(resumed), 201) << "round " << round << ": " << dump(resumed) << "\n" << logs();
        subscription = field(data_of(*resumed), "subscription");
        see(1);
    }
    EXPECT_TRUE(sock->queue_empty(200ms)) << "an event arrived twice";
}

TEST_F(multinode_feed, immediate_sse_resumes_on_the_other_node_never_get_410_nor_a_gap) {
    start("");
    std::uint16_t ports[2] = {port_a_, port_b_};
    auto stream = std::make_unique<http_client>(ports[0], 10s);
    auto opened = stream->start_stream("/api/cars/events");
    ASSERT_EQ(opened.status, 200) << opened.body;
    std::int64_t last = 0;
    std::vector<std::string> expected;
    auto see = [&](std::size_t n) {
        for (std::size_t k = 0; k < n; ++k) {
            auto e = stream->next_event(k_wait);
            ASSERT_TRUE(e) << "an event never arrived (last seq " << last << ")\n" << logs();
            auto data = parse_json(e->data);
            ASSERT_TRUE(data && data->is_object()) << e->data;
            ASSERT_FALSE(expected.empty()) << "an event nobody wrote: " << e->data;
            EXPECT_EQ(str(data->get_object().at("id")), expected.front()) << "a gap or a duplicate: " << e->data;
            expected.erase(expected.begin());
            const auto seq = std::stoll(e->id);
            EXPECT_GT(seq, last);
            last = seq;
        }
    };
    for (int round = 0; round < 30; ++round) {
        http_client w(ports[round % 2], 10s);
        const int here = round % 2;
        for (int k = 0; k < 2; ++k) expected.push_back(create(w, "S" + std::to_string(round)));
        see(2);
        expected.push_back(create(w, "G" + std::to_string(round)));
        stream = std::make_unique<http_client>(ports[1 - here], 10s);
        auto r = stream->start_stream("/api/cars/events", {{"Last-Event-ID", std::to_string(last)}});
        ASSERT_EQ(r.status, 200) << "round " << round << ": " << r.body << "\n" << logs();
        see(1);
    }
    EXPECT_FALSE(stream->next_event(200ms)) << "an event arrived twice";
}

// Node B is paused (SIGSTOP) right after its first event, long before its first periodic
// heartbeat: it registered its position at start, so A's trims stop there while B is alive.
TEST_F(multinode_feed, a_lagging_live_node_holds_the_trim_back_and_then_delivers_everything) {
    ws_client sock;
    const auto subscription = trim_often_and_subscribe_on_b("1h", sock);
    ASSERT_FALSE(subscription.empty());
    http_client a(port_a_, 10s);
    std::vector<std::string> ids{create(a, "first")};
    auto e = sock.receive_until([&](const json::value& f) { return is_event(f, subscription); }, k_wait);
    ASSERT_TRUE(e) << logs();
    const auto first = payload_of(*e, "seq").get_int64();

    ASSERT_EQ(kill(b_->pid, SIGSTOP), 0);
    for (int i = 0; i < 20; ++i) ids.push_back(create(a, "C" + std::to_string(i)));
    static const std::regex held(R"re("msg":"a lagging serve node holds the change-log trim back")re");
    ASSERT_TRUE(a_->wait_log(held, k_wait)) << logs();
    // Held back at B's position: a resume from it still works on A.
    {
        http_client c(port_a_, 10s);
        auto r = c.start_stream("/api/cars/events", {{"Last-Event-ID", std::to_string(first)}});
        EXPECT_EQ(r.status, 200) << r.body;
    }
    ASSERT_EQ(kill(b_->pid, SIGCONT), 0);
    std::int64_t last = first;
    for (std::size_t i = 1; i < ids.size(); ++i) {
        auto ev = sock.receive_until([&](const json::value& f) { return is_event(f, subscription); }, k_wait);
        ASSERT_TRUE(ev) << "event " << i << " never arrived\n" << logs();
        auto p = obj(obj(*ev)["payload"]);
        EXPECT_EQ(str(p["pk"]), ids[i]);
        EXPECT_GT(p["seq"].get_int64(), last);
        last = p["seq"].get_int64();
    }
    EXPECT_TRUE(sock.is_open());
    // Once B caught up, the trim goes on.
    EXPECT_TRUE(trimmed_past(port_a_, first)) << logs();
}

TEST_F(multinode_feed, a_node_paused_past_node_timeout_while_the_other_trims_closes_its_subscribers_to_resync) {
    ws_client sock;
    const auto subscription = trim_often_and_subscribe_on_b("1s", sock);
    ASSERT_FALSE(subscription.empty());
    http_client sse(port_b_, 10s);
    auto opened = sse.start_stream("/api/cars/events");
    ASSERT_EQ(opened.status, 200) << opened.body;
    http_client a(port_a_, 10s);
    create(a, "first");
    auto e = sock.receive_until([&](const json::value& f) { return is_event(f, subscription); }, k_wait);
    ASSERT_TRUE(e) << logs();
    const auto first = payload_of(*e, "seq").get_int64();
    auto se = sse.next_event(k_wait);
    ASSERT_TRUE(se) << logs();

    ASSERT_EQ(kill(b_->pid, SIGSTOP), 0);
    for (int i = 0; i < 20; ++i) create(a, "C" + std::to_string(i));
    // B's heartbeat times out; A trims past B's position.
    ASSERT_TRUE(trimmed_past(port_a_, first)) << logs();
    ASSERT_EQ(kill(b_->pid, SIGCONT), 0);

    // B notices the hole: the socket closes with 4008, having received nothing after `first`.
    auto closed = sock.wait_closed(k_wait);
    ASSERT_TRUE(closed) << "node B never closed the socket\n" << logs();
    EXPECT_EQ(closed->code, 4008) << closed->reason;
    EXPECT_FALSE(sock.receive_until([&](const json::value& f) { return is_event(f, subscription); }, 0ms))
        << "an event after the hole";
    // The SSE stream ends, with no event after the hole either.
    EXPECT_FALSE(sse.next_event(k_wait));
    EXPECT_TRUE(sse.stream_ended());
    static const std::regex lost(R"re("msg":"the change log was trimmed past this node's position)re");
    EXPECT_TRUE(b_->wait_log(lost, k_wait)) << logs();
    // Resuming from what the client had is 410 on either node: it lists again.
    ws_client again;
    ASSERT_TRUE(again.connect(port_b_));
    auto resumed = again.request("cars", {{"action", "subscribe"}, {"data", json::object{{"since", first}}}});
    EXPECT_EQ(status_of(resumed), 410) << dump(resumed);
}

}  // namespace
