// The batched task flow: claims of many tasks in one transaction, heartbeats of many tasks in
// one transaction, submissions handed to an idle worker without a claim, and a task finished
// inside the transaction of the effect it made.
#include "unit/tasks/tasks_test_support.hpp"

#include <livebase/core/clock.hpp>

#include <future>
#include <map>
#include <mutex>
#include <set>
#include <thread>

namespace livebase {
namespace {

using test::submission;
using test::task_store;
using namespace std::chrono_literals;

using test::id_of;
using test::state_of;

class batch_test : public test::queue_fixture {
protected:
    json::object submit(std::string kind = "k") {
        auto r = queue_.submit(submission(std::move(kind)));
        EXPECT_TRUE(r.has_value());
        return r ? *r : json::object{};
    }
    json::object stored(const std::string& id) {
        auto r = queue_.get(id);
        return r && *r ? **r : json::object{};
    }
    std::vector<change> changes_since(std::int64_t seq) {
        std::promise<std::vector<change>> p;
        ts_.db->read([&](read_txn& txn) {
            auto r = txn.changes_after(seq, 1000);
            p.set_value(r ? *r : std::vector<change>{});
        });
        return p.get_future().get();
    }
};

TEST_F(batch_test, a_batch_claims_the_oldest_due_tasks_up_to_its_size) {
    std::vector<std::string> ids;
    for (int i = 0; i < 5; ++i) {
        ids.push_back(id_of(submit()));
        clock_ += 10;
    }
    // A task that is not due yet stays behind, whatever the batch size.
    auto later = submission("k");
    ASSERT_TRUE(ts_.db->write_sync([&](write_txn& txn) -> result<json::value> {
        auto t = task_queue::submit_in(txn, later, clock_.load() + 60'000);
        if (!t) return std::move(t).error();
        return json::value(nullptr);
    }));

    auto first = queue_.claim_batch("pool-a", clock_.load(), 1000ms, {}, 3);
    ASSERT_TRUE(first.has_value());
    ASSERT_EQ(first->size(), 3u);
    for (std::size_t i = 0; i < 3; ++i) {
        EXPECT_EQ(id_of((*first)[i]), ids[i]);
        EXPECT_EQ(state_of((*first)[i]), "running");
        EXPECT_EQ(get_string((*first)[i], "worker"), "pool-a");
        EXPECT_EQ(get_int((*first)[i], "attempt"), 1);
        EXPECT_EQ(state_of(stored(ids[i])), "running");
    }
    auto second = queue_.claim_batch("pool-b", clock_.load(), 1000ms, {}, 10);
    ASSERT_TRUE(second.has_value());
    ASSERT_EQ(second->size(), 2u);
    EXPECT_EQ(id_of((*second)[0]), ids[3]);
    EXPECT_EQ(id_of((*second)[1]), ids[4]);
    auto none = queue_.claim_batch("pool-b", clock_.load(), 1000ms, {}, 10);
    ASSERT_TRUE(none.has_value());
    EXPECT_TRUE(none->empty());
}

TEST_F(batch_test, concurrent_batches_take_each_task_exactly_once) {
    constexpr int k_tasks = 600;
    auto at = clock_.load();
    ASSERT_TRUE(ts_.db->write_sync([&](write_txn& txn) -> result<json::value> {
        for (int i = 0; i < k_tasks; ++i)
            if (auto t = task_queue::submit_in(txn, submission("k", json::value(i)), at); !t) return std::move(t).error();
        return json::value(nullptr);
    }));
    std::mutex mu;
    std::vector<std::string> claimed;
    std::vector<std::thread> threads;
    for (int w = 0; w < 6; ++w) {
        threads.emplace_back([&, w] {
            for (int round = 0; round < k_tasks; ++round) {  // bounded: each round takes >= 1 task
                auto c = queue_.claim_batch("w" + std::to_string(w), at, 60'000ms, {}, 7);
                ASSERT_TRUE(c.has_value());
                if (c->empty()) return;
                std::lock_guard lock(mu);
                for (const auto& t : *c) claimed.push_back(id_of(t));
            }
        });
    }
    for (auto& th : threads) th.join();
    EXPECT_EQ(claimed.size(), static_cast<std::size_t>(k_tasks));
    EXPECT_EQ(std::set<std::string>(claimed.begin(), claimed.end()).size(), static_cast<std::size_t>(k_tasks));
}

TEST_F(batch_test, a_heartbeat_batch_renews_each_lease_and_tells_which_tasks_are_lost) {
    auto a = id_of(submit());
    auto b = id_of(submit());
    auto c = id_of(submit());
    auto claimed = queue_.claim_batch("pool", clock_.load(), 1000ms, {}, 3);
    ASSERT_TRUE(claimed && claimed->size() == 3u);
    ASSERT_TRUE(queue_.cancel(b).has_value());                       // b: cancel requested
    ASSERT_TRUE(queue_.complete(c, "pool", outcome{}).has_value());  // c: no longer running
    clock_ += 500;
    task_progress half;
    half.progress = json::value(50.0);
    auto answers = queue_.heartbeat_batch({{a, "pool", half}, {b, "pool", {}}, {c, "pool", {}},
                                           {"missing", "pool", {}}, {a, "someone-else", {}}},
                                          1000ms);
    ASSERT_TRUE(answers.has_value());
    ASSERT_EQ(answers->size(), 5u);
    EXPECT_TRUE((*answers)[0].ours);
    EXPECT_FALSE((*answers)[0].cancel_requested);
    EXPECT_TRUE((*answers)[1].ours);
    EXPECT_TRUE((*answers)[1].cancel_requested);
    EXPECT_FALSE((*answers)[2].ours);
    EXPECT_FALSE((*answers)[3].ours);
    EXPECT_FALSE((*answers)[4].ours);
    auto sa = stored(a);
    EXPECT_EQ(get_int(sa, "lease_until"), clock_.load() + 1000);
    EXPECT_EQ(sa.at("progress"), 50.0);
    EXPECT_EQ(state_of(stored(c)), "succeeded");
}

// An intake that always has one idle worker, as a pool of this process would.
struct fake_intake : task_intake {
    std::optional<claim_slot> reserve(std::string_view kind) override {
        if (kind != "fast") return std::nullopt;
        ++reserved;
        return claim_slot{"local", 5000ms};
    }
    void deliver(json::object task) override {
        std::lock_guard lock(mu);
        delivered.push_back(std::move(task));
    }
    void unreserve() override { ++unreserved; }
    void work_available() override { ++woken; }
    std::mutex mu;
    std::vector<json::object> delivered;
    std::atomic<int> reserved{0}, unreserved{0}, woken{0};
};

TEST_F(batch_test, a_submission_to_an_idle_worker_commits_running_without_a_claim) {
    fake_intake intake;
    queue_.add_intake(&intake);
    auto seq = ts_.db->last_seq();
    std::promise<result<json::object>> p;
    queue_.submit_async(submission("fast"), [&](result<json::object> r) { p.set_value(std::move(r)); });
    auto r = p.get_future().get();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(state_of(*r), "running");
    EXPECT_EQ(get_string(*r, "worker"), "local");
    EXPECT_EQ(get_int(*r, "attempt"), 1);
    EXPECT_EQ(get_int(*r, "lease_until"), clock_.load() + 5000);
    {
        std::lock_guard lock(intake.mu);
        ASSERT_EQ(intake.delivered.size(), 1u);
        EXPECT_EQ(id_of(intake.delivered[0]), id_of(*r));
    }
    EXPECT_EQ(intake.woken.load(), 0);  // nothing pending: nobody needs to claim
    // One change: the task was never pending in the store.
    auto changes = changes_since(seq);
    ASSERT_EQ(changes.size(), 1u);
    EXPECT_EQ(get_string(changes[0].record, "state"), "running");

    // A kind this intake does not serve is stored pending and wakes the claimers.
    std::promise<result<json::object>> q;
    queue_.submit_async(submission("other"), [&](result<json::object> r2) { q.set_value(std::move(r2)); });
    auto other = q.get_future().get();
    ASSERT_TRUE(other.has_value());
    EXPECT_EQ(state_of(*other), "pending");
    EXPECT_EQ(intake.woken.load(), 1);
    queue_.remove_intake(&intake);
}

TEST_F(batch_test, a_failed_submission_gives_the_reserved_worker_back) {
    fake_intake intake;
    queue_.add_intake(&intake);
    auto bad = submission("fast");
    bad.max_attempts = 0;  // refused by submit_in
    std::promise<result<json::object>> p;
    queue_.submit_async(bad, [&](result<json::object> r) { p.set_value(std::move(r)); });
    EXPECT_FALSE(p.get_future().get().has_value());
    EXPECT_EQ(intake.reserved.load(), 1);
    EXPECT_EQ(intake.unreserved.load(), 1);
    std::lock_guard lock(intake.mu);
    EXPECT_TRUE(intake.delivered.empty());
    queue_.remove_intake(&intake);
}

// The effect and the task's success in one transaction: both commit, or neither does.
TEST_F(batch_test, complete_in_commits_with_the_effect_or_rolls_it_back) {
    collection_def notes;
    notes.name = "notes";
    notes.fields = {field_def{"text", field_type::string}};
    ASSERT_EQ(finalize(notes), "");
    test::migrate_or_die(*ts_.db, notes);
    auto t = id_of(submit());
    ASSERT_TRUE(queue_.claim_batch("pool", clock_.load(), 1000ms, {}, 1).has_value());
    auto note = [](std::string id) {
        return json::object{{"id", id}, {"created", "t"}, {"updated", "t"}, {"version", 1}, {"text", "x"}};
    };

    // Not held by this worker: the effect is rolled back with it.
    auto refused = ts_.db->write_sync([&](write_txn& txn) -> result<json::value> {
        if (auto r = txn.insert(notes, note("n1")); !r) return std::move(r).error();
        auto done = task_queue::complete_in(txn, t, "another-pool", outcome{}, clock_.load());
        if (!done) return std::move(done).error();
        return json::value(nullptr);
    });
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().status, 409);
    EXPECT_FALSE(*ts_.db->get_sync(notes, "n1"));
    EXPECT_EQ(state_of(stored(t)), "running");

    auto ok = ts_.db->write_sync([&](write_txn& txn) -> result<json::value> {
        if (auto r = txn.insert(notes, note("n2")); !r) return std::move(r).error();
        outcome out;
        out.status = 201;
        out.location = "/api/notes/n2";
        auto done = task_queue::complete_in(txn, t, "pool", out, clock_.load());
        if (!done) return std::move(done).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(ok.has_value());
    EXPECT_TRUE(*ts_.db->get_sync(notes, "n2"));
    auto done = stored(t);
    EXPECT_EQ(state_of(done), "succeeded");
    EXPECT_EQ(get_string(done, "location"), "/api/notes/n2");
}

// Outcomes queued while the store is busy travel as one write (one read of their rows), yet
// each gets its own answer, and the rows change as if each had been written alone: a task not
// held by the worker is refused (409) without touching the others, and two outcomes of one
// task apply in order.
TEST_F(batch_test, outcomes_queued_together_are_one_write_with_an_answer_each) {
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) ids.push_back(id_of(submit()));
    auto claimed = queue_.claim_batch("pool", clock_.load(), 1000ms, {}, 4);
    ASSERT_TRUE(claimed && claimed->size() == 4u);
    const std::int64_t seq = ts_.db->last_seq();

    // Hold the writer so every outcome below queues behind it.
    std::promise<void> entered, released;
    auto gate = released.get_future().share();
    ts_.db->write(
        [&](write_txn&) -> result<json::value> {
            entered.set_value();
            gate.wait();
            return json::value(nullptr);
        },
        [](result<json::value>) {});
    entered.get_future().wait();

    std::mutex mu;
    std::map<std::string, result<json::object>> answers;
    std::promise<void> all;
    auto answer = [&](std::string key) {
        return [&, key](result<json::object> r) {
            std::lock_guard lock(mu);
            answers.emplace(key, std::move(r));
            if (answers.size() == 6) all.set_value();
        };
    };
    outcome ok;
    ok.body = json::object{{"n", 1}};
    queue_.complete_async(ids[0], "pool", ok, answer("a"));
    queue_.fail_async(ids[1], "pool", problem::internal("flaky"), /*retryable=*/true, answer("b"));
    queue_.complete_async(ids[2], "another-pool", ok, answer("c"));  // not its worker's
    queue_.release_async(ids[3], "pool", answer("d"));
    queue_.complete_async(ids[3], "pool", ok, answer("d again"));  // after the hand-back: no longer held
    queue_.complete_async("missing", "pool", ok, answer("missing"));
    released.set_value();
    all.get_future().wait();

    ASSERT_TRUE(answers.at("a").has_value());
    EXPECT_EQ(state_of(*answers.at("a")), "succeeded");
    ASSERT_TRUE(answers.at("b").has_value());
    EXPECT_EQ(state_of(*answers.at("b")), "pending");
    ASSERT_FALSE(answers.at("c").has_value());
    EXPECT_EQ(answers.at("c").error().status, 409);
    ASSERT_TRUE(answers.at("d").has_value());
    EXPECT_EQ(state_of(*answers.at("d")), "pending");
    ASSERT_FALSE(answers.at("d again").has_value());
    EXPECT_EQ(answers.at("d again").error().status, 409);
    ASSERT_FALSE(answers.at("missing").has_value());
    EXPECT_EQ(answers.at("missing").error().status, 404);

    EXPECT_EQ(state_of(stored(ids[0])), "succeeded");
    EXPECT_EQ(state_of(stored(ids[1])), "pending");
    EXPECT_EQ(state_of(stored(ids[2])), "running");
    EXPECT_EQ(state_of(stored(ids[3])), "pending");
    // One change per task written, each with the row as it was before it.
    auto log = changes_since(seq);
    ASSERT_EQ(log.size(), 3u);
    std::set<std::string> changed;
    for (const auto& ch : log) {
        changed.insert(ch.id);
        ASSERT_TRUE(ch.before.has_value());
        EXPECT_EQ(get_string(*ch.before, "state"), "running");
    }
    EXPECT_EQ(changed, (std::set<std::string>{ids[0], ids[1], ids[3]}));
}

}  // namespace
}  // namespace livebase
