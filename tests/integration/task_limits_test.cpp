// Limits on pending tasks (tasks.max_pending_per_user / max_pending_per_address): a caller over
// the limit gets 429 with Retry-After, and may submit again once its tasks ran.
#include "support/test_app.hpp"

#include <atomic>
#include <thread>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {

class task_limits : public app_test {
protected:
    void SetUp() override {
        LIVEBASE_REQUIRE_BACKEND();
        std::string extra = R"(
)" + action_toml("build", "hold", "public") + R"(
[tasks]
workers = 1
prefetch = 0
max_pending_per_address = 2
)";
        client_timeout_ = std::chrono::seconds(15);
        ASSERT_NO_FATAL_FAILURE(configure(extra, k_public_rules, log_level::error));
        ASSERT_NO_FATAL_FAILURE(add_hold_kind("hold", &started_));
        start_app();
    }

    std::atomic<int> started_{0};
};

TEST_F(task_limits, over_the_pending_limit_a_submission_is_429_with_retry_after_until_tasks_ran) {
    auto c = client();
    auto car = obj(c.post("/api/cars", json::object{{"brand", "Tesla"}}).json());
    auto path = "/api/cars/" + str(car["id"]) + ":build";
    auto running = c.post(path, json::object{});
    ASSERT_EQ(running.status, 202) << running.body;
    for (int i = 0; i < 500 && started_ < 1; ++i) std::this_thread::sleep_for(std::chrono::milliseconds(10));
    ASSERT_EQ(started_.load(), 1);
    // The only worker is busy: these two wait, pending.
    auto a = c.post(path, json::object{});
    auto b = c.post(path, json::object{});
    ASSERT_EQ(a.status, 202) << a.body;
    ASSERT_EQ(b.status, 202) << b.body;
    auto refused = c.post(path, json::object{});
    EXPECT_EQ(refused.status, 429) << refused.body;
    EXPECT_EQ(refused.header("Retry-After"), "1");
    EXPECT_NE(str(obj(refused.json())["detail"]).find("pending tasks"), std::string::npos) << refused.body;
    // Nothing was stored for the refused submission.
    EXPECT_EQ(obj(c.get("/api/tasks?kind=hold").json())["count"], 3);

    release_ = true;
    auto done = c.get(b.header("Location"), {{"Prefer", "wait=10"}});
    EXPECT_EQ(str(obj(done.json())["state"]), "succeeded") << done.body;
    // The queue learns of the finished tasks from the change log, within moments.
    http_response again;
    for (int i = 0; i < 200; ++i) {
        again = c.post(path, json::object{});
        if (again.status != 429) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    }
    EXPECT_EQ(again.status, 202) << again.body;
}

}  // namespace
