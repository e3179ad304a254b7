#pragma once
/// The Store: records, the change log and the tasks' tables, behind one interface with SQLite
/// and PostgreSQL backends. Reads run on a reader pool, writes on one writer thread that batches
/// concurrent writes into one transaction (group commit). Completion callbacks run on store
/// threads: callers post back to their own executor.
#include <livebase/core/log.hpp>
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/schema/query.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <limits>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace livebase {

/// One row of the change log.
struct change {
    std::int64_t seq = 0;          ///< cluster-wide order of commits
    std::int64_t ts = 0;           ///< ms since epoch
    std::string collection;
    std::string op;                ///< "create" | "update" | "delete"
    std::string id;
    json::object record;           ///< after (create/update) or before (delete); stored form
    /// For "update": the record before the change (stored form, each json field reduced to
    /// `true` when it was not null: filters test json fields only with isnull), so that readers
    /// can tell a record entering or leaving a filter. Empty for create/delete, and for updates
    /// logged before the change log kept it (those count as "matched before" only if `record`
    /// does).
    std::optional<json::object> before;
};

/// A page of a list.
struct page {
    std::int64_t count = 0;              ///< rows matching the filters, ignoring limit/offset
    std::vector<json::object> items;     ///< stored form (all fields incl. write_only)
};

/// The serve nodes sharing a change log, as node_heartbeat() sees them.
struct node_positions {
    std::int64_t delivered = 0;  ///< the smallest delivered position of the live nodes
    std::size_t forgotten = 0;   ///< nodes just dropped for a heartbeat older than the timeout
};

/// Read access inside store::read(). Only valid during the callback, on the calling thread.
class read_txn {
public:
    virtual ~read_txn() = default;
    /// The stored record, nullopt if absent. Problems: 500 on storage errors.
    virtual result<std::optional<json::object>> get(const collection_def& c, std::string_view id) = 0;
    /// Records matching q.filters, ordered by q.ordering then id, q.offset/q.limit applied,
    /// with the total count. REQUIRES: q was validated against c.
    virtual result<page> list(const collection_def& c, const query& q) = 0;
    /// Changes with seq > after, ascending, at most `limit`.
    virtual result<std::vector<change>> changes_after(std::int64_t after, std::size_t limit) = 0;
    /// The history floor: every change with seq > floor is still in the log (trimming removed
    /// the ones <= floor). 0 when nothing was ever trimmed. A resume from `since` is possible
    /// iff floor <= since <= snapshot_seq().
    virtual result<std::int64_t> history_floor() = 0;
    /// The largest seq visible in this transaction's snapshot (0 when the log is empty). Read in
    /// the same transaction as a list() it tells the seq that list is "at". Inside a write,
    /// SQLite counts the write's own appends; PostgreSQL appends a group's changes at commit
    /// (that is what makes seq order commit order), so there it is the log before the write.
    virtual result<std::int64_t> snapshot_seq() = 0;
};

/// Write access inside store::write(). Only valid during the callback, on the writer thread.
/// Every mutation appends its change-log row in the same transaction.
class write_txn : public read_txn {
public:
    /// Inserts a complete stored record (id, created, updated, version, owner?, fields).
    /// Unique violations -> 409 problem naming the field ("A record with this vin already exists.").
    virtual result<void> insert(const collection_def& c, const json::object& record) = 0;
    /// Replaces the stored record with the same id (complete record, version already bumped).
    /// 404 if absent; 409 on unique violations. The change-log row keeps the previous record
    /// (change::before): `before` when the caller has it (it read the row in this transaction),
    /// else it is read here.
    virtual result<void> update(const collection_def& c, const json::object& record,
                                const json::object* before = nullptr) = 0;
    /// Like list() (count not computed), for rows this transaction is about to change: they
    /// stay locked until commit, and rows another transaction holds are skipped (PostgreSQL:
    /// FOR UPDATE SKIP LOCKED). Task claims use it, so two nodes never wait on or take the same
    /// task. SQLite has one writer: a plain list().
    virtual result<page> list_locked(const collection_def& c, const query& q) { return list(c, q); }
    /// The stored records with these ids, absent ones left out, in no particular order; locked
    /// until commit like get() inside a write (PostgreSQL: one SELECT ... FOR UPDATE, which
    /// waits for another node's hold). Batched task completions read their rows with it.
    virtual result<std::vector<json::object>> get_many(const collection_def& c, const std::vector<std::string>& ids) {
        std::vector<json::object> out;
        out.reserve(ids.size());
        for (const auto& id : ids) {
            auto r = get(c, id);
            if (!r) return std::move(r).error();
            if (*r) out.push_back(std::move(**r));
        }
        return out;
    }
    /// Deletes by id; `before` is the record as it was (logged). 404 if absent.
    virtual result<void> remove(const collection_def& c, const json::object& before) = 0;
    /// Trims the change log (realtime.history / history_age): deletes the oldest rows so that
    /// at most `keep` remain, and every row with ts < `older_than_ms`; never the newest row, so
    /// the sequence keeps counting, and never a row with seq > `keep_after` (the position the
    /// caller computed `keep` from: rows committed after it must not move the cut past it).
    /// Raises history_floor() accordingly. Returns rows deleted.
    virtual result<std::size_t> trim_changes(std::uint64_t keep, std::int64_t older_than_ms,
                                             std::int64_t keep_after = std::numeric_limits<std::int64_t>::max()) = 0;
    /// Cluster trimming (realtime.node_timeout): records that serve node `node` has delivered
    /// the change log up to `delivered`, as of `now_ms` (its heartbeat), forgets the nodes whose
    /// last heartbeat is older than `alive_since_ms`, and returns what the remaining nodes
    /// (this one included) have delivered, at least.
    virtual result<node_positions> node_heartbeat(std::int64_t node, std::int64_t delivered, std::int64_t now_ms,
                                                  std::int64_t alive_since_ms) = 0;
};

/// What migrate() would do or did.
struct migration_plan {
    std::vector<std::string> steps;         ///< human lines ("create table cars", "add column ...")
    std::vector<std::string> destructive;   ///< steps needing --allow-destructive
};

class store {
public:
    virtual ~store() = default;

    /// Brings tables, indexes and the change log in line with `collections`. Additive changes
    /// are applied; destructive ones (dropped or retyped fields) are refused with a problem
    /// listing them unless allow_destructive. dry_run: only plan. Startup only (blocking).
    /// Removing an index counts as destructive (config.md); a retyped field's data is dropped
    /// (string <-> text keeps it); tables of collections no longer declared are kept.
    virtual result<migration_plan> migrate(const std::vector<const collection_def*>& collections,
                                           bool allow_destructive, bool dry_run) = 0;

    /// Runs `fn` on a reader thread with a read transaction (a consistent snapshot).
    /// `fn` always runs exactly once: after close(), or when the bounded reader queue is full,
    /// it runs at once on the calling thread with a transaction whose every call returns a
    /// 503 problem (so callers that answer from inside `fn` never hang).
    virtual void read(std::function<void(read_txn&)> fn) = 0;

    using write_fn = std::function<result<json::value>(write_txn&)>;
    using write_done = std::function<void(result<json::value>)>;
    /// Runs `fn` on the writer thread inside a savepoint of the current group transaction.
    /// If `fn` returns a problem its changes are rolled back and `done` gets the problem.
    /// `done` is called after the group commits (2xx means committed), on the store's
    /// completion thread, in the order the writes were queued.
    /// If the commit fails every write in the group gets a 500 problem (a write whose `fn`
    /// already returned a problem keeps its own). An exception thrown by `fn` rolls its changes
    /// back and becomes a 500. After close(), or when the bounded writer queue is full, `done`
    /// gets a 503 problem at once on the calling thread and `fn` never runs.
    virtual void write(write_fn fn, write_done done) = 0;

    /// The latest committed change seq (0 when the log is empty).
    virtual std::int64_t last_seq() = 0;

    /// Called after each group commit with the new last seq (from the completion thread, after
    /// the group's `done` callbacks; or from a backend's watcher of other processes). One
    /// listener; set before writes start. Used by the realtime hub.
    virtual void on_commit(std::function<void(std::int64_t last_seq)> fn) = 0;
    /// "ok", "full" while writes are refused for lack of space (507; SQLite: the disk or
    /// storage.max_size), or "unavailable" while the database cannot be reached (PostgreSQL:
    /// every request answers 503 at once), for the health checks. Thread-safe.
    virtual std::string_view condition() const noexcept { return "ok"; }

    /// Called when another process may have made a task pending (PostgreSQL: a NOTIFY from the
    /// committing node), so idle workers claim it at once instead of at their next poll. One
    /// listener, set before start. SQLite: never called (one process writes; workers poll).
    virtual void on_task_ready(std::function<void()> fn) { (void)fn; }

    /// Stops the threads after finishing queued work. Idempotent; the destructor calls it.
    /// REQUIRES: not called from a store thread (inside a read/write callback or `done`).
    virtual void close() = 0;

    // Blocking conveniences for startup, CLI and tests (never call from an I/O thread).
    result<std::optional<json::object>> get_sync(const collection_def& c, std::string id);
    result<page> list_sync(const collection_def& c, query q);
    result<json::value> write_sync(write_fn fn);
};

/// How thoroughly a SQLite file is checked when it is opened.
enum class integrity_check { off, quick, full };

struct sqlite_options {
    std::string path = "data/livebase.db";  ///< ":memory:" is not supported (readers need a file)
    std::size_t readers = 2;                ///< reader threads (each with its own connection)
    std::size_t max_batch = 256;            ///< writes per group commit
    logger* log = nullptr;                  ///< storage errors are logged here when set; must outlive the store
    /// Largest database file in bytes (PRAGMA max_page_count); 0: no limit but the disk's.
    /// Writes past it fail as on a full disk (507).
    std::uint64_t max_size = 0;
    /// Checked when opened: PRAGMA quick_check, or integrity_check (full); a damaged file
    /// fails the open with a 503 storage-damaged problem naming what the check found.
    integrity_check check = integrity_check::off;
};

/// Opens (creating directories and file as needed) a SQLite store in WAL mode.
result<std::unique_ptr<store>> open_sqlite_store(const sqlite_options& options);

/// How long PostgreSQL may take (config.md [storage]). Each is passed as a libpq parameter (or
/// SET) before the URL's own, so a URL that sets one keeps its value.
struct postgres_timeouts {
    std::chrono::milliseconds connect{5000};     ///< connect_timeout: establishing a connection
    /// statement_timeout; the store also waits at most this + 1 s for any result, then drops
    /// the connection and answers 503 until PostgreSQL answers again.
    std::chrono::milliseconds statement{30000};
    bool keepalives = true;  ///< TCP keepalives (30 s idle, 10 s interval, 3 probes) and tcp_user_timeout
};

struct postgres_options {
    std::string url;                        ///< postgresql://... (livebase's own `schema=` parameter allowed)
    std::size_t readers = 4;                ///< reader connections (each on its own thread)
    std::size_t max_batch = 256;            ///< writes per group commit
    logger* log = nullptr;                  ///< as in sqlite_options
    postgres_timeouts timeouts;
};

/// Connects to PostgreSQL (writer, readers and a LISTEN connection) and creates the store's
/// own tables when missing. A PostgreSQL that cannot be reached within timeouts.connect ->
/// 503 storage-unavailable problem whose detail names host:port and the reason (extra
/// "endpoint" and "reason" say them apart). `schema=name` in the URL keeps every table in that schema (created
/// if missing), so several apps or test runs can share one database.
result<std::unique_ptr<store>> open_postgres_store(const postgres_options& options);

/// `url` with any password replaced by "***": what logs and errors may show of a storage URL.
std::string redacted_storage_url(std::string_view url);

/// Parses `storage.url`: "sqlite:path" (relative to the working directory) or
/// "postgresql://..." and opens it. Unsupported schemes -> problem. `log` as in sqlite_options;
/// `readers`: reader connections, 0 for the backend's default (sqlite_options, postgres_options).
/// `max_size`, `check`: as in sqlite_options (SQLite only); `pg`: as in postgres_options.
result<std::unique_ptr<store>> open_store(std::string_view url, logger* log = nullptr, std::size_t readers = 0,
                                          std::uint64_t max_size = 0, integrity_check check = integrity_check::off,
                                          const postgres_timeouts& pg = {});

}  // namespace livebase
