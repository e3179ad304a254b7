// Asynchronous operations end to end (http.md section 3): 202 -> poll/long-poll -> 303 ->
// result, wait=N, async endpoints and actions, progress, cancellation, command tasks.
#include "support/test_app.hpp"

#include <livebase/tasks/task.hpp>

#include <atomic>
#include <fstream>
#include <thread>

#include <sys/stat.h>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {

class tasks : public app_test {
protected:
    void SetUp() override {
        auto script = dir_.path() / "job.sh";
        std::ofstream(script) << "#!/bin/sh\n"
                                 "read input\n"
                                 "echo '{\"progress\": 50, \"message\": \"halfway\"}'\n"
                                 "echo '{\"step\": \"work\", \"state\": \"done\"}'\n"
                                 "echo '{\"result\": {\"echo\": '\"$input\"'}}'\n";
        chmod(script.c_str(), 0755);
        std::string extra = R"(
[collections.jobs]
)" + std::string(k_public_rules) + R"(
fields.name = { type = "string" }
async.create = "always"

)" + action_toml("build", "slow", "public") + R"(
[tasks]
workers = 2
lease = "5s"

[tasks.kinds.shell]
command = [")" + script.string() + R"("]

)" + endpoint_toml("double", "GET", "double") + R"(
)" + endpoint_toml("shell", "POST", "shell");
        client_timeout_ = std::chrono::seconds(15);
        ASSERT_NO_FATAL_FAILURE(configure(extra, k_public_rules, log_level::error, "tasks"));
        ASSERT_TRUE(app_.add_task_kind("double", [](task_context& ctx) -> result<outcome> {
            const auto& in = ctx.input().as_object();
            if (!in.contains("foo")) return problem::validation({{"foo", {"This field is required."}}});
            return outcome::json_body(200, json::object{{"result", 2 * std::stoi(std::string(in.at("foo").as_string()))}});
        }));
        ASSERT_TRUE(app_.add_task_kind("slow", [this](task_context& ctx) -> result<outcome> {
            ctx.step("frame", "running");
            ctx.progress(10);
            ctx.message("working");
            ++slow_started_;
            for (int i = 0; i < 500; ++i) {  // up to 10 s, stops at once when cancelled
                ctx.throw_if_cancelled();
                if (release_slow_) break;
                std::this_thread::sleep_for(std::chrono::milliseconds(20));
            }
            ctx.step("frame", "done");
            ctx.progress(100);
            return outcome::json_body(200, json::object{{"built", ctx.input().as_object().at("pk")}});
        }));
        start_app();
    }
    void TearDown() override {
        release_slow_ = true;
        app_test::TearDown();
    }

    /// Long-polls a task until it is finished (bounded).
    http_response wait_task(http_client& c, const std::string& location) {
        http_response r;
        for (int i = 0; i < 20; ++i) {
            r = c.get(location, {{"Prefer", "wait=2"}});
            auto state = str(obj(r.json())["state"]);
            if (state != "pending" && state != "running") break;
        }
        return r;
    }
    /// Polls until the slow task reports it started (bounded).
    void wait_slow_started(int n) {
        eventually([&] { return slow_started_ >= n; }, std::chrono::seconds(5));
        ASSERT_GE(slow_started_.load(), n);
    }

    std::atomic<bool> release_slow_{false};
    std::atomic<int> slow_started_{0};
};

TEST_F(tasks, prefer_respond_async_create_is_202_then_303_to_the_record) {
    auto c = client();
    auto r = c.request("POST", "/api/cars", R"({"brand": "Ford"})", {{"Prefer", "respond-async"}});
    ASSERT_EQ(r.status, 202) << r.body;
    EXPECT_EQ(r.header("Preference-Applied"), "respond-async");
    EXPECT_EQ(r.header("Retry-After"), "1");
    auto task = obj(r.json());
    auto location = r.header("Location");
    EXPECT_EQ(location, "/api/tasks/" + str(task["id"]));
    EXPECT_EQ(task["kind"], "cars.create");
    EXPECT_EQ(obj(task["request"])["method"], "POST");
    EXPECT_EQ(obj(obj(task["request"])["body"])["brand"], "Ford");
    EXPECT_EQ(str(obj(task["links"])["result"]), location + "/result");

    auto done = wait_task(c, location);
    ASSERT_EQ(done.status, 303) << done.body;
    auto car_path = done.header("Location");
    EXPECT_EQ(car_path.rfind("/api/cars/", 0), 0u);
    EXPECT_EQ(obj(done.json())["state"], "succeeded");
    EXPECT_EQ(str(obj(done.json())["location"]), car_path);
    EXPECT_EQ(obj(done.json())["attempt"], 1);

    auto result = c.get(location + "/result");
    EXPECT_EQ(result.status, 201);
    EXPECT_EQ(result.header("Location"), car_path);
    EXPECT_EQ(obj(result.json())["brand"], "Ford");
    EXPECT_EQ(c.get(car_path).status, 200);
}

TEST_F(tasks, wait_answers_synchronously_when_the_task_finishes_in_time) {
    auto c = client();
    auto r = c.request("POST", "/api/cars", R"({"brand": "Opel"})", {{"Prefer", "respond-async, wait=10"}});
    EXPECT_EQ(r.status, 201) << r.body;
    EXPECT_EQ(r.header("Location").rfind("/api/cars/", 0), 0u);
    EXPECT_EQ(obj(r.json())["brand"], "Opel");
    auto d = c.get("/api/double?foo=21", {{"Prefer", "wait=10"}});
    EXPECT_EQ(d.status, 200) << d.body;
    EXPECT_EQ(obj(d.json())["result"], 42);
}

TEST_F(tasks, validation_that_needs_no_execution_fails_at_once) {
    auto c = client();
    auto r = c.request("POST", "/api/cars", R"({"model": "x"})", {{"Prefer", "respond-async"}});
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(c.request("POST", "/api/nope", R"({})", {{"Prefer", "respond-async"}}).status, 404);
    EXPECT_EQ(c.request("POST", "/api/cars", R"({"brand": )", {{"Prefer", "respond-async"}}).status, 400);
    EXPECT_EQ(c.get("/api/cars?colour=x", {{"Prefer", "respond-async"}}).status, 400);
    EXPECT_EQ(obj(c.get("/api/tasks").json())["count"], 0);
}

TEST_F(tasks, any_records_request_can_run_async) {
    auto c = client();
    c.post("/api/cars", json::object{{"brand", "Fiat"}});
    auto r = c.get("/api/cars?brand=Fiat", {{"Prefer", "respond-async"}});
    ASSERT_EQ(r.status, 202);
    EXPECT_EQ(obj(r.json())["kind"], "cars.list");
    auto done = wait_task(c, r.header("Location"));
    EXPECT_EQ(done.status, 303);
    EXPECT_EQ(done.header("Location"), r.header("Location") + "/result");
    auto result = c.get(r.header("Location") + "/result");
    EXPECT_EQ(result.status, 200);
    EXPECT_EQ(obj(result.json())["count"], 1);

    // an async update of a missing record: 404 at once (the record is read at submission,
    // where its rules are checked), never a task
    auto patch = c.request("PATCH", "/api/cars/01ARZ3NDEKTSV4RRFFQ69G5FAV", R"({"color": "Red"})",
                           {{"Prefer", "respond-async"}});
    EXPECT_EQ(patch.status, 404);

    // an async update that fails at execution: the task fails with the problem
    // (a unique vin taken by another car: only the write can tell)
    ASSERT_EQ(c.post("/api/cars", json::object{{"brand", "Fiat"}, {"vin", "DUP-1"}}).status, 201);
    auto target = obj(c.post("/api/cars", json::object{{"brand", "Lada"}}).json());
    auto conflict = c.request("PATCH", "/api/cars/" + std::string(target["id"].as_string()),
                              R"({"vin": "DUP-1"})", {{"Prefer", "respond-async"}});
    ASSERT_EQ(conflict.status, 202);
    auto failed = wait_task(c, conflict.header("Location"));
    EXPECT_EQ(failed.status, 200);
    EXPECT_EQ(obj(failed.json())["state"], "failed");
    EXPECT_EQ(obj(obj(failed.json())["error"])["status"], 409);
    EXPECT_EQ(c.get(conflict.header("Location") + "/result").status, 409);
}

TEST_F(tasks, collections_declared_async_always_answer_202) {
    auto c = client();
    auto r = c.post("/api/jobs", json::object{{"name", "j"}});
    EXPECT_EQ(r.status, 202);
    EXPECT_FALSE(r.has_header("Preference-Applied"));
    EXPECT_EQ(obj(r.json())["kind"], "jobs.create");
}

TEST_F(tasks, endpoint_hello_world_doubles) {
    auto c = client();
    auto r = c.get("/api/double?foo=1");
    ASSERT_EQ(r.status, 202) << r.body;
    auto done = wait_task(c, r.header("Location"));
    EXPECT_EQ(done.status, 303);
    auto result = c.get(r.header("Location") + "/result");
    EXPECT_EQ(result.status, 200);
    EXPECT_EQ(json::serialize(result.json()), R"({"result":2})");

    auto bad = c.get("/api/double");
    auto failed = wait_task(c, bad.header("Location"));
    EXPECT_EQ(obj(failed.json())["state"], "failed");
    auto problem_result = c.get(bad.header("Location") + "/result");
    EXPECT_EQ(problem_result.status, 400);
    EXPECT_EQ(problem_result.header("Content-Type"), "application/problem+json");
}

TEST_F(tasks, command_task_reports_progress_steps_and_result) {
    auto c = client();
    auto r = c.post("/api/shell", json::object{{"n", 7}});
    ASSERT_EQ(r.status, 202) << r.body;
    auto done = wait_task(c, r.header("Location"));
    ASSERT_EQ(done.status, 303) << done.body;
    auto task = obj(done.json());
    EXPECT_EQ(task["progress"], 50);
    EXPECT_EQ(task["message"], "halfway");
    EXPECT_EQ(obj(task["steps"].as_array().at(0))["name"], "work");
    auto result = obj(c.get(r.header("Location") + "/result").json());
    EXPECT_EQ(obj(obj(result["echo"])["input"])["n"], 7);
}

TEST_F(tasks, detail_task_action_progress_and_cancellation) {
    auto c = client();
    auto car = obj(c.post("/api/cars", json::object{{"brand", "Tesla"}}).json());
    auto id = str(car["id"]);
    EXPECT_EQ(c.post("/api/cars/01ARZ3NDEKTSV4RRFFQ69G5FAV:build", json::object{}).status, 404);
    auto r = c.post("/api/cars/" + id + ":build", json::object{});
    ASSERT_EQ(r.status, 202) << r.body;
    auto location = r.header("Location");
    wait_slow_started(1);
    for (int i = 0; i < 100; ++i) {  // progress is written within ~100 ms
        auto t = obj(c.get(location).json());
        if (t["progress"] == 10) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    auto running = c.get(location);
    EXPECT_EQ(running.status, 200);
    EXPECT_EQ(running.header("Retry-After"), "1");
    auto t = obj(running.json());
    EXPECT_EQ(t["state"], "running");
    EXPECT_EQ(t["progress"], 10);
    EXPECT_EQ(t["message"], "working");
    EXPECT_EQ(obj(t["steps"].as_array().at(0))["state"], "running");
    EXPECT_EQ(c.get(location + "/result").status, 202);

    auto cancel = c.request("DELETE", location);
    EXPECT_EQ(cancel.status, 202) << cancel.body;
    auto done = wait_task(c, location);
    EXPECT_EQ(obj(done.json())["state"], "cancelled");
    EXPECT_EQ(c.get(location + "/result").status, 410);
    EXPECT_EQ(c.request("DELETE", location).status, 409);
}

TEST_F(tasks, pending_task_cancels_at_once) {
    auto c = client();
    auto car = obj(c.post("/api/cars", json::object{{"brand", "Tesla"}}).json());
    auto id = str(car["id"]);
    // both workers busy, the third build waits in the queue
    auto a = c.post("/api/cars/" + id + ":build", json::object{});
    auto b = c.post("/api/cars/" + id + ":build", json::object{});
    wait_slow_started(2);
    auto pending = c.post("/api/cars/" + id + ":build", json::object{});
    ASSERT_EQ(pending.status, 202);
    auto cancel = c.request("DELETE", pending.header("Location"));
    EXPECT_EQ(cancel.status, 200) << cancel.body;
    EXPECT_EQ(obj(cancel.json())["state"], "cancelled");
    release_slow_ = true;
    EXPECT_EQ(obj(wait_task(c, a.header("Location")).json())["state"], "succeeded");
    auto result = obj(c.get(b.header("Location") + "/result").json());
    for (int i = 0; i < 50 && !result.contains("built"); ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(50));
        result = obj(c.get(b.header("Location") + "/result").json());
    }
    EXPECT_EQ(str(result["built"]), id);
}

TEST_F(tasks, task_list_filters_and_errors) {
    auto c = client();
    c.get("/api/double?foo=1", {{"Prefer", "wait=10"}});
    c.request("POST", "/api/cars", R"({"brand": "x"})", {{"Prefer", "respond-async, wait=10"}});
    auto all = obj(c.get("/api/tasks").json());
    EXPECT_EQ(all["count"], 2);
    auto first = obj(all["results"].as_array().at(0));
    EXPECT_EQ(first["kind"], "cars.create");  // -created by default
    EXPECT_EQ(obj(c.get("/api/tasks?kind=double").json())["count"], 1);
    EXPECT_EQ(obj(c.get("/api/tasks?state=succeeded").json())["count"], 2);
    EXPECT_EQ(c.get("/api/tasks?lease_untl=1").status, 400);
    EXPECT_EQ(c.get("/api/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV").status, 404);
    EXPECT_EQ(c.get("/api/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV/result").status, 404);
    EXPECT_EQ(c.request("DELETE", "/api/tasks/01ARZ3NDEKTSV4RRFFQ69G5FAV").status, 404);
    EXPECT_EQ(c.post("/api/tasks", json::object{}).status, 400);  // a submission names its kind
    // /metrics reports tasks by state (refreshed every 2 s)
    std::string text;
    for (int i = 0; i < 40; ++i) {
        text = c.get("/metrics").body;
        if (text.find("livebase_tasks{state=\"succeeded\"} 2") != std::string::npos) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(100));
    }
    EXPECT_NE(text.find("livebase_tasks{state=\"succeeded\"} 2"), std::string::npos) << text;
    EXPECT_NE(text.find("livebase_tasks{state=\"pending\"} 0"), std::string::npos);
    EXPECT_NE(text.find("livebase_change_log_seq"), std::string::npos);
    EXPECT_EQ(c.request("POST", "/api/tasks/x/result").status, 405);
}

}  // namespace
