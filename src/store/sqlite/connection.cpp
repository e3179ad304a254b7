#include "store/sqlite/connection.hpp"

#include <cmath>
#include <limits>

namespace livebase::sqlite {

cursor::cursor(connection& conn, std::shared_ptr<statement> s) noexcept
    : conn_(&conn), stmt_(std::move(s)) {}

cursor::~cursor() {
    if (!stmt_) return;
    sqlite3_reset(raw());
    sqlite3_clear_bindings(raw());
}

void cursor::bind_null(int i) noexcept { sqlite3_bind_null(raw(), i); }
void cursor::bind_int(int i, std::int64_t v) noexcept { sqlite3_bind_int64(raw(), i, v); }
void cursor::bind_double(int i, double v) noexcept { sqlite3_bind_double(raw(), i, v); }
void cursor::bind_text(int i, std::string_view v) noexcept {
    sqlite3_bind_text64(raw(), i, v.data(), v.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
}

void cursor::bind_json(int i, const json::value& v) noexcept {
    switch (v.kind()) {
        case json::kind::null: return bind_null(i);
        case json::kind::bool_: return bind_int(i, v.get_bool() ? 1 : 0);
        case json::kind::int64: return bind_int(i, v.get_int64());
        case json::kind::uint64: {
            auto u = v.get_uint64();
            if (u <= static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max()))
                return bind_int(i, static_cast<std::int64_t>(u));
            return bind_double(i, static_cast<double>(u));
        }
        case json::kind::double_: return bind_double(i, v.get_double());
        case json::kind::string: return bind_text(i, v.get_string());
        case json::kind::array:
        case json::kind::object: {
            // serialize() only throws on allocation failure.
            std::string text = to_json_text(v);
            sqlite3_bind_text64(raw(), i, text.data(), text.size(), SQLITE_TRANSIENT, SQLITE_UTF8);
            return;
        }
    }
}

int cursor::step() noexcept { return sqlite3_step(raw()); }

result<void> cursor::run() {
    int rc;
    while ((rc = step()) == SQLITE_ROW) {
    }
    if (rc != SQLITE_DONE) return conn_->fail("statement failed", sqlite3_sql(raw()));
    return {};
}

bool cursor::is_null(int col) const noexcept { return sqlite3_column_type(raw(), col) == SQLITE_NULL; }
std::int64_t cursor::column_int(int col) const noexcept { return sqlite3_column_int64(raw(), col); }
double cursor::column_double(int col) const noexcept { return sqlite3_column_double(raw(), col); }
std::string cursor::column_text(int col) const {
    const auto* p = sqlite3_column_text(raw(), col);
    if (!p) return {};
    return std::string(reinterpret_cast<const char*>(p),
                       static_cast<std::size_t>(sqlite3_column_bytes(raw(), col)));
}

result<std::unique_ptr<connection>> connection::open(const std::string& path, bool query_only,
                                                     logger* log) {
    sqlite3* db = nullptr;
    int flags = SQLITE_OPEN_READWRITE | SQLITE_OPEN_CREATE | SQLITE_OPEN_NOMUTEX;
    int rc = sqlite3_open_v2(path.c_str(), &db, flags, nullptr);
    std::unique_ptr<connection> conn(new connection(db, log));
    if (rc != SQLITE_OK) {
        std::string msg = db ? sqlite3_errmsg(db) : sqlite3_errstr(rc);
        if (log) log->error("cannot open database", {{"path", path}, {"error", msg}});
        return problem::internal("Cannot open the database " + path + ": " + msg);
    }
    sqlite3_extended_result_codes(db, 1);
    sqlite3_busy_timeout(db, 5000);
    std::string pragmas =
        "PRAGMA journal_mode=WAL; PRAGMA synchronous=NORMAL; PRAGMA foreign_keys=OFF;"
        "PRAGMA busy_timeout=5000;";
    if (query_only) pragmas += "PRAGMA query_only=ON;";
    if (auto r = conn->exec(pragmas); !r) {
        return problem::internal("Cannot configure the database " + path + ": " + conn->error_message());
    }
    return conn;
}

connection::~connection() {
    cache_.clear();
    lru_.clear();  // finalizes statements no cursor holds
    sqlite3_close_v2(db_);  // deferred until the last statement is finalized
}

std::string connection::error_message() const { return db_ ? sqlite3_errmsg(db_) : "no connection"; }

namespace {

problem with_retry(problem p, std::int64_t seconds) {
    p.extra["retry_after"] = seconds;
    return p;
}

}  // namespace

problem connection::fail(std::string_view what, std::string_view sql) {
    const int code = sqlite3_extended_errcode(db_);
    bool log_it = true;
    problem p = problem::internal();
    switch (code & 0xff) {
        case SQLITE_FULL:
            // Once per episode: every write fails alike until space returns (wrote()).
            log_it = !full_.exchange(true);
            what = "storage full: writes are refused until space is freed";
            p = with_retry(problem::make(507, "/problems/storage-full", "Storage full",
                                         "The server's storage is full. Reads work; writes resume when "
                                         "space is freed."),
                           30);
            break;
        case SQLITE_IOERR:
            p = with_retry(problem::make(503, "/problems/storage-unavailable", "Storage unavailable",
                                         "The server cannot read or write its storage now."),
                           5);
            break;
        case SQLITE_BUSY:
        case SQLITE_LOCKED:
            p = with_retry(problem::unavailable("The database is busy."), 1);
            break;
        case SQLITE_CORRUPT:
        case SQLITE_NOTADB:
            // Logged once: from now on the store refuses every write (sqlite_session::begin_write),
            // so nothing more is committed into a malformed file.
            log_it = !damaged_->exchange(true);
            what = "the database file is damaged: writes are stopped; restore it from a backup "
                   "(see docs/operations.md)";
            p = damaged_problem();
            break;
        default:
            break;
    }
    if (log_ && log_it) {
        json::object fields{{"error", error_message()}, {"code", code}};
        if (!sql.empty()) fields["sql"] = sql;
        log_->error(what, fields);
    }
    last_failure_ = p;
    return p;
}

problem connection::damaged_problem() {
    return with_retry(problem::make(503, "/problems/storage-damaged", "Storage damaged",
                                    "The server's database is damaged; writes are stopped until it is "
                                    "restored."),
                      60);
}

void connection::wrote() {
    if (full_.load(std::memory_order_relaxed) && full_.exchange(false) && log_)
        log_->info("storage has room again: writes resume", {});
}

result<void> connection::exec(std::string_view sql) {
    std::string text(sql);
    char* err = nullptr;
    int rc = sqlite3_exec(db_, text.c_str(), nullptr, nullptr, &err);
    sqlite3_free(err);
    if (rc != SQLITE_OK) return fail("statement failed", sql);
    return {};
}

result<void> connection::run(const std::string& sql) {
    auto cur = prepare(sql);
    if (!cur) return std::move(cur).error();
    return cur->run();
}

result<cursor> connection::prepare(const std::string& sql) {
    if (auto it = cache_.find(sql); it != cache_.end()) {
        lru_.splice(lru_.begin(), lru_, it->second);
        return cursor(*this, it->second->second);
    }
    sqlite3_stmt* raw = nullptr;
    int rc = sqlite3_prepare_v3(db_, sql.data(), static_cast<int>(sql.size()),
                                SQLITE_PREPARE_PERSISTENT, &raw, nullptr);
    if (rc != SQLITE_OK || !raw) {
        sqlite3_finalize(raw);
        return fail("cannot prepare statement", sql);
    }
    auto stmt = std::make_shared<statement>(raw);
    if (lru_.size() >= k_cache_capacity) {
        cache_.erase(lru_.back().first);
        lru_.pop_back();
    }
    lru_.emplace_front(sql, stmt);
    cache_.emplace(lru_.front().first, lru_.begin());
    return cursor(*this, std::move(stmt));
}

}  // namespace livebase::sqlite
