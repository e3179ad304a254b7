#pragma once
/// The store core shared by the SQLite and PostgreSQL backends: the writer thread with its
/// bounded queue and group commit, the reader threads with theirs, the commit listeners and
/// close(). A backend supplies one `session` per connection (transaction control in its SQL
/// dialect) and its migrations; everything about threads and batching is written here once.
///
/// Group commit: the writer takes up to `max_batch` queued writes, opens one transaction and
/// runs each write in its own savepoint. A write that returns a problem (or throws) is undone
/// alone; a write that lost a race the backend calls retryable (PostgreSQL deadlock or
/// serialization failure) runs again, up to `retries` times. If the backend loses the whole
/// transaction under a write (SQLite rolled it back after an I/O error, the PostgreSQL
/// connection broke), the writes of that transaction fail with the session's problem and the
/// rest of the batch goes on in a new transaction. Completions run after the commit, in queue
/// order, on the completion thread (so the writer goes on with the next group while they run),
/// then the commit listener hears the new last seq.
///
/// A backend may defer row writes and confirm them at commit (session::replay_needed): when one
/// fails, the writes of the transaction run again, each confirmed before the next. A write
/// function may therefore run more than once before its one outcome; it must not act outside
/// the transaction (its `done` does that).
#include <livebase/store/store.hpp>

#include <atomic>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <functional>
#include <memory>
#include <mutex>
#include <thread>
#include <vector>

namespace livebase::store_detail {

/// One connection as the core drives it. Owned by the core; used by one thread only.
class session {
public:
    virtual ~session() = default;
    /// The operations on this connection; valid while a transaction is open.
    virtual write_txn& txn() noexcept = 0;

    // Readers.
    /// Opens a read snapshot. Problems: the backend's (503 when the database is unreachable).
    virtual result<void> begin_read() = 0;
    /// Ends the snapshot the read opened (or whatever the callback left open).
    virtual void end_read() = 0;

    // The writer.
    /// Opens the group's transaction; `committed` is the last seq committed so far.
    virtual result<void> begin_write(std::int64_t committed) = 0;
    virtual result<void> savepoint() = 0;
    /// Keeps the work of the write since savepoint().
    virtual result<void> release() = 0;
    /// Undoes the work of the write since savepoint() (and ends the savepoint).
    virtual result<void> undo() = 0;
    /// False when the backend lost the transaction under a write.
    virtual bool in_transaction() const = 0;
    /// The write that just failed lost a race and may run again.
    virtual bool retryable() const { return false; }
    /// Optimistic writes (PostgreSQL): the backend deferred row writes and one of them failed
    /// (or missed its row) after the write that made it had returned. The transaction is lost;
    /// the core rolls it back and runs its writes again with set_careful(true), where each row
    /// write waits for its answer, so every write gets its own outcome.
    virtual bool replay_needed() const { return false; }
    virtual void set_careful(bool) {}
    /// Optimistic mode without savepoints: true when the writes need none now (not careful).
    /// A write that then fails after changing something (writes() moved) or that broke the
    /// transaction (failed()) makes the core replay the group carefully, with savepoints.
    virtual bool optimistic() const { return false; }
    /// Row writes made in the open transaction so far.
    virtual std::int64_t writes() const { return 0; }
    /// The transaction is in error (a statement failed): nothing more runs in it.
    virtual bool failed() const { return false; }
    /// Bookkeeping of the changes the group made so far, to forget an undone write's.
    virtual std::int64_t mark() const = 0;
    virtual void undo_to(std::int64_t mark) = 0;
    /// Appends what the backend deferred to the change log, commits, and returns the last seq
    /// now committed (`committed` when the group appended nothing).
    virtual result<std::int64_t> commit(std::int64_t committed) = 0;
    /// A commit in two steps, for a store with two writer sessions (store_core::start): the
    /// first sends it, the second (after the next group ran on the other session) waits for
    /// its outcome. By default the first does nothing and the second commits.
    virtual result<void> send_commit(std::int64_t) { return {}; }
    virtual result<std::int64_t> finish_commit(std::int64_t committed) { return commit(committed); }
    virtual void rollback() = 0;
    /// What the writes of a lost transaction answer.
    virtual problem lost() const = 0;
};

struct core_limits {
    std::size_t max_batch = 256;            ///< writes per group commit
    std::size_t max_queued_writes = 100000; ///< beyond: 503
    std::size_t max_queued_reads = 100000;  ///< beyond: 503
    int retries = 3;                        ///< runs of a write that keeps losing races
};

class store_core : public store {
public:
    ~store_core() override;

    result<migration_plan> migrate(const std::vector<const collection_def*>& collections,
                                   bool allow_destructive, bool dry_run) override;
    void read(std::function<void(read_txn&)> fn) override;
    void write(write_fn fn, write_done done) override;
    std::int64_t last_seq() override { return last_seq_.load(std::memory_order_acquire); }
    void on_commit(std::function<void(std::int64_t)> fn) override;
    void on_task_ready(std::function<void()> fn) override;
    void close() override;

protected:
    store_core(logger* log, core_limits limits, std::int64_t last_seq);

    /// Takes the sessions and starts the writer and reader threads (one per reader session). A
    /// backend calls it at the end of its constructor. The writer thread uses its sessions in
    /// turn; with two, a group's commit (send_commit) is still in flight while the next group
    /// runs, and is finished (finish_commit) before that one commits.
    void start(std::vector<std::unique_ptr<session>> writers, std::vector<std::unique_ptr<session>> readers);
    /// The backend's migration, run on the writer inside the group transaction.
    virtual result<migration_plan> migrate_on(session& s, const std::vector<const collection_def*>& collections,
                                              bool allow_destructive, bool dry_run) = 0;
    /// Backend threads stop here (close() calls it first, before the core's threads stop).
    virtual void stop_backend() {}

    /// Raises the last seq to `seq` (a commit seen by a backend's own watcher: another node or
    /// process) and tells the commit listener when it moved. Thread-safe.
    void observe_seq(std::int64_t seq);
    /// Tells the task listener that another process made a task pending. Thread-safe.
    void task_ready();

    void log_error(std::string_view msg, json::object fields = {});
    logger* log_;

private:
    using job_fn = std::function<result<json::value>(session&)>;
    struct write_job {
        job_fn fn;
        write_done done;
        bool retry = true;
    };

    /// A committed group's completions, handed from the writer to the completion thread.
    struct completed_group {
        std::vector<write_done> dones;
        std::vector<result<json::value>> results;
        std::int64_t advanced_to = 0;  ///< the new last seq for the listener, 0 when none
    };

    /// A group of writes run on one session, its commit sent, not yet finished.
    struct group {
        session* s = nullptr;
        std::int64_t committed = 0;  ///< the last seq when it began
        std::vector<write_job> batch;
        std::vector<result<json::value>> results;
        std::size_t segment_start = 0;  ///< the first write of the open transaction
        bool open = false;              ///< its transaction awaits finish_commit

        /// The transaction holding writes [segment_start, end) is gone: they fail with the
        /// session's problem.
        void lose(std::size_t end) {
            for (std::size_t j = segment_start; j < end; ++j)
                if (results[j]) results[j] = s->lost();
            open = false;
        }
    };

    void enqueue(job_fn fn, write_done done, bool retry);
    void writer_loop();
    void completion_loop();
    group run_group(session& s, std::vector<write_job> batch);
    void finish_group(group& g);
    result<json::value> run_job(session& s, write_job& job);
    void reader_loop(session& s);
    bool raise_seq(std::int64_t seq);
    void notify_commit(std::int64_t seq);
    template <class Fn>
    void guarded(std::string_view what, Fn&& fn);

    const core_limits limits_;
    std::vector<std::unique_ptr<session>> writers_;
    std::vector<std::unique_ptr<session>> readers_;
    std::atomic<std::int64_t> last_seq_;

    std::mutex write_mu_;
    std::condition_variable write_cv_;
    std::deque<write_job> writes_;
    bool writes_stopping_ = false;

    std::mutex read_mu_;
    std::condition_variable read_cv_;
    std::deque<std::function<void(read_txn&)>> reads_;
    bool reads_stopping_ = false;

    std::mutex done_mu_;
    std::condition_variable done_cv_;
    std::deque<completed_group> done_queue_;  ///< bounded: the writer waits when it is full
    bool done_stopping_ = false;

    std::mutex listener_mu_;
    std::function<void(std::int64_t)> on_commit_;
    std::function<void()> on_task_ready_;

    std::mutex close_mu_;
    bool closed_ = false;
    std::thread writer_thread_;
    std::thread completion_thread_;
    std::vector<std::thread> reader_threads_;
};

}  // namespace livebase::store_detail
