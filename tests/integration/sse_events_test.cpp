// Realtime over HTTP (http.md section 4, realtime.md "SSE"): change streams on
// GET /api/{c}/events, resume with Last-Event-ID, REST live queries with ?observe=, and the
// WebSocket path's HTTP side, end to end against a real app (hub, store, server).
#include <functional>
#include <thread>

#include "support/test_app.hpp"

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

std::int64_t id_of(const sse_event& e) { return std::stoll(e.id); }

class sse_events : public ::testing::Test {
protected:
    /// Starts the app; `extra` is appended to the test config; `tweak` runs before start()
    /// (code-only knobs, task kinds).
    void start(const std::string& extra = {}, std::function<void(livebase::app&)> tweak = {}) {
        auto r =
            app_.load_config_string(test_config(dir_.path() / "events.db", extra), "events.toml");
        ASSERT_TRUE(r) << r.error().detail;
        app_.log().set_level(log_level::error);
        if (tweak) tweak(app_);
        auto s = app_.start();
        ASSERT_TRUE(s) << s.error().detail;
    }
    void TearDown() override { app_.stop(); }

    http_client client(std::chrono::milliseconds timeout = 10s) {
        return http_client(app_.port(), timeout);
    }

    /// Opens a stream and checks its head.
    void open(http_client& c, const std::string& target, const header_list& headers = {}) {
        auto head = c.start_stream(target, headers);
        ASSERT_EQ(head.status, 200) << head.body;
        EXPECT_EQ(head.header("Content-Type"), "text/event-stream");
        EXPECT_EQ(head.header("Cache-Control"), "no-cache");
        EXPECT_EQ(head.header("Transfer-Encoding"), "chunked");
        EXPECT_FALSE(c.stream_ended());
    }

    /// Reads `n` events (each within a generous deadline); fewer when the stream stalls.
    std::vector<sse_event> read_events(http_client& c, std::size_t n) {
        std::vector<sse_event> out;
        while (out.size() < n) {
            auto e = c.next_event(10s);
            if (!e) break;
            out.push_back(*e);
        }
        return out;
    }

    std::string create(http_client& c, const std::string& collection, json::object body) {
        auto r = c.post("/api/" + collection, body);
        EXPECT_EQ(r.status, 201) << r.body;
        return str(obj(r.json())["id"]);
    }
    void patch(http_client& c, const std::string& path, json::object body) {
        auto r = c.request("PATCH", path, json::serialize(body));
        EXPECT_EQ(r.status, 200) << r.body;
    }

    /// livebase_open_connections from /metrics (the asking connection included).
    static long open_connections(http_client& c) {
        auto m = c.get("/metrics").body;
        const std::string key = "\nlivebase_open_connections ";
        auto at = m.find(key);
        return at == std::string::npos ? -1 : std::stol(m.substr(at + key.size()));
    }

    temp_dir dir_;
    livebase::app app_;
};

TEST_F(sse_events, create_update_delete_arrive_with_the_change_seq_as_id) {
    start();
    auto s = client();
    open(s, "/api/cars/events", {{"Accept", "text/event-stream"}, {"X-Request-Id", "ev-1"}});

    auto w = client();
    auto id = create(w, "cars", {{"brand", "Ford"}, {"model", 2015}});
    patch(w, "/api/cars/" + id, {{"brand", "Ford Motor"}});
    ASSERT_EQ(w.request("DELETE", "/api/cars/" + id).status, 204);

    auto events = read_events(s, 3);
    ASSERT_EQ(events.size(), 3u);
    EXPECT_EQ(events[0].event, "create");
    EXPECT_EQ(events[1].event, "update");
    EXPECT_EQ(events[2].event, "delete");
    for (const auto& e : events) EXPECT_EQ(str(data_json(e)["id"]), id);
    EXPECT_EQ(data_json(events[0])["brand"], "Ford");
    EXPECT_EQ(data_json(events[0])["version"], 1);
    EXPECT_EQ(data_json(events[1])["brand"], "Ford Motor");
    EXPECT_EQ(data_json(events[1])["version"], 2);
    EXPECT_EQ(data_json(events[2])["brand"], "Ford Motor");  // the record before deletion
    // Ids are the change log's sequence numbers: increasing, the last one the store's last.
    EXPECT_LT(id_of(events[0]), id_of(events[1]));
    EXPECT_LT(id_of(events[1]), id_of(events[2]));
    EXPECT_EQ(id_of(events[2]), app_.store().last_seq());

    // Another collection's changes are not this stream's.
    create(w, "owners", {{"name", "Ann"}});
    auto none = s.next_event(300ms);
    EXPECT_FALSE(none) << none->data;
}

TEST_F(sse_events, records_entering_and_leaving_the_filter) {
    start();
    auto s = client();
    open(s, "/api/cars/events?brand=Ford&model__gte=2014");

    auto w = client();
    create(w, "cars", {{"brand", "Opel"}, {"model", 2020}});  // never matches
    auto id = create(w, "cars", {{"brand", "Ford"}, {"model", 2015}});
    patch(w, "/api/cars/" + id, {{"model", 2000}});    // leaves
    patch(w, "/api/cars/" + id, {{"color", "Red"}});   // outside: nothing
    patch(w, "/api/cars/" + id, {{"model", 2016}});    // enters again
    patch(w, "/api/cars/" + id, {{"color", "Blue"}});  // inside: an update

    auto events = read_events(s, 4);
    ASSERT_EQ(events.size(), 4u);
    EXPECT_EQ(events[0].event, "create");
    EXPECT_EQ(events[1].event, "delete");
    EXPECT_EQ(events[2].event, "create");
    EXPECT_EQ(events[3].event, "update");
    for (const auto& e : events) EXPECT_EQ(str(data_json(e)["id"]), id) << e.data;
    EXPECT_EQ(data_json(events[2])["color"], "Red");
    EXPECT_EQ(data_json(events[3])["color"], "Blue");
    EXPECT_FALSE(s.next_event(300ms));
}

TEST_F(sse_events, last_event_id_resumes_without_gap_or_duplicate) {
    start();
    auto w = client();
    std::vector<std::string> ids;
    std::string last_seen;
    {
        auto s = client();
        open(s, "/api/cars/events");
        for (int i = 0; i < 3; ++i)
            ids.push_back(create(w, "cars", {{"brand", "B" + std::to_string(i)}}));
        auto first = read_events(s, 2);
        ASSERT_EQ(first.size(), 2u);
        last_seen = first.back().id;
    }  // the reader goes away after two events
    for (int i = 3; i < 5; ++i)
        ids.push_back(create(w, "cars", {{"brand", "B" + std::to_string(i)}}));

    auto s = client();
    open(s, "/api/cars/events", {{"Last-Event-ID", last_seen}});
    ids.push_back(create(w, "cars", {{"brand", "B5"}}));  // live, after the replay
    auto events = read_events(s, 4);
    ASSERT_EQ(events.size(), 4u);
    for (std::size_t i = 0; i < events.size(); ++i) {
        EXPECT_EQ(events[i].event, "create");
        EXPECT_EQ(str(data_json(events[i])["id"]), ids[i + 2]) << i;
        if (i > 0) {
            EXPECT_LT(id_of(events[i - 1]), id_of(events[i]));
        }
    }
    EXPECT_GT(id_of(events[0]), std::stoll(last_seen));
    EXPECT_FALSE(s.next_event(300ms));

    // ?since= resumes the same way (and the header wins when both are given).
    auto q = client();
    open(q, "/api/cars/events?since=" + events[2].id);
    auto tail = read_events(q, 1);
    ASSERT_EQ(tail.size(), 1u);
    EXPECT_EQ(tail[0].id, events[3].id);
    auto both = client();
    open(both, "/api/cars/events?since=0", {{"Last-Event-ID", events[2].id}});
    auto tail2 = read_events(both, 1);
    ASSERT_EQ(tail2.size(), 1u);
    EXPECT_EQ(tail2[0].id, events[3].id);
    EXPECT_FALSE(both.next_event(300ms));
}

TEST_F(sse_events, resume_beyond_the_history_is_410) {
    start("\n[realtime]\nhistory = 3\n",
          [](livebase::app& a) { a.config().realtime.trim_every = 50ms; });
    auto w = client();
    for (int i = 0; i < 10; ++i) create(w, "cars", {{"brand", "B" + std::to_string(i)}});

    // Trimming runs in the background: wait for it to drop seq 2.
    http_response r;
    ASSERT_TRUE(eventually([&] {
        auto c = client();
        r = c.start_stream("/api/cars/events", {{"Last-Event-ID", "1"}});
        return r.status == 410;
    })) << r.status;
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    EXPECT_EQ(obj(r.json())["status"], 410);

    // A seq the log has not reached is just as unusable.
    auto ahead = client();
    auto a = ahead.start_stream("/api/cars/events",
                                {{"Last-Event-ID", std::to_string(app_.store().last_seq() + 100)}});
    EXPECT_EQ(a.status, 410) << a.body;

    // From within the history it resumes.
    auto ok = client();
    open(ok, "/api/cars/events", {{"Last-Event-ID", std::to_string(app_.store().last_seq() - 1)}});
    auto events = read_events(ok, 1);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(id_of(events[0]), app_.store().last_seq());
}

TEST_F(sse_events, problems_are_normal_responses) {
    start();
    struct expectation {
        std::string target;
        int status;
        std::string parameter;
    };
    const expectation cases[] = {
        {"/api/nope/events", 404, ""},
        {"/api/idempotency_keys/events", 404, ""},
        {"/api/cars/events?model=new", 400, "model"},
        {"/api/cars/events?colour=Blue", 400, "colour"},
        {"/api/cars/events?limit=5", 400, "limit"},
        {"/api/cars/events?ordering=brand", 400, "ordering"},
        {"/api/cars/events?since=x", 400, "since"},
    };
    for (const auto& e : cases) {
        auto c = client();
        auto r = c.start_stream(e.target);
        EXPECT_EQ(r.status, e.status) << e.target << " " << r.body;
        EXPECT_EQ(r.header("Content-Type"), "application/problem+json") << e.target;
        if (!e.parameter.empty()) {
            EXPECT_EQ(str(obj(r.json())["parameter"]), e.parameter) << r.body;
        }
        EXPECT_EQ(r.header("Connection"), "close") << e.target;  // a stream request is the last
        EXPECT_TRUE(c.stream_ended());
    }
    auto c = client();
    auto bad = c.start_stream("/api/cars/events", {{"Last-Event-ID", "abc"}});
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(obj(bad.json())["parameter"], "Last-Event-ID");
    auto m = client().request("POST", "/api/cars/events", "{}");
    EXPECT_EQ(m.status, 405);
    EXPECT_EQ(m.header("Allow"), "GET");
}

TEST_F(sse_events, keep_alive_comments_while_quiet) {
    start({}, [](livebase::app& a) { a.config().server.sse_keep_alive = 100ms; });
    auto s = client();
    open(s, "/api/cars/events");
    ASSERT_TRUE(eventually([&] {
        EXPECT_FALSE(s.next_event(200ms));
        return s.stream_comments() >= 2;
    }));
    EXPECT_FALSE(s.stream_ended());
    // Events still flow between the comments.
    auto w = client();
    create(w, "cars", {{"brand", "Ford"}});
    auto e = read_events(s, 1);
    ASSERT_EQ(e.size(), 1u);
    EXPECT_EQ(e[0].event, "create");
}

TEST_F(sse_events, a_reader_that_falls_behind_is_cut_off) {
    start("\n[realtime]\nsend_queue = \"64KiB\"\n");
    auto s = client(30s);
    open(s, "/api/things/events");  // then reads nothing while changes pile up

    auto w = client(30s);
    const std::string body(30000, 'x');
    int written = 0;
    bool cut = false;
    const auto deadline = std::chrono::steady_clock::now() + 120s;
    // Kernel buffers on both ends take a few MB before the server's own bound is reached.
    while (written < 3000 && std::chrono::steady_clock::now() < deadline) {
        create(w, "things", {{"title", "T" + std::to_string(written)}, {"body", body}});
        ++written;
        if (written % 10 == 0 && open_connections(w) == 1) {  // only the writer is left
            cut = true;
            break;
        }
    }
    ASSERT_TRUE(cut) << "the stream was not closed after " << written << " changes";

    // What was written before the cut arrives in order; then the stream ends without its
    // terminating chunk, short of the changes made after.
    std::size_t received = 0;
    std::int64_t last = 0;
    while (auto e = s.next_event(10s)) {
        EXPECT_GT(id_of(*e), last);
        last = id_of(*e);
        ++received;
    }
    EXPECT_TRUE(s.stream_ended());
    EXPECT_LT(received, static_cast<std::size_t>(written));
}

// A Last-Event-ID resume over ~18 MB of big records by a reader that reads nothing for a
// while: the replay comes in pages paced by the stream (in progress, far from done, and the
// stream is not cut), live writes meanwhile wait in the log, then everything arrives once.
TEST_F(sse_events, a_last_event_id_resume_over_big_records_comes_in_pages) {
    start("\n[realtime]\nsend_queue = \"64KiB\"\n");
    auto w = client(30s);
    const std::string body(30000, 'x');
    std::vector<std::string> ids;
    for (int i = 0; i < 600; ++i)
        ids.push_back(create(w, "things", {{"title", "T" + std::to_string(i)}, {"body", body}}));
    auto gauge = [&](const std::string& family) {
        auto m = w.get("/metrics").body;
        const std::string key = "\n" + family + " ";
        auto at = m.find(key);
        return at == std::string::npos ? -1.0 : std::stod(m.substr(at + key.size()));
    };

    auto s = client(30s);
    open(s, "/api/things/events", {{"Last-Event-ID", "0"}});  // then reads nothing for a while
    double replayed = -1;
    ASSERT_TRUE(eventually(
        [&] {
            if (gauge("livebase_realtime_replays") != 1) return false;
            replayed = gauge("livebase_realtime_replayed_events");
            return replayed >= 1;
        },
        30s));
    EXPECT_LT(replayed, 600) << "the whole replay went out to a reader that reads nothing";
    for (int i = 0; i < 3; ++i) ids.push_back(create(w, "things", {{"title", "L" + std::to_string(i)}}));
    EXPECT_EQ(open_connections(w), 2);  // the stream is still there
    EXPECT_EQ(gauge("livebase_realtime_replays"), 1);

    auto events = read_events(s, ids.size());
    ASSERT_EQ(events.size(), ids.size());
    for (std::size_t i = 0; i < events.size(); ++i) {
        ASSERT_EQ(str(data_json(events[i])["id"]), ids[i]) << i;
        if (i > 0) {
            ASSERT_LT(id_of(events[i - 1]), id_of(events[i]));
        }
    }
    EXPECT_TRUE(eventually([&] { return gauge("livebase_realtime_replays") == 0; }, 30s));
    auto live = create(w, "things", {{"title", "After"}});
    auto tail = read_events(s, 1);
    ASSERT_EQ(tail.size(), 1u);
    EXPECT_EQ(str(data_json(tail[0])["id"]), live);
    EXPECT_FALSE(s.stream_ended());
}

TEST_F(sse_events, stopping_the_app_ends_the_stream) {
    start();
    auto s = client();
    open(s, "/api/cars/events");
    auto w = client();
    create(w, "cars", {{"brand", "Ford"}});
    ASSERT_EQ(read_events(s, 1).size(), 1u);

    std::thread stopper([this] { app_.stop(); });
    while (s.next_event(10s)) {
    }
    stopper.join();
    EXPECT_TRUE(s.stream_ended());
}

TEST_F(sse_events, task_changes_stream_like_records) {
    start(R"(
)" + endpoint_toml("ping", "POST", "ping"),
          [](livebase::app& a) {
              ASSERT_TRUE(a.add_task_kind("ping", [](task_context&) -> result<outcome> {
                  return outcome::json_body(200, json::object{{"pong", true}});
              }));
          });
    auto all = client();
    open(all, "/api/tasks/events");
    auto done = client();
    open(done, "/api/tasks/events?state=succeeded");

    auto w = client();
    auto r = w.post("/api/ping", json::object{});
    ASSERT_EQ(r.status, 202) << r.body;
    auto task_id = str(obj(r.json())["id"]);

    // Every change of the (anonymous, so visible) task, presented like GET /api/tasks/{id}.
    auto first = read_events(all, 1);
    ASSERT_EQ(first.size(), 1u);
    EXPECT_EQ(first[0].event, "create");
    auto t = data_json(first[0]);
    EXPECT_EQ(str(t["id"]), task_id);
    EXPECT_EQ(str(obj(t["links"])["self"]), "/api/tasks/" + task_id);
    EXPECT_FALSE(t.contains("lease_until"));  // internal scheduling fields stay inside

    // The filtered stream sees it once, when it enters "succeeded".
    auto finished = read_events(done, 1);
    ASSERT_EQ(finished.size(), 1u);
    EXPECT_EQ(finished[0].event, "create");
    EXPECT_EQ(str(data_json(finished[0])["state"]), "succeeded");
    EXPECT_EQ(obj(data_json(finished[0])["result"])["pong"], true);
    EXPECT_FALSE(done.next_event(300ms));
}

TEST_F(sse_events, websocket_path_without_upgrade_is_426) {
    start();
    auto c = client();
    auto r = c.get("/ws");
    EXPECT_EQ(r.status, 426) << r.body;
    EXPECT_EQ(r.header("Upgrade"), "websocket");
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    EXPECT_EQ(c.get("/api/health").status, 200);
}

TEST_F(sse_events, observe_registers_a_live_query_on_a_websocket) {
    start();
    auto w = client();
    create(w, "cars", {{"brand", "Ford"}, {"model", 2015}});
    create(w, "cars", {{"brand", "Opel"}, {"model", 2016}});

    ws_client ws;
    ASSERT_TRUE(ws.connect(app_.port()));
    auto hello = obj(ws.hello());
    auto payload = obj(hello["payload"]);
    ASSERT_EQ(payload["action"], "hello") << json::serialize(hello);
    auto subscriber = str(obj(payload["data"])["subscriber"]);
    ASSERT_FALSE(subscriber.empty());

    auto r = w.get("/api/cars?brand=Ford&ordering=-model&observe=" + subscriber);
    ASSERT_EQ(r.status, 200) << r.body;
    auto body = obj(r.json());
    EXPECT_EQ(body["count"], 1);
    ASSERT_TRUE(body["results"].is_array());
    ASSERT_EQ(body["results"].get_array().size(), 1u);
    EXPECT_EQ(obj(body["results"].get_array()[0])["brand"], "Ford");
    auto observer = str(body["observer"]);
    EXPECT_FALSE(observer.empty());
    ASSERT_TRUE(body["seq"].is_int64());
    auto seq = body["seq"].get_int64();

    // A matching change arrives on the socket as a diff of that observer.
    auto id = create(w, "cars", {{"brand", "Ford"}, {"model", 2020}});
    json::object diff;
    auto frame = ws.receive_until([](const json::value& f) { return is_diff(f); }, k_wait);
    ASSERT_TRUE(frame) << "no diff";
    diff = obj(obj(*frame)["payload"]);
    EXPECT_EQ(str(diff["observer"]), observer);
    EXPECT_GT(diff["seq"].to_number<std::int64_t>(), seq);
    EXPECT_EQ(str(obj(diff["data"])["pk"]), id);

    // Unknown subscribers and bad queries are problems.
    EXPECT_EQ(w.get("/api/cars?observe=nobody").status, 404);
    auto bad = w.get("/api/cars?model=x&observe=" + subscriber);
    EXPECT_EQ(bad.status, 400);
    EXPECT_EQ(obj(bad.json())["parameter"], "model");
}

}  // namespace
