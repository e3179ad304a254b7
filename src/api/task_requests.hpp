#pragma once
// Asynchronous operations (http.md section 3): which operations run as tasks, their
// submission (Prefer: respond-async and wait=N, async collections, actions and endpoints) and
// the /api/tasks resource. Private to the api component; the api owns one once tasks are on.
#include <livebase/api/api.hpp>
#include <livebase/core/log.hpp>
#include <livebase/ops/operation.hpp>
#include <livebase/store/store.hpp>

#include <chrono>
#include <functional>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace livebase {

/// The tasks the before-hooks of one write enqueued (record_write::enqueue), kept across the
/// store running its transaction again.
struct hook_tasks {
    struct entry {
        std::string owner;
        bool admitted = false;
    };
    std::vector<entry> entries;  ///< one per enqueue call, in call order
    std::size_t used = 0;        ///< calls in the latest run (reset before each run)
};

/// When and before whom a directly submitted task runs (POST {base}/tasks).
struct task_schedule {
    std::int64_t not_before = 0;  ///< ms since the epoch; 0: at once
    std::optional<int> priority;  ///< unset: the kind's (its queue's) priority
};

class task_requests {
public:
    using done_fn = std::function<void(outcome)>;
    /// Runs blocking work on the api's handler pool; false when the pool is full or stopping.
    using blocking_fn = std::function<bool(std::function<void()>)>;
    /// Hashes a password off the store threads, then calls `next` with the hash (or answers
    /// `done` with the problem).
    using hash_fn =
        std::function<void(std::string, done_fn, std::function<void(std::string, done_fn)>)>;

    task_requests(const registry& reg, store& db, logger& log, std::string base_path,
                  task_queue& queue, worker_pool& workers, task_waiters& waiters,
                  blocking_fn run_blocking, hash_fn hash_then);

    /// The task kind `op` runs as when it must (or may and is asked to) run asynchronously;
    /// "" to run it now.
    std::string async_kind(const operation& op, const collection_def& c) const;
    /// Checks that need no execution, so they fail at once instead of as a task: the refusal,
    /// or nullopt.
    std::optional<outcome> precheck(const operation& op, const collection_def& c) const;
    /// Stores `op` as a task of `kind` (202, or with Prefer: wait the answer if it finishes in
    /// time).
    void submit(operation op, std::string kind, json::value input, done_fn done);
    /// POST {base}/tasks: {"kind", "input", "delay" | "not_before", "priority"} for a kind that
    /// is submittable directly (registry::submit_rule): 202 with the task; 400 for an unknown
    /// kind or field or a bad value; 401/403 from the kind's rule.
    void submit_direct(operation op, done_fn done);
    /// An endpoint's request: always a task.
    void endpoint(operation op, const endpoint_binding& e, done_fn done);
    /// The /api/tasks resource: list, retrieve (303 to the result, long poll), result, cancel.
    void execute(operation op, done_fn done);
    /// record_write::enqueue: a task of `kind` owned by `who`, stored in `t`. A kind this app
    /// does not register is the app's bug (a logged 500); over the owner's pending limit, 429.
    result<json::object> enqueue_in(write_txn& t, hook_tasks& h, std::string_view kind, json::value input,
                                    const principal& who);
    /// The write of `h` is over: settles the admissions and wakes the workers after a commit.
    void enqueued(const hook_tasks& h, bool committed);
    /// api::watch_task.
    bool watch(const std::string& id, std::chrono::steady_clock::time_point deadline,
               std::function<void()> cb);

private:
    void store_submission(operation op, std::string kind, json::value input, json::object request,
                          const task_schedule& when, done_fn done);
    void respond_when_finished(const std::string& task_id, bool prefer_applied,
                               std::chrono::steady_clock::time_point deadline, done_fn done);
    std::string tasks_path() const;

    const registry& reg_;
    store& db_;
    logger& log_;
    const std::string base_path_;
    task_queue& tasks_;
    worker_pool& workers_;
    task_waiters& waiters_;
    const blocking_fn run_blocking_;
    const hash_fn hash_then_;
};

}  // namespace livebase
