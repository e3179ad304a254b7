// Server-Sent Events for task snapshots (http.md section 3, realtime.md "SSE"): GET
// /api/tasks/{id} with Accept: text/event-stream, end to end against a real app.
#include <atomic>
#include <livebase/tasks/task.hpp>
#include <thread>

#include "support/test_app.hpp"

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

const header_list k_accept{{"Accept", "text/event-stream"}};

class sse : public app_test {
protected:
    void SetUp() override {
        client_timeout_ = 10s;
        ASSERT_NO_FATAL_FAILURE(configure(k_steps_and_hang, k_public_rules, log_level::error, "sse"));
        // Five steps of progress, a little apart (progress writes are coalesced by the pool).
        ASSERT_TRUE(app_.add_task_kind("steps", [](task_context& ctx) -> result<outcome> {
            for (int i = 1; i <= 5; ++i) {
                std::this_thread::sleep_for(100ms);
                ctx.progress(i * 20);
                ctx.message("step " + std::to_string(i));
            }
            return outcome::json_body(200, json::object{{"done", true}});
        }));
        ASSERT_NO_FATAL_FAILURE(add_hang_kind(500));  // up to 10 s
        start_app();
    }

    /// Submits a task through an endpoint and returns its path.
    std::string submit(const std::string& endpoint) {
        auto c = client();
        auto r = c.post(endpoint, json::object{});
        EXPECT_EQ(r.status, 202) << r.body;
        return r.header("Location");
    }

    /// Reads events until the stream ends (bounded).
    std::vector<sse_event> read_all(http_client& c, std::chrono::milliseconds limit = 10s) {
        std::vector<sse_event> out;
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            auto e = c.next_event(std::chrono::duration_cast<std::chrono::milliseconds>(
                deadline - std::chrono::steady_clock::now()));
            if (!e) break;
            out.push_back(*e);
        }
        return out;
    }

};

TEST_F(sse, snapshots_rise_until_the_task_succeeds) {
    auto location = submit("/api/steps");
    ASSERT_FALSE(location.empty());
    auto c = client();
    auto head =
        c.start_stream(location, {{"Accept", "text/event-stream"}, {"X-Request-Id", "sse-1"}});
    ASSERT_EQ(head.status, 200) << head.body;
    EXPECT_EQ(head.header("Content-Type"), "text/event-stream");
    EXPECT_EQ(head.header("Cache-Control"), "no-cache");
    EXPECT_EQ(head.header("X-Request-Id"), "sse-1");
    EXPECT_FALSE(head.has_header("Content-Length"));
    EXPECT_EQ(head.header("Transfer-Encoding"), "chunked");
    EXPECT_FALSE(c.stream_ended());

    auto events = read_all(c);
    EXPECT_TRUE(c.stream_ended());
    ASSERT_GE(events.size(), 3u);  // the first snapshot, at least one step, the finished one
    double last_progress = -1;
    std::uint64_t last_id = 0;
    std::string last_json;
    for (const auto& e : events) {
        EXPECT_EQ(e.event, "task");
        auto id = std::stoull(e.id);
        EXPECT_GT(id, last_id);
        last_id = id;
        EXPECT_NE(e.data, last_json) << "an unchanged snapshot was sent again";
        last_json = e.data;
        auto t = data_json(e);
        EXPECT_EQ(location, "/api/tasks/" + str(t["id"]));
        double p = t["progress"].is_number() ? t["progress"].to_number<double>() : 0;
        EXPECT_GE(p, last_progress);
        last_progress = p;
    }
    auto last = data_json(events.back());
    EXPECT_EQ(last["state"], "succeeded");
    EXPECT_EQ(last_progress, 100);
    for (std::size_t i = 0; i + 1 < events.size(); ++i) {
        auto s = str(data_json(events[i])["state"]);
        EXPECT_TRUE(s == "pending" || s == "running") << s;
    }
    // The SSE response is the connection's last.
    auto rest = c.read_until_close(3s);
    EXPECT_TRUE(rest.closed);
    // Counted once it ended, under the task route.
    auto m = client().get("/metrics");
    EXPECT_NE(
        m.body.find(
            R"(livebase_http_requests_total{route="/api/tasks/{id}",method="GET",status="200"} 1)"),
        std::string::npos)
        << m.body;
}

TEST_F(sse, a_finished_task_sends_one_snapshot) {
    auto location = submit("/api/steps");
    auto c = client();
    // Wait for the task to finish with a long poll, then stream it.
    auto p = client();
    for (int i = 0; i < 20; ++i) {
        auto r = p.get(location, {{"Prefer", "wait=2"}});
        if (r.status == 303) break;
    }
    auto head = c.start_stream(location, k_accept);
    ASSERT_EQ(head.status, 200);
    auto events = read_all(c);
    ASSERT_EQ(events.size(), 1u);
    EXPECT_EQ(data_json(events[0])["state"], "succeeded");
    EXPECT_TRUE(c.stream_ended());
}

TEST_F(sse, a_cancelled_task_ends_the_stream) {
    auto location = submit("/api/hang");
    auto c = client();
    ASSERT_EQ(c.start_stream(location, k_accept).status, 200);
    auto first = c.next_event(5s);
    ASSERT_TRUE(first);
    EXPECT_FALSE(c.stream_ended());

    auto d = client();
    auto r = d.request("DELETE", location);
    EXPECT_TRUE(r.status == 200 || r.status == 202) << r.status << " " << r.body;

    auto events = read_all(c);
    EXPECT_TRUE(c.stream_ended());
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(data_json(events.back())["state"], "cancelled");
}

TEST_F(sse, unknown_task_is_a_404_problem_not_a_stream) {
    auto c = client();
    auto r = c.start_stream("/api/tasks/01JUNKNOWNTASK00000000000000", k_accept);
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    EXPECT_EQ(obj(r.json())["status"], 404);
    EXPECT_TRUE(c.stream_ended());
    EXPECT_FALSE(c.next_event(100ms));
}

TEST_F(sse, plain_get_is_unchanged) {
    auto location = submit("/api/hang");
    auto c = client();
    auto r = c.get(location);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    EXPECT_TRUE(r.has_header("Content-Length"));
    EXPECT_EQ(str(obj(r.json())["id"]), location.substr(location.rfind('/') + 1));
    // The connection stays usable.
    EXPECT_EQ(c.get("/api/health").status, 200);
    // Other Accept values do not stream either.
    auto j = c.get(location, {{"Accept", "application/json"}});
    EXPECT_EQ(j.status, 200);
    EXPECT_EQ(j.header("Content-Type"), "application/json");
}

TEST_F(sse, http_1_0_streams_are_close_delimited) {
    auto location = submit("/api/steps");
    auto c = client();
    c.send_raw("GET " + location + " HTTP/1.0\r\nAccept: text/event-stream\r\n\r\n");
    auto all = c.read_until_close(10s);
    EXPECT_TRUE(all.closed);
    EXPECT_NE(all.bytes.find("HTTP/1.0 200"), std::string::npos) << all.bytes;
    EXPECT_EQ(all.bytes.find("Transfer-Encoding"), std::string::npos);
    EXPECT_EQ(all.bytes.find("Content-Length"), std::string::npos);
    EXPECT_NE(all.bytes.find("event: task\ndata: "), std::string::npos);
    EXPECT_NE(all.bytes.find("\"state\":\"succeeded\""), std::string::npos);
}

TEST_F(sse, stopping_the_app_ends_an_open_stream_promptly) {
    auto location = submit("/api/hang");
    auto c = client();
    ASSERT_EQ(c.start_stream(location, k_accept).status, 200);
    ASSERT_TRUE(c.next_event(5s));

    auto t0 = std::chrono::steady_clock::now();
    std::thread stopper([this] { app_.stop(); });
    auto events = read_all(c, 5s);
    auto took = std::chrono::steady_clock::now() - t0;
    release_ = true;
    stopper.join();
    EXPECT_TRUE(c.stream_ended());
    EXPECT_LT(took, 1500ms);
    for (const auto& e : events) EXPECT_NE(data_json(e)["state"], "succeeded");
}

}  // namespace
