#pragma once
/// Schedules: records of the built-in `schedules` collection that make a task at each tick of a
/// cron expression or a period (docs/tasks.md "Schedules").
///
/// There is no beat process. Every serve node runs a scheduler; each makes the tasks of the
/// ticks that are due, in one write per batch that locks the due schedules (write_txn::
/// list_locked: one writer on SQLite, FOR UPDATE SKIP LOCKED on PostgreSQL), inserts one task
/// per tick and moves the schedule's next_run on. The tasks collection keys (schedule, tick)
/// uniquely, so even two nodes that both saw a tick due can never both make its task. A node
/// that is down loses nothing while another is up: whichever node runs next finds the tick.
///
/// A tick found more than `grace` late (every node was down, or the store was) is missed: the
/// schedule's `missed` says whether it is skipped (the default) or run once, for the first
/// missed tick; either way the schedule then goes on from the next tick after now.
#include <livebase/core/log.hpp>
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/store/store.hpp>
#include <livebase/tasks/queue.hpp>

#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <functional>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>

namespace livebase {

/// The built-in `schedules` collection: name, kind, input, cron | every, timezone ("UTC"),
/// enabled (true), missed ("skip" | "once"), and the read-only next_run, last_run (the last
/// tick that made a task) and last_task. Owned (a schedule's tasks belong to its owner); every
/// rule admin. Without hooks: the app adds prepare_schedule() as its before-create and
/// before-update hook.
const collection_def& schedules_collection();

/// Checks a schedule about to be stored (`stored`: the record before an update, else null) and
/// sets its next_run: the next tick after `now` when the timing changed or the schedule was
/// (re-)enabled, kept otherwise; null while disabled. `known_kind` tells the kinds a schedule
/// may start. Problems: 400 naming each bad field (exactly one of cron and every; a cron
/// expression that parses and ticks; every from 1s to 366d; a known time zone and kind).
result<void> prepare_schedule(json::object& record, const json::object* stored, std::int64_t now,
                              const std::function<bool(std::string_view)>& known_kind);

/// The first tick of a stored schedule strictly after `after` (ms since the epoch); nullopt
/// when it has none (a bad stored expression, an unknown zone: prepare_schedule keeps those out).
std::optional<std::int64_t> next_tick(const json::object& schedule, std::int64_t after);

struct scheduler_options {
    /// A tick found later than this is missed (see `missed`).
    std::chrono::milliseconds grace{60'000};
    /// Schedules handled per write.
    std::size_t batch = 100;
    /// How long the scheduler sleeps at most, so a store error or a change it was not told of
    /// delays a tick by no more than this.
    std::chrono::milliseconds max_sleep{5'000};
    /// Milliseconds since the epoch. Default now_ms().
    std::function<std::int64_t()> clock;
    /// The submission of a task of `kind` (its max_attempts and timeout); required.
    std::function<result<task_submission>(std::string_view kind, json::value input, const principal& who)>
        make_submission;
    logger* log = nullptr;
};

/// What one run_due() did.
struct scheduler_pass {
    std::size_t made = 0;     ///< tasks made
    std::size_t skipped = 0;  ///< missed ticks skipped
    /// The earliest next_run of an enabled schedule after the pass (0: none), for the caller to
    /// wake then.
    std::int64_t next_due = 0;
    /// Due schedules this pass could not take because another node holds them (PostgreSQL).
    bool contended = false;
};

/// Thread-safe. The store and queue must outlive it.
class scheduler {
public:
    scheduler(store& s, task_queue& q, scheduler_options o);
    ~scheduler();
    scheduler(const scheduler&) = delete;
    scheduler& operator=(const scheduler&) = delete;

    /// Starts the scheduler's thread. Idempotent.
    void start();
    /// Stops it (a pass in progress finishes). Idempotent; the destructor calls it.
    void stop();
    /// The schedules changed (the change log showed one, from any node): look again now.
    void poke();

    /// One pass at options.clock(): makes the tasks of the due ticks, handles missed ones, and
    /// tells when the next is due. Blocks; what the thread runs (tests call it directly).
    result<scheduler_pass> run_due();

private:
    void run();

    store& store_;
    task_queue& queue_;
    scheduler_options options_;
    std::mutex mu_;
    std::condition_variable cv_;
    bool poked_ = false;
    bool stopping_ = false;
    std::thread thread_;
};

}  // namespace livebase
