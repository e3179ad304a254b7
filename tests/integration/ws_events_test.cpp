// Realtime events over the WebSocket door (realtime.md "Events", "observe", "Resume", "Flow
// control"): writes through REST, the socket and a custom action reach subscribers once, in
// commit order, filtered and tagged; live-query diffs rebuild a fresh list; a slow reader is
// closed with 4008 while others keep up; a resume with `since` loses and repeats nothing.
#include <atomic>
#include <cstring>
#include <functional>
#include <livebase/core/clock.hpp>
#include <map>
#include <mutex>
#include <set>
#include <sstream>
#include <support/ws_client.hpp>
#include <thread>

#include "support/test_app.hpp"

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

/// The app with a "bulk" action that writes several cars in one transaction, and a REST
/// client beside the sockets.
class ws_events : public app_test {
protected:
    void SetUp() override { start({}); }

    void start(const std::string& extra) {
        ASSERT_NO_FATAL_FAILURE(configure(extra, k_public_rules, log_level::warn, "ws"));
        // Writes `n` cars in one transaction.
        action_def bulk;
        bulk.name = "bulk";
        bulk.rule = access_rule::public_;
        ASSERT_TRUE(app_.add_action("cars", bulk, [](action_call& call) -> result<outcome> {
            auto n = call.op.input.is_object()
                         ? get_int(call.op.input.get_object(), "n").value_or(3)
                         : 3;
            auto w = call.db.write_sync([&](write_txn& t) -> result<json::value> {
                json::array ids;
                for (std::int64_t i = 0; i < n; ++i) {
                    auto now = now_ms();
                    json::object rec{{"id", make_ulid(now)},
                                     {"created", format_timestamp(now)},
                                     {"updated", format_timestamp(now)},
                                     {"version", 1},
                                     {"owner", nullptr},
                                     {"brand", "Bulk" + std::to_string(i)}};
                    if (auto r = t.insert(call.collection, rec); !r) return std::move(r).error();
                    ids.push_back(rec["id"]);
                }
                return json::value(std::move(ids));
            });
            if (!w) return std::move(w).error();
            return outcome::json_body(200, json::object{{"ids", *w}});
        }));
        ASSERT_NO_FATAL_FAILURE(start_app());
        rest_ = std::make_unique<http_client>(app_.port(), 30s);
    }

    /// Subscribes and returns the subscription id ("" on failure).
    std::string subscribe(ws_client& c, const std::string& stream, json::object payload = {}) {
        payload["action"] = "subscribe";
        auto r = c.request(stream, std::move(payload));
        EXPECT_EQ(status_of(r), 201) << dump(r);
        return r ? field(data_of(*r), "subscription") : "";
    }

    json::object rest_create(const json::object& car) {
        auto r = rest_->post("/api/cars", car);
        EXPECT_EQ(r.status, 201) << r.body;
        return obj(r.json());
    }
    void rest_patch(const std::string& id, const json::object& fields) {
        auto r = rest_->request("PATCH", "/api/cars/" + id, json::serialize(fields));
        EXPECT_EQ(r.status, 200) << r.body;
    }

    /// The next event of `subscription` (other frames stay queued); fails the test on timeout.
    json::value next_event(ws_client& c, const std::string& subscription) {
        auto e = c.receive_until([&](const json::value& f) { return is_event(f, subscription); },
                                 k_wait);
        EXPECT_TRUE(e) << "no event for " << subscription;
        return e ? *e : json::value();
    }

    /// Writes an owner and waits for its event on the sentinel subscription: events are
    /// delivered in commit order, so everything committed before it has been delivered.
    void barrier(ws_client& c, const std::string& sentinel) {
        auto r = rest_->post("/api/owners", json::object{{"name", "barrier"}});
        ASSERT_EQ(r.status, 201) << r.body;
        auto id = field(r.json(), "id");
        auto e = c.receive_until(
            [&](const json::value& f) {
                return is_event(f, sentinel) && payload_string(f, "pk") == id;
            },
            k_wait);
        ASSERT_TRUE(e) << "barrier event missing";
    }

    std::unique_ptr<http_client> rest_;  // made by start(): it needs the port
};

TEST_F(ws_events, rest_writes_arrive_once_in_commit_order) {
    auto c = connect();
    auto sub = subscribe(*c, "cars");
    auto car = rest_create({{"brand", "Ford"}, {"model", 2014}});
    const auto id = field(car, "id");
    rest_patch(id, {{"model", 2015}});
    ASSERT_EQ(rest_->request("DELETE", "/api/cars/" + id).status, 204);

    std::int64_t last = 0;
    const char* expected[] = {"create", "update", "delete"};
    for (const char* action : expected) {
        auto e = next_event(*c, sub);
        EXPECT_EQ(stream_of(e), "cars");
        EXPECT_EQ(payload_string(e, "action"), action);
        EXPECT_EQ(payload_string(e, "pk"), id);
        EXPECT_EQ(payload_string(e, "subscription"), sub);
        auto seq = payload_int(e, "seq");
        EXPECT_GT(seq, last);
        last = seq;
        EXPECT_EQ(field(data_of(e), "id"), id);
    }
    // The update carries the record after, the delete the record before deletion.
    EXPECT_TRUE(c->queue_empty(50ms));
}

TEST_F(ws_events, socket_writes_reach_every_subscriber) {
    auto writer = connect();
    auto watcher = connect();
    auto wsub = subscribe(*writer, "cars");
    auto sub = subscribe(*watcher, "cars");
    auto created = writer->request("cars", req("create", {{"data", {{"brand", "Opel"}}}}));
    ASSERT_EQ(status_of(created), 201);
    auto id = field(data_of(*created), "id");
    for (auto* c : {writer.get(), watcher.get()}) {
        auto e = next_event(*c, c == writer.get() ? wsub : sub);
        EXPECT_EQ(payload_string(e, "action"), "create");
        EXPECT_EQ(payload_string(e, "pk"), id);
        EXPECT_EQ(field(data_of(e), "brand"), "Opel");
    }
}

TEST_F(ws_events, an_action_writing_several_records_in_one_transaction) {
    auto c = connect();
    auto sub = subscribe(*c, "cars");
    auto r = c->request("cars", req("bulk", {{"data", {{"n", 4}}}}));
    ASSERT_EQ(status_of(r), 200) << json::serialize(*r);
    const auto ids = obj(data_of(*r))["ids"].get_array();
    ASSERT_EQ(ids.size(), 4u);
    std::int64_t last = 0;
    for (const auto& id : ids) {
        auto e = next_event(*c, sub);
        EXPECT_EQ(payload_string(e, "action"), "create");
        EXPECT_EQ(payload_string(e, "pk"), id.get_string());
        EXPECT_GT(payload_int(e, "seq"), last);
        last = payload_int(e, "seq");
    }
}

TEST_F(ws_events, records_entering_and_leaving_a_filter) {
    auto c = connect();
    auto sentinel = subscribe(*c, "owners");
    auto sub = subscribe(*c, "cars", {{"data", {{"filter", {{"brand", "Ford"}}}}}});
    auto ford = field(rest_create({{"brand", "Ford"}}), "id");
    auto opel = field(rest_create({{"brand", "Opel"}}), "id");  // never matches: no event
    rest_patch(opel, {{"brand", "Ford"}});                      // enters: create
    rest_patch(ford, {{"brand", "Opel"}});                      // leaves: delete
    rest_patch(opel, {{"model", 2020}});                        // stays: update
    rest_patch(ford, {{"model", 2020}});                        // outside: nothing
    barrier(*c, sentinel);
    std::vector<std::pair<std::string, std::string>> got;
    while (auto e = c->receive_until([&](const json::value& f) { return is_event(f, sub); }, 0ms))
        got.emplace_back(payload_string(*e, "action"), payload_string(*e, "pk"));
    std::vector<std::pair<std::string, std::string>> want{
        {"create", ford}, {"create", opel}, {"delete", ford}, {"update", opel}};
    EXPECT_EQ(got, want);
}

TEST_F(ws_events, overlapping_subscriptions_each_get_a_tagged_copy) {
    auto c = connect();
    auto sentinel = subscribe(*c, "owners");
    auto all = subscribe(*c, "cars");
    auto fords = subscribe(*c, "cars", {{"data", {{"filter", {{"brand", "Ford"}}}}}});
    auto updates = subscribe(*c, "cars", {{"data", {{"action", "update"}}}});  // channels-api form
    ASSERT_NE(all, fords);
    auto ford = field(rest_create({{"brand", "Ford"}}), "id");
    rest_create({{"brand", "Opel"}});
    rest_patch(ford, {{"model", 2001}});
    barrier(*c, sentinel);
    std::map<std::string, std::vector<std::string>> by_sub;
    while (auto e = c->receive_until(
               [](const json::value& f) { return is_event(f) && stream_of(f) == "cars"; }, 0ms))
        by_sub[payload_string(*e, "subscription")].push_back(payload_string(*e, "action"));
    EXPECT_EQ(by_sub[all], (std::vector<std::string>{"create", "create", "update"}));
    EXPECT_EQ(by_sub[fords], (std::vector<std::string>{"create", "update"}));
    EXPECT_EQ(by_sub[updates], (std::vector<std::string>{"update"}));
}

TEST_F(ws_events, unsubscribe_stops_events) {
    auto c = connect();
    auto sentinel = subscribe(*c, "owners");
    auto sub = subscribe(*c, "cars");
    rest_create({{"brand", "Before"}});
    next_event(*c, sub);
    auto un = c->request("cars", req("unsubscribe", {{"data", {{"subscription", sub}}}}));
    ASSERT_EQ(status_of(un), 204);
    rest_create({{"brand", "After"}});
    barrier(*c, sentinel);
    EXPECT_FALSE(c->receive_until([&](const json::value& f) { return is_event(f, sub); }, 0ms));
}

/// Applies one DRF-reactive diff (realtime.md "observe") to a window of items.
void apply(json::array& items, const json::object& d) {
    auto msg = get_string(d, "msg");
    auto order = static_cast<std::size_t>(get_int(d, "order").value_or(-1));
    if (msg == "removed") {
        ASSERT_LT(order, items.size());
        EXPECT_EQ(field(items[order], "id"), get_string(d, "pk"));
        items.erase(items.begin() + static_cast<std::ptrdiff_t>(order));
    } else if (msg == "added") {
        ASSERT_LE(order, items.size());
        items.insert(items.begin() + static_cast<std::ptrdiff_t>(order), d.at("item"));
    } else if (msg == "moved") {
        auto from = static_cast<std::size_t>(get_int(d, "from").value_or(-1));
        ASSERT_LT(from, items.size());
        auto row = items[from];
        EXPECT_EQ(field(row, "id"), get_string(d, "pk"));
        items.erase(items.begin() + static_cast<std::ptrdiff_t>(from));
        ASSERT_LE(order, items.size());
        items.insert(items.begin() + static_cast<std::ptrdiff_t>(order), row);
    } else if (msg == "changed") {
        ASSERT_LT(order, items.size());
        EXPECT_EQ(field(items[order], "id"), get_string(d, "pk"));
        items[order] = d.at("item");
    } else {
        ADD_FAILURE() << "unknown diff " << json::serialize(d);
    }
}

TEST_F(ws_events, observe_diffs_rebuild_a_fresh_list) {
    auto c = connect();
    auto sentinel = subscribe(*c, "owners");
    std::vector<std::string> ids;
    for (int m : {2010, 2005, 2020})
        ids.push_back(field(rest_create({{"brand", "Ford"}, {"model", m}}), "id"));
    const json::object query{{"filter", {{"brand", "Ford"}}}, {"ordering", "-model"}, {"limit", 3}};
    auto obs = c->request("cars", req("observe", {{"data", query}}));
    ASSERT_EQ(status_of(obs), 201) << json::serialize(*obs);
    auto observer = field(data_of(*obs), "observer");
    auto items = obj(data_of(*obs))["items"].get_array();
    ASSERT_EQ(items.size(), 3u);

    // Moves, entries, exits, changes inside the window and outside it.
    rest_create({{"brand", "Ford"}, {"model", 2015}});  // enters at 2nd place, 2005 drops out
    rest_patch(ids[1], {{"model", 2030}});              // from outside to the top
    rest_patch(ids[2], {{"brand", "Opel"}});            // leaves
    rest_create({{"brand", "Opel"}, {"model", 2099}});  // never matches
    rest_patch(ids[0], {{"make", "changed"}});          // changes in place (or enters)
    ASSERT_EQ(rest_->request("DELETE", "/api/cars/" + ids[1]).status, 204);
    barrier(*c, sentinel);
    // A hub pass sends its live-query diffs after its events, so the first barrier's event can
    // arrive ahead of the last diffs; a second barrier, committed after the first arrived, is
    // read by a later pass and so arrives behind every one of them.
    barrier(*c, sentinel);

    std::int64_t last_seq = obj(data_of(*obs))["seq"].as_int64();
    int diffs = 0;
    while (auto d =
               c->receive_until([&](const json::value& f) { return is_diff(f, observer); }, 0ms)) {
        EXPECT_GE(payload_int(*d, "seq"), last_seq);
        last_seq = payload_int(*d, "seq");
        apply(items, obj(data_of(*d)));
        ++diffs;
    }
    EXPECT_GT(diffs, 0);
    auto fresh = c->request("cars", req("list", {{"data", query}}));
    ASSERT_EQ(status_of(fresh), 200);
    EXPECT_EQ(json::value(items), obj(data_of(*fresh))["results"]);
}

TEST_F(ws_events, a_resume_with_since_loses_and_repeats_nothing) {
    constexpr int n = 60;
    auto first = connect();
    auto sub = subscribe(*first, "cars");
    std::atomic<int> written{0};
    std::set<std::string> created;
    std::mutex created_mu;
    std::thread writer([&] {
        http_client h(app_.port(), 30s);
        for (int i = 0; i < n; ++i) {
            auto r = h.post("/api/cars", json::object{{"brand", "R" + std::to_string(i)}});
            EXPECT_EQ(r.status, 201);
            std::lock_guard lock(created_mu);
            created.insert(field(r.json(), "id"));
            written = i + 1;
        }
    });
    // Read about a third, then drop the connection without a close frame.
    std::vector<std::int64_t> seqs;
    std::set<std::string> seen;
    std::int64_t last_seq = 0;
    for (int i = 0; i < n / 3; ++i) {
        auto e = next_event(*first, sub);
        seqs.push_back(payload_int(e, "seq"));
        seen.insert(payload_string(e, "pk"));
        last_seq = seqs.back();
    }
    first->abort();

    auto second = connect();
    auto resumed = second->request("cars", req("subscribe", {{"data", {{"since", last_seq}}}}));
    ASSERT_EQ(status_of(resumed), 201) << json::serialize(*resumed);
    auto sub2 = field(data_of(*resumed), "subscription");
    writer.join();
    while (seen.size() < static_cast<std::size_t>(n)) {
        auto e =
            second->receive_until([&](const json::value& f) { return is_event(f, sub2); }, k_wait);
        ASSERT_TRUE(e) << "missing events: saw " << seen.size() << " of " << n;
        auto seq = payload_int(*e, "seq");
        ASSERT_GT(seq, seqs.back()) << "duplicate or out of order";
        seqs.push_back(seq);
        EXPECT_TRUE(seen.insert(payload_string(*e, "pk")).second) << "duplicate record";
    }
    std::lock_guard lock(created_mu);
    EXPECT_EQ(seen, created);
    EXPECT_TRUE(second->queue_empty(50ms));
}

TEST_F(ws_events, since_beyond_the_log_is_410) {
    auto c = connect();
    auto r = c->request("cars", req("subscribe", {{"data", {{"since", 1000000}}}}));
    EXPECT_EQ(status_of(r), 410);
}

TEST_F(ws_events, drain_closes_sockets_with_1001) {
    auto a = connect();
    auto b = connect();
    subscribe(*a, "cars");
    std::thread stopper([&] { app_.stop(); });
    for (auto* c : {a.get(), b.get()}) {
        auto closed = c->wait_closed(k_wait);
        ASSERT_TRUE(closed);
        EXPECT_EQ(closed->code, 1001);
    }
    stopper.join();
}

// Every metric family a serving app exposes has a HELP and a TYPE line, and the documented
// gauges are there from the start (before anything they count has happened).
TEST_F(ws_events, metrics_describe_every_family) {
    auto c = connect();  // a socket, so the socket gauges have moved once
    const auto text = rest_->get("/metrics").body;
    std::istringstream in(text);
    std::set<std::string> helped, typed, sampled;
    for (std::string line; std::getline(in, line);) {
        if (line.rfind("# HELP ", 0) == 0) helped.insert(line.substr(7, line.find(' ', 7) - 7));
        else if (line.rfind("# TYPE ", 0) == 0) typed.insert(line.substr(7, line.find(' ', 7) - 7));
        else if (!line.empty()) sampled.insert(line.substr(0, line.find_first_of("{ ")));
    }
    EXPECT_EQ(helped, typed) << text;
    for (const char* family :
         {"livebase_http_requests_total", "livebase_open_connections", "livebase_tasks", "livebase_change_log_seq",
          "livebase_realtime_clients", "livebase_realtime_lag", "livebase_realtime_replays",
          "livebase_realtime_replayed_events", "livebase_ws_sockets", "livebase_ws_slow_consumer_closes"})
        EXPECT_TRUE(typed.count(family)) << family << " missing:\n" << text;
    EXPECT_NE(text.find("\nlivebase_ws_slow_consumer_closes 0\n"), std::string::npos) << text;
    for (const auto& name : sampled) {
        auto family = name;
        for (const char* suffix : {"_bucket", "_sum", "_count"})
            if (!typed.count(family) && family.size() > std::strlen(suffix) &&
                family.compare(family.size() - std::strlen(suffix), std::string::npos, suffix) == 0)
                family.resize(family.size() - std::strlen(suffix));
        EXPECT_TRUE(helped.count(family)) << name << " has no HELP line";
    }
}

class ws_slow_consumer : public ws_events {
protected:
    void SetUp() override { start("\n[realtime]\nsend_queue = \"64KiB\"\n"); }
    double slow_closes() { return gauge("livebase_ws_slow_consumer_closes"); }
    double gauge(const std::string& family) {
        const std::string name = family + " ";
        std::istringstream in(rest_->get("/metrics").body);
        for (std::string line; std::getline(in, line);)
            if (line.rfind(name, 0) == 0) return std::stod(line.substr(name.size()));
        return -1;
    }
    /// Polls /metrics (refreshed every 2 s) until `pred` holds for its gauges; bounded.
    bool gauges_reach(const std::function<bool()>& pred) {
        const auto deadline = std::chrono::steady_clock::now() + k_wait;
        while (std::chrono::steady_clock::now() < deadline) {
            if (pred()) return true;
            std::this_thread::sleep_for(50ms);
        }
        return pred();
    }
};

TEST_F(ws_slow_consumer, a_paused_reader_gets_4008_the_others_every_event_and_it_resumes) {
    ws_connect_options small;
    small.receive_buffer = 4096;
    auto slow = connect(small);
    auto fast = connect();
    auto slow_sub = subscribe(*slow, "things");
    auto fast_sub = subscribe(*fast, "things");
    // The slow socket reads a first event, so it knows where to resume from.
    auto first = rest_->post("/api/things", json::object{{"title", "First"}});
    ASSERT_EQ(first.status, 201);
    auto e0 = next_event(*slow, slow_sub);
    next_event(*fast, fast_sub);
    const auto resume_from = payload_int(e0, "seq");
    slow->pause_reading();

    // Big records (~40 KB each) fill the kernel buffers, then the 64 KiB send queue. Each write
    // waits for the fast socket's copy, so only the paused one falls behind. Bounded.
    const std::string body(40 * 1024, 'b');
    std::vector<std::string> ids;
    for (int i = 0; i < 400; ++i) {
        auto r = rest_->post("/api/things",
                             json::object{{"title", "T" + std::to_string(i)}, {"body", body}});
        ASSERT_EQ(r.status, 201) << r.body;
        ids.push_back(field(r.json(), "id"));
        auto e = next_event(*fast, fast_sub);
        ASSERT_EQ(payload_string(e, "pk"), ids.back())
            << "fast socket missed or reordered an event";
        if (i % 8 == 7 && slow_closes() >= 1) break;
    }
    ASSERT_GE(slow_closes(), 1) << "no slow-consumer close after " << ids.size() << " big writes";
    auto closed = slow->wait_closed(k_wait);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4008);
    EXPECT_EQ(closed->reason, "slow consumer");
    EXPECT_TRUE(fast->is_open());

    // The slow client reconnects and resumes: every event after the last one it read, once.
    auto again = connect();
    auto resumed = again->request("things", req("subscribe", {{"data", {{"since", resume_from}}}}));
    ASSERT_EQ(status_of(resumed), 201);
    auto sub = field(data_of(*resumed), "subscription");
    for (const auto& id : ids) {
        auto e = next_event(*again, sub);
        ASSERT_EQ(payload_string(e, "pk"), id);
    }
    EXPECT_FALSE(
        again->receive_until([&](const json::value& f) { return is_event(f, sub); }, 50ms));
}

// A resume from since=0 over ~16 MB of big records, by a client that stops reading: the
// replay comes in pages paced by the socket (it stays in progress, far from done, while the
// reader is away, and is never closed as slow), live writes meanwhile wait in the log, and
// once the reader reads again everything arrives once, in order.
TEST_F(ws_slow_consumer, a_resume_over_big_records_is_paged_by_what_the_reader_takes) {
    const std::string body(40 * 1024, 'r');
    std::vector<std::string> ids;
    for (int i = 0; i < 400; ++i) {
        auto r = rest_->post("/api/things", json::object{{"title", "R" + std::to_string(i)}, {"body", body}});
        ASSERT_EQ(r.status, 201) << r.body;
        ids.push_back(field(r.json(), "id"));
    }
    ws_connect_options small;
    small.receive_buffer = 4096;
    auto slow = connect(small);
    auto resumed = slow->request("things", req("subscribe", {{"data", {{"since", 0}}}}));
    ASSERT_EQ(status_of(resumed), 201);
    const auto sub = field(data_of(*resumed), "subscription");
    slow->pause_reading();

    double replayed = -1;
    ASSERT_TRUE(gauges_reach([&] {
        if (gauge("livebase_realtime_replays") != 1) return false;
        replayed = gauge("livebase_realtime_replayed_events");
        return replayed >= 1;
    }));
    EXPECT_LT(replayed, 400) << "the whole replay went out to a reader that reads nothing";
    for (int i = 0; i < 5; ++i) {
        auto r = rest_->post("/api/things", json::object{{"title", "L" + std::to_string(i)}});
        ASSERT_EQ(r.status, 201) << r.body;
        ids.push_back(field(r.json(), "id"));
    }
    EXPECT_EQ(slow_closes(), 0);
    EXPECT_EQ(gauge("livebase_realtime_replays"), 1);

    slow->resume_reading();
    std::int64_t last = -1;
    for (const auto& id : ids) {
        auto e = next_event(*slow, sub);
        ASSERT_EQ(payload_string(e, "pk"), id);
        if (last >= 0) {
            ASSERT_EQ(payload_int(e, "seq"), last + 1) << "gap or duplicate";
        }
        last = payload_int(e, "seq");
    }
    ASSERT_TRUE(gauges_reach([&] { return gauge("livebase_realtime_replays") == 0; }));
    EXPECT_EQ(gauge("livebase_realtime_replayed_events"), 405);
    auto r = rest_->post("/api/things", json::object{{"title", "After"}});
    ASSERT_EQ(r.status, 201);
    EXPECT_EQ(payload_string(next_event(*slow, sub), "pk"), field(r.json(), "id"));
    EXPECT_TRUE(slow->is_open());
    EXPECT_EQ(slow_closes(), 0);
}

}  // namespace
