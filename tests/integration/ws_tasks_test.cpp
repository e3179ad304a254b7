// The `tasks` stream over the WebSocket door (realtime.md "tasks stream"): submit a kind bound
// by an endpoint, follow its progress through a subscription, list, retrieve, cancel.
#include <atomic>
#include <support/ws_client.hpp>
#include <thread>

#include "support/test_app.hpp"

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

class ws_tasks : public app_test {
protected:
    void SetUp() override {
        std::string extra = std::string(k_steps_and_hang) + R"(
[collections.jobs]
)" + std::string(k_public_rules) + R"(
fields.name = { type = "string", required = true }
async.create = "always"
)";
        ASSERT_NO_FATAL_FAILURE(configure(extra, k_public_rules, log_level::error, "ws"));
        ASSERT_TRUE(app_.add_task_kind("steps", [](task_context& ctx) -> result<outcome> {
            for (int i = 1; i <= 5; ++i) {
                std::this_thread::sleep_for(100ms);
                ctx.progress(i * 20);
            }
            return outcome::json_body(200, json::object{{"input", ctx.input()}});
        }));
        ASSERT_NO_FATAL_FAILURE(add_hang_kind(1500));  // up to 30 s
        ASSERT_TRUE(app_.add_task_kind("internal", [](task_context&) -> result<outcome> {
            return outcome::json_body(200, json::object{});
        }));
        start_app();
    }

    static bool finished(const json::object& task) {
        auto state = field(task, "state");
        return state == "succeeded" || state == "failed" || state == "cancelled";
    }

    /// Task events of `subscription` until the task is finished (bounded).
    std::vector<json::object> follow(ws_client& c, const std::string& subscription) {
        std::vector<json::object> out;
        for (int i = 0; i < 1000; ++i) {
            auto e = c.receive_until([&](const json::value& f) { return is_event(f, subscription); }, k_wait);
            if (!e) {
                ADD_FAILURE() << "the task did not finish";
                break;
            }
            out.push_back(obj(data_of(*e)));
            if (finished(out.back())) break;
        }
        return out;
    }

    /// Subscribes to task `id` and returns its snapshots until it is finished: the events, or
    /// (when it finished before the subscription) the task as retrieved after subscribing.
    std::vector<json::object> follow_task(ws_client& c, const std::string& id) {
        auto sub = c.request("tasks", req("subscribe", {{"pk", id}}));
        EXPECT_EQ(status_of(sub), 201) << dump(sub);
        if (!sub) return {};
        auto now = c.request("tasks", req("retrieve", {{"pk", id}}));
        EXPECT_EQ(status_of(now), 200);
        if (now && finished(obj(data_of(*now)))) return {obj(data_of(*now))};
        return follow(c, field(data_of(*sub), "subscription"));
    }

};

TEST_F(ws_tasks, submit_then_follow_progress_to_success) {
    auto c = connect();
    auto submitted =
        c->request("tasks", req("submit", {{"data", {{"kind", "steps"}, {"input", {{"n", 21}}}}}}));
    ASSERT_EQ(status_of(submitted), 202) << json::serialize(*submitted);
    auto task = obj(data_of(*submitted));
    const auto id = field(task, "id");
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(field(task, "kind"), "steps");

    auto events = follow_task(*c, id);
    ASSERT_FALSE(events.empty());
    double last = -1;
    for (const auto& t : events) {
        EXPECT_EQ(field(t, "id"), id);
        double p = t.contains("progress") && t.at("progress").is_number()
                       ? t.at("progress").to_number<double>()
                       : 0;
        EXPECT_GE(p, last);
        last = p;
    }
    EXPECT_EQ(field(events.back(), "state"), "succeeded");
    EXPECT_EQ(obj(events.back()["result"]), (json::object{{"input", {{"n", 21}}}}));

    // A finished task retrieves as 200 (HTTP's 303 to the result has no meaning here).
    auto got = c->request("tasks", req("retrieve", {{"pk", id}}));
    ASSERT_EQ(status_of(got), 200) << json::serialize(*got);
    EXPECT_EQ(field(data_of(*got), "state"), "succeeded");

    auto listed = c->request("tasks", req("list", {{"data", {{"filter", {{"kind", "steps"}}}}}}));
    ASSERT_EQ(status_of(listed), 200) << json::serialize(*listed);
    auto page = obj(data_of(*listed));
    EXPECT_EQ(page["count"], 1);
    ASSERT_EQ(page["results"].get_array().size(), 1u);
    EXPECT_EQ(field(page["results"].get_array()[0], "id"), id);
}

TEST_F(ws_tasks, cancel_a_running_task) {
    auto c = connect();
    auto submitted = c->request("tasks", req("submit", {{"data", {{"kind", "hang"}}}}));
    ASSERT_EQ(status_of(submitted), 202);
    const auto id = field(data_of(*submitted), "id");
    auto sub = c->request("tasks", req("subscribe", {{"pk", id}}));
    ASSERT_EQ(status_of(sub), 201);
    const auto subscription = field(data_of(*sub), "subscription");
    // Wait until it runs, so the cancel reaches a running task (it may already be).
    auto now = c->request("tasks", req("retrieve", {{"pk", id}}));
    ASSERT_EQ(status_of(now), 200);
    if (field(data_of(*now), "state") != "running") {
        auto running = c->receive_until(
            [&](const json::value& f) {
                return is_event(f, subscription) && field(data_of(f), "state") == "running";
            },
            k_wait);
        ASSERT_TRUE(running);
    }
    auto cancelled = c->request("tasks", req("cancel", {{"pk", id}}));
    ASSERT_TRUE(status_of(cancelled) == 200 || status_of(cancelled) == 202)
        << json::serialize(*cancelled);
    auto events = follow(*c, subscription);
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(field(events.back(), "state"), "cancelled");
}

TEST_F(ws_tasks, an_async_create_answers_202_with_the_task) {
    auto c = connect();
    auto r = c->request("jobs", req("create", {{"data", {{"name", "j1"}}}}));
    ASSERT_EQ(status_of(r), 202) << json::serialize(*r);
    auto task = obj(data_of(*r));
    EXPECT_EQ(field(task, "kind"), "jobs.create");
    auto events = follow_task(*c, field(task, "id"));
    ASSERT_FALSE(events.empty());
    EXPECT_EQ(field(events.back(), "state"), "succeeded");
    EXPECT_EQ(field(events.back()["result"], "name"), "j1");
}

TEST_F(ws_tasks, refusals) {
    auto c = connect();
    EXPECT_EQ(status_of(c->request("tasks", req("submit", {{"data", {{"kind", "internal"}}}}))),
              400);
    EXPECT_EQ(status_of(c->request("tasks", req("submit", {{"data", {{"kind", "nope"}}}}))), 400);
    EXPECT_EQ(status_of(c->request("tasks", req("submit"))), 400);
    EXPECT_EQ(
        status_of(c->request("tasks", req("retrieve", {{"pk", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}}))),
        404);
    EXPECT_EQ(status_of(c->request("tasks", req("cancel", {{"pk", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}}))),
              404);
    EXPECT_EQ(
        status_of(c->request("tasks", req("subscribe", {{"pk", "01ARZ3NDEKTSV4RRFFQ69G5FAV"}}))),
        404);
    EXPECT_EQ(status_of(c->request("tasks", req("create"))), 404);
    EXPECT_TRUE(c->is_open());
}

}  // namespace
