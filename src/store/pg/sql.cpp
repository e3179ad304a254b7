#include "store/pg/sql.hpp"

#include "store/tables.hpp"

#include <charconv>
#include <cmath>
#include <cstdlib>

namespace livebase::pg {

using store_detail::column_for;
using store_detail::escape_like;
using store_detail::k_first_field_column;
using store_detail::k_managed_columns;
using store_detail::storage_value;
using store_detail::text_of;

std::string_view sql_type(field_type t) noexcept {
    switch (t) {
        case field_type::integer: return "BIGINT";
        case field_type::boolean: return "BOOLEAN";
        case field_type::number: return "DOUBLE PRECISION";
        default: return "TEXT COLLATE \"C\"";
    }
}

std::string create_table_sql(const collection_def& c) {
    return store_detail::create_table_sql(c, "TEXT COLLATE \"C\"", &sql_type);
}
std::string select_sql(const collection_def& c) { return store_detail::select_sql(c); }
std::string get_sql(const collection_def& c, bool for_update) {
    return store_detail::get_sql(c, '$') + (for_update ? " FOR UPDATE" : "");
}
std::string insert_sql(const collection_def& c) { return store_detail::insert_sql(c, '$'); }
std::string update_sql(const collection_def& c) { return store_detail::update_sql(c, '$'); }
std::string delete_sql(const collection_def& c) { return store_detail::delete_sql(c, '$'); }

namespace {
std::string placeholder(int n) { return store_detail::placeholder('$', n); }
}  // namespace

std::optional<std::string> param_of(const field_def* f, const json::value& raw) {
    json::value v = storage_value(f, raw);
    if (v.is_null()) return std::nullopt;
    if (v.is_string()) return std::string(v.get_string());
    if (v.is_int64()) return std::to_string(v.get_int64());
    if (v.is_uint64()) return std::to_string(v.get_uint64());
    if (v.is_bool()) return std::string(v.get_bool() ? "true" : "false");
    if (v.is_double()) {
        double d = v.get_double();
        if (std::isnan(d)) return std::string("NaN");
        if (std::isinf(d)) return std::string(d > 0 ? "Infinity" : "-Infinity");
        if (f && f->type == field_type::boolean) return std::string(d != 0 ? "true" : "false");
        char buf[64];
        auto res = std::to_chars(buf, buf + sizeof buf, d);  // shortest round-trip form
        return std::string(buf, res.ptr);
    }
    return to_json_text(v);
}

json::object read_record(const collection_def& c, const rows& res, int r) {
    json::object out;
    out.reserve(std::size(k_managed_columns) + c.fields.size());
    auto text = [&](int col) -> json::value {
        if (res.is_null(r, col)) return nullptr;
        return json::string(res.text(r, col));
    };
    out["id"] = text(0);
    out["created"] = text(1);
    out["updated"] = text(2);
    out["version"] = res.is_null(r, 3) ? json::value(nullptr) : json::value(res.int64(r, 3));
    if (c.owned) out["owner"] = text(4);
    int col = k_first_field_column;
    for (const auto& f : c.fields) {
        json::value& v = out[f.name];
        if (res.is_null(r, col)) {
            v = nullptr;
        } else {
            auto t = res.text(r, col);
            switch (f.type) {
                case field_type::boolean: v = (t == "t" || t == "true"); break;
                case field_type::integer: v = res.int64(r, col); break;
                case field_type::number: {
                    std::string s(t);
                    if (s == "NaN") v = std::nan("");
                    else if (s == "Infinity") v = HUGE_VAL;
                    else if (s == "-Infinity") v = -HUGE_VAL;
                    else v = std::strtod(s.c_str(), nullptr);
                    break;
                }
                case field_type::json: {
                    if (auto parsed = parse_json(t)) v = std::move(*parsed);
                    else v = json::string(t);
                    break;
                }
                default: v = json::string(t); break;
            }
        }
        ++col;
    }
    return out;
}

namespace {
bool text_column(const field_def* f) {
    return !f || !(f->type == field_type::integer || f->type == field_type::number ||
                   f->type == field_type::boolean);
}
}  // namespace

result<where_clause> build_where(const collection_def& c, const std::vector<filter_term>& filters, int first) {
    where_clause w;
    int next = first;
    for (const auto& t : filters) {
        auto column = column_for(c, t.field);
        if (!column) return problem::bad_parameter(t.field, "Unknown field \"" + t.field + "\".");
        const field_def* f = c.find_field(t.field);
        std::string col = quote_ident(*column);
        // String lookups read every column as text (SQLite compares a number's text form).
        std::string text_col = text_column(f) ? col : "CAST(" + col + " AS TEXT)";
        std::string cond;
        auto param = [&](std::optional<std::string> v) {
            w.values.push_back(std::move(v));
            return placeholder(next++);
        };
        auto value_param = [&](const json::value& v) { return param(param_of(f, v)); };
        auto text_param = [&](std::string v) { return param(std::move(v)) + "::text"; };
        switch (t.op) {
            case lookup::exact: cond = col + " = " + value_param(t.value); break;
            case lookup::ne: cond = col + " IS DISTINCT FROM " + value_param(t.value); break;
            case lookup::gt: cond = col + " > " + value_param(t.value); break;
            case lookup::gte: cond = col + " >= " + value_param(t.value); break;
            case lookup::lt: cond = col + " < " + value_param(t.value); break;
            case lookup::lte: cond = col + " <= " + value_param(t.value); break;
            case lookup::iexact: cond = "lower(" + text_col + ") = lower(" + text_param(text_of(t.value)) + ")"; break;
            case lookup::contains: cond = "strpos(" + text_col + ", " + text_param(text_of(t.value)) + ") > 0"; break;
            case lookup::icontains:
                cond = text_col + " ILIKE " + text_param("%" + escape_like(text_of(t.value)) + "%") +
                       " ESCAPE '\\'";
                break;
            case lookup::startswith:
                cond = "starts_with(" + text_col + ", " + text_param(text_of(t.value)) + ")";
                break;
            case lookup::istartswith:
                cond = text_col + " ILIKE " + text_param(escape_like(text_of(t.value)) + "%") + " ESCAPE '\\'";
                break;
            case lookup::endswith: {
                // right() and char_length() both count characters.
                auto s = text_of(t.value);
                if (s.empty()) {
                    cond = col + " IS NOT NULL";
                } else {
                    std::string p = text_param(std::move(s));
                    cond = "right(" + text_col + ", char_length(" + p + ")) = " + p;
                }
                break;
            }
            case lookup::in: {
                if (!t.value.is_array() || t.value.get_array().empty()) {
                    cond = "FALSE";
                    break;
                }
                cond = col + " IN (";
                bool first_value = true;
                for (const auto& v : t.value.get_array()) {
                    if (!first_value) cond += ", ";
                    first_value = false;
                    cond += value_param(v);
                }
                cond += ")";
                break;
            }
            case lookup::isnull: {
                bool want_null = t.value.is_bool() ? t.value.get_bool() : !t.value.is_null();
                cond = col + (want_null ? " IS NULL" : " IS NOT NULL");
                break;
            }
        }
        if (!w.sql.empty()) w.sql += " AND ";
        w.sql += cond;
    }
    return w;
}

result<std::string> build_order_by(const collection_def& c, const std::vector<order_term>& ordering) {
    std::string sql = " ORDER BY ";
    for (const auto& o : ordering) {
        auto column = column_for(c, o.field);
        if (!column) return problem::bad_parameter("ordering", "Unknown field \"" + o.field + "\".");
        if (*column == "id") return sql + "\"id\"" + (o.descending ? " DESC" : " ASC");
        sql += quote_ident(*column) + (o.descending ? " DESC NULLS LAST, " : " ASC NULLS FIRST, ");
    }
    return sql + "\"id\" ASC NULLS FIRST";  // id is never NULL; the clause matches the indexes
}

}  // namespace livebase::pg
