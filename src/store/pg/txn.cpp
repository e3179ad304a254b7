#include "store/pg/txn.hpp"

#include "store/pg/sql.hpp"
#include "store/tables.hpp"

#include <livebase/core/clock.hpp>

#include <algorithm>
#include <limits>

namespace livebase::pg {

namespace {

std::string num(std::int64_t v) { return std::to_string(v); }
std::string num(std::size_t v) {
    constexpr auto max = static_cast<std::size_t>(std::numeric_limits<std::int64_t>::max());
    return std::to_string(v > max ? max : v);
}

const std::string k_changes_sql =
    "SELECT seq, ts, collection, op, record_id, record, \"before\" FROM _changes WHERE seq > $1 ORDER BY seq"
    " LIMIT $2";
const std::string k_snapshot_seq_sql = "SELECT coalesce(max(seq), 0) FROM _changes";
const store_detail::change_log_sql k_log_sql = store_detail::make_change_log_sql('$', "greatest");
const std::string k_lock_sql =
    "SELECT pg_advisory_xact_lock(" + std::to_string(k_lock_class_append) + ", hashtext(current_schema()))";
const std::string k_notify_sql = "SELECT pg_notify($1, (SELECT max(seq) FROM _changes)::text || $2)";

// Carries the answers of the deferred row writes back before the commit.
const std::string k_confirm_sql = "SELECT 1";

constexpr std::size_t k_rows_per_insert = 500;  // 6 parameters each, far below the 65535 limit

}  // namespace

channels channels_for(std::string_view schema) { return {"livebase_changes:" + std::string(schema)}; }

std::string unique_violation_field(const collection_def& c, std::string_view detail) {
    // Key (f_vin)=(ABC) already exists.  /  Key (id)=(...) already exists.
    auto open = detail.find("Key (");
    if (open == std::string_view::npos) return {};
    auto rest = detail.substr(open + 5);
    auto close = rest.find(")=");
    if (close == std::string_view::npos) return {};
    auto column = rest.substr(0, close);
    column = column.substr(0, column.find(','));  // a composite key: the first column
    if (!column.empty() && column.front() == '"') column = column.substr(1, column.size() - 2);
    if (column == "id") return "id";
    if (const auto* f = store_detail::field_for_column(c, column)) return f->name;
    return {};
}

result<std::optional<json::object>> pg_txn::get(const collection_def& c, std::string_view id) {
    auto r = conn_.query(get_sql(c, writer_), {std::string(id)});
    if (!r) return std::move(r).error();
    if (r->size() == 0) return std::optional<json::object>();
    return std::optional<json::object>(read_record(c, *r, 0));
}

namespace {
// A text[] literal: {"a","b"} with " and \ escaped.
std::string text_array(const std::vector<std::string>& items) {
    std::string out = "{";
    for (std::size_t i = 0; i < items.size(); ++i) {
        if (i) out += ',';
        out += '"';
        for (char ch : items[i]) {
            if (ch == '"' || ch == '\\') out += '\\';
            out += ch;
        }
        out += '"';
    }
    out += '}';
    return out;
}
}  // namespace

result<std::vector<json::object>> pg_txn::get_many(const collection_def& c, const std::vector<std::string>& ids) {
    std::vector<json::object> out;
    if (ids.empty()) return out;
    // Locked in id order, so two writers locking overlapping sets cannot deadlock each other.
    auto r = conn_.query(select_sql(c) + " WHERE id = ANY($1::text[]) ORDER BY id" + (writer_ ? " FOR UPDATE" : ""),
                         {text_array(ids)});
    if (!r) return std::move(r).error();
    out.reserve(static_cast<std::size_t>(r->size()));
    for (int i = 0; i < r->size(); ++i) out.push_back(read_record(c, *r, i));
    return out;
}

result<page> pg_txn::select_page(const collection_def& c, const query& q, bool locked) {
    auto where = build_where(c, q.filters);
    if (!where) return std::move(where).error();
    auto order = build_order_by(c, q.ordering);
    if (!order) return std::move(order).error();
    std::string where_sql = where->sql.empty() ? std::string() : " WHERE " + where->sql;

    page pg;
    const bool count = q.with_count && !locked;
    if (count) {
        auto r = conn_.query("SELECT count(*) FROM " + quote_ident(store_detail::table_name(c.name)) + where_sql,
                             where->values);
        if (!r) return std::move(r).error();
        pg.count = r->int64(0, 0);
        if (q.limit == 0 || q.offset >= static_cast<std::size_t>(pg.count)) return pg;
    }
    const int n = static_cast<int>(where->values.size());
    std::string sql = select_sql(c) + where_sql + *order + " LIMIT $" + std::to_string(n + 1) + " OFFSET $" +
                      std::to_string(n + 2) + (locked ? " FOR UPDATE SKIP LOCKED" : "");
    params p = std::move(where->values);
    p.push_back(num(q.limit));
    p.push_back(num(q.offset));
    auto r = conn_.query(sql, p);
    if (!r) return std::move(r).error();
    pg.items.reserve(static_cast<std::size_t>(r->size()));
    for (int i = 0; i < r->size(); ++i) pg.items.push_back(read_record(c, *r, i));
    if (!count) pg.count = static_cast<std::int64_t>(pg.items.size());
    return pg;
}

result<page> pg_txn::list(const collection_def& c, const query& q) { return select_page(c, q, false); }

result<page> pg_txn::list_locked(const collection_def& c, const query& q) {
    if (!writer_) return select_page(c, q, false);
    return select_page(c, q, true);
}

result<std::vector<change>> pg_txn::changes_after(std::int64_t after, std::size_t limit) {
    auto r = conn_.query(k_changes_sql, {num(after), num(limit)});
    if (!r) return std::move(r).error();
    std::vector<change> out;
    out.reserve(static_cast<std::size_t>(r->size()));
    for (int i = 0; i < r->size(); ++i) {
        change ch;
        ch.seq = r->int64(i, 0);
        ch.ts = r->int64(i, 1);
        ch.collection = std::string(r->text(i, 2));
        ch.op = std::string(r->text(i, 3));
        ch.id = std::string(r->text(i, 4));
        if (auto rec = parse_json(r->text(i, 5)); rec && rec->is_object()) ch.record = std::move(rec->get_object());
        if (!r->is_null(i, 6)) {
            if (auto rec = parse_json(r->text(i, 6)); rec && rec->is_object()) ch.before = std::move(rec->get_object());
        }
        out.push_back(std::move(ch));
    }
    return out;
}

namespace {
params int_params(std::initializer_list<std::int64_t> args) {
    params p;
    p.reserve(args.size());
    for (auto a : args) p.push_back(std::to_string(a));
    return p;
}
}  // namespace

result<std::optional<std::int64_t>> pg_txn::scalar(const std::string& sql, std::initializer_list<std::int64_t> args) {
    auto r = conn_.query(sql, int_params(args));
    if (!r) return std::move(r).error();
    if (r->size() == 0 || r->is_null(0, 0)) return std::optional<std::int64_t>();
    return std::optional<std::int64_t>(r->int64(0, 0));
}

result<std::int64_t> pg_txn::execute(const std::string& sql, std::initializer_list<std::int64_t> args) {
    ++writes_;
    auto r = conn_.query(sql, int_params(args));
    if (!r) return std::move(r).error();
    return r->affected();
}

result<std::int64_t> pg_txn::history_floor() { return store_detail::history_floor(*this, k_log_sql); }

result<std::int64_t> pg_txn::snapshot_seq() {
    auto r = scalar(k_snapshot_seq_sql, {});
    if (!r) return std::move(r).error();
    return r->value_or(0);
}

problem pg_txn::write_error(const collection_def& c) {
    const auto& e = conn_.last_error();
    if (e.sqlstate == "23505") {
        auto field = unique_violation_field(c, e.detail);
        if (!field.empty()) {
            std::string msg = "A record with this " + field + " already exists.";
            auto p = problem::conflict(msg);
            p.extra["errors"] = json::object{{field, json::array{json::value(msg)}}};
            return p;
        }
    }
    if (e.sqlstate == "40P01" || e.sqlstate == "40001")
        return problem::unavailable("The write conflicted with another one; try again.");
    // A lost connection, a timeout (503) or a full disk (507), as the connection classified it.
    return conn_.last_problem();
}

result<void> pg_txn::write_row(const collection_def& c, const std::string& sql, const json::object& record,
                               bool must_exist) {
    auto id = record.find("id");
    if (id == record.end() || !id->value().is_string() || id->value().get_string().empty())
        return problem::internal("The record to store has no id.");
    params p;
    p.reserve(std::size(store_detail::k_managed_columns) + c.fields.size());
    for (auto m : store_detail::k_managed_columns) {
        if (m == "owner" && !c.owned) {
            p.emplace_back();
            continue;
        }
        auto it = record.find(m);
        p.push_back(it == record.end() ? std::nullopt : param_of(nullptr, it->value()));
    }
    for (const auto& f : c.fields) {
        auto it = record.find(f.name);
        p.push_back(it == record.end() ? std::nullopt : param_of(&f, it->value()));
    }
    return run_write(c, sql, p, must_exist);
}

result<void> pg_txn::run_write(const collection_def& c, const std::string& sql, const params& p, bool must_exist) {
    ++writes_;
    if (optimistic()) {
        std::function<void(const rows&)> check;
        if (must_exist)
            check = [this](const rows& r) {
                if (r.affected() == 0) missed_ = true;
            };
        return conn_.defer_write(sql, p, std::move(check));
    }
    auto r = conn_.query(sql, p);
    if (!r) return write_error(c);
    if (must_exist && r->affected() == 0) return problem::not_found();
    return {};
}

result<void> pg_txn::confirm_writes() {
    if (conn_.writes_unconfirmed()) {
        auto r = conn_.query(k_confirm_sql);
        if (!r && !replay_needed()) return std::move(r).error();
    }
    if (replay_needed()) return problem::unavailable("A deferred write failed; the group runs again.");
    return {};
}

void pg_txn::buffer(const collection_def& c, std::string_view op, const json::object& stored,
                    const json::object* before) {
    // A task made pending (submitted, retried, re-queued): idle workers elsewhere are told.
    const bool task_ready = c.name == "tasks" && op != "delete" && get_string(stored, "state") == "pending";
    pending_.push_back({now_ms(), c.name, std::string(op), std::string(get_string(stored, "id")),
                        to_json_text(stored),
                        before ? std::optional<std::string>(store_detail::before_text(c, *before)) : std::nullopt, task_ready});
}

result<void> pg_txn::insert(const collection_def& c, const json::object& record) {
    if (auto r = write_row(c, insert_sql(c), record, false); !r) return r;
    buffer(c, "create", store_detail::normalize_record(c, record), nullptr);
    return {};
}

result<void> pg_txn::update(const collection_def& c, const json::object& record, const json::object* before) {
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
    buffer(c, "update", store_detail::normalize_record(c, record), before);
    return {};
}

result<void> pg_txn::remove(const collection_def& c, const json::object& before) {
    if (auto r = run_write(c, delete_sql(c), {std::string(get_string(before, "id"))}, true); !r) return r;
    buffer(c, "delete", store_detail::normalize_record(c, before), nullptr);
    return {};
}

result<std::size_t> pg_txn::trim_changes(std::uint64_t keep, std::int64_t older_than_ms,
                                             std::int64_t keep_after) {
    return store_detail::trim_changes(*this, k_log_sql, keep, older_than_ms, keep_after);
}

result<node_positions> pg_txn::node_heartbeat(std::int64_t node, std::int64_t delivered, std::int64_t now_ms,
                                         std::int64_t alive_since_ms) {
    return store_detail::node_heartbeat(*this, k_log_sql, node, delivered, now_ms, alive_since_ms);
}

result<void> pg_txn::append_pending() {
    appended_last_ = 0;
    if (pending_.empty()) return {};
    if (auto r = conn_.defer(k_lock_sql); !r) return r;
    bool task_ready = false;
    for (std::size_t start = 0; start < pending_.size(); start += k_rows_per_insert) {
        const std::size_t end = std::min(pending_.size(), start + k_rows_per_insert);
        // seq comes from its default, nextval('_changes_seq'), taken row by row in this order.
        std::string sql = "INSERT INTO _changes (ts, collection, op, record_id, record, \"before\") VALUES ";
        params p;
        p.reserve((end - start) * 6);
        int n = 0;
        for (std::size_t i = start; i < end; ++i) {
            auto& ch = pending_[i];
            task_ready = task_ready || ch.task_ready;
            if (i > start) sql += ", ";
            sql += "(";
            for (int k = 0; k < 6; ++k) {
                if (k) sql += ", ";
                sql += "$" + std::to_string(++n);
            }
            sql += ")";
            p.push_back(std::to_string(ch.ts));
            p.push_back(std::move(ch.collection));
            p.push_back(std::move(ch.op));
            p.push_back(std::move(ch.id));
            p.push_back(std::move(ch.record));
            p.push_back(std::move(ch.before));
        }
        sql += " RETURNING seq";
        // Full batches share one prepared statement; the last, shorter one is sent as it is.
        auto r = conn_.defer(
            sql, p,
            [this](const rows& seqs) {
                for (int i = 0; i < seqs.size(); ++i) appended_last_ = std::max(appended_last_, seqs.int64(i, 0));
            },
            end - start == k_rows_per_insert);
        if (!r) return r;
    }
    pending_.clear();
    // One notification per group: the new last seq (read in this transaction, under the
    // append lock), and " t" when a task became pending.
    if (channels_)
        if (auto r = conn_.defer(k_notify_sql, {channels_->changes, std::string(task_ready ? " t" : "")}); !r) return r;
    return {};
}

}  // namespace livebase::pg
