#pragma once
/// The durable task queue: every state change of a task is a write transaction on the store
/// (so it lands in the change log and realtime sees it). A claim locks the row it takes
/// (write_txn::list_locked: one writer thread on SQLite, FOR UPDATE SKIP LOCKED on PostgreSQL),
/// so two workers, in this process or any other, can never claim the same task.
///
/// States and transitions (`attempt` = number of the current or last attempt):
///   submit              -> pending (attempt 0, not_before = now); or, when a worker of this
///                          process is idle (task_intake), running under it at once (attempt 1)
///   claim               pending (not_before <= now)  -> running, attempt + 1, lease, worker
///                       (up to N tasks in one transaction: claim_batch)
///   heartbeat           running (ours)               -> lease renewed, progress written
///   complete            running (ours)               -> succeeded (or failed for a problem outcome)
///   fail retryable      running (ours), attempt < max -> pending, not_before = now + backoff
///   fail                otherwise                    -> failed
///   finish_cancelled    running (ours)               -> cancelled
///   release             running (ours)               -> pending, attempt - 1 (shutdown: the
///                                                      interrupted attempt does not count)
///   cancel              pending -> cancelled; running -> cancel_requested; finished -> 409
///   reap                running, lease_until < now   -> pending (attempt kept; the next claim
///                       makes it attempt + 1), or failed ("worker lost") when attempt >=
///                       max_attempts, or cancelled when cancellation had been requested
///   purge               finished before now - retention -> deleted
///
/// Claim order, fair across owners: every task gets a `fair` key when it is submitted,
/// max(the owner's last key + 1, the head), where the head is the key of the last task
/// claimed. Claims take the lowest keys first, so owners with tasks waiting take turns (one
/// owner's backlog of N tasks delays another owner's new task by about one task per waiting
/// owner, not by N). A retry goes behind the queued tasks (its key is kRetryBand +
/// not_before). Owners are users (their id) and anonymous callers (their owner key); each may
/// hold at most limits::max_pending_* pending tasks (429 with Retry-After beyond that).
#include <livebase/ops/operation.hpp>
#include <livebase/core/result.hpp>
#include <livebase/core/units.hpp>
#include <livebase/store/store.hpp>
#include <livebase/tasks/task.hpp>

#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <unordered_map>
#include <vector>

namespace livebase {

/// What submit() stores.
struct task_submission {
    std::string kind;
    json::value input;                      ///< handed to the task code
    json::value request;                    ///< request_to_json() of the operation, or null
    principal who;                          ///< owner = who.owner_key() (null when "")
    int max_attempts = 3;                   ///< >= 1
    std::chrono::milliseconds timeout{10 * 60 * 1000};  ///< per attempt
    /// Milliseconds since the epoch before which no worker takes it (0: at once). A task with
    /// a not_before waits in the due band and, once due, runs behind the tasks already
    /// waiting, in order of not_before (as a retry does).
    std::int64_t not_before = 0;
    /// Set by the scheduler: the schedule's id and the tick (ms) this task is for. The tasks
    /// collection keys (schedule, tick) uniquely: a tick never becomes two tasks.
    std::string schedule;
    std::int64_t tick = 0;
    /// From kMinPriority to kMaxPriority; a higher one is claimed before every waiting task of
    /// a lower one. The owners' turns (fair order) apply within one priority.
    int priority = 0;
};

/// A named queue's limits (docs/tasks.md "Queues"), which claims enforce across every process:
/// the claims of a limited queue take its row of the built-in `task_queues` collection (locked
/// until commit), so two nodes never both spend its last token or its last free slot.
struct queue_limits {
    std::string name;   ///< the queue (the key of its row)
    /// Tasks started per period (count 0: no limit): a token bucket refilled continuously,
    /// holding at most a tenth of a second's worth (at least one), so bursts stay small.
    rate rate_limit{0, std::chrono::milliseconds(1000)};
    /// Kind -> most tasks of it running at once (claimed and not finished), on every node.
    std::map<std::string, std::size_t, std::less<>> concurrency;
    bool empty() const noexcept { return rate_limit.count == 0 && concurrency.empty(); }
};

/// The built-in `task_queues` collection: one row per limited queue (id = its name) with its
/// token bucket (tokens, at = ms of the last claim). Internal: not served to clients.
const collection_def& task_queues_collection();

/// Coalesced progress of a running task; only the set members are written.
struct task_progress {
    std::optional<json::value> progress;  ///< number or null
    std::optional<json::value> message;   ///< string or null
    std::optional<json::value> eta;       ///< number or null
    std::optional<json::array> steps;     ///< the whole steps array
    bool empty() const noexcept { return !progress && !message && !eta && !steps; }
};

/// Answer of heartbeat(): whether the task is still ours, and whether it should stop.
struct heartbeat_status {
    bool ours = false;
    bool cancel_requested = false;
};

/// One task's heartbeat in heartbeat_batch().
struct heartbeat_request {
    std::string id;
    std::string worker;
    task_progress progress;
};

/// A worker reserved for a task at its submission (see task_intake).
struct claim_slot {
    std::string worker;                 ///< the id the task is claimed under
    std::chrono::milliseconds lease{30'000};
};

/// A worker pool of this process that takes tasks the moment they are submitted: a submission
/// that finds a reserved worker commits as already running under it (one transaction instead
/// of a submit and a claim) and is handed over after the commit. Thread-safe.
class task_intake {
public:
    virtual ~task_intake() = default;
    /// Reserves an idle worker for a task of `kind`. nullopt when none is idle, the kind is not
    /// served here, or tasks may be waiting in the store (those go first).
    virtual std::optional<claim_slot> reserve(std::string_view kind) = 0;
    /// The submission that reserved a worker committed: `task` (running under it) is its to run.
    virtual void deliver(json::object task) = 0;
    /// The submission that reserved a worker failed: the worker is free again.
    virtual void unreserve() = 0;
    /// task_queue::notify() was called: a task may have become due.
    virtual void work_available() {}
};

/// Thread-safe. Every operation blocks the calling thread until its write commits (never call
/// from an I/O or store thread), except submit_async(). The store must outlive the queue.
class task_queue {
public:
    struct options {
        std::chrono::milliseconds backoff_base{1000};   ///< retry delay base: base * 2^(attempt-1)
        std::chrono::milliseconds backoff_cap{5 * 60 * 1000};  ///< retry delay cap
        bool jitter = true;        ///< full jitter: the delay is uniform in [0, computed]
        std::size_t batch = 500;   ///< rows reap()/purge() handle per transaction
        /// Milliseconds since the epoch for operations that take no `now`. Default now_ms().
        std::function<std::int64_t()> clock;
    };

    /// Pending tasks one owner may hold (0: no limit). Anonymous owners are counted per
    /// owner key (their address), users per id.
    struct limits {
        std::size_t max_pending_per_user = 10000;
        std::size_t max_pending_per_address = 10000;
    };
    /// Keys of retried and delayed tasks start here (behind every waiting task), plus their
    /// not_before: claims read them in due order and stop at the first one not due yet.
    static constexpr std::int64_t kRetryBand = std::int64_t{1} << 62;
    /// A waiting task's claim key is its owner's turn less priority * kPriorityStep.
    static constexpr std::int64_t kPriorityStep = std::int64_t{1} << 56;
    static constexpr int kMinPriority = -10;
    static constexpr int kMaxPriority = 10;
    /// The claim key of a waiting task of `priority` at the owner's turn `turn`.
    static constexpr std::int64_t claim_key(std::int64_t turn, int priority) noexcept {
        return turn - priority * kPriorityStep;
    }
    /// The owner's turn of a waiting task's claim key (below kRetryBand).
    static constexpr std::int64_t turn_of(std::int64_t key) noexcept {
        const std::int64_t shifted = key + kMaxPriority * kPriorityStep + kPriorityStep / 2;
        return key - (shifted / kPriorityStep - kMaxPriority) * kPriorityStep;
    }

    explicit task_queue(store& s);
    task_queue(store& s, options o);
    task_queue(const task_queue&) = delete;
    task_queue& operator=(const task_queue&) = delete;

    using done_fn = std::function<void(result<json::object>)>;

    /// Pools that take submissions at once and hear notify() (see task_intake); none: every
    /// submission is stored pending. A pool adds itself when it starts and removes itself when
    /// it stops (then waits for the submissions it reserved a worker for). A submission goes to
    /// the first that reserves a worker for its kind.
    void add_intake(task_intake* intake);
    void remove_intake(task_intake* intake);

    void set_limits(limits l);
    /// Keeps the owners' pending counts and the claim head current: call it with every change
    /// of the tasks collection, from any process (the change log), in log order.
    void observe(const change& ch);
    /// The owner key of a submission: the user's id, or "" for an anonymous caller.
    static std::string owner_key(const task_submission& t);
    /// Pending tasks of `owner` as this process knows them (loaded from the store at first use).
    result<std::int64_t> pending_of(const std::string& owner);

    /// Stores a new pending task and wakes waiting workers. Returns the stored task.
    /// Problems: 400 for an empty kind or max_attempts < 1; 429 (extra member retry_after)
    /// when the owner holds limits::max_pending_* pending tasks; store problems (503 when
    /// closed).
    result<json::object> submit(const task_submission& t);
    /// As submit(), without blocking: `done` runs on the store's completion thread after commit.
    /// When the intake reserves a worker, the task is stored running under it and handed over.
    /// `also` (optional) runs in the submission's transaction with the stored task: a problem
    /// rolls the submission back (an Idempotency-Key stores its 202 with the task this way).
    void submit_async(const task_submission& t, done_fn done,
                      std::function<result<void>(write_txn&, const json::object&)> also = {});
    /// The write step of submit(), for callers composing it into their own transaction (e.g.
    /// with an idempotency record). Call notify() after that transaction commits. `claimed`:
    /// store it running under that worker instead (attempt 1, started and lease set).
    static result<json::object> submit_in(write_txn& txn, const task_submission& t, std::int64_t now,
                                          const claim_slot* claimed = nullptr, std::int64_t fair = 0);
    /// submit_in() with submit()'s admission (the owner's pending-task limit: 429; its place in
    /// the fair claim order), inside another write's transaction (a record hook's enqueue).
    /// `admitted` as admit_in: pass the same flag when the store runs the transaction again.
    /// Once the transaction is over, call settle_submission() for an admitted one, and notify()
    /// after a commit.
    result<json::object> submit_admitted_in(write_txn& txn, const task_submission& t, bool& admitted);
    /// The transaction of an admitted submit_admitted_in() is over: `stored` when it committed.
    void settle_submission(const std::string& owner, bool stored) { settled(owner, stored); }

    /// Claims the first eligible pending task (not_before <= now; by priority, then the
    /// owners' turns, then due retries and delayed tasks in due order) whose kind is in `kinds`
    /// (empty = any kind): it becomes running with attempt + 1,
    /// lease_until = now + lease, worker = worker_id, started = now. nullopt when none.
    result<std::optional<json::object>> claim(const std::string& worker_id, std::int64_t now,
                                              std::chrono::milliseconds lease,
                                              const std::vector<std::string>& kinds = {});
    /// As claim(), up to `max` tasks in one transaction (oldest first). Empty when none.
    /// `next_due` (optional): set, when fewer than `max` were due, to the not_before of the
    /// earliest delayed or retried task of `kinds` (0 when none), for the caller to wake then.
    /// `limits` (optional, not empty): the claim takes at most the queue's tokens and, per kind
    /// with a concurrency, the slots left (kinds at their limit are passed over); when tokens ran
    /// out, `next_due` is at most when the next one comes.
    result<std::vector<json::object>> claim_batch(const std::string& worker_id, std::int64_t now,
                                                  std::chrono::milliseconds lease,
                                                  const std::vector<std::string>& kinds, std::size_t max,
                                                  std::int64_t* next_due = nullptr,
                                                  const queue_limits* limits = nullptr);

    /// Renews the lease of a task `worker` runs (lease_until = clock() + lease) and writes the
    /// set members of `progress`. ours = false (and nothing written) when the task is no longer
    /// running under this worker. 404 when the task is gone.
    result<heartbeat_status> heartbeat(const std::string& id, const std::string& worker,
                                       std::chrono::milliseconds lease,
                                       const task_progress& progress = {});
    /// heartbeat() of many tasks in one transaction; the answers in the order of `requests`
    /// (a task that is gone answers ours = false).
    result<std::vector<heartbeat_status>> heartbeat_batch(const std::vector<heartbeat_request>& requests,
                                                          std::chrono::milliseconds lease);

    /// Records the attempt's outcome: succeeded with result = body, result_status = status,
    /// location; a problem outcome (is_problem) fails the task with error = body.
    /// 409 when the task is not running under `worker` (lost lease, released); 404 when gone.
    result<json::object> complete(const std::string& id, const std::string& worker,
                                  const outcome& out);
    /// Records a failed attempt: retryable and attempt < max_attempts -> pending with
    /// not_before = now + backoff(attempt); otherwise failed with error = p. 409/404 as complete.
    result<json::object> fail(const std::string& id, const std::string& worker, const problem& p,
                              bool retryable);
    /// The worker stopped the task after a cancellation request: cancelled. 409/404 as complete.
    result<json::object> finish_cancelled(const std::string& id, const std::string& worker);
    /// Hands a running task back (graceful shutdown): pending, lease and worker cleared,
    /// not_before = now, attempt - 1 so the interrupted attempt does not count. 409/404 as complete.
    result<json::object> release(const std::string& id, const std::string& worker);

    /// complete(), fail(), finish_cancelled() and release() without blocking: `done` (may be
    /// empty) runs on the store's completion thread after commit. Those queued while the store
    /// is busy travel as one write: one read of all their rows (write_txn::get_many), each
    /// then changed and logged as alone, in the order they were queued.
    void complete_async(const std::string& id, const std::string& worker, const outcome& out, done_fn done);
    void fail_async(const std::string& id, const std::string& worker, const problem& p, bool retryable,
                    done_fn done);
    void finish_cancelled_async(const std::string& id, const std::string& worker, done_fn done);
    void release_async(const std::string& id, const std::string& worker, done_fn done);
    /// The write step of complete(), inside a caller's transaction (task_finish: the task's
    /// success commits with the effect it made). 409 when the task is not running under
    /// `worker`, 404 when gone.
    static result<json::object> complete_in(write_txn& txn, const std::string& id, const std::string& worker,
                                            const outcome& out, std::int64_t now);

    /// DELETE /api/tasks/{id}: pending -> cancelled at once (finished set); running ->
    /// cancel_requested = true (the state stays running; the worker stops it); finished -> 409.
    /// 404 when absent. Returns the stored task after the change.
    result<json::object> cancel(const std::string& id);

    /// Re-queues running tasks whose lease_until < now (see the table above). Returns how many
    /// tasks changed. Handles at most options::batch tasks per call.
    result<std::size_t> reap(std::int64_t now);
    /// Deletes finished tasks whose `finished` is before now - retention. Returns how many.
    result<std::size_t> purge(std::int64_t now, std::chrono::milliseconds retention);

    /// The stored task, nullopt when absent.
    result<std::optional<json::object>> get(const std::string& id);

    /// The retry delay after a failed attempt number `attempt` (>= 1), jitter included.
    std::chrono::milliseconds backoff(int attempt) const;

    /// Wakes threads in wait_for_work() and tells the intake. Called by submit(); call it after
    /// submit_in() commits.
    void notify();
    /// The current wake generation; pass it to wait_for_work().
    std::uint64_t generation() const;
    /// Blocks until notify() moved the generation past `seen` or `timeout` passed.
    void wait_for_work(std::uint64_t seen, std::chrono::milliseconds timeout);

    /// Milliseconds since the epoch by options::clock.
    std::int64_t now() const;

private:
    using mutate_fn = std::function<result<void>(json::object& task)>;
    /// Loads the task, checks it is running under `worker`, applies `fn`, writes it back.
    result<json::object> mutate_owned(const std::string& id, const std::string& worker, mutate_fn fn);
    void mutate_owned_async(const std::string& id, const std::string& worker, mutate_fn fn, done_fn done);
    struct owned_batch;
    /// The write of one batch of mutate_owned_async() calls.
    result<void> run_owned_batch(write_txn& txn, owned_batch& b);
    mutate_fn completing(const outcome& out, std::int64_t at) const;
    mutate_fn failing(const problem& p, bool retryable, std::int64_t at) const;
    mutate_fn cancelling(std::int64_t at) const;
    mutate_fn releasing(std::int64_t at) const;

    /// Admits a submission of `owner` (429 over its limit) and returns its claim key; sets
    /// `admitted`. `inflight` counts it until settled() (its write is done).
    result<std::int64_t> admit_in(write_txn& txn, const std::string& owner, bool& admitted);
    void settled(const std::string& owner, bool stored);
    result<void> load_owner_in(write_txn& txn, const std::string& owner);

    struct owner_load {
        std::int64_t pending = 0;   ///< pending tasks in the store (as of the log seen)
        std::int64_t inflight = 0;  ///< admitted submissions whose write is not done
        std::int64_t unseen = 0;    ///< stored submissions whose create the log has not shown yet
        std::int64_t last = 0;      ///< highest claim key given to or seen for the owner
    };

    store& store_;
    options options_;
    mutable std::mutex fair_mu_;
    limits limits_;
    std::unordered_map<std::string, owner_load> owners_;
    std::int64_t head_ = 0;
    bool head_loaded_ = false;
    mutable std::mutex intake_mu_;
    std::vector<task_intake*> intakes_;
    std::mutex batch_mu_;
    std::shared_ptr<owned_batch> open_batch_;  ///< joined by mutate_owned_async() until its write runs
    mutable std::mutex wake_mu_;
    std::condition_variable wake_cv_;
    std::uint64_t generation_ = 0;
};

}  // namespace livebase
