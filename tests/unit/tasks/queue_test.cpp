// The tasks collection, present_task(), and the queue's state machine on a real SQLite store.
#include "unit/tasks/tasks_test_support.hpp"

#include <livebase/core/clock.hpp>

#include <algorithm>
#include <atomic>
#include <future>
#include <mutex>
#include <set>
#include <thread>

namespace livebase {
namespace {

using test::submission;
using test::task_store;

using test::id_of;
using test::state_of;

class queue_test : public test::queue_fixture {
protected:
    queue_test() : queue_fixture(backoff_of_a_second()) {}
    static task_queue::options backoff_of_a_second() {
        task_queue::options o;
        o.backoff_base = std::chrono::milliseconds(1000);
        return o;
    }
    json::object submit(std::string kind = "k", int max_attempts = 3) {
        auto r = queue_.submit(submission(std::move(kind), json::object{{"n", 1}}, max_attempts));
        EXPECT_TRUE(r.has_value());
        return r ? *r : json::object{};
    }
    json::object claim(const std::string& worker = "w1", std::chrono::milliseconds lease = std::chrono::milliseconds(1000)) {
        auto r = queue_.claim(worker, clock_.load(), lease);
        EXPECT_TRUE(r.has_value());
        EXPECT_TRUE(r && r->has_value());
        return r && *r ? **r : json::object{};
    }
    /// Fails task `t` as worker w1 with `p`; the task after it (a failed expectation when refused).
    json::object fail(const json::object& t, problem p, bool retryable) {
        auto r = queue_.fail(id_of(t), "w1", std::move(p), retryable);
        EXPECT_TRUE(r.has_value());
        return r ? *r : json::object{};
    }
    json::object stored(const std::string& id) {
        auto r = queue_.get(id);
        EXPECT_TRUE(r && r->has_value());
        return r && *r ? **r : json::object{};
    }
};

TEST(tasks_collection_test, is_a_valid_owned_collection_with_indexes) {
    auto c = tasks_collection();
    EXPECT_EQ(c.name, "tasks");
    EXPECT_TRUE(c.owned);
    EXPECT_EQ(finalize(c), "");
    for (auto name : {"kind", "state", "progress", "message", "eta", "steps", "request", "input", "result",
                      "result_status", "error", "location", "attempt", "max_attempts", "started", "finished",
                      "not_before", "lease_until", "worker", "cancel_requested", "timeout_ms"})
        EXPECT_NE(c.find_field(name), nullptr) << name;
    EXPECT_TRUE(c.find_field("kind")->required);
    // Claims read the due tasks in (fair, id) order straight from this index.
    EXPECT_NE(std::find(c.indexes.begin(), c.indexes.end(), std::vector<std::string>{"state", "fair", "id"}),
              c.indexes.end());
}

TEST(task_state_test, names_round_trip) {
    for (auto s : {task_state::pending, task_state::running, task_state::succeeded, task_state::failed,
                   task_state::cancelled})
        EXPECT_EQ(task_state_from_string(to_string(s)), s);
    EXPECT_FALSE(task_state_from_string("done"));
    EXPECT_TRUE(is_finished(task_state::cancelled));
    EXPECT_FALSE(is_finished(task_state::running));
}

TEST(request_json_test, round_trips_an_operation) {
    operation op;
    op.kind = op_kind::create;
    op.collection = "cars";
    op.method = "POST";
    op.path = "/api/cars";
    op.input = json::object{{"brand", "Ford"}};
    op.params = {{"a", "1"}, {"b", "x y"}};
    op.if_match = 4;
    op.who = principal{"u9", true};
    op.request_id = "r1";
    auto j = request_to_json(op, "a=1&b=x%20y");
    EXPECT_EQ(get_string(j, "method"), "POST");
    EXPECT_EQ(get_string(j, "query"), "a=1&b=x%20y");
    auto back = operation_from_request(j);
    ASSERT_TRUE(back.has_value());
    EXPECT_EQ(back->kind, op_kind::create);
    EXPECT_EQ(back->collection, "cars");
    EXPECT_EQ(back->path, "/api/cars");
    EXPECT_EQ(back->input, op.input);
    EXPECT_EQ(back->params, op.params);
    EXPECT_EQ(back->if_match, 4);
    EXPECT_EQ(back->who.user_id, "u9");
    EXPECT_TRUE(back->who.admin);
    EXPECT_EQ(back->request_id, "r1");
    EXPECT_FALSE(operation_from_request(json::value("x")).has_value());
    EXPECT_EQ(operation_from_request(json::object{{"op", json::object{{"kind", "nope"}}}}).error().status, 500);
}

TEST_F(queue_test, submit_stores_a_pending_task_and_present_hides_internals) {
    operation op;
    op.kind = op_kind::create;
    op.method = "POST";
    op.path = "/api/cars";
    op.input = json::object{{"brand", "Ford"}};
    auto s = submission("cars.create", json::object{{"x", 1}});
    s.request = request_to_json(op, "");
    auto t = queue_.submit(s);
    ASSERT_TRUE(t.has_value());
    EXPECT_EQ(state_of(*t), "pending");
    EXPECT_EQ(get_int(*t, "attempt"), 0);
    EXPECT_EQ(get_int(*t, "max_attempts"), 3);
    EXPECT_EQ(get_string(*t, "owner"), "u1");
    auto st = stored(id_of(*t));
    EXPECT_EQ(st.at("input"), (json::object{{"x", 1}}));

    auto p = present_task(st, "/api/tasks");
    std::set<std::string> keys;
    for (auto& kv : p) keys.insert(std::string(kv.key()));
    std::set<std::string> want{"id", "kind", "state", "progress", "message", "eta", "steps", "request",
                               "result", "error", "location", "attempt", "max_attempts", "owner",
                               "created", "started", "finished", "not_before", "priority", "schedule",
                               "tick", "links"};
    EXPECT_EQ(keys, want);
    EXPECT_EQ(p.at("request"),
              (json::object{{"method", "POST"}, {"path", "/api/cars"}, {"query", ""}, {"body", {{"brand", "Ford"}}}}));
    EXPECT_EQ(p.at("links"), (json::object{{"self", "/api/tasks/" + id_of(*t)},
                                           {"result", "/api/tasks/" + id_of(*t) + "/result"}}));
    EXPECT_EQ(p.at("steps"), json::array{});
    EXPECT_TRUE(p.at("finished").is_null());

    EXPECT_EQ(queue_.submit(submission("")).error().status, 400);
    EXPECT_EQ(queue_.submit(submission("k", nullptr, 0)).error().status, 400);
}

TEST_F(queue_test, claim_heartbeat_complete) {
    auto t = submit();
    auto none = queue_.claim("w1", clock_.load() - 1, std::chrono::milliseconds(1000));
    ASSERT_TRUE(none.has_value());
    EXPECT_FALSE(none->has_value()) << "not_before is in the future";

    auto c = claim();
    EXPECT_EQ(id_of(c), id_of(t));
    EXPECT_EQ(state_of(c), "running");
    EXPECT_EQ(get_int(c, "attempt"), 1);
    EXPECT_EQ(get_string(c, "worker"), "w1");
    EXPECT_EQ(get_int(c, "lease_until"), clock_.load() + 1000);
    EXPECT_TRUE(c.at("started").is_string());
    auto again = queue_.claim("w2", clock_.load(), std::chrono::milliseconds(1000));
    ASSERT_TRUE(again.has_value());
    EXPECT_FALSE(again->has_value());

    clock_ += 500;
    task_progress prog;
    prog.progress = json::value(40.0);
    prog.message = json::value("painting");
    prog.steps = json::array{json::object{{"name", "frame"}, {"state", "done"}}};
    auto hb = queue_.heartbeat(id_of(t), "w1", std::chrono::milliseconds(1000), prog);
    ASSERT_TRUE(hb.has_value());
    EXPECT_TRUE(hb->ours);
    EXPECT_FALSE(hb->cancel_requested);
    auto st = stored(id_of(t));
    EXPECT_EQ(get_int(st, "lease_until"), clock_.load() + 1000);
    EXPECT_EQ(st.at("progress"), 40.0);
    EXPECT_EQ(get_string(st, "message"), "painting");
    EXPECT_EQ(st.at("steps").as_array().size(), 1u);

    auto other = queue_.heartbeat(id_of(t), "w2", std::chrono::milliseconds(1000));
    ASSERT_TRUE(other.has_value());
    EXPECT_FALSE(other->ours);
    EXPECT_EQ(queue_.complete(id_of(t), "w2", outcome{}).error().status, 409);

    outcome out;
    out.status = 201;
    out.body = json::object{{"id", "car1"}};
    out.location = "/api/cars/car1";
    auto done = queue_.complete(id_of(t), "w1", out);
    ASSERT_TRUE(done.has_value());
    EXPECT_EQ(state_of(*done), "succeeded");
    EXPECT_EQ(get_int(*done, "result_status"), 201);
    EXPECT_EQ(get_string(*done, "location"), "/api/cars/car1");
    EXPECT_TRUE(done->at("finished").is_string());
    EXPECT_TRUE(done->at("worker").is_null());

    EXPECT_EQ(queue_.cancel(id_of(t)).error().status, 409);
    EXPECT_EQ(queue_.complete(id_of(t), "w1", out).error().status, 409);
    EXPECT_EQ(queue_.fail(id_of(t), "w1", problem::internal(), true).error().status, 409);
    EXPECT_EQ(queue_.cancel("nope").error().status, 404);
    EXPECT_EQ(queue_.heartbeat("nope", "w1", std::chrono::milliseconds(1)).error().status, 404);
}

TEST_F(queue_test, a_problem_outcome_fails_the_task) {
    auto t = submit();
    claim();
    outcome out;
    out.status = 400;
    out.is_problem = true;
    out.body = problem::bad_request("no").to_json();
    auto done = queue_.complete(id_of(t), "w1", out);
    ASSERT_TRUE(done.has_value());
    EXPECT_EQ(state_of(*done), "failed");
    EXPECT_EQ(get_int(*done, "result_status"), 400);
    EXPECT_EQ(get_string(done->at("error").as_object(), "detail"), "no");
}

TEST_F(queue_test, cancel_pending_and_running) {
    auto a = submit();
    auto ca = queue_.cancel(id_of(a));
    ASSERT_TRUE(ca.has_value());
    EXPECT_EQ(state_of(*ca), "cancelled");
    EXPECT_TRUE(ca->at("finished").is_string());
    EXPECT_EQ(get_int(*ca, "result_status"), 410);
    EXPECT_EQ(queue_.cancel(id_of(a)).error().status, 409);
    auto none = queue_.claim("w1", clock_.load(), std::chrono::milliseconds(1000));
    ASSERT_TRUE(none.has_value());
    EXPECT_FALSE(none->has_value()) << "a cancelled task is never claimed";

    auto b = submit();
    claim();
    auto cb = queue_.cancel(id_of(b));
    ASSERT_TRUE(cb.has_value());
    EXPECT_EQ(state_of(*cb), "running");
    auto hb = queue_.heartbeat(id_of(b), "w1", std::chrono::milliseconds(1000));
    ASSERT_TRUE(hb.has_value());
    EXPECT_TRUE(hb->ours);
    EXPECT_TRUE(hb->cancel_requested);
    auto fin = queue_.finish_cancelled(id_of(b), "w1");
    ASSERT_TRUE(fin.has_value());
    EXPECT_EQ(state_of(*fin), "cancelled");
    EXPECT_EQ(queue_.cancel(id_of(b)).error().status, 409);
}

TEST_F(queue_test, retryable_failures_back_off_until_max_attempts) {
    auto t = submit("k", 3);
    claim();
    auto f1 = fail(t, problem::unavailable("busy"), true);
    ASSERT_FALSE(HasFailure());
    EXPECT_EQ(state_of(f1), "pending");
    EXPECT_EQ(get_int(f1, "attempt"), 1);
    EXPECT_EQ(get_int(f1, "not_before"), clock_.load() + 1000);
    EXPECT_TRUE(f1.at("worker").is_null());

    auto early = queue_.claim("w1", clock_.load() + 999, std::chrono::milliseconds(1000));
    ASSERT_TRUE(early.has_value());
    EXPECT_FALSE(early->has_value());
    clock_ += 1000;
    auto c2 = claim();
    EXPECT_EQ(get_int(c2, "attempt"), 2);
    auto f2 = fail(t, problem::unavailable("busy"), true);
    ASSERT_FALSE(HasFailure());
    EXPECT_EQ(get_int(f2, "not_before"), clock_.load() + 2000);

    clock_ += 2000;
    EXPECT_EQ(get_int(claim(), "attempt"), 3);
    auto f3 = fail(t, problem::unavailable("busy"), true);
    ASSERT_FALSE(HasFailure());
    EXPECT_EQ(state_of(f3), "failed");
    EXPECT_EQ(get_int(f3, "result_status"), 503);
    EXPECT_EQ(get_string(f3.at("error").as_object(), "detail"), "busy");
}

TEST_F(queue_test, a_non_retryable_failure_is_final) {
    auto t = submit("k", 3);
    claim();
    auto f = fail(t, problem::internal("boom"), false);
    EXPECT_EQ(state_of(f), "failed");
    EXPECT_EQ(get_int(f, "attempt"), 1);
}

TEST(backoff_test, exponential_capped_with_full_jitter) {
    task_store ts;
    task_queue::options o;
    o.jitter = false;
    task_queue plain(*ts.db, o);
    EXPECT_EQ(plain.backoff(1).count(), 1000);
    EXPECT_EQ(plain.backoff(2).count(), 2000);
    EXPECT_EQ(plain.backoff(5).count(), 16000);
    EXPECT_EQ(plain.backoff(9).count(), 256000);
    EXPECT_EQ(plain.backoff(10).count(), 300000);
    EXPECT_EQ(plain.backoff(60).count(), 300000);
    task_queue jittered(*ts.db);
    std::set<std::int64_t> seen;
    for (int i = 0; i < 200; ++i) {
        auto d = jittered.backoff(4).count();
        EXPECT_GE(d, 0);
        EXPECT_LE(d, 8000);
        seen.insert(d);
    }
    EXPECT_GT(seen.size(), 10u);
}

TEST_F(queue_test, expired_leases_are_requeued_then_fail_as_worker_lost) {
    auto t = submit("k", 2);
    auto c = claim("w1", std::chrono::milliseconds(100));
    auto r0 = queue_.reap(clock_.load() + 50);
    ASSERT_TRUE(r0.has_value());
    EXPECT_EQ(*r0, 0u);
    auto r1 = queue_.reap(clock_.load() + 101);
    ASSERT_TRUE(r1.has_value());
    EXPECT_EQ(*r1, 1u);
    auto st = stored(id_of(t));
    EXPECT_EQ(state_of(st), "pending");
    EXPECT_EQ(get_int(st, "attempt"), 1);
    EXPECT_EQ(queue_.complete(id_of(t), "w1", outcome{}).error().status, 409) << "w1 lost it";

    clock_ += 200;
    auto c2 = claim("w2", std::chrono::milliseconds(100));
    EXPECT_EQ(get_int(c2, "attempt"), 2);
    auto r2 = queue_.reap(clock_.load() + 101);
    ASSERT_TRUE(r2.has_value());
    EXPECT_EQ(*r2, 1u);
    st = stored(id_of(t));
    EXPECT_EQ(state_of(st), "failed");
    EXPECT_EQ(get_string(st.at("error").as_object(), "type"), "/problems/task-worker-lost");

    auto u = submit("k", 3);
    claim("w3", std::chrono::milliseconds(100));
    ASSERT_TRUE(queue_.cancel(id_of(u)).has_value());
    ASSERT_TRUE(queue_.reap(clock_.load() + 101).has_value());
    EXPECT_EQ(state_of(stored(id_of(u))), "cancelled") << "a lost task already asked to stop ends cancelled";
}

TEST_F(queue_test, release_hands_the_task_back_without_counting_the_attempt) {
    auto t = submit();
    claim();
    auto r = queue_.release(id_of(t), "w1");
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(state_of(*r), "pending");
    EXPECT_EQ(get_int(*r, "attempt"), 0);
    EXPECT_TRUE(r->at("lease_until").is_null());
    EXPECT_EQ(get_int(claim("w2"), "attempt"), 1);
    EXPECT_EQ(queue_.release(id_of(t), "w1").error().status, 409);
}

TEST_F(queue_test, purge_deletes_only_old_finished_tasks) {
    auto old_done = submit();
    claim();
    ASSERT_TRUE(queue_.complete(id_of(old_done), "w1", outcome{}).has_value());
    auto old_cancelled = submit();
    ASSERT_TRUE(queue_.cancel(id_of(old_cancelled)).has_value());
    auto pending = submit();
    clock_ += 10'000;
    auto recent = submit();
    claim();  // the oldest pending one (`pending`): running tasks are never purged

    auto n = queue_.purge(clock_.load(), std::chrono::milliseconds(5000));
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 2u);
    EXPECT_FALSE(queue_.get(id_of(old_done))->has_value());
    EXPECT_FALSE(queue_.get(id_of(old_cancelled))->has_value());
    EXPECT_TRUE(queue_.get(id_of(pending))->has_value());
    EXPECT_TRUE(queue_.get(id_of(recent))->has_value());
}

TEST_F(queue_test, claims_only_registered_kinds_oldest_first) {
    auto a = submit("a");
    clock_ += 1;
    auto b = submit("b");
    clock_ += 1;
    auto a2 = submit("a");
    auto r = queue_.claim("w", clock_.load(), std::chrono::milliseconds(1000), {"b"});
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(id_of(**r), id_of(b));
    r = queue_.claim("w", clock_.load(), std::chrono::milliseconds(1000), {"a", "c"});
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(id_of(**r), id_of(a));
    r = queue_.claim("w", clock_.load(), std::chrono::milliseconds(1000));
    ASSERT_TRUE(r && *r);
    EXPECT_EQ(id_of(**r), id_of(a2));
}

TEST(claim_key_test, the_owners_turn_survives_every_priority) {
    for (int p = task_queue::kMinPriority; p <= task_queue::kMaxPriority; ++p)
        for (std::int64_t turn : {std::int64_t{0}, std::int64_t{1}, std::int64_t{12345}, std::int64_t{1} << 40})
            EXPECT_EQ(task_queue::turn_of(task_queue::claim_key(turn, p)), turn) << "priority " << p;
    // Every priority's keys stay below the due band, a higher priority's below a lower one's.
    EXPECT_LT(task_queue::claim_key(std::int64_t{1} << 40, task_queue::kMinPriority), task_queue::kRetryBand);
    EXPECT_LT(task_queue::claim_key(std::int64_t{1} << 40, 1), task_queue::claim_key(0, 0));
}

TEST_F(queue_test, a_delayed_task_waits_for_its_time_and_the_claim_says_when) {
    auto s = submission("k", json::object{{"n", 1}});
    s.not_before = clock_.load() + 5000;
    auto delayed = queue_.submit(s);
    ASSERT_TRUE(delayed) << delayed.error().detail;
    EXPECT_EQ(state_of(*delayed), "pending");
    EXPECT_EQ(get_int(*delayed, "not_before"), s.not_before);
    auto now_task = submit();

    std::int64_t next_due = -1;
    auto first = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), {}, 10, &next_due);
    ASSERT_TRUE(first);
    ASSERT_EQ(first->size(), 1u);  // only the task without a delay
    EXPECT_EQ(id_of(first->front()), id_of(now_task));
    EXPECT_EQ(next_due, s.not_before);
    // Of other kinds only: nothing to wake for.
    auto other = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), {"other"}, 10, &next_due);
    ASSERT_TRUE(other);
    EXPECT_TRUE(other->empty());
    EXPECT_EQ(next_due, 0);

    clock_ += 4999;
    auto early = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), {}, 10, &next_due);
    ASSERT_TRUE(early);
    EXPECT_TRUE(early->empty());
    clock_ += 1;
    auto due = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), {}, 10, &next_due);
    ASSERT_TRUE(due);
    ASSERT_EQ(due->size(), 1u);
    EXPECT_EQ(id_of(due->front()), id_of(*delayed));
    EXPECT_EQ(next_due, 0);  // none left waiting
}

TEST_F(queue_test, due_delayed_tasks_run_in_due_order_behind_the_waiting_ones) {
    std::vector<std::string> delayed;
    for (int i = 3; i >= 1; --i) {  // submitted last-due first
        auto s = submission("k");
        s.not_before = clock_.load() + i * 1000;
        auto r = queue_.submit(s);
        ASSERT_TRUE(r);
        delayed.insert(delayed.begin(), id_of(*r));
    }
    clock_ += 3000;  // all three due
    auto waiting = submit();
    auto claimed = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), {}, 10);
    ASSERT_TRUE(claimed);
    ASSERT_EQ(claimed->size(), 4u);
    EXPECT_EQ(id_of((*claimed)[0]), id_of(waiting));
    for (std::size_t i = 0; i < 3; ++i) EXPECT_EQ(id_of((*claimed)[i + 1]), delayed[i]);
}

TEST_F(queue_test, a_higher_priority_is_claimed_before_every_waiting_task_of_a_lower_one) {
    std::vector<std::string> plain;
    for (int i = 0; i < 5; ++i) plain.push_back(id_of(submit()));
    auto low = submission("k");
    low.priority = -2;
    auto high = submission("k");
    high.priority = 3;
    auto low_task = queue_.submit(low);
    auto high_task = queue_.submit(high);
    ASSERT_TRUE(low_task && high_task);
    EXPECT_EQ(get_int(*high_task, "priority"), 3);
    auto bad = submission("k");
    bad.priority = task_queue::kMaxPriority + 1;
    EXPECT_EQ(queue_.submit(bad).error().status, 400);

    auto claimed = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), {}, 10);
    ASSERT_TRUE(claimed);
    ASSERT_EQ(claimed->size(), 7u);
    EXPECT_EQ(id_of(claimed->front()), id_of(*high_task));
    for (std::size_t i = 0; i < plain.size(); ++i) EXPECT_EQ(id_of((*claimed)[i + 1]), plain[i]);
    EXPECT_EQ(id_of(claimed->back()), id_of(*low_task));
}

TEST_F(queue_test, a_rate_limited_queue_claims_no_more_than_its_tokens_and_says_when_the_next_comes) {
    for (int i = 0; i < 30; ++i) submit("mail");
    queue_limits limits;
    limits.name = "mailers";
    limits.rate_limit = {50, std::chrono::milliseconds(1000)};  // a bucket of 5 tokens
    const std::vector<std::string> kinds{"mail"};
    std::int64_t next_due = 0;
    auto first = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), kinds, 20, &next_due, &limits);
    ASSERT_TRUE(first) << first.error().detail;
    EXPECT_EQ(first->size(), 5u);
    EXPECT_EQ(next_due, clock_.load() + 20);  // one token every 20 ms
    auto none = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), kinds, 20, &next_due, &limits);
    ASSERT_TRUE(none);
    EXPECT_TRUE(none->empty());
    EXPECT_EQ(next_due, clock_.load() + 20);
    // 100 ms later: five more tokens, never more than the bucket holds.
    clock_ += 100;
    auto second = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), kinds, 20, &next_due, &limits);
    ASSERT_TRUE(second);
    EXPECT_EQ(second->size(), 5u);
    clock_ += 10'000;
    auto third = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), kinds, 20, &next_due, &limits);
    ASSERT_TRUE(third);
    EXPECT_EQ(third->size(), 5u);
    // Over 10 s of claiming every 10 ms: 50/s, within the bucket.
    std::size_t started = 0;
    for (int step = 0; step < 1000; ++step) {
        clock_ += 10;
        auto c = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(60'000), kinds, 20, nullptr, &limits);
        ASSERT_TRUE(c);
        started += c->size();
        if (c->empty() && step > 100) break;  // the 30 tasks ran out
    }
    EXPECT_EQ(started, 15u);
    // A claim without the limits (another queue's pool) is not counted against them.
    submit("mail");
    auto unlimited = queue_.claim_batch("w2", clock_.load(), std::chrono::milliseconds(1000), kinds, 20);
    ASSERT_TRUE(unlimited);
    EXPECT_EQ(unlimited->size(), 1u);
}

TEST_F(queue_test, a_kind_at_its_concurrency_waits_while_other_kinds_are_claimed) {
    for (int i = 0; i < 4; ++i) submit("render");
    for (int i = 0; i < 2; ++i) submit("thumb");
    queue_limits limits;
    limits.name = "media";
    limits.concurrency = {{"render", 2}};
    const std::vector<std::string> kinds{"render", "thumb"};
    auto first = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), kinds, 10, nullptr, &limits);
    ASSERT_TRUE(first) << first.error().detail;
    std::size_t renders = 0;
    for (const auto& t : *first) renders += get_string(t, "kind") == "render";
    EXPECT_EQ(renders, 2u);
    EXPECT_EQ(first->size(), 4u);  // two renders and both thumbs
    auto full = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), kinds, 10, nullptr, &limits);
    ASSERT_TRUE(full);
    EXPECT_TRUE(full->empty());
    // One render finishes: one slot.
    for (const auto& t : *first)
        if (get_string(t, "kind") == "render") {
            ASSERT_TRUE(queue_.complete(id_of(t), "w1", outcome::json_body(200, json::object{})));
            break;
        }
    auto one = queue_.claim_batch("w1", clock_.load(), std::chrono::milliseconds(1000), kinds, 10, nullptr, &limits);
    ASSERT_TRUE(one);
    ASSERT_EQ(one->size(), 1u);
    EXPECT_EQ(get_string(one->front(), "kind"), "render");
}

TEST_F(queue_test, every_state_change_is_in_the_change_log) {
    auto before = ts_.db->last_seq();
    auto t = submit();
    claim();
    ASSERT_TRUE(queue_.heartbeat(id_of(t), "w1", std::chrono::milliseconds(1000)).has_value());
    ASSERT_TRUE(queue_.complete(id_of(t), "w1", outcome{}).has_value());
    std::promise<std::vector<change>> p;
    ts_.db->read([&](read_txn& txn) {
        auto r = txn.changes_after(before, 100);
        p.set_value(r ? *r : std::vector<change>{});
    });
    auto changes = p.get_future().get();
    ASSERT_EQ(changes.size(), 4u);
    EXPECT_EQ(changes[0].op, "create");
    EXPECT_EQ(changes[0].collection, "tasks");
    EXPECT_EQ(get_string(changes[1].record, "state"), "running");
    EXPECT_EQ(get_string(changes[3].record, "state"), "succeeded");
}

TEST_F(queue_test, concurrent_claims_take_each_task_exactly_once) {
    constexpr int k_tasks = 500;
    auto at = clock_.load();
    auto r = ts_.db->write_sync([&](write_txn& txn) -> result<json::value> {
        for (int i = 0; i < k_tasks; ++i) {
            auto t = task_queue::submit_in(txn, submission("k", json::value(i)), at);
            if (!t) return std::move(t).error();
        }
        return json::value(nullptr);
    });
    ASSERT_TRUE(r.has_value());

    std::mutex mu;
    std::vector<std::string> claimed;
    std::atomic<int> errors{0};
    std::vector<std::thread> threads;
    for (int w = 0; w < 8; ++w) {
        threads.emplace_back([&, w] {
            auto name = "w" + std::to_string(w);
            for (;;) {
                auto c = queue_.claim(name, at, std::chrono::milliseconds(60'000));
                if (!c) {
                    ++errors;
                    return;
                }
                if (!*c) return;
                EXPECT_EQ(get_string(**c, "worker"), name);
                std::lock_guard lock(mu);
                claimed.push_back(id_of(**c));
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(errors.load(), 0);
    EXPECT_EQ(claimed.size(), static_cast<std::size_t>(k_tasks));
    std::set<std::string> unique(claimed.begin(), claimed.end());
    EXPECT_EQ(unique.size(), static_cast<std::size_t>(k_tasks));
}

TEST_F(queue_test, wait_for_work_wakes_on_submit) {
    auto seen = queue_.generation();
    auto start = std::chrono::steady_clock::now();
    std::thread th([&] { submit(); });
    queue_.wait_for_work(seen, std::chrono::milliseconds(3000));
    EXPECT_LT(std::chrono::steady_clock::now() - start, std::chrono::milliseconds(2000));
    th.join();
    EXPECT_NE(queue_.generation(), seen);
}

TEST_F(queue_test, submit_async_calls_back_after_commit) {
    std::promise<result<json::object>> p;
    queue_.submit_async(submission("k"), [&](result<json::object> r) { p.set_value(std::move(r)); });
    auto f = p.get_future();
    ASSERT_EQ(f.wait_for(std::chrono::seconds(3)), std::future_status::ready);
    auto r = f.get();
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(queue_.get(id_of(*r))->has_value());
}


// The owners' pending counts and the claim head follow the change log, as the app feeds them.
class fair_queue_test : public queue_test {
protected:
    void feed() {
        std::promise<std::vector<change>> got;
        ts_.db->read([&](read_txn& t) {
            auto r = t.changes_after(seen_, 10000);
            got.set_value(r ? std::move(*r) : std::vector<change>{});
        });
        for (auto& ch : got.get_future().get()) {
            seen_ = ch.seq;
            queue_.observe(ch);
        }
    }
    json::object submit_as(const std::string& user) {
        auto s = submission("k", json::object{{"n", 1}});
        s.who.user_id = user;
        auto r = queue_.submit(s);
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().detail);
        feed();
        return r ? *r : json::object{};
    }
    std::string claim_one() {
        auto t = claim();
        feed();
        return std::string(get_string(t, "owner"));
    }
    std::int64_t seen_ = 0;
};

TEST_F(fair_queue_test, owners_with_waiting_tasks_take_turns) {
    for (int i = 0; i < 20; ++i) submit_as("big");
    submit_as("small");
    // The small owner's one task is not behind the big owner's twenty.
    std::vector<std::string> order;
    for (int i = 0; i < 2; ++i) order.push_back(claim_one());
    EXPECT_NE(std::find(order.begin(), order.end(), "small"), order.end());
    for (int i = 0; i < 5; ++i) claim_one();
    // A newcomer after claims started is taken next or right after, not after the backlog.
    submit_as("late");
    order.clear();
    for (int i = 0; i < 2; ++i) order.push_back(claim_one());
    EXPECT_NE(std::find(order.begin(), order.end(), "late"), order.end());
    // Two owners with backlogs alternate.
    for (int i = 0; i < 4; ++i) submit_as("other");
    order.clear();
    for (int i = 0; i < 8; ++i) order.push_back(claim_one());
    EXPECT_GE(std::count(order.begin(), order.end(), "other"), 3);
    EXPECT_GE(std::count(order.begin(), order.end(), "big"), 3);
}

TEST_F(fair_queue_test, the_order_survives_a_new_queue_on_the_same_store) {
    for (int i = 0; i < 10; ++i) submit_as("big");
    for (int i = 0; i < 3; ++i) claim_one();
    // Another process (or a restart): it learns the head and the owner's last key from the store.
    task_queue other(*ts_.db, on_test_clock(backoff_of_a_second()));
    auto s = submission("k", json::object{{"n", 1}});
    s.who.user_id = "fresh";
    ASSERT_TRUE(other.submit(s));
    auto b = submission("k", json::object{{"n", 1}});
    b.who.user_id = "big";
    auto more = other.submit(b);
    ASSERT_TRUE(more);
    feed();
    std::vector<std::string> order;
    for (int i = 0; i < 2; ++i) order.push_back(claim_one());
    EXPECT_NE(std::find(order.begin(), order.end(), "fresh"), order.end());
    // The big owner's new task stays behind its own backlog.
    EXPECT_GT(get_int(*more, "fair").value_or(0), 10 - 1);
}

TEST_F(fair_queue_test, a_retry_goes_behind_the_queued_tasks) {
    auto first = submit_as("u1");
    auto t = claim();
    ASSERT_EQ(id_of(t), id_of(first));
    ASSERT_TRUE(queue_.fail(id_of(t), "w1", problem::internal("flaky"), true));
    feed();
    auto second = submit_as("u1");
    clock_ += 60'000;  // the retry is due
    EXPECT_EQ(id_of(claim()), id_of(second));
    EXPECT_EQ(id_of(claim()), id_of(first));
}

TEST_F(fair_queue_test, an_owner_over_its_pending_limit_gets_429_until_its_tasks_are_taken) {
    queue_.set_limits({3, 2});
    for (int i = 0; i < 3; ++i) submit_as("u1");
    auto s = submission("k", json::object{{"n", 1}});
    s.who.user_id = "u1";
    auto over = queue_.submit(s);
    ASSERT_FALSE(over);
    EXPECT_EQ(over.error().status, 429);
    EXPECT_EQ(over.error().extra.at("retry_after"), 1);
    EXPECT_EQ(*queue_.pending_of("u1"), 3);
    // Other owners are not affected.
    submit_as("u2");
    // Anonymous callers have their own limit.
    auto anon = submission("k", json::object{{"n", 1}});
    anon.who.user_id.clear();
    EXPECT_TRUE(queue_.submit(anon));
    EXPECT_TRUE(queue_.submit(anon));
    auto anon_over = queue_.submit(anon);
    ASSERT_FALSE(anon_over);
    EXPECT_EQ(anon_over.error().status, 429);
    feed();
    // Once one of u1's tasks is claimed, u1 may submit again.
    for (int i = 0; i < 6 && *queue_.pending_of("u1") == 3; ++i) claim_one();
    EXPECT_LT(*queue_.pending_of("u1"), 3);
    EXPECT_TRUE(queue_.submit(s));
}

TEST_F(fair_queue_test, a_limited_async_submission_answers_429_and_stores_nothing) {
    queue_.set_limits({1, 1});
    submit_as("u1");
    auto s = submission("k", json::object{{"n", 1}});
    s.who.user_id = "u1";
    std::promise<result<json::object>> got;
    queue_.submit_async(s, [&](result<json::object> r) { got.set_value(std::move(r)); });
    auto r = got.get_future().get();
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status, 429);
    feed();
    EXPECT_EQ(*queue_.pending_of("u1"), 1);
}

}  // namespace
}  // namespace livebase
