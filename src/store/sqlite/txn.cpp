#include "store/sqlite/txn.hpp"

#include "store/sqlite/sql.hpp"

#include <livebase/core/clock.hpp>

#include <algorithm>
#include <limits>

namespace livebase::sqlite {

namespace {
constexpr std::int64_t clamp_size(std::size_t n) noexcept {
    constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return static_cast<std::int64_t>(n > max ? max : n);
}

const std::string k_append_sql =
    "INSERT INTO _changes (ts, collection, op, record_id, record, \"before\") VALUES (?1, ?2, ?3, ?4, ?5, ?6)";
const std::string k_changes_sql =
    "SELECT seq, ts, collection, op, record_id, record, \"before\" FROM _changes WHERE seq > ?1 ORDER BY seq"
    " LIMIT ?2";
// sqlite_sequence remembers the highest seq ever used, even after old changes are trimmed;
// max(seq) covers a database whose sequence row was never written.
const std::string k_snapshot_seq_sql =
    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '_changes'), 0),"
    " coalesce((SELECT max(seq) FROM _changes), 0))";
const store_detail::change_log_sql k_log_sql = store_detail::make_change_log_sql('?', "max");
}  // namespace

std::string unique_violation_field(const collection_def& c, std::string_view message) {
    auto colon = message.find(": ");
    if (colon == std::string_view::npos) return {};
    auto rest = message.substr(colon + 2);
    rest = rest.substr(0, rest.find(','));  // a composite key names several columns: the first
    auto dot = rest.find('.');
    if (dot == std::string_view::npos) return {};
    auto column = rest.substr(dot + 1);
    if (column == "id") return "id";
    if (const auto* f = field_for_column(c, column)) return f->name;
    return {};
}

result<std::optional<json::object>> sqlite_txn::get(const collection_def& c, std::string_view id) {
    auto sql = get_sql(c);
    auto cur = conn_.prepare(sql);
    if (!cur) return std::move(cur).error();
    cur->bind_text(1, id);
    int rc = cur->step();
    if (rc == SQLITE_ROW) return std::optional<json::object>(read_record(c, *cur));
    if (rc == SQLITE_DONE) return std::optional<json::object>();
    return conn_.fail("get failed", sql);
}

result<page> sqlite_txn::list(const collection_def& c, const query& q) {
    auto where = build_where(c, q.filters);
    if (!where) return std::move(where).error();
    auto order = build_order_by(c, q.ordering);
    if (!order) return std::move(order).error();
    std::string where_sql = where->sql.empty() ? std::string() : " WHERE " + where->sql;

    page pg;
    if (q.with_count) {
        std::string sql = "SELECT count(*) FROM " + quote_ident(table_name(c.name)) + where_sql;
        auto cur = conn_.prepare(sql);
        if (!cur) return std::move(cur).error();
        int i = 0;
        for (const auto& p : where->params) cur->bind_json(++i, p);
        if (cur->step() != SQLITE_ROW) return conn_.fail("count failed", sql);
        pg.count = cur->column_int(0);
    }
    if (q.with_count && (q.limit == 0 || q.offset >= static_cast<std::size_t>(pg.count))) return pg;

    std::string sql = select_sql(c) + where_sql + *order + " LIMIT ? OFFSET ?";
    auto cur = conn_.prepare(sql);
    if (!cur) return std::move(cur).error();
    int i = 0;
    for (const auto& p : where->params) cur->bind_json(++i, p);
    cur->bind_int(++i, clamp_size(q.limit));
    cur->bind_int(++i, clamp_size(q.offset));
    if (q.with_count)
        pg.items.reserve(std::min<std::size_t>(q.limit, static_cast<std::size_t>(pg.count) - q.offset));
    int rc;
    while ((rc = cur->step()) == SQLITE_ROW) pg.items.push_back(read_record(c, *cur));
    if (rc != SQLITE_DONE) return conn_.fail("list failed", sql);
    if (!q.with_count) pg.count = static_cast<std::int64_t>(pg.items.size());
    return pg;
}

result<std::vector<change>> sqlite_txn::changes_after(std::int64_t after, std::size_t limit) {
    auto cur = conn_.prepare(k_changes_sql);
    if (!cur) return std::move(cur).error();
    cur->bind_int(1, after);
    cur->bind_int(2, clamp_size(limit));
    std::vector<change> out;
    int rc;
    while ((rc = cur->step()) == SQLITE_ROW) {
        change ch;
        ch.seq = cur->column_int(0);
        ch.ts = cur->column_int(1);
        ch.collection = cur->column_text(2);
        ch.op = cur->column_text(3);
        ch.id = cur->column_text(4);
        if (auto rec = parse_json(cur->column_text(5)); rec && rec->is_object())
            ch.record = std::move(rec->get_object());
        if (!cur->is_null(6)) {
            if (auto rec = parse_json(cur->column_text(6)); rec && rec->is_object())
                ch.before = std::move(rec->get_object());
        }
        out.push_back(std::move(ch));
    }
    if (rc != SQLITE_DONE) return conn_.fail("reading the change log failed", k_changes_sql);
    return out;
}

problem sqlite_txn::write_error(const collection_def& c, const std::string& sql) {
    int code = conn_.extended_error();
    if (code == SQLITE_CONSTRAINT_UNIQUE || code == SQLITE_CONSTRAINT_PRIMARYKEY) {
        auto field = unique_violation_field(c, conn_.error_message());
        if (!field.empty()) {
            std::string msg = "A record with this " + field + " already exists.";
            auto p = problem::conflict(msg);
            p.extra["errors"] = json::object{{field, json::array{json::value(msg)}}};
            return p;
        }
    }
    return conn_.fail("write failed", sql);
}

result<void> sqlite_txn::write_row(const collection_def& c, const std::string& sql,
                                   const json::object& record, bool must_exist) {
    auto id = record.find("id");
    if (id == record.end() || !id->value().is_string() || id->value().get_string().empty())
        return problem::internal("The record to store has no id.");
    auto cur = conn_.prepare(sql);
    if (!cur) return std::move(cur).error();
    int i = 0;
    for (auto m : k_managed_columns) {
        ++i;
        if (m == "owner" && !c.owned) {
            cur->bind_null(i);
            continue;
        }
        auto it = record.find(m);
        cur->bind_json(i, it == record.end() ? json::value(nullptr) : storage_value(nullptr, it->value()));
    }
    for (const auto& f : c.fields) {
        auto it = record.find(f.name);
        cur->bind_json(++i, it == record.end() ? json::value(nullptr) : storage_value(&f, it->value()));
    }
    if (cur->step() != SQLITE_DONE) return write_error(c, sql);
    if (must_exist && conn_.changes() == 0) return problem::not_found();
    return {};
}

result<std::optional<std::int64_t>> sqlite_txn::scalar(const std::string& sql,
                                                       std::initializer_list<std::int64_t> args) {
    auto cur = conn_.prepare(sql);
    if (!cur) return std::move(cur).error();
    int i = 0;
    for (auto a : args) cur->bind_int(++i, a);
    int rc = cur->step();
    if (rc == SQLITE_ROW) return cur->is_null(0) ? std::nullopt : std::optional<std::int64_t>(cur->column_int(0));
    if (rc == SQLITE_DONE) return std::optional<std::int64_t>();
    return conn_.fail("reading the change log failed", sql);
}

result<std::int64_t> sqlite_txn::execute(const std::string& sql, std::initializer_list<std::int64_t> args) {
    auto cur = conn_.prepare(sql);
    if (!cur) return std::move(cur).error();
    int i = 0;
    for (auto a : args) cur->bind_int(++i, a);
    if (auto r = cur->run(); !r) return std::move(r).error();
    return conn_.changes();
}

result<std::int64_t> sqlite_txn::history_floor() { return store_detail::history_floor(*this, k_log_sql); }

result<std::int64_t> sqlite_txn::snapshot_seq() {
    auto r = scalar(k_snapshot_seq_sql, {});
    if (!r) return std::move(r).error();
    return r->value_or(0);
}

result<std::size_t> sqlite_txn::trim_changes(std::uint64_t keep, std::int64_t older_than_ms,
                                             std::int64_t keep_after) {
    return store_detail::trim_changes(*this, k_log_sql, keep, older_than_ms, keep_after);
}

result<node_positions> sqlite_txn::node_heartbeat(std::int64_t node, std::int64_t delivered, std::int64_t now_ms,
                                         std::int64_t alive_since_ms) {
    return store_detail::node_heartbeat(*this, k_log_sql, node, delivered, now_ms, alive_since_ms);
}

result<void> sqlite_txn::append(const collection_def& c, std::string_view op, const json::object& stored,
                                const json::object* before) {
    auto cur = conn_.prepare(k_append_sql);
    if (!cur) return std::move(cur).error();
    cur->bind_int(1, now_ms());
    cur->bind_text(2, c.name);
    cur->bind_text(3, op);
    cur->bind_text(4, get_string(stored, "id"));
    cur->bind_text(5, to_json_text(stored));
    if (before)
        cur->bind_text(6, store_detail::before_text(c, *before));
    else
        cur->bind_null(6);
    if (cur->step() != SQLITE_DONE) return conn_.fail("appending to the change log failed", k_append_sql);
    last_appended_ = conn_.last_insert_rowid();
    return {};
}

result<void> sqlite_txn::insert(const collection_def& c, const json::object& record) {
    if (auto r = write_row(c, insert_sql(c), record, false); !r) return r;
    return append(c, "create", normalize_record(c, record));
}

result<void> sqlite_txn::update(const collection_def& c, const json::object& record,
                                const json::object* before) {
    std::optional<json::object> previous;
    if (!before) {
        auto id = get_string(record, "id");
        if (id.empty()) return problem::internal("The record to store has no id.");
        auto got = get(c, id);
        if (!got) return std::move(got).error();
        if (!*got) return problem::not_found();
        previous = std::move(**got);
        before = &*previous;
    }
    if (auto r = write_row(c, update_sql(c), record, true); !r) return r;
    return append(c, "update", normalize_record(c, record), before);
}

result<void> sqlite_txn::remove(const collection_def& c, const json::object& before) {
    auto id = get_string(before, "id");
    auto sql = delete_sql(c);
    auto cur = conn_.prepare(sql);
    if (!cur) return std::move(cur).error();
    cur->bind_text(1, id);
    if (cur->step() != SQLITE_DONE) return conn_.fail("delete failed", sql);
    if (conn_.changes() == 0) return problem::not_found();
    return append(c, "delete", normalize_record(c, before));
}

}  // namespace livebase::sqlite
