#pragma once
/// RAII wrappers over one SQLite connection and its prepared statements. Not thread-safe: a
/// connection belongs to one thread (the writer or one reader) for its whole life.
#include <livebase/core/json.hpp>
#include <livebase/core/log.hpp>
#include <livebase/core/result.hpp>

#include <sqlite3.h>

#include <cstdint>
#include <atomic>
#include <list>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>

namespace livebase::sqlite {

/// One prepared statement. Owned through shared_ptr by a connection's cache; a holder keeps it
/// alive when the cache evicts it.
class statement {
public:
    explicit statement(sqlite3_stmt* s) noexcept : stmt_(s) {}
    ~statement() { sqlite3_finalize(stmt_); }
    statement(const statement&) = delete;
    statement& operator=(const statement&) = delete;

    sqlite3_stmt* get() const noexcept { return stmt_; }

private:
    sqlite3_stmt* stmt_;
};

class connection;

/// A statement in use: binds parameters, steps, reads columns; resets and clears the bindings
/// when it goes out of scope so the cached statement is ready for the next user.
class cursor {
public:
    cursor(connection& conn, std::shared_ptr<statement> s) noexcept;
    ~cursor();
    cursor(cursor&& other) noexcept = default;
    cursor& operator=(cursor&&) = delete;
    cursor(const cursor&) = delete;
    cursor& operator=(const cursor&) = delete;

    void bind_null(int i) noexcept;
    void bind_int(int i, std::int64_t v) noexcept;
    void bind_double(int i, double v) noexcept;
    void bind_text(int i, std::string_view v) noexcept;
    /// JSON scalars: strings as text, integers as int64 (uint64 beyond int64 as double),
    /// doubles as real, booleans as 0/1, null as NULL; arrays/objects as serialized text.
    void bind_json(int i, const json::value& v) noexcept;

    /// SQLITE_ROW, SQLITE_DONE or an error code (see connection::error_message()).
    int step() noexcept;
    /// Steps to completion; a problem (500, logged) unless SQLITE_DONE.
    result<void> run();

    bool is_null(int col) const noexcept;
    std::int64_t column_int(int col) const noexcept;
    double column_double(int col) const noexcept;
    std::string column_text(int col) const;

private:
    sqlite3_stmt* raw() const noexcept { return stmt_->get(); }

    connection* conn_;
    std::shared_ptr<statement> stmt_;  // null when moved from
};

/// One SQLite connection with a bounded LRU cache of prepared statements keyed by SQL text.
class connection {
public:
    /// Opens `path` read-write (creating it), applies the store's pragmas (WAL, synchronous
    /// NORMAL, foreign_keys OFF, busy_timeout 5000) and, for readers, query_only.
    static result<std::unique_ptr<connection>> open(const std::string& path, bool query_only,
                                                    logger* log);
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Runs one or more statements without results. Errors -> logged 500 problem.
    result<void> exec(std::string_view sql);
    /// A cursor over the cached statement for `sql` (prepared on first use).
    result<cursor> prepare(const std::string& sql);
    /// Runs one statement without parameters or results through the statement cache (the
    /// writer's BEGIN, SAVEPOINT, RELEASE, COMMIT: no parsing per use). Errors as exec().
    result<void> run(const std::string& sql);

    sqlite3* handle() const noexcept { return db_; }
    std::string error_message() const;
    int extended_error() const noexcept { return sqlite3_extended_errcode(db_); }
    bool in_transaction() const noexcept { return sqlite3_get_autocommit(db_) == 0; }
    std::int64_t changes() const noexcept { return sqlite3_changes64(db_); }
    std::int64_t last_insert_rowid() const noexcept { return sqlite3_last_insert_rowid(db_); }

    /// Logs `what` with the current SQLite error and returns the problem clients see (no
    /// internals): 507 with retry_after when the disk or storage.max_size is full (logged once
    /// per episode, see full()), 503 with retry_after for I/O errors, a busy database and a
    /// damaged file, else 500.
    problem fail(std::string_view what, std::string_view sql = {});
    /// The problem of the last fail() (500 when none).
    const problem& last_failure() const noexcept { return last_failure_; }
    /// True from a write refused for lack of space until a write that changes rows commits
    /// again (wrote()).
    bool full() const noexcept { return full_.load(std::memory_order_relaxed); }
    /// A write transaction committed: ends a storage-full episode (logged).
    void wrote();
    /// Connections of one store share one damage flag: a malformed page found by any of them
    /// (SQLITE_CORRUPT, SQLITE_NOTADB) stops the store's writes until a restart.
    void share_damage(std::shared_ptr<std::atomic<bool>> flag) noexcept { damaged_ = std::move(flag); }
    /// True once any connection sharing the flag found the file damaged.
    bool damaged() const noexcept { return damaged_->load(std::memory_order_relaxed); }
    /// The problem every request that needs the damaged file gets: 503, Retry-After 60.
    static problem damaged_problem();

private:
    connection(sqlite3* db, logger* log) noexcept : db_(db), log_(log) {}

    static constexpr std::size_t k_cache_capacity = 256;
    using lru_list = std::list<std::pair<std::string, std::shared_ptr<statement>>>;

    sqlite3* db_;
    logger* log_;
    problem last_failure_ = problem::internal();
    std::atomic<bool> full_{false};
    std::shared_ptr<std::atomic<bool>> damaged_ = std::make_shared<std::atomic<bool>>(false);
    lru_list lru_;  // most recently used first
    std::unordered_map<std::string_view, lru_list::iterator> cache_;
};

}  // namespace livebase::sqlite
