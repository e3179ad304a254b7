#pragma once
/// One libpq connection (blocking calls, owned by one store thread for its whole life), its
/// prepared statements and its results. Parameters and results travel in text format; values
/// are always parameters, never spliced into SQL.
#include <livebase/core/log.hpp>
#include <livebase/core/result.hpp>

#include "store/tables.hpp"

#include <libpq-fe.h>

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
    result<void> set_search_path();

    PGconn* conn_;
    std::string schema_;
    logger* log_;
    error_info last_error_;
    std::unordered_map<std::string, std::string> prepared_;  // sql -> statement name
    std::uint64_t next_name_ = 0;
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
