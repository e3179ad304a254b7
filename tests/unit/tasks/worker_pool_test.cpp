// The worker pool running C++ handlers: progress, steps, cancel, timeout, retry, exceptions,
// problems, and the shutdown hand-back.
#include "unit/tasks/worker_pool_test_fixture.hpp"

#include <atomic>
#include <future>

namespace livebase {
namespace {

using namespace std::chrono_literals;
using test::eventually;

outcome created(json::value body, std::string location) {
    outcome o;
    o.status = 201;
    o.body = std::move(body);
    o.location = std::move(location);
    return o;
}

// outcome::json_body lives in api, which tasks does not link.
outcome ok_body(json::value body) {
    outcome o;
    o.body = std::move(body);
    return o;
}

// Waits (bounded) until the handler sees cancelled(), then throws task_cancelled.
result<outcome> wait_for_cancel(task_context& ctx) {
    auto deadline = std::chrono::steady_clock::now() + 10s;  // a bound, not a timing check
    while (!ctx.cancelled() && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(2ms);
    ctx.throw_if_cancelled();
    return problem::internal("never cancelled");
}

TEST_F(worker_pool_test, runs_a_handler_and_records_progress_steps_and_outcome) {
    pool_->register_handler("build", [](task_context& ctx) -> result<outcome> {
        EXPECT_EQ(ctx.kind(), "build");
        EXPECT_EQ(ctx.attempt(), 1);
        EXPECT_EQ(ctx.who().user_id, "u1");
        ctx.step("frame", "running");
        ctx.step("paint", "pending");
        ctx.progress(150);  // clamped
        ctx.message("painting");
        ctx.eta(2.5);
        ctx.step("frame", "done");
        return created(json::object{{"n", ctx.input().as_object().at("n")}}, "/api/cars/1");
    });
    pool_->start();
    auto t = submit("build", json::object{{"n", 7}});
    auto done = wait_finished(t);
    EXPECT_EQ(get_string(done, "state"), "succeeded");
    EXPECT_EQ(get_int(done, "result_status"), 201);
    EXPECT_EQ(done.at("result"), (json::object{{"n", 7}}));
    EXPECT_EQ(get_string(done, "location"), "/api/cars/1");
    EXPECT_EQ(done.at("progress"), 100.0);
    EXPECT_EQ(get_string(done, "message"), "painting");
    EXPECT_EQ(done.at("eta"), 2.5);
    EXPECT_EQ(done.at("steps"), (json::array{json::object{{"name", "frame"}, {"state", "done"}},
                                             json::object{{"name", "paint"}, {"state", "pending"}}}));
    EXPECT_EQ(get_int(done, "attempt"), 1);
}

TEST_F(worker_pool_test, progress_is_visible_while_running) {
    std::atomic<bool> release{false};
    pool_->register_handler("slow", [&](task_context& ctx) -> result<outcome> {
        ctx.progress(42);
        auto deadline = std::chrono::steady_clock::now() + 3s;
        while (!release && std::chrono::steady_clock::now() < deadline) std::this_thread::sleep_for(2ms);
        return outcome{};
    });
    pool_->start();
    auto t = submit("slow");
    EXPECT_TRUE(eventually([&] { return stored(t).at("progress") == json::value(42.0); }));
    EXPECT_EQ(get_string(stored(t), "state"), "running");
    release = true;
    EXPECT_EQ(get_string(wait_finished(t), "state"), "succeeded");
}

TEST_F(worker_pool_test, cancelling_a_running_handler) {
    pool_->register_handler("wait", wait_for_cancel);
    pool_->start();
    auto t = submit("wait");
    ASSERT_TRUE(eventually([&] { return get_string(stored(t), "state") == "running"; }));
    ASSERT_TRUE(queue_.cancel(t).has_value());
    auto done = wait_finished(t);
    EXPECT_EQ(get_string(done, "state"), "cancelled");
    EXPECT_EQ(get_int(done, "result_status"), 410);
}

TEST_F(worker_pool_test, a_timed_out_attempt_fails_with_timed_out) {
    task_kind_options o;
    o.timeout = 100ms;
    o.max_attempts = 1;
    pool_->register_handler("wait", wait_for_cancel, o);
    pool_->start();
    auto t = submit("wait");
    auto done = wait_finished(t);
    EXPECT_EQ(get_string(done, "state"), "failed");
    EXPECT_EQ(get_string(done.at("error").as_object(), "type"), "/problems/task-timeout");
}

TEST_F(worker_pool_test, task_retry_runs_again_with_the_next_attempt) {
    pool_->register_handler("flaky", [](task_context& ctx) -> result<outcome> {
        if (ctx.attempt() == 1) throw task_retry("try later");
        return ok_body(json::object{{"attempt", ctx.attempt()}});
    });
    pool_->start();
    auto t = submit("flaky");
    auto done = wait_finished(t);
    EXPECT_EQ(get_string(done, "state"), "succeeded");
    EXPECT_EQ(get_int(done, "attempt"), 2);
    EXPECT_EQ(done.at("result"), (json::object{{"attempt", 2}}));
}

TEST_F(worker_pool_test, retries_stop_at_max_attempts) {
    std::atomic<int> runs{0};
    pool_->register_handler("flaky", [&](task_context&) -> result<outcome> {
        ++runs;
        throw task_retry("still down");
    });
    pool_->start();
    auto t = submit("flaky");
    auto done = wait_finished(t);
    EXPECT_EQ(get_string(done, "state"), "failed");
    EXPECT_EQ(get_int(done, "attempt"), 3);
    EXPECT_EQ(runs.load(), 3);
    EXPECT_EQ(get_string(done.at("error").as_object(), "detail"), "still down");
}

TEST_F(worker_pool_test, an_exception_fails_without_exposing_its_message) {
    auto done = run_one("boom", [](task_context&) -> result<outcome> {
        throw std::runtime_error("secret database password");
    });
    EXPECT_EQ(get_string(done, "state"), "failed");
    EXPECT_EQ(get_int(done, "attempt"), 1) << "not retried";
    auto err = json::serialize(done.at("error"));
    EXPECT_EQ(err.find("secret"), std::string::npos);
    EXPECT_EQ(get_int(done.at("error").as_object(), "status"), 500);
}

TEST_F(worker_pool_test, a_returned_problem_fails_the_task_with_it) {
    auto done = run_one("bad", [](task_context&) -> result<outcome> { return problem::unprocessable("no such car"); });
    EXPECT_EQ(get_string(done, "state"), "failed");
    EXPECT_EQ(get_int(done, "result_status"), 422);
    EXPECT_EQ(get_string(done.at("error").as_object(), "detail"), "no such car");
}

TEST_F(worker_pool_test, stop_hands_running_tasks_back_to_the_queue) {
    std::atomic<bool> saw_cancel{false};
    pool_->register_handler("wait", [&](task_context& ctx) -> result<outcome> {
        auto r = wait_for_cancel(ctx);
        saw_cancel = true;
        return r;
    });
    pool_->start();
    auto t = submit("wait");
    ASSERT_TRUE(eventually([&] { return get_string(stored(t), "state") == "running"; }));
    pool_->stop();
    auto st = stored(t);
    EXPECT_EQ(get_string(st, "state"), "pending");
    EXPECT_EQ(get_int(st, "attempt"), 0);
    EXPECT_TRUE(st.at("worker").is_null());
    EXPECT_EQ(pool_->running(), 0u);

    // Another pool picks it up.
    auto second = make_pool();
    second->register_handler("wait", [](task_context&) -> result<outcome> { return outcome{}; });
    second->start();
    auto done = wait_finished(t);
    EXPECT_EQ(get_string(done, "state"), "succeeded");
    EXPECT_EQ(get_int(done, "attempt"), 1);
}

TEST_F(worker_pool_test, a_lost_lease_is_reaped_and_run_again) {
    // A task claimed by a worker that died (never heart-beats) is re-queued by the reaper.
    auto t = submit_raw("quick");
    auto c = queue_.claim("dead-worker", now_ms(), 50ms);
    ASSERT_TRUE(c && *c);
    pool_->register_handler("quick", [](task_context& ctx) -> result<outcome> {
        return ok_body(json::value(ctx.attempt()));
    });
    pool_->start();
    auto done = wait_finished(t);
    EXPECT_EQ(get_string(done, "state"), "succeeded");
    EXPECT_EQ(get_int(done, "attempt"), 2);
}

TEST_F(worker_pool_test, submissions_use_the_kind_defaults) {
    task_kind_options o;
    o.max_attempts = 5;
    o.timeout = 1234ms;
    pool_->register_handler("k", [](task_context&) -> result<outcome> { return outcome{}; }, o);
    pool_->register_handler("d", [](task_context&) -> result<outcome> { return outcome{}; });
    auto s = pool_->make_submission("k", nullptr, nullptr, principal{});
    ASSERT_TRUE(s.has_value());
    EXPECT_EQ(s->max_attempts, 5);
    EXPECT_EQ(s->timeout, 1234ms);
    auto d = pool_->make_submission("d", nullptr, nullptr, principal{});
    ASSERT_TRUE(d.has_value());
    EXPECT_EQ(d->max_attempts, 3);
    EXPECT_EQ(pool_->make_submission("nope", nullptr, nullptr, principal{}).error().status, 400);
    EXPECT_TRUE(pool_->known_kind("k"));
    EXPECT_FALSE(pool_->known_kind("nope"));
}

TEST_F(worker_pool_test, many_tasks_on_several_workers) {
    std::atomic<int> runs{0};
    pool_->register_handler("n", [&](task_context& ctx) -> result<outcome> {
        ++runs;
        return ok_body(ctx.input());
    });
    pool_->start();
    std::vector<std::string> ids;
    for (int i = 0; i < 40; ++i) ids.push_back(submit("n", json::value(i)));
    for (std::size_t i = 0; i < ids.size(); ++i) {
        auto done = wait_finished(ids[i]);
        EXPECT_EQ(get_string(done, "state"), "succeeded");
        EXPECT_EQ(done.at("result"), json::value(static_cast<std::int64_t>(i)));
    }
    EXPECT_EQ(runs.load(), 40);
}

// An idle pool takes a submission at once: the task is stored running under the pool (one
// transaction instead of a submit and a claim) and finishes without ever being pending.
TEST_F(worker_pool_test, a_submission_to_an_idle_pool_is_never_pending) {
    pool_->register_handler("quick", [](task_context&) -> result<outcome> { return ok_body(json::value(1)); });
    pool_->start();
    std::string direct;
    // The pool takes submissions once its first claim found nothing waiting; bounded tries.
    for (int i = 0; i < 200 && direct.empty(); ++i) {
        std::promise<result<json::object>> p;
        queue_.submit_async(test::submission("quick"), [&](result<json::object> r) { p.set_value(std::move(r)); });
        auto r = p.get_future().get();
        ASSERT_TRUE(r.has_value());
        if (get_string(*r, "state") == "running") direct = std::string(get_string(*r, "id"));
        else wait_finished(std::string(get_string(*r, "id")));
    }
    ASSERT_FALSE(direct.empty());
    auto done = wait_finished(direct);
    EXPECT_EQ(get_string(done, "state"), "succeeded");
    EXPECT_EQ(get_string(done, "worker"), "");
    EXPECT_EQ(get_int(done, "attempt"), 1);
}

// Outcomes are written without blocking the threads: many tasks finish, each recorded once.
TEST_F(worker_pool_test, many_short_tasks_all_finish_once) {
    std::atomic<int> runs{0};
    pool_->register_handler("quick", [&](task_context&) -> result<outcome> {
        ++runs;
        return ok_body(json::value(1));
    });
    pool_->start();
    std::vector<std::string> ids;
    for (int i = 0; i < 300; ++i) ids.push_back(submit("quick"));
    for (const auto& id : ids) EXPECT_EQ(get_string(wait_finished(id), "state"), "succeeded");
    EXPECT_EQ(runs.load(), 300);
}

}  // namespace
}  // namespace livebase
