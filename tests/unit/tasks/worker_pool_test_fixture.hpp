#pragma once
// A worker pool on a fresh store with short leases and intervals, so tests stay fast.
#include "unit/tasks/tasks_test_support.hpp"

#include <livebase/core/clock.hpp>
#include <livebase/tasks/worker_pool.hpp>

#include <chrono>
#include <memory>
#include <string>

namespace livebase {

class worker_pool_test : public ::testing::Test {
protected:
    worker_pool_test() : queue_(*ts_.db, queue_options()), pool_(make_pool()) {}
    ~worker_pool_test() override {
        pool_->stop();
    }

    static task_queue::options queue_options() {
        task_queue::options o;
        o.backoff_base = std::chrono::milliseconds(10);
        o.backoff_cap = std::chrono::milliseconds(50);
        return o;
    }

    std::unique_ptr<worker_pool> make_pool() {
        worker_pool_options o;
        o.workers = 2;
        o.lease = std::chrono::milliseconds(300);
        o.poll_interval = std::chrono::milliseconds(20);
        o.progress_interval = std::chrono::milliseconds(20);
        o.shutdown_grace = std::chrono::milliseconds(200);
        return std::make_unique<worker_pool>(queue_, o);
    }

    std::string submit(const std::string& kind, json::value input = nullptr) {
        auto r = pool_->submit(kind, std::move(input), nullptr, principal{"u1", false});
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().detail);
        return r ? std::string(get_string(*r, "id")) : std::string();
    }
    std::string submit_raw(const std::string& kind) {
        auto r = queue_.submit(test::submission(kind));
        EXPECT_TRUE(r.has_value());
        return r ? std::string(get_string(*r, "id")) : std::string();
    }
    json::object stored(const std::string& id) {
        auto r = queue_.get(id);
        return r && *r ? **r : json::object{};
    }
    /// The task once finished; fails the test after 4 s.
    /// Registers `handler` for `kind`, starts the pool, submits one `kind` task and waits until
    /// it finished.
    json::object run_one(const std::string& kind, task_handler handler) {
        pool_->register_handler(kind, std::move(handler));
        pool_->start();
        return wait_finished(submit(kind));
    }

    json::object wait_finished(const std::string& id) {
        json::object last;
        bool ok = test::eventually(
            [&] {
                last = stored(id);
                auto s = task_state_from_string(get_string(last, "state"));
                return s && is_finished(*s);
            },
            std::chrono::milliseconds(4000));
        EXPECT_TRUE(ok) << "task " << id << " not finished: " << json::serialize(last);
        return last;
    }

    test::task_store ts_;
    task_queue queue_;
    std::unique_ptr<worker_pool> pool_;
};

}  // namespace livebase
