#pragma once
/// The worker pool: N threads that claim tasks from a task_queue and run them, either a C++
/// task_handler or a command (a child process, see config.md "Command tasks"). One maintenance
/// thread renews leases (every lease/3), writes coalesced progress (at most every
/// progress_interval per task), enforces per-attempt timeouts, and reaps/purges the queue
/// (every lease/2).
#include <livebase/core/log.hpp>
#include <livebase/tasks/queue.hpp>
#include <livebase/tasks/task.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <thread>
#include <vector>

namespace livebase {

/// Per-kind overrides of the pool defaults.
struct task_kind_options {
    std::optional<int> max_attempts;                   ///< unset: worker_pool_options::max_attempts
    std::optional<std::chrono::milliseconds> timeout;  ///< unset: worker_pool_options::timeout
};

/// A kind run as a command (the fields of `[tasks.kinds.<name>]`; app copies its config here
/// because tasks does not depend on app).
struct command_kind_def {
    std::string name;
    std::vector<std::string> command;                  ///< argv, run without a shell; not empty
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<int> max_attempts;
    std::chrono::milliseconds kill_grace{5000};        ///< SIGTERM -> SIGKILL delay
    std::size_t max_line = 1 << 20;                    ///< longest stdout line; longer fails the attempt
};

struct worker_pool_options {
    std::size_t workers = 4;                           ///< threads running tasks
    std::chrono::milliseconds lease{30'000};           ///< renewed every lease/3
    std::chrono::milliseconds retention{7LL * 24 * 3600 * 1000};  ///< finished tasks kept
    int max_attempts = 3;                              ///< default per kind
    std::chrono::milliseconds timeout{10 * 60 * 1000}; ///< default per attempt
    std::chrono::milliseconds poll_interval{200};      ///< idle re-check (other processes' tasks)
    std::chrono::milliseconds progress_interval{100};  ///< least time between progress writes
    std::chrono::milliseconds shutdown_grace{2000};    ///< stop(): time running tasks get to finish
    std::string worker_id;                             ///< prefix of worker names; empty: host:pid:ulid
    logger* log = nullptr;                             ///< optional; must outlive the pool
    /// Called (from a worker thread) after a task this pool ran reached a finished state.
    std::function<void(const std::string& task_id)> on_finished;
};

/// Thread-safety: register_*() before start(); submit(), known_kind() and stop() from any
/// thread. The queue (and its store) must outlive the pool; the destructor calls stop().
class worker_pool {
public:
    worker_pool(task_queue& queue, worker_pool_options options);
    ~worker_pool();
    worker_pool(const worker_pool&) = delete;
    worker_pool& operator=(const worker_pool&) = delete;

    /// Registers a C++ kind. REQUIRES: before start(); the name not registered yet.
    void register_handler(std::string kind, task_handler handler, task_kind_options options = {});
    /// Registers a command kind. REQUIRES: before start(); def.command not empty.
    void register_command(command_kind_def def);
    bool known_kind(std::string_view kind) const;

    /// A submission for `kind` with that kind's max_attempts and timeout. 400 for unknown kinds.
    result<task_submission> make_submission(std::string_view kind, json::value input,
                                            json::value request, const principal& who) const;
    /// make_submission() + task_queue::submit().
    result<json::object> submit(std::string_view kind, json::value input, json::value request,
                                const principal& who);

    /// Starts the worker threads (options.workers, may be 0) and the maintenance thread.
    void start();
    /// Stops claiming, gives running tasks shutdown_grace to finish, then hands the rest back to
    /// the queue (release(): pending, attempt unchanged for the next claim) and signals them to
    /// stop (cancelled() turns true; commands get SIGTERM/SIGKILL); joins every thread. A C++
    /// handler that ignores cancelled() delays the return until it ends. Idempotent.
    void stop();

    /// How many tasks run right now.
    std::size_t running() const;

private:
    struct kind_entry {
        task_handler handler;                 ///< empty for command kinds
        std::optional<command_kind_def> command;
        task_kind_options options;
    };
    class context;

    void worker_main(std::string name);
    void maintenance_main();
    void run_task(json::object task, const std::string& worker);
    void flush(context& ctx);
    void log(log_level level, std::string_view msg, json::object fields = {}) const;

    task_queue& queue_;
    worker_pool_options options_;
    std::string prefix_;
    std::map<std::string, kind_entry, std::less<>> kinds_;
    std::vector<std::string> kind_names_;

    std::atomic<bool> stopping_{false};
    bool started_ = false;
    bool stopped_ = false;
    std::mutex lifecycle_mu_;
    std::vector<std::thread> workers_;
    std::thread maintenance_;

    mutable std::mutex mu_;                   ///< guards running_ and maintenance wake-ups
    std::condition_variable cv_;
    std::vector<std::shared_ptr<context>> running_;
    bool workers_joined_ = false;             ///< set by stop(); ends the maintenance thread
    bool handing_back_ = false;               ///< set by stop() once it released running_
};

}  // namespace livebase
