// The SQLite store's writer: group commit (a failing write fails alone in its group), concurrent
// writers and readers, small batches, and close().
#include "unit/store/sqlite_store_fixture.hpp"

#include <livebase/core/ulid.hpp>
#include <livebase/schema/query.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <future>
#include <map>
#include <memory>
#include <mutex>
#include <stdexcept>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace livebase {
namespace {

// Holds the writer thread inside a write until release(), so later writes queue up and land
// in one group.
class writer_gate {
public:
    explicit writer_gate(store& s) {
        auto entered = std::make_shared<std::promise<void>>();
        auto entered_f = entered->get_future();
        s.write(
            [entered, released = released_.get_future().share()](write_txn&) -> result<json::value> {
                entered->set_value();
                released.wait();
                return json::value(nullptr);
            },
            [](result<json::value>) {});
        entered_f.wait();
    }
    void release() { released_.set_value(); }

private:
    std::promise<void> released_;
};

struct collected {
    std::mutex mu;
    std::condition_variable cv;
    std::map<int, result<json::value>> results;

    store::write_done slot(int i) {
        return [this, i](result<json::value> r) {
            std::lock_guard<std::mutex> lock(mu);
            results.emplace(i, std::move(r));
            cv.notify_all();
        };
    }
    void wait_for(std::size_t n) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return results.size() >= n; });
    }
};

TEST_F(sqlite_store_test, one_failing_write_does_not_affect_its_group) {
    std::atomic<int> commits{0};
    db_->on_commit([&](std::int64_t) { ++commits; });
    writer_gate gate(*db_);
    collected out;
    auto ins = [&](json::object rec) {
        return [this, rec](write_txn& t) -> result<json::value> {
            if (auto r = t.insert(cars_, rec); !r) return std::move(r).error();
            return json::value(get_string(rec, "id"));
        };
    };
    db_->write(ins(car("01A", {{"vin", "V1"}})), out.slot(0));
    db_->write(ins(car("01B", {{"vin", "V1"}})), out.slot(1));  // unique violation
    db_->write(
        [this](write_txn& t) -> result<json::value> {  // inserts, then changes its mind
            if (auto r = t.insert(cars_, car("01X", {{"vin", "VX"}})); !r) return std::move(r).error();
            return problem::bad_request("changed my mind");
        },
        out.slot(2));
    db_->write([](write_txn&) -> result<json::value> { throw std::runtime_error("boom"); }, out.slot(3));
    db_->write(ins(car("01C", {{"vin", "V3"}})), out.slot(4));
    int before = commits.load();
    gate.release();
    out.wait_for(5);

    EXPECT_TRUE(out.results.at(0).has_value());
    ASSERT_FALSE(out.results.at(1).has_value());
    EXPECT_EQ(out.results.at(1).error().status, 409);
    ASSERT_FALSE(out.results.at(2).has_value());
    EXPECT_EQ(out.results.at(2).error().detail, "changed my mind");
    ASSERT_FALSE(out.results.at(3).has_value());
    EXPECT_EQ(out.results.at(3).error().status, 500);
    ASSERT_TRUE(out.results.at(4).has_value());

    auto all = db_->list_sync(cars_, query{});
    ASSERT_TRUE(all.has_value());
    EXPECT_EQ(ids_of(all->items), (std::vector<std::string>{"01A", "01C"}));
    auto log = changes_sync(*db_, 0);
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[0].id, "01A");
    EXPECT_EQ(log[1].id, "01C");
    EXPECT_EQ(log[1].seq, log[0].seq + 1);  // the rolled-back insert left no gap
    EXPECT_EQ(db_->last_seq(), log[1].seq);
    // The gate's group and the five writes' group: at most two commits with changes, the
    // gate's group had none. The listener runs after the completions: wait for it (bounded).
    for (int i = 0; i < 500 && commits.load() - before < 1; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_EQ(commits.load() - before, 1);
}

// An update given its `before` writes without reading first; when the row is gone it answers
// 404 alone (on PostgreSQL the deferred UPDATE finds no row at commit, and the group runs again
// with each write confirmed).
TEST_F(sqlite_store_test, an_update_of_a_missing_row_fails_alone_in_its_group) {
    writer_gate gate(*db_);
    collected out;
    db_->write(
        [this](write_txn& t) -> result<json::value> {
            if (auto r = t.insert(cars_, car("01A", {{"vin", "V1"}})); !r) return std::move(r).error();
            return json::value(nullptr);
        },
        out.slot(0));
    db_->write(
        [this](write_txn& t) -> result<json::value> {
            const auto before = car("01Z", {{"vin", "VZ"}});
            if (auto r = t.update(cars_, car("01Z", {{"vin", "VZ2"}}), &before); !r) return std::move(r).error();
            return json::value(nullptr);
        },
        out.slot(1));
    db_->write(
        [this](write_txn& t) -> result<json::value> {
            if (auto r = t.insert(cars_, car("01B", {{"vin", "V2"}})); !r) return std::move(r).error();
            return json::value(nullptr);
        },
        out.slot(2));
    gate.release();
    out.wait_for(3);
    EXPECT_TRUE(out.results.at(0).has_value());
    ASSERT_FALSE(out.results.at(1).has_value());
    EXPECT_EQ(out.results.at(1).error().status, 404);
    EXPECT_TRUE(out.results.at(2).has_value());
    auto all = db_->list_sync(cars_, query{});
    ASSERT_TRUE(all.has_value());
    EXPECT_EQ(ids_of(all->items), (std::vector<std::string>{"01A", "01B"}));
    auto log = changes_sync(*db_, 0);
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[1].seq, log[0].seq + 1);
}

TEST_F(sqlite_store_test, concurrent_writers_all_commit_in_order) {
    constexpr int k_threads = 8;
    constexpr int k_per_thread = 500;
    std::atomic<int> ok{0}, failed{0};
    std::mutex mu;
    std::condition_variable cv;
    int finished = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < k_per_thread; ++i) {
                auto rec = car(make_ulid(), {{"vin", "T" + std::to_string(t) + "-" + std::to_string(i)}});
                db_->write(
                    [this, rec](write_txn& w) -> result<json::value> {
                        if (auto r = w.insert(cars_, rec); !r) return std::move(r).error();
                        return json::value(nullptr);
                    },
                    [&](result<json::value> r) {
                        (r ? ok : failed)++;
                        std::lock_guard<std::mutex> lock(mu);
                        ++finished;
                        cv.notify_all();
                    });
            }
        });
    }
    for (auto& th : threads) th.join();
    {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return finished == k_threads * k_per_thread; });
    }
    EXPECT_EQ(ok.load(), k_threads * k_per_thread);
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(db_->last_seq(), k_threads * k_per_thread);
    auto log = changes_sync(*db_, 0);
    ASSERT_EQ(log.size(), static_cast<std::size_t>(k_threads * k_per_thread));
    for (std::size_t i = 0; i < log.size(); ++i) EXPECT_EQ(log[i].seq, static_cast<std::int64_t>(i + 1));
    query q;
    q.limit = 1;
    EXPECT_EQ(db_->list_sync(cars_, q)->count, k_threads * k_per_thread);
}

TEST_F(sqlite_store_test, concurrent_readers_see_consistent_snapshots) {
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::thread reader([&] {
        while (!stop) {
            std::promise<void> p;
            db_->read([&](read_txn& t) {
                query q;
                q.limit = 100000;
                auto pg = t.list(cars_, q);
                auto log = t.changes_after(0, 100000);
                if (!pg || !log || pg->count != static_cast<std::int64_t>(pg->items.size()) ||
                    log->size() != pg->items.size())
                    ++bad;
                p.set_value();
            });
            p.get_future().wait();
        }
    });
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(insert_sync(*db_, cars_, car(make_ulid())).has_value());
    stop = true;
    reader.join();
    EXPECT_EQ(bad.load(), 0);
}

TEST_F(sqlite_store_test, close_finishes_queued_work_then_refuses) {
    constexpr int k_writes = 2000;
    std::atomic<int> ok{0};
    {
        writer_gate gate(*db_);
        for (int i = 0; i < k_writes; ++i) {
            auto rec = car(make_ulid());
            db_->write(
                [this, rec](write_txn& t) -> result<json::value> {
                    if (auto r = t.insert(cars_, rec); !r) return std::move(r).error();
                    return json::value(nullptr);
                },
                [&](result<json::value> r) {
                    if (r) ++ok;
                });
        }
        std::thread releaser([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            gate.release();
        });
        db_->close();  // waits for the queued writes
        releaser.join();
    }
    EXPECT_EQ(ok.load(), k_writes);
    db_->close();  // idempotent

    auto late = db_->write_sync([](write_txn&) -> result<json::value> { return json::value(nullptr); });
    ASSERT_FALSE(late.has_value());
    EXPECT_EQ(late.error().status, 503);
    auto late_read = db_->get_sync(cars_, "x");
    ASSERT_FALSE(late_read.has_value());
    EXPECT_EQ(late_read.error().status, 503);

    reopen();
    query q;
    q.limit = 1;
    EXPECT_EQ(db_->list_sync(cars_, q)->count, k_writes);
    EXPECT_EQ(db_->last_seq(), k_writes);
}

TEST_F(sqlite_store_test, small_batches_still_commit_everything) {
    reopen(/*max_batch=*/3);
    collected out;
    {
        writer_gate gate(*db_);
        for (int i = 0; i < 20; ++i) {
            auto rec = car("R" + std::to_string(100 + i));
            db_->write(
                [this, rec](write_txn& t) -> result<json::value> {
                    if (auto r = t.insert(cars_, rec); !r) return std::move(r).error();
                    return json::value(nullptr);
                },
                out.slot(i));
        }
        gate.release();
    }
    out.wait_for(20);
    for (auto& [i, r] : out.results) EXPECT_TRUE(r.has_value()) << i;
    EXPECT_EQ(db_->last_seq(), 20);
}

}  // namespace
}  // namespace livebase
