#pragma once
/// One libpq connection (blocking calls, owned by one store thread for its whole life), its
/// prepared statements and its results. Parameters and results travel in text format; values
/// are always parameters, never spliced into SQL.
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

#include <deque>
#include <functional>

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

class connection {
public:
    /// Connects with `conninfo` (a libpq URI or key=value string). `schema`, when not empty,
    /// becomes the search_path (created first when `create_schema`).
    static result<std::unique_ptr<connection>> open(const std::string& conninfo, const std::string& schema,
                                                    bool create_schema, logger* log);
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
    /// Sends what is queued without waiting (pipeline mode): a deferred COMMIT reaches the
    /// server now instead of with the next statement.
    void flush() noexcept;

    const error_info& last_error() const noexcept { return last_error_; }
    /// The last failure was a deadlock or serialization failure: the work may be retried.
    bool retryable() const noexcept {
        return last_error_.sqlstate == "40P01" || last_error_.sqlstate == "40001";
    }
    bool ok() const noexcept { return PQstatus(conn_) == CONNECTION_OK; }
    bool in_transaction() const noexcept;
    /// Reconnects a broken connection (statements are prepared again). True when usable.
    bool ensure();
    /// Forgets prepared statements (after DDL changes the tables they read).
    void forget_statements();

    PGconn* handle() const noexcept { return conn_; }
    /// Logs `what` with the current error and returns problem::internal().
    problem fail(std::string_view what, std::string_view sql = {});

private:
    connection(PGconn* c, std::string schema, logger* log) noexcept
        : conn_(c), schema_(std::move(schema)), log_(log) {}
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
    };

    PGconn* conn_;
    std::string schema_;
    logger* log_;
    error_info last_error_;
    std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
    std::uint64_t next_name_ = 0;
    bool pipelined_ = false;
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
