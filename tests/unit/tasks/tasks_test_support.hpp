#pragma once
// Shared helpers of the tasks tests: a migrated SQLite store in a temp dir, and bounded waits.
#include "unit/store/store_test_support.hpp"

#include <livebase/tasks/queue.hpp>
#include <livebase/tasks/task.hpp>

#include <gtest/gtest.h>

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
    }
    temp_dir dir;
    std::unique_ptr<store> db;
};

/// Polls `pred` every 5 ms until it holds or `limit` passed; returns its last value.
inline bool eventually(const std::function<bool()>& pred,
                       std::chrono::milliseconds limit = std::chrono::milliseconds(3000)) {
    auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    return pred();
}

inline task_submission submission(std::string kind, json::value input = nullptr, int max_attempts = 3) {
    task_submission s;
    s.kind = std::move(kind);
    s.input = std::move(input);
    s.max_attempts = max_attempts;
    s.who.user_id = "u1";
    return s;
}

}  // namespace livebase::test
