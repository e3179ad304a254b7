#pragma once
/// Waits for tasks to finish without holding a thread per waiter: long polls
/// (`Prefer: wait=N`) and `wait=N` submissions register a callback that runs once, when the
/// task is reported finished or at the deadline, whichever comes first.
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <mutex>
#include <string>
#include <thread>

namespace livebase {

/// Thread-safe. Callbacks run on the waiters' own thread (or on the notifying thread), never
/// under its lock; they must be quick (post elsewhere). stop() (and the destructor) fire every
/// pending callback, so no HTTP response is left hanging.
class task_waiters {
public:
    /// `is_finished` (optional) is polled every `poll` for each waited task: it catches tasks
    /// finished by other processes (`livebase worker`), which notify() never sees.
    explicit task_waiters(std::function<bool(const std::string& task_id)> is_finished = {},
                          std::chrono::milliseconds poll = std::chrono::milliseconds(250));
    ~task_waiters();
    task_waiters(const task_waiters&) = delete;
    task_waiters& operator=(const task_waiters&) = delete;

    /// Registers `cb` for `task_id`; it runs once: after notify(task_id), a positive poll, or
    /// at `deadline`. At most `k_max_waiters` at once: beyond, `cb` runs at once.
    void wait(const std::string& task_id, std::chrono::steady_clock::time_point deadline,
              std::function<void()> cb);
    /// The task finished: runs its callbacks now (on the calling thread).
    void notify(const std::string& task_id);
    /// Runs every pending callback and stops the thread. Idempotent.
    void stop();

    static constexpr std::size_t k_max_waiters = 100000;

private:
    struct entry {
        std::chrono::steady_clock::time_point deadline;
        std::function<void()> cb;
    };
    void run();

    std::function<bool(const std::string&)> is_finished_;
    std::chrono::milliseconds poll_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::multimap<std::string, entry> waiting_;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace livebase
