#pragma once
/// Waits for tasks without holding a thread per waiter: long polls (`Prefer: wait=N`) and
/// `wait=N` submissions wait for a task to finish; the SSE stream of one task watches for its
/// next change. Each registers a callback that runs once, when the task is reported (finished,
/// or changed) or at the deadline, whichever comes first. Reports come from the change log:
/// the hub reads every committed change, on this node and (by NOTIFY or the SQLite watcher)
/// from other processes, and calls notify(); nothing polls.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace livebase {

/// Thread-safe. Callbacks run on the waiters' own thread (deadlines) or on the notifying
/// thread, never under its lock; they must be quick (post elsewhere). stop() (and the
/// destructor) fire every pending callback, so no HTTP response is left hanging.
class task_waiters {
public:
    task_waiters();
    ~task_waiters();
    task_waiters(const task_waiters&) = delete;
    task_waiters& operator=(const task_waiters&) = delete;

    /// Registers `cb` for `task_id`'s end; it runs once: after notify(task_id, true), or at
    /// `deadline`. At most `k_max_waiters` at once: beyond, `cb` runs at once.
    void wait(const std::string& task_id, std::chrono::steady_clock::time_point deadline,
              std::function<void()> cb);
    /// Registers `cb` for `task_id`'s next change; it runs once: after any notify(task_id), or
    /// at `deadline`, or at stop(). False, and `cb` never runs, after stop() or beyond
    /// `k_max_waiters` (a watcher would otherwise be called again and again).
    bool watch(const std::string& task_id, std::chrono::steady_clock::time_point deadline,
               std::function<void()> cb);
    /// The task changed (`finished`: it reached a final state, or is gone): runs its watchers'
    /// callbacks, and its waiters' when finished, now (on the calling thread).
    void notify(const std::string& task_id, bool finished = true);
    /// Runs every pending callback and stops the thread. Idempotent.
    void stop();

    static constexpr std::size_t k_max_waiters = 100000;

private:
    struct entry {
        std::chrono::steady_clock::time_point deadline;
        std::function<void()> cb;
        bool any_change;
    };
    /// False when stopped or full (the entry was not added).
    bool add(const std::string& task_id, entry& e);
    void run();

    std::mutex mu_;
    std::condition_variable cv_;
    std::multimap<std::string, entry> waiting_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace livebase
