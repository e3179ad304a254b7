#include "store/pg/connection.hpp"

#include <charconv>

namespace livebase::pg {

std::int64_t rows::int64(int row, int col) const noexcept {
    auto t = text(row, col);
    std::int64_t v = 0;
    std::from_chars(t.data(), t.data() + t.size(), v);
    return v;
}

std::int64_t rows::affected() const noexcept {
    const char* n = PQcmdTuples(r_.get());
    std::int64_t v = 0;
    if (n) std::from_chars(n, n + std::char_traits<char>::length(n), v);
    return v;
}

namespace {

bool valid_schema(std::string_view s) {
    if (s.empty() || s.size() > 63) return false;
    if (!(s[0] == '_' || (s[0] >= 'a' && s[0] <= 'z'))) return false;
    for (char ch : s)
        if (!(ch == '_' || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9'))) return false;
    return true;
}

}  // namespace

result<url_parts> split_url(std::string_view url) {
    url_parts out;
    auto q = url.find('?');
    if (q == std::string_view::npos) {
        out.conninfo = std::string(url);
        return out;
    }
    std::string kept;
    std::string_view rest = url.substr(q + 1);
    while (!rest.empty()) {
        auto amp = rest.find('&');
        auto param = rest.substr(0, amp);
        rest = amp == std::string_view::npos ? std::string_view() : rest.substr(amp + 1);
        if (param.substr(0, 7) == "schema=") {
            out.schema = std::string(param.substr(7));
            if (!valid_schema(out.schema))
                return problem::bad_request("The storage URL's schema \"" + out.schema +
                                            "\" must be 1 to 63 of a-z, 0-9 and _, not starting with a digit.");
            continue;
        }
        if (param.empty()) continue;
        kept += kept.empty() ? "" : "&";
        kept += param;
    }
    out.conninfo = std::string(url.substr(0, q));
    if (!kept.empty()) out.conninfo += "?" + kept;
    return out;
}

std::string redact_url(std::string_view url) {
    // scheme://user:password@host -> scheme://user:***@host
    auto scheme = url.find("://");
    if (scheme == std::string_view::npos) return std::string(url);
    auto authority_end = url.find_first_of("/?", scheme + 3);
    auto authority = url.substr(scheme + 3, authority_end == std::string_view::npos ? url.npos
                                                                                   : authority_end - scheme - 3);
    auto at = authority.rfind('@');
    std::string out(url);
    if (at != std::string_view::npos) {
        auto colon = authority.substr(0, at).find(':');
        if (colon != std::string_view::npos)
            out = std::string(url.substr(0, scheme + 3 + colon + 1)) + "***" +
                  std::string(url.substr(scheme + 3 + at));
    }
    // A password given as a parameter.
    auto p = out.find("password=");
    if (p != std::string::npos) {
        auto end = out.find('&', p);
        out = out.substr(0, p + 9) + "***" + (end == std::string::npos ? "" : out.substr(end));
    }
    return out;
}

result<std::unique_ptr<connection>> connection::open(const std::string& conninfo, const std::string& schema,
                                                     bool create_schema, logger* log) {
    PGconn* c = PQconnectdb(conninfo.c_str());
    if (!c) return problem::unavailable("Cannot connect to PostgreSQL: out of memory.");
    if (PQstatus(c) != CONNECTION_OK) {
        std::string msg = PQerrorMessage(c);
        PQfinish(c);
        while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
        if (log) log->error("connecting to PostgreSQL failed", {{"error", msg}});
        return problem::unavailable("Cannot connect to PostgreSQL: " + msg);
    }
    std::unique_ptr<connection> conn(new connection(c, schema, log));
    // Quiet NOTICEs ("relation already exists, skipping") instead of libpq printing them.
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    if (!schema.empty() && create_schema) {
        if (auto r = conn->exec("CREATE SCHEMA IF NOT EXISTS " + quote_ident(schema)); !r) {
            // Two processes creating the schema at once: one of them sees a duplicate.
            if (conn->last_error_.sqlstate != "23505" && conn->last_error_.sqlstate != "42P06")
                return std::move(r).error();
        }
    }
    if (auto r = conn->set_search_path(); !r) return std::move(r).error();
    return conn;
}

connection::~connection() { PQfinish(conn_); }

result<void> connection::set_search_path() {
    if (schema_.empty()) return {};
    return exec("SET search_path TO " + quote_ident(schema_));
}

bool connection::in_transaction() const noexcept {
    auto s = PQtransactionStatus(conn_);
    return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

bool connection::ensure() {
    if (PQstatus(conn_) == CONNECTION_OK) return true;
    const bool pipelined = pipelined_;
    PQreset(conn_);
    prepared_.clear();
    queued_.clear();
    pipelined_ = false;
    if (PQstatus(conn_) != CONNECTION_OK) return false;
    if (!set_search_path()) return false;
    for (const auto& statement : settings_)
        if (!exec(statement)) return false;
    return !pipelined || static_cast<bool>(enter_pipeline());
}

result<void> connection::configure(std::string statement) {
    if (auto r = exec(statement); !r) return r;
    settings_.push_back(std::move(statement));
    return {};
}

void connection::forget_statements() {
    if (!prepared_.empty()) (void)exec("DEALLOCATE ALL");
    prepared_.clear();
}

result<void> connection::enter_pipeline() {
    if (pipelined_) return {};
    if (PQenterPipelineMode(conn_) != 1) return fail("entering pipeline mode failed");
    pipelined_ = true;
    return {};
}

void connection::flush() noexcept {
    if (pipelined_) (void)PQflush(conn_);
}

problem connection::broken(std::string_view sql) {
    queued_.clear();
    prepared_.clear();  // a reconnect starts without them
    last_error_ = {};
    last_error_.message = PQerrorMessage(conn_);
    while (!last_error_.message.empty() && last_error_.message.back() == '\n') last_error_.message.pop_back();
    return fail("a PostgreSQL statement failed", sql);
}

void connection::set_error(PGresult* r) {
    last_error_ = {};
    if (r) {
        if (const char* s = PQresultErrorField(r, PG_DIAG_SQLSTATE)) last_error_.sqlstate = s;
        if (const char* s = PQresultErrorField(r, PG_DIAG_MESSAGE_PRIMARY)) last_error_.message = s;
        if (const char* s = PQresultErrorField(r, PG_DIAG_MESSAGE_DETAIL)) last_error_.detail = s;
    }
    if (last_error_.message.empty()) {
        last_error_.message = PQerrorMessage(conn_);
        while (!last_error_.message.empty() && last_error_.message.back() == '\n') last_error_.message.pop_back();
    }
}

problem connection::fail(std::string_view what, std::string_view sql) {
    if (log_) {
        json::object fields{{"error", last_error_.message.empty() ? std::string(PQerrorMessage(conn_))
                                                                  : last_error_.message}};
        if (!last_error_.sqlstate.empty()) fields["sqlstate"] = last_error_.sqlstate;
        if (!sql.empty()) fields["sql"] = std::string(sql.substr(0, 300));
        log_->error(what, std::move(fields));
    }
    if (PQstatus(conn_) != CONNECTION_OK) return problem::unavailable("The database connection was lost.");
    return problem::internal();
}

result<rows> connection::finish(PGresult* r, std::string_view sql) {
    auto st = r ? PQresultStatus(r) : PGRES_FATAL_ERROR;
    if (st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK) {
        last_error_ = {};
        return rows(r);
    }
    set_error(r);
    if (r) PQclear(r);
    return failed(sql);
}

problem connection::failed(std::string_view sql) {
    // Expected outcomes the caller turns into answers are not errors of the store.
    const auto& code = last_error_.sqlstate;
    if (code == "23505" || code == "40P01" || code == "40001" || code == "25P02") {
        if (PQstatus(conn_) != CONNECTION_OK) return problem::unavailable("The database connection was lost.");
        return problem::internal();
    }
    return fail("a PostgreSQL statement failed", sql);
}

result<void> connection::exec(std::string_view sql) {
    std::string text(sql);
    auto r = pipelined_ ? await(text, {}, false) : finish(PQexec(conn_, text.c_str()), sql);
    if (!r) return std::move(r).error();
    return {};
}

namespace {
constexpr std::size_t k_max_prepared = 512;

struct param_arrays {
    std::vector<const char*> values;
    explicit param_arrays(const params& p) {
        values.reserve(p.size());
        for (const auto& v : p) values.push_back(v ? v->c_str() : nullptr);
    }
};
}  // namespace

std::string connection::statement_name(const std::string& sql) {
    if (auto it = prepared_.find(sql); it != prepared_.end()) return it->second;
    // Bounded: statements whose text varies with the query (filters) are many.
    if (prepared_.size() >= k_max_prepared && PQtransactionStatus(conn_) != PQTRANS_INERROR) {
        if (pipelined_) {
            if (PQsendQueryParams(conn_, "DEALLOCATE ALL", 0, nullptr, nullptr, nullptr, nullptr, 0) != 1) return {};
            queued_.push_back({"DEALLOCATE ALL", {}});
        } else {
            (void)exec("DEALLOCATE ALL");
        }
        prepared_.clear();
    }
    std::string name = "lb" + std::to_string(next_name_++);
    if (pipelined_) {
        if (PQsendPrepare(conn_, name.c_str(), sql.c_str(), 0, nullptr) != 1) return {};
        queued_.push_back({sql, {}});
    } else if (!finish(PQprepare(conn_, name.c_str(), sql.c_str(), 0, nullptr), sql)) {
        return {};
    }
    prepared_.emplace(sql, name);
    return name;
}

bool connection::send(const std::string& sql, const params& p, bool prepare) {
    param_arrays a(p);
    const int n = static_cast<int>(p.size());
    if (!prepare) return PQsendQueryParams(conn_, sql.c_str(), n, nullptr, a.values.data(), nullptr, nullptr, 0) == 1;
    auto name = statement_name(sql);
    if (name.empty()) return false;
    return PQsendQueryPrepared(conn_, name.c_str(), n, a.values.data(), nullptr, nullptr, 0) == 1;
}

result<void> connection::defer(const std::string& sql, const params& p, std::function<void(const rows&)> on_rows,
                               bool prepare) {
    if (!pipelined_) {
        auto r = prepare ? query(sql, p) : query_once(sql, p);
        if (!r) return std::move(r).error();
        if (on_rows) on_rows(*r);
        return {};
    }
    if (!send(sql, p, prepare)) return broken(sql);
    queued_.push_back({sql, std::move(on_rows)});
    return {};
}

result<rows> connection::await(const std::string& sql, const params& p, bool prepare) {
    if (!send(sql, p, prepare)) return broken(sql);
    queued_.push_back({sql, {}});
    if (PQpipelineSync(conn_) != 1) return broken(sql);
    // Every queued statement's result, in order (each ends with a null); ours is the last.
    PGresult* mine = nullptr;
    std::string failed_sql;
    while (!queued_.empty()) {
        queued q = std::move(queued_.front());
        queued_.pop_front();
        PGresult* r = PQgetResult(conn_);
        if (!r) {
            if (mine) PQclear(mine);
            return broken(q.sql);
        }
        while (PGresult* more = PQgetResult(conn_)) PQclear(more);
        const auto st = PQresultStatus(r);
        const bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (!ok && st != PGRES_PIPELINE_ABORTED && failed_sql.empty()) {
            failed_sql = q.sql;
            set_error(r);
            // A statement whose preparation failed is not prepared.
            for (auto it = prepared_.begin(); it != prepared_.end(); ++it)
                if (it->first == q.sql) {
                    prepared_.erase(it);
                    break;
                }
        }
        if (queued_.empty()) {
            mine = r;
        } else if (ok && q.on_rows) {
            rows owned(r);
            q.on_rows(owned);
        } else {
            PQclear(r);
        }
    }
    // The sync point (no null follows it).
    PGresult* sync = PQgetResult(conn_);
    const bool synced = sync && PQresultStatus(sync) == PGRES_PIPELINE_SYNC;
    if (sync) PQclear(sync);
    if (!synced) {
        PQclear(mine);
        return broken(sql);
    }
    if (!failed_sql.empty()) {
        // A deferred statement (or ours) failed; what PostgreSQL said is in last_error_.
        PQclear(mine);
        return failed(failed_sql);
    }
    return finish(mine, sql);
}

result<rows> connection::query(const std::string& sql, const params& p) {
    if (pipelined_) return await(sql, p, true);
    auto name = statement_name(sql);
    if (name.empty()) return failed(sql);
    param_arrays a(p);
    return finish(PQexecPrepared(conn_, name.c_str(), static_cast<int>(p.size()), a.values.data(), nullptr, nullptr, 0),
                  sql);
}

result<rows> connection::query_once(const std::string& sql, const params& p) {
    if (pipelined_) return await(sql, p, false);
    param_arrays a(p);
    return finish(PQexecParams(conn_, sql.c_str(), static_cast<int>(p.size()), nullptr, a.values.data(), nullptr,
                               nullptr, 0),
                  sql);
}

}  // namespace livebase::pg
