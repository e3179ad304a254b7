#pragma once
/// One libpq connection (owned by one store thread for its whole life), its prepared statements
/// and its results. Parameters and results travel in text format; values are always
/// parameters, never spliced into SQL.
///
/// Deadlines: libpq runs non-blocking; every wait for a result (and for the connection itself)
/// polls the socket against our own deadline (statement_timeout + 1 s; connect_timeout). A
/// connection past its deadline is dropped, its store is marked down (reachability) and the
/// caller gets a 503 storage-unavailable problem. While the store is down every connection
/// refuses at once (ensure() is false); the store's prober reconnects at most once a second.
///
/// Pipeline mode (the store's reader and writer connections): statements whose result the
/// caller does not wait for (BEGIN, SAVEPOINT, RELEASE, COMMIT of a read, the change-log
/// append and its NOTIFY) are deferred: queued on the connection and sent with the next
/// statement the caller waits for, whose round trip carries them all. A deferred statement
/// that fails makes the next awaited one fail with its error (PostgreSQL skips the rest of the
/// pipeline up to the sync point).
#include <livebase/core/log.hpp>
#include <livebase/core/result.hpp>

#include "store/tables.hpp"

#include <libpq-fe.h>

#include <atomic>
#include <chrono>
#include <deque>
#include <functional>
#include <mutex>

#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <unordered_map>
#include <vector>

namespace livebase::pg {

/// A statement's parameters: text values, nullopt is SQL NULL.
using params = std::vector<std::optional<std::string>>;

/// The result of one statement (rows in text format).
class rows {
public:
    explicit rows(PGresult* r) noexcept : r_(r, &PQclear) {}
    int size() const noexcept { return PQntuples(r_.get()); }
    bool is_null(int row, int col) const noexcept { return PQgetisnull(r_.get(), row, col) != 0; }
    std::string_view text(int row, int col) const noexcept {
        return {PQgetvalue(r_.get(), row, col), static_cast<std::size_t>(PQgetlength(r_.get(), row, col))};
    }
    std::int64_t int64(int row, int col) const noexcept;
    /// Rows changed by an INSERT/UPDATE/DELETE.
    std::int64_t affected() const noexcept;

private:
    std::unique_ptr<PGresult, void (*)(PGresult*)> r_;
};

/// What a failed statement said: SQLSTATE and the server's message and detail.
struct error_info {
    std::string sqlstate;
    std::string message;
    std::string detail;
};

/// How long PostgreSQL may take (storage.connect_timeout, statement_timeout, keepalives).
struct timeouts {
    std::chrono::milliseconds connect{5000};     ///< establishing a connection
    std::chrono::milliseconds statement{30000};  ///< SET statement_timeout; our wait: this + 1 s
    bool keepalives = true;                      ///< TCP keepalives and tcp_user_timeout
    std::chrono::milliseconds wait() const noexcept { return statement + std::chrono::seconds(1); }
};

/// The 503 of an unreachable database, a lost connection or a lost COMMIT (Retry-After: 5).
problem storage_unavailable(std::string detail);
/// The 507 of a full disk (SQLSTATE 53100; Retry-After: 30).
problem storage_full();

/// Whether PostgreSQL answers, shared by a store's connections. Thread-safe.
///
/// An episode starts when a connection misses its deadline, loses its socket or cannot connect
/// (one log line) and ends when the prober connects again (one log line). Every successful
/// reconnect starts a new epoch: connections of an older epoch reconnect before their next use
/// (their sockets may be stale), and their failures do not start a new episode.
class reachability {
public:
    reachability(logger* log, std::string endpoint) : log_(log), endpoint_(std::move(endpoint)) {}
    bool down() const noexcept { return down_.load(std::memory_order_acquire); }
    std::uint64_t epoch() const noexcept { return epoch_.load(std::memory_order_acquire); }
    const std::string& endpoint() const noexcept { return endpoint_; }
    /// A connection of `epoch` failed for `reason`: starts an episode unless one is on or the
    /// connection was stale.
    void lost(std::string_view reason, std::uint64_t epoch);
    /// A probe connected: ends the episode; returns the new epoch.
    std::uint64_t back();
    /// PostgreSQL reported a full disk (53100) / a write committed: the storage-full episode
    /// starts / ends (one log line each).
    void set_full(bool full);
    bool full() const noexcept { return full_.load(std::memory_order_acquire); }

private:
    logger* log_;
    const std::string endpoint_;
    std::mutex mu_;
    std::atomic<bool> down_{false};
    std::atomic<bool> full_{false};
    std::atomic<std::uint64_t> epoch_{0};
};

/// "host:port" of a conninfo (localhost:5432 when unnamed), for messages.
std::string endpoint_of(const std::string& conninfo);

class connection {
public:
    struct options {
        timeouts limits;
        /// Shared by the store's connections; null: a connection on its own (still with
        /// deadlines, but no episodes).
        std::shared_ptr<reachability> reach;
        /// Checked while connecting: true stops the attempt (the store is closing).
        std::function<bool()> cancelled;
    };
    /// Connects with `conninfo` (a libpq URI or key=value string) within limits.connect.
    /// `schema`, when not empty, becomes the search_path (created first when `create_schema`).
    /// Problems: 503 storage-unavailable naming host:port and libpq's reason (extra "endpoint",
    /// "reason").
    static result<std::unique_ptr<connection>> open(const std::string& conninfo, const std::string& schema,
                                                    bool create_schema, logger* log, options o = {});
    ~connection();
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    /// Runs statements without parameters or results (may be several, ';'-separated).
    result<void> exec(std::string_view sql);
    /// Runs one statement with parameters through a per-connection prepared statement (named
    /// on first use). Errors -> logged 500 problem; last_error() tells what PostgreSQL said.
    result<rows> query(const std::string& sql, const params& p = {});
    /// Same without preparing (statements whose text changes with their input).
    result<rows> query_once(const std::string& sql, const params& p = {});

    /// Runs a session setting (SET ...) now and again after every reconnect.
    result<void> configure(std::string statement);
    /// Enters pipeline mode (see above). REQUIRES: no statement in flight.
    result<void> enter_pipeline();
    bool pipelined() const noexcept { return pipelined_; }
    /// Queues a statement without waiting for it (pipeline mode; otherwise it runs now). Its
    /// rows, when it succeeds, go to `on_rows` once the next awaited statement returns. `sql`
    /// is prepared once (`prepare`) or sent as it is (statements whose text varies).
    result<void> defer(const std::string& sql, const params& p = {},
                       std::function<void(const rows&)> on_rows = {}, bool prepare = true);
    /// A row write deferred like defer(): its failure is not the next awaited statement's
    /// problem but the transaction's. It makes write_failed() true (the writer then runs the
    /// group's writes again, each confirmed: store/core.hpp).
    result<void> defer_write(const std::string& sql, const params& p, std::function<void(const rows&)> on_rows = {});
    /// A deferred write failed since clear_write_failed().
    bool write_failed() const noexcept { return write_failed_; }
    void clear_write_failed() noexcept { write_failed_ = false; }
    /// Deferred writes whose answers have not been read yet.
    bool writes_unconfirmed() const noexcept;
    /// Sends what is queued without waiting for results (pipeline mode): a deferred COMMIT
    /// reaches the server now instead of with the next statement. False when the socket would
    /// not take it within the statement deadline or broke.
    bool flush() noexcept;

    const error_info& last_error() const noexcept { return last_error_; }
    /// The last failure was a deadlock or serialization failure: the work may be retried.
    bool retryable() const noexcept {
        return last_error_.sqlstate == "40P01" || last_error_.sqlstate == "40001";
    }
    bool ok() const noexcept { return conn_ && PQstatus(conn_) == CONNECTION_OK; }
    bool in_transaction() const noexcept;
    /// In a transaction that a failed statement aborted.
    bool in_error() const noexcept { return conn_ && PQtransactionStatus(conn_) == PQTRANS_INERROR; }
    /// False at once while the store is down. Otherwise reconnects a broken or stale connection
    /// (statements are prepared again); a failed reconnect starts an episode. True when usable.
    bool ensure();
    /// The prober: drops this connection and connects again; on success ends the episode.
    bool probe();
    /// Migrations: DDL (an index on a large table) and the migration lock may take longer than
    /// statement_timeout; while `on`, results are waited for without a deadline.
    void set_unbounded(bool on) noexcept { unbounded_ = on; }
    /// The problem of the last failure (503/507/500), as failed statements returned it.
    const problem& last_problem() const noexcept { return last_problem_; }
    /// Forgets prepared statements (after DDL changes the tables they read).
    void forget_statements();

    PGconn* handle() const noexcept { return conn_; }
    /// Logs `what` with the current error and returns problem::internal().
    problem fail(std::string_view what, std::string_view sql = {});

private:
    connection(PGconn* c, std::string conninfo, std::string schema, logger* log, options o) noexcept
        : conn_(c), conninfo_(std::move(conninfo)), schema_(std::move(schema)), log_(log), opts_(std::move(o)) {}
    /// A new PGconn within limits.connect, non-blocking; null and `error` set on failure.
    static PGconn* connect(const std::string& conninfo, const options& o, std::string& error);
    bool reconnect();
    /// Closes the socket and forgets what was in flight.
    void drop() noexcept;
    enum class io { ready, broken, timeout };
    std::chrono::steady_clock::time_point result_deadline() const noexcept;
    /// Sends what is buffered and waits until a result can be read without blocking.
    io wait_result(std::chrono::steady_clock::time_point deadline);
    /// Reads the results of what was sent (not pipelined) up to the end; the last one, or the
    /// first error.
    result<rows> collect(std::string_view sql);
    /// The wait ran out or the socket broke: drop, mark the store, 503.
    problem unreachable(io what, std::string_view sql);
    result<rows> finish(PGresult* r, std::string_view sql);
    /// The problem for last_error_ (logged unless it is an expected outcome).
    problem failed(std::string_view sql);
    result<void> set_search_path();
    /// The statement name of `sql`, prepared on first use (in pipeline mode the preparation is
    /// queued like a deferred statement). Empty on failure.
    std::string statement_name(const std::string& sql);
    /// Pipeline mode: sends `sql` (prepared or not), marks a sync point and reads every queued
    /// result up to it; the awaited statement's result.
    result<rows> await(const std::string& sql, const params& p, bool prepare);
    bool send(const std::string& sql, const params& p, bool prepare);
    /// The connection broke with statements in flight: forget them.
    problem broken(std::string_view sql);
    void set_error(PGresult* r);

    struct queued {
        std::string sql;
        std::function<void(const rows&)> on_rows;  ///< deferred statements' rows
        bool write = false;                        ///< defer_write()
        bool prepare = false;                      ///< the preparation of `sql`
    };

    PGconn* conn_;
    std::string conninfo_;
    std::string schema_;
    logger* log_;
    options opts_;
    std::uint64_t epoch_ = 0;  // the reachability epoch this connection was made in
    bool unbounded_ = false;   // set_unbounded()
    error_info last_error_;
    problem last_problem_;
    std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
    std::uint64_t next_name_ = 0;
    bool pipelined_ = false;
    bool write_failed_ = false;  // write_failed()
    std::deque<queued> queued_;  // sent, results not read yet (pipeline mode)
    std::vector<std::string> settings_;  // replayed by ensure()
};

using store_detail::quote_ident;

/// A storage URL split for libpq: the URL without livebase's own `schema=` parameter, and that
/// schema (empty when absent). Problem when the schema is not [a-z_][a-z0-9_]{0,62}.
struct url_parts {
    std::string conninfo;
    std::string schema;
};
result<url_parts> split_url(std::string_view url);

/// `url` with any password replaced by "***" (for logs and errors).
std::string redact_url(std::string_view url);

}  // namespace livebase::pg
