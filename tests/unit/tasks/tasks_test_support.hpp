#pragma once
// Shared helpers of the tasks tests: a migrated SQLite store in a temp dir, and bounded waits.
#include "unit/store/store_test_support.hpp"
#include "support/wait.hpp"

#include <livebase/tasks/queue.hpp>
#include <livebase/tasks/task.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <functional>
#include <memory>
#include <thread>

namespace livebase::test {

/// A store with the tasks collection migrated, in its own temp dir.
struct task_store {
    task_store() {
        db = open_or_die(dir.file("data/tasks.db"));
        if (db) migrate_or_die(*db, tasks_collection());
        if (db) migrate_or_die(*db, task_queues_collection());
    }
    temp_dir dir;
    std::unique_ptr<store> db;
};

/// A task queue on a fresh store, without jitter, on a clock the test moves (clock_).
class queue_fixture : public ::testing::Test {
protected:
    explicit queue_fixture(task_queue::options o = {}) : queue_(*ts_.db, on_test_clock(std::move(o))) {}
    task_queue::options on_test_clock(task_queue::options o) {
        o.jitter = false;
        o.clock = [this] { return clock_.load(); };
        return o;
    }

    task_store ts_;
    std::atomic<std::int64_t> clock_{1'700'000'000'000};
    task_queue queue_;
};

/// A task's id and state.
inline std::string id_of(const json::object& t) { return std::string(get_string(t, "id")); }
inline std::string state_of(const json::object& t) { return std::string(get_string(t, "state")); }

inline task_submission submission(std::string kind, json::value input = nullptr, int max_attempts = 3) {
    task_submission s;
    s.kind = std::move(kind);
    s.input = std::move(input);
    s.max_attempts = max_attempts;
    s.who.user_id = "u1";
    return s;
}

}  // namespace livebase::test
