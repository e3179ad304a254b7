// Limits on pending tasks (tasks.max_pending_per_user / max_pending_per_address): a caller over
// the limit gets 429 with Retry-After, and may submit again once its tasks ran.
#include "integration/server_fixture.hpp"

#include <atomic>
#include <thread>

using namespace livebase;
using namespace livebase::testing;

namespace {

json::object obj(const json::value& v) { return v.is_object() ? v.get_object() : json::object{}; }
std::string str(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : ""; }

class task_limits : public ::testing::Test {
protected:
    void SetUp() override {
        LIVEBASE_REQUIRE_BACKEND();
        std::string extra = R"(
[collections.cars.actions.build]
detail = true
task = "hold"
rule = "public"

[tasks]
workers = 1
prefetch = 0
max_pending_per_address = 2
)";
        auto r = app_.load_config_string(test_config(dir_.path() / "test.db", extra), "test.toml");
        ASSERT_TRUE(r) << r.error().detail;
        app_.log().set_level(log_level::error);
        ASSERT_TRUE(app_.add_task_kind("hold", [this](task_context& ctx) -> result<outcome> {
            ++started_;
            for (int i = 0; i < 500 && !release_; ++i) {  // up to 10 s
                ctx.throw_if_cancelled();
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            return outcome::json_body(200, json::object{{"held", true}});
        }));
        auto s = app_.start();
        ASSERT_TRUE(s) << s.error().detail;
    }
    void TearDown() override {
        release_ = true;
        app_.stop();
    }
    http_client client() { return http_client(app_.port(), std::chrono::seconds(15)); }

    temp_dir dir_;
    livebase::app app_;
    std::atomic<bool> release_{false};
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
