// Queues (docs/tasks.md "Queues"): a kind runs on its queue's own workers, a kind's
// concurrency holds however many workers are idle, a queue without workers here leaves its
// tasks waiting while the others run, and /metrics shows each queue's depth.
#include "support/test_app.hpp"
#include "support/wait.hpp"

#include <atomic>
#include <mutex>
#include <string>
#include <thread>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {

class task_queues : public app_test {
protected:
    void SetUp() override {
        const std::string extra = R"(
[tasks]
workers = 2

[tasks.queues.media]
workers = 3
concurrency = { render = 1 }
priority = 4

[tasks.queues.parked]
workers = 0

[tasks.kinds.render]
queue = "media"
submit = "public"

[tasks.kinds.thumb]
queue = "media"
submit = "public"

[tasks.kinds.later]
queue = "parked"
submit = "public"

[tasks.kinds.echo]
submit = "public"
)";
        client_timeout_ = std::chrono::seconds(15);
        ASSERT_NO_FATAL_FAILURE(configure(extra, k_public_rules, log_level::error, "queues"));
        ASSERT_TRUE(app_.add_task_kind("render", [this](task_context& ctx) -> result<outcome> {
            const int now = ++rendering_;
            int seen = most_rendering_.load();
            while (now > seen && !most_rendering_.compare_exchange_weak(seen, now)) {
            }
            // Holds its worker until the test lets go (bounded: 10 s).
            for (int i = 0; i < 1000 && !release_.load() && !ctx.cancelled(); ++i)
                std::this_thread::sleep_for(std::chrono::milliseconds(10));
            --rendering_;
            return outcome::json_body(200, json::object{{"rendered", true}});
        }));
        for (std::string kind : {"thumb", "later", "echo"})
            ASSERT_TRUE(app_.add_task_kind(kind, [kind](task_context&) -> result<outcome> {
                return outcome::json_body(200, json::object{{"kind", kind}});
            }));
        start_app();
    }

    std::string submit(http_client& c, const std::string& kind) {
        auto r = c.request("POST", "/api/tasks", json::serialize(json::object{{"kind", kind}}),
                           {{"Content-Type", "application/json"}});
        EXPECT_EQ(r.status, 202) << r.body;
        return str(obj(r.json())["id"]);
    }
    json::object task(http_client& c, const std::string& id) { return obj(c.get("/api/tasks/" + id).json()); }

    std::atomic<int> rendering_{0};
    std::atomic<int> most_rendering_{0};
};

TEST_F(task_queues, a_kinds_concurrency_holds_while_the_queues_other_kinds_run) {
    auto c = client();
    std::vector<std::string> renders;
    for (int i = 0; i < 3; ++i) renders.push_back(submit(c, "render"));
    // The queue's priority is its kinds' default.
    EXPECT_EQ(task(c, renders[0])["priority"], 4);
    const auto thumb = submit(c, "thumb");
    // The thumb runs on one of the two media workers the renders leave idle.
    ASSERT_TRUE(eventually([&] { return str(task(c, thumb)["state"]) == "succeeded"; }));
    std::size_t running = 0, pending = 0;
    for (const auto& id : renders) {
        auto st = str(task(c, id)["state"]);
        running += st == "running";
        pending += st == "pending";
    }
    EXPECT_EQ(running, 1u);
    EXPECT_EQ(pending, 2u);
    release_ = true;
    for (const auto& id : renders)
        ASSERT_TRUE(eventually([&] { return str(task(c, id)["state"]) == "succeeded"; })) << id;
    EXPECT_EQ(most_rendering_.load(), 1);
}

TEST_F(task_queues, a_queue_without_workers_here_waits_and_metrics_show_its_depth) {
    auto c = client();
    const auto later = submit(c, "later");
    const auto echo = submit(c, "echo");
    ASSERT_TRUE(eventually([&] { return str(task(c, echo)["state"]) == "succeeded"; }));
    EXPECT_EQ(str(task(c, later)["state"]), "pending");
    ASSERT_TRUE(eventually([&] {
        auto m = c.get("/metrics");
        return m.body.find("livebase_queue_pending{queue=\"parked\"} 1") != std::string::npos;
    })) << c.get("/metrics").body;
    auto m = c.get("/metrics").body;
    EXPECT_NE(m.find("# HELP livebase_queue_pending "), std::string::npos);
    EXPECT_NE(m.find("livebase_queue_started{queue=\"default\"}"), std::string::npos);
    // Cancelled while it waits, as any pending task.
    EXPECT_EQ(c.request("DELETE", "/api/tasks/" + later).status, 200);
}

}  // namespace
