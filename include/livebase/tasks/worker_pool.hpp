#pragma once
/// The worker pool: N threads that run tasks from a task_queue, either a C++ task_handler or a
/// command (a child process, see config.md "Command tasks").
///
/// Tasks reach the threads three ways, each costing as few store transactions as it can:
/// - at submission: a task submitted in this process while a thread is idle is stored already
///   running under this pool (task_intake) and handed over after its commit;
/// - by batched claims: an idle thread that finds nothing to run claims, in one transaction, as
///   many due tasks as there are idle threads, and shares them out;
/// - by wake-ups: task_queue::notify() (a task made pending here, a NOTIFY or a commit from
///   another process) and, failing those, a poll every poll_interval (delayed retries).
/// An attempt's outcome is written without blocking the thread, so outcomes (and heartbeats)
/// of many threads commit together in one group. Leases are renewed by one maintenance
/// thread (every lease/3, all due tasks in one transaction), which also writes coalesced
/// progress (at most every progress_interval per task), enforces per-attempt timeouts, and
/// reaps/purges the queue (every lease/2). Every task is claimed under the pool's id
/// (options.worker_id or host:pid:ulid).
#include <livebase/core/log.hpp>
#include <livebase/tasks/queue.hpp>
#include <livebase/tasks/task.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <deque>
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
    /// The priority of its tasks when the submission names none (its queue's `priority`).
    std::optional<int> priority;
    /// The app's [tasks.queues.<name>] that runs it ("": the default queue). Read by the app,
    /// which gives each queue a pool of its own (worker_pool_options::serves).
    std::string queue;
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
    std::optional<int> priority;                       ///< as task_kind_options::priority
};

struct worker_pool_options {
    std::size_t workers = 4;                           ///< threads running tasks
    std::chrono::milliseconds lease{30'000};           ///< renewed every lease/3
    /// Tasks a claim takes beyond the idle threads, while the recent tasks ran shorter than
    /// prefetch_below on average: short tasks then wait for a thread in memory instead of in
    /// the store, and a claim serves many of them. 0: claims never run ahead. A prefetched task
    /// that waited longer than lease/2 is handed back instead of run.
    std::size_t prefetch = 128;
    std::chrono::microseconds prefetch_below{5000};
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
    /// The queue this pool serves (docs/tasks.md "Queues"): its name for the logs ("" = the
    /// default queue), the kinds it claims (unset: every registered kind) and its limits. A
    /// limited pool claims without prefetch and takes no submission directly (task_intake), so
    /// every task of its kinds starts through a claim that counts it.
    std::string queue;
    std::function<bool(std::string_view kind)> serves;
    queue_limits limits;
};

/// Thread-safety: register_*() before start(); submit(), known_kind() and stop() from any
/// thread. The queue (and its store) must outlive the pool; the destructor calls stop().
class worker_pool final : public task_intake {
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

    /// Starts the worker threads (options.workers, may be 0) and the maintenance thread, and
    /// takes submissions of the queue (task_intake) while workers > 0.
    void start();
    /// Stops claiming, gives running tasks shutdown_grace to finish, then hands the rest back to
    /// the queue (release(): pending, attempt unchanged for the next claim) and signals them to
    /// stop (cancelled() turns true; commands get SIGTERM/SIGKILL); joins every thread. A C++
    /// handler that ignores cancelled() delays the return until it ends. Idempotent.
    void stop();

    /// How many tasks run right now.
    std::size_t running() const;
    /// Whether this pool claims tasks of `kind` (registered and served).
    bool serves_kind(std::string_view kind) const;
    /// Tasks this pool started (attempts begun) since it was made.
    std::uint64_t started() const noexcept { return started_count_.load(); }
    /// options.queue: the queue it serves ("" = the default queue).
    const std::string& queue() const noexcept { return options_.queue; }
    /// The id tasks are claimed under.
    const std::string& id() const noexcept { return prefix_; }

    // task_intake (called by the queue).
    std::optional<claim_slot> reserve(std::string_view kind) override;
    void deliver(json::object task) override;
    void unreserve() override;
    void work_available() override;

private:
    struct kind_entry {
        task_handler handler;                 ///< empty for command kinds
        std::optional<command_kind_def> command;
        task_kind_options options;
    };
    class context;

    void worker_main();
    /// Claims tasks for the idle threads (lock held on entry and exit, released meanwhile).
    void claim_for_idle(std::unique_lock<std::mutex>& lock, std::size_t want);
    void maintenance_main();
    void run_task(json::object task);
    /// Writes an attempt's outcome without blocking (counted in writes_in_flight_).
    void record(const std::shared_ptr<context>& ctx, int verdict, const outcome& out, const problem& p);
    /// Hands claimed but unstarted tasks back without blocking (lock held).
    void hand_back(std::vector<json::object> tasks);
    void write_done();
    void flush(context& ctx);
    void heartbeat_due(const std::vector<std::shared_ptr<context>>& tasks);
    void log(log_level level, std::string_view msg, json::object fields = {}) const;

    task_queue& queue_;
    worker_pool_options options_;
    std::string prefix_;
    std::map<std::string, kind_entry, std::less<>> kinds_;
    std::vector<std::string> kind_names_;
    std::vector<std::string> served_;         ///< the kinds claims take (set by start())
    bool limited_ = false;                    ///< options_.limits is not empty

    std::atomic<bool> stopping_{false};
    std::atomic<std::uint64_t> started_count_{0};
    bool started_ = false;
    bool stopped_ = false;
    std::mutex lifecycle_mu_;
    std::vector<std::thread> workers_;
    std::thread maintenance_;

    mutable std::mutex mu_;                   ///< guards everything below
    std::condition_variable cv_;              ///< workers and the maintenance thread wait here
    std::vector<std::shared_ptr<context>> running_;
    struct ready_task {
        json::object task;
        std::chrono::steady_clock::time_point since;  ///< claimed or delivered
    };
    std::deque<ready_task> ready_;            ///< claimed or delivered, not started yet
    double average_run_us_ = 1e9;             ///< recent tasks' run time (moving average)
    std::size_t idle_ = 0;                    ///< threads waiting for a task
    std::size_t reserved_ = 0;                ///< idle threads promised to submissions in flight
    std::size_t writes_in_flight_ = 0;        ///< outcome and hand-back writes not yet committed
    bool claiming_ = false;                   ///< a thread is claiming for the idle ones
    bool backlog_ = true;                     ///< due tasks may be waiting in the store
    std::uint64_t work_gen_ = 0;              ///< bumped by work_available()
    std::uint64_t claimed_gen_ = ~std::uint64_t{0};  ///< work_gen_ when the last claim started
    std::chrono::steady_clock::time_point last_claim_{};
    /// When the earliest delayed or retried task the last claim saw becomes due (max: none).
    std::chrono::steady_clock::time_point next_due_ = std::chrono::steady_clock::time_point::max();
    bool workers_joined_ = false;             ///< set by stop(); ends the maintenance thread
    bool handing_back_ = false;               ///< set by stop() once it released running_
};

}  // namespace livebase
