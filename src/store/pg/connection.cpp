#include "store/pg/connection.hpp"

#include <poll.h>

#include <cerrno>

#include <algorithm>
#include <charconv>
#include <thread>

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

problem storage_unavailable(std::string detail) {
    auto p = problem::make(503, "/problems/storage-unavailable", "Storage unavailable", std::move(detail));
    p.extra["retry_after"] = 5;
    return p;
}

problem storage_full() {
    auto p = problem::make(507, "/problems/storage-full", "Storage full",
                           "The server's storage is full. Reads work; writes resume when space is freed.");
    p.extra["retry_after"] = 30;
    return p;
}

void reachability::lost(std::string_view reason, std::uint64_t epoch) {
    std::lock_guard lock(mu_);
    if (down_.load() || epoch != epoch_.load()) return;
    down_.store(true, std::memory_order_release);
    if (log_)
        log_->error("PostgreSQL is unreachable: requests answer 503 until it is back",
                    {{"endpoint", endpoint_}, {"error", std::string(reason)}});
}

std::uint64_t reachability::back() {
    std::lock_guard lock(mu_);
    const auto e = epoch_.fetch_add(1) + 1;
    if (down_.exchange(false) && log_) log_->info("PostgreSQL is reachable again", {{"endpoint", endpoint_}});
    return e;
}

void reachability::set_full(bool full) {
    if (full_.exchange(full) == full || !log_) return;
    if (full)
        log_->error("storage full: writes are refused until space is freed", {{"endpoint", endpoint_}});
    else
        log_->info("storage has room again", {{"endpoint", endpoint_}});
}

std::string endpoint_of(const std::string& conninfo) {
    std::string host, port;
    char* err = nullptr;
    if (PQconninfoOption* opts = PQconninfoParse(conninfo.c_str(), &err)) {
        for (auto* o = opts; o->keyword; ++o) {
            if (!o->val || !*o->val) continue;
            if (std::string_view(o->keyword) == "host") host = o->val;
            if (std::string_view(o->keyword) == "hostaddr" && host.empty()) host = o->val;
            if (std::string_view(o->keyword) == "port") port = o->val;
        }
        PQconninfoFree(opts);
    }
    if (err) PQfreemem(err);
    if (host.empty()) host = "localhost";
    if (port.empty()) port = "5432";
    return host + ":" + port;
}

namespace {

std::string trimmed(std::string msg) {
    while (!msg.empty() && (msg.back() == '\n' || msg.back() == ' ')) msg.pop_back();
    return msg;
}

long ms_until(std::chrono::steady_clock::time_point t) {
    auto d = std::chrono::duration_cast<std::chrono::milliseconds>(t - std::chrono::steady_clock::now()).count();
    return d < 0 ? 0 : static_cast<long>(d);
}

std::string seconds_text(std::chrono::milliseconds d) {
    auto ms = d.count();
    if (ms % 1000 == 0) return std::to_string(ms / 1000) + "s";
    return std::to_string(ms) + "ms";
}

}  // namespace

PGconn* connection::connect(const std::string& conninfo, const options& o, std::string& error) {
    // Our defaults come before the URL (expand_dbname): whatever the URL says wins.
    std::vector<std::pair<std::string, std::string>> kv;
    const auto connect_s = std::max<long long>(1, (o.limits.connect.count() + 999) / 1000);
    kv.emplace_back("connect_timeout", std::to_string(connect_s));
    if (o.limits.keepalives) {
        kv.emplace_back("keepalives", "1");
        kv.emplace_back("keepalives_idle", "30");
        kv.emplace_back("keepalives_interval", "10");
        kv.emplace_back("keepalives_count", "3");
        kv.emplace_back("tcp_user_timeout", std::to_string(o.limits.wait().count()));
    } else {
        kv.emplace_back("keepalives", "0");
    }
    kv.emplace_back("dbname", conninfo);
    std::vector<const char*> keys, values;
    for (auto& [k, v] : kv) {
        keys.push_back(k.c_str());
        values.push_back(v.c_str());
    }
    keys.push_back(nullptr);
    values.push_back(nullptr);
    PGconn* c = PQconnectStartParams(keys.data(), values.data(), /*expand_dbname=*/1);
    if (!c) {
        error = "out of memory";
        return nullptr;
    }
    const auto deadline = std::chrono::steady_clock::now() + o.limits.connect;
    PostgresPollingStatusType st = PGRES_POLLING_WRITING;
    while (PQstatus(c) != CONNECTION_BAD) {
        if (st == PGRES_POLLING_OK) break;
        if (st == PGRES_POLLING_FAILED) break;
        const long left = ms_until(deadline);
        if (left == 0) {
            error = "no answer within connect_timeout (" + seconds_text(o.limits.connect) + ")";
            PQfinish(c);
            return nullptr;
        }
        if (o.cancelled && o.cancelled()) {
            error = "cancelled";
            PQfinish(c);
            return nullptr;
        }
        pollfd pfd{PQsocket(c), static_cast<short>(st == PGRES_POLLING_READING ? POLLIN : POLLOUT), 0};
        const int rc = ::poll(&pfd, 1, static_cast<int>(std::min<long>(left, 100)));
        if (rc == 0) continue;  // the deadline and cancellation are checked again
        st = PQconnectPoll(c);
    }
    if (PQstatus(c) != CONNECTION_OK) {
        error = trimmed(PQerrorMessage(c));
        if (error.empty()) error = "the connection failed";
        PQfinish(c);
        return nullptr;
    }
    // Quiet NOTICEs ("relation already exists, skipping") instead of libpq printing them.
    PQsetNoticeProcessor(c, [](void*, const char*) {}, nullptr);
    if (PQsetnonblocking(c, 1) != 0) {
        error = trimmed(PQerrorMessage(c));
        PQfinish(c);
        return nullptr;
    }
    return c;
}

result<std::unique_ptr<connection>> connection::open(const std::string& conninfo, const std::string& schema,
                                                     bool create_schema, logger* log, options o) {
    std::string error;
    PGconn* c = connect(conninfo, o, error);
    if (!c) {
        const auto where = endpoint_of(conninfo);
        auto p = storage_unavailable("Cannot connect to PostgreSQL at " + where + ": " + error);
        p.extra["endpoint"] = where;
        p.extra["reason"] = error;
        return p;
    }
    std::unique_ptr<connection> conn(new connection(c, conninfo, schema, log, std::move(o)));
    if (conn->opts_.reach) conn->epoch_ = conn->opts_.reach->epoch();
    if (!schema.empty() && create_schema) {
        if (auto r = conn->exec("CREATE SCHEMA IF NOT EXISTS " + quote_ident(schema)); !r) {
            // Two processes creating the schema at once: one of them sees a duplicate.
            if (conn->last_error_.sqlstate != "23505" && conn->last_error_.sqlstate != "42P06")
                return std::move(r).error();
        }
    }
    if (auto r = conn->set_search_path(); !r) return std::move(r).error();
    // statement_timeout bounds every statement. A process frozen in the middle of a
    // transaction (SIGSTOP, a paused VM) would hold its locks, the change log's append lock
    // among them, and stall every other node: idle_in_transaction_session_timeout makes
    // PostgreSQL end such a session after the same time (our transactions are never idle that
    // long). A setting the URL's options give is the user's and is kept.
    const auto ms = std::to_string(conn->opts_.limits.statement.count());
    for (const char* setting : {"statement_timeout", "idle_in_transaction_session_timeout"})
        if (conninfo.find(setting) == std::string::npos)
            if (auto r = conn->configure("SET " + std::string(setting) + " = " + ms); !r) return std::move(r).error();
    return conn;
}

connection::~connection() {
    if (conn_) PQfinish(conn_);
}

void connection::drop() noexcept {
    if (conn_) PQfinish(conn_);
    conn_ = nullptr;
    queued_.clear();
    prepared_.clear();
}

result<void> connection::set_search_path() {
    if (schema_.empty()) return {};
    return exec("SET search_path TO " + quote_ident(schema_));
}

bool connection::in_transaction() const noexcept {
    auto s = PQtransactionStatus(conn_);
    return s == PQTRANS_INTRANS || s == PQTRANS_INERROR || s == PQTRANS_ACTIVE;
}

bool connection::ensure() {
    auto* reach = opts_.reach.get();
    if (reach && reach->down()) return false;  // 503 at once: the prober finds out when it is back
    if (ok() && (!reach || epoch_ == reach->epoch())) return true;
    if (reconnect()) return true;
    if (reach) reach->lost(last_error_.message, reach->epoch());
    return false;
}

bool connection::probe() {
    if (!reconnect()) return false;
    if (opts_.reach) epoch_ = opts_.reach->back();
    return true;
}

bool connection::reconnect() {
    const bool pipelined = pipelined_;
    drop();
    pipelined_ = false;
    std::string error;
    const std::uint64_t epoch = opts_.reach ? opts_.reach->epoch() : 0;
    conn_ = connect(conninfo_, opts_, error);
    if (!conn_) {
        last_error_ = {};
        last_error_.message = error;
        last_problem_ = storage_unavailable("Cannot connect to PostgreSQL at " + endpoint_of(conninfo_) + ": " + error);
        return false;
    }
    epoch_ = epoch;
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

bool connection::flush() noexcept {
    if (!pipelined_ || !conn_) return true;
    const auto deadline = result_deadline();
    for (;;) {
        const int f = PQflush(conn_);
        if (f == 0) return true;
        if (f < 0) return false;
        const long left = ms_until(deadline);
        if (left == 0) return false;
        pollfd pfd{PQsocket(conn_), POLLOUT, 0};
        if (pfd.fd < 0) return false;
        const int rc = ::poll(&pfd, 1, static_cast<int>(std::min<long>(left, 1000)));
        if (rc < 0 && errno != EINTR) return false;
        // The server may be waiting for us to read before it reads more.
        if (rc == 0 && !PQconsumeInput(conn_)) return false;
    }
}

problem connection::broken(std::string_view sql) {
    last_error_ = {};
    last_error_.message = conn_ ? trimmed(PQerrorMessage(conn_)) : "not connected";
    if (last_error_.message.empty()) last_error_.message = "the connection was lost";
    return unreachable(io::broken, sql);
}

problem connection::unreachable(io what, std::string_view sql) {
    if (what == io::timeout) {
        last_error_ = {};
        last_error_.message = "no answer within " + seconds_text(opts_.limits.wait()) + " (statement_timeout + 1s)";
    }
    (void)sql;
    drop();  // a reconnect starts afresh, without prepared statements
    if (opts_.reach) opts_.reach->lost(last_error_.message, epoch_);
    last_problem_ = storage_unavailable(what == io::timeout ? "The database did not answer in time."
                                                            : "The database connection was lost.");
    return last_problem_;
}

std::chrono::steady_clock::time_point connection::result_deadline() const noexcept {
    const auto wait = unbounded_ ? std::chrono::milliseconds(std::chrono::hours(24 * 365)) : opts_.limits.wait();
    return std::chrono::steady_clock::now() + wait;
}

connection::io connection::wait_result(std::chrono::steady_clock::time_point deadline) {
    if (!conn_) return io::broken;
    for (;;) {
        const int f = PQflush(conn_);
        if (f < 0) return io::broken;
        if (f == 0 && !PQisBusy(conn_)) return io::ready;
        const long left = ms_until(deadline);
        if (left == 0) return io::timeout;
        pollfd pfd{PQsocket(conn_), static_cast<short>(POLLIN | (f == 1 ? POLLOUT : 0)), 0};
        if (pfd.fd < 0) return io::broken;
        const int rc = ::poll(&pfd, 1, static_cast<int>(std::min<long>(left, 1000)));
        if (rc < 0 && errno != EINTR) return io::broken;
        if (rc > 0 && (pfd.revents & (POLLIN | POLLERR | POLLHUP)) && !PQconsumeInput(conn_)) return io::broken;
    }
}

result<rows> connection::collect(std::string_view sql) {
    const auto deadline = result_deadline();
    PGresult* kept = nullptr;
    for (;;) {
        if (auto w = wait_result(deadline); w != io::ready) {
            if (kept) PQclear(kept);
            if (w == io::broken) return broken(sql);
            return unreachable(w, sql);
        }
        PGresult* r = PQgetResult(conn_);
        if (!r) break;
        const auto st = PQresultStatus(r);
        const bool kept_failed = kept && PQresultStatus(kept) != PGRES_COMMAND_OK && PQresultStatus(kept) != PGRES_TUPLES_OK;
        if (kept_failed || st == PGRES_COPY_IN || st == PGRES_COPY_OUT) {
            PQclear(r);
            continue;
        }
        if (kept) PQclear(kept);
        kept = r;
    }
    if (!kept && PQstatus(conn_) != CONNECTION_OK) return broken(sql);
    return finish(kept, sql);
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
        json::object fields{{"error", last_error_.message.empty() && conn_ ? std::string(PQerrorMessage(conn_))
                                                                           : last_error_.message}};
        if (!last_error_.sqlstate.empty()) fields["sqlstate"] = last_error_.sqlstate;
        if (!sql.empty()) fields["sql"] = std::string(sql.substr(0, 300));
        log_->error(what, std::move(fields));
    }
    if (!ok()) return last_problem_ = storage_unavailable("The database connection was lost.");
    return last_problem_ = problem::internal();
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
    // The socket went with the statement (a restart, a terminated backend): one episode.
    if (!ok()) {
        const auto message = last_error_.message;
        auto p = broken(sql);
        if (!message.empty()) last_error_.message = message;
        return p;
    }
    const auto& code = last_error_.sqlstate;
    // Expected outcomes the caller turns into answers are not errors of the store.
    if (code == "23505" || code == "40P01" || code == "40001" || code == "25P02")
        return last_problem_ = problem::internal();
    if (code == "53100") {  // disk full: logged once per episode
        if (opts_.reach)
            opts_.reach->set_full(true);
        else
            (void)fail("storage full", sql);
        return last_problem_ = storage_full();
    }
    // statement_timeout, an administrator's cancel, a server shutting down or starting.
    if (code == "57014" || code == "57P01" || code == "57P02" || code == "57P03" || code.rfind("08", 0) == 0) {
        (void)fail("a PostgreSQL statement failed", sql);
        return last_problem_ = storage_unavailable(code == "57014" ? "The database did not answer in time."
                                                                   : "The database is not available.");
    }
    return fail("a PostgreSQL statement failed", sql);
}

result<void> connection::exec(std::string_view sql) {
    std::string text(sql);
    if (pipelined_) {
        auto r = await(text, {}, false);
        if (!r) return std::move(r).error();
        return {};
    }
    if (!conn_ || PQsendQuery(conn_, text.c_str()) != 1) return broken(sql);
    auto r = collect(sql);
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
            if (!conn_ || PQsendQueryParams(conn_, "DEALLOCATE ALL", 0, nullptr, nullptr, nullptr, nullptr, 0) != 1)
                return {};
            queued_.push_back({"DEALLOCATE ALL", {}});
        } else {
            (void)exec("DEALLOCATE ALL");
        }
        prepared_.clear();
    }
    std::string name = "lb" + std::to_string(next_name_++);
    if (pipelined_) {
        if (!conn_ || PQsendPrepare(conn_, name.c_str(), sql.c_str(), 0, nullptr) != 1) return {};
        queued_.push_back({sql, {}, false, true});
    } else if (!conn_ || PQsendPrepare(conn_, name.c_str(), sql.c_str(), 0, nullptr) != 1) {
        (void)broken(sql);
        return {};
    } else if (!collect(sql)) {
        return {};
    }
    prepared_.emplace(sql, name);
    return name;
}

bool connection::send(const std::string& sql, const params& p, bool prepare) {
    if (!conn_) return false;
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

result<void> connection::defer_write(const std::string& sql, const params& p,
                                     std::function<void(const rows&)> on_rows) {
    if (!pipelined_) {
        auto r = query(sql, p);
        if (!r) return std::move(r).error();
        if (on_rows) on_rows(*r);
        return {};
    }
    if (!send(sql, p, true)) return broken(sql);
    queued_.push_back({sql, std::move(on_rows), true});
    return {};
}

bool connection::writes_unconfirmed() const noexcept {
    for (const auto& q : queued_)
        if (q.write) return true;
    return false;
}

result<rows> connection::await(const std::string& sql, const params& p, bool prepare) {
    if (!send(sql, p, prepare)) return broken(sql);
    queued_.push_back({sql, {}});
    if (PQpipelineSync(conn_) != 1) return broken(sql);
    const auto deadline = result_deadline();
    // Every queued statement's result, in order (each ends with a null); ours is the last.
    PGresult* mine = nullptr;
    std::string failed_sql;
    auto next = [&](PGresult*& out) -> io {
        auto w = wait_result(deadline);
        if (w == io::ready) out = PQgetResult(conn_);
        return w;
    };
    while (!queued_.empty()) {
        queued q = std::move(queued_.front());
        queued_.pop_front();
        PGresult* r = nullptr;
        if (auto w = next(r); w != io::ready || !r) {
            if (mine) PQclear(mine);
            if (w == io::timeout) return unreachable(w, q.sql);
            return broken(q.sql);
        }
        for (;;) {
            PGresult* more = nullptr;
            if (auto w = next(more); w != io::ready) {
                PQclear(r);
                if (w == io::timeout) return unreachable(w, q.sql);
                return broken(q.sql);
            }
            if (!more) break;
            PQclear(more);
        }
        const auto st = PQresultStatus(r);
        const bool ok = st == PGRES_COMMAND_OK || st == PGRES_TUPLES_OK;
        if (!ok && st != PGRES_PIPELINE_ABORTED && failed_sql.empty()) {
            failed_sql = q.sql;
            if (q.write) write_failed_ = true;
            set_error(r);
        }
        // A preparation that failed, or was skipped after an earlier failure, left no statement.
        if (!ok && q.prepare) prepared_.erase(q.sql);
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
    PGresult* sync = nullptr;
    if (auto w = next(sync); w == io::timeout) {
        PQclear(mine);
        return unreachable(w, sql);
    }
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
    if (name.empty()) return last_problem_;
    param_arrays a(p);
    if (!conn_ || PQsendQueryPrepared(conn_, name.c_str(), static_cast<int>(p.size()), a.values.data(), nullptr,
                                      nullptr, 0) != 1)
        return broken(sql);
    return collect(sql);
}

result<rows> connection::query_once(const std::string& sql, const params& p) {
    if (pipelined_) return await(sql, p, false);
    param_arrays a(p);
    if (!conn_ ||
        PQsendQueryParams(conn_, sql.c_str(), static_cast<int>(p.size()), nullptr, a.values.data(), nullptr, nullptr,
                          0) != 1)
        return broken(sql);
    return collect(sql);
}

}  // namespace livebase::pg
