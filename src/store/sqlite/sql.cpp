#include "store/sqlite/sql.hpp"

#include "store/sqlite/connection.hpp"

#include <cmath>
#include <limits>

namespace livebase::sqlite {

std::string_view sql_type(field_type t) noexcept {
    switch (t) {
        case field_type::integer:
        case field_type::boolean: return "INTEGER";
        case field_type::number: return "REAL";
        default: return "TEXT";
    }
}

std::string create_table_sql(const collection_def& c) { return store_detail::create_table_sql(c, "TEXT", &sql_type); }
std::string get_sql(const collection_def& c) { return store_detail::get_sql(c, '?'); }
std::string insert_sql(const collection_def& c) { return store_detail::insert_sql(c, '?'); }
std::string update_sql(const collection_def& c) { return store_detail::update_sql(c, '?'); }
std::string delete_sql(const collection_def& c) { return store_detail::delete_sql(c, '?'); }

json::object read_record(const collection_def& c, const cursor& row) {
    json::object out;
    out.reserve(std::size(k_managed_columns) + c.fields.size());
    out["id"] = row.column_text(0);
    out["created"] = row.is_null(1) ? json::value(nullptr) : json::value(row.column_text(1));
    out["updated"] = row.is_null(2) ? json::value(nullptr) : json::value(row.column_text(2));
    out["version"] = row.is_null(3) ? json::value(nullptr) : json::value(row.column_int(3));
    if (c.owned) out["owner"] = row.is_null(4) ? json::value(nullptr) : json::value(row.column_text(4));
    int col = k_first_field_column;
    for (const auto& f : c.fields) {
        json::value& v = out[f.name];
        if (row.is_null(col)) {
            v = nullptr;
        } else {
            switch (f.type) {
                case field_type::boolean: v = row.column_int(col) != 0; break;
                case field_type::integer: v = row.column_int(col); break;
                case field_type::number: v = row.column_double(col); break;
                case field_type::json: {
                    auto text = row.column_text(col);
                    if (auto parsed = parse_json(text)) v = std::move(*parsed);
                    else v = json::string(text);
                    break;
                }
                default: v = json::string(row.column_text(col)); break;
            }
        }
        ++col;
    }
    return out;
}

using store_detail::text_of;

result<where_clause> build_where(const collection_def& c, const std::vector<filter_term>& filters) {
    where_clause w;
    for (const auto& t : filters) {
        auto column = column_for(c, t.field);
        if (!column) return problem::bad_parameter(t.field, "Unknown field \"" + t.field + "\".");
        const field_def* f = c.find_field(t.field);
        std::string col = quote_ident(*column);
        std::string cond;
        auto param = [&](json::value v) {
            w.params.push_back(std::move(v));
            return std::string("?");
        };
        auto text_param = [&](std::string_view v) { return param(json::value(v)); };
        switch (t.op) {
            case lookup::exact: cond = col + " = " + param(storage_value(f, t.value)); break;
            case lookup::ne: cond = col + " IS NOT " + param(storage_value(f, t.value)); break;
            case lookup::gt: cond = col + " > " + param(storage_value(f, t.value)); break;
            case lookup::gte: cond = col + " >= " + param(storage_value(f, t.value)); break;
            case lookup::lt: cond = col + " < " + param(storage_value(f, t.value)); break;
            case lookup::lte: cond = col + " <= " + param(storage_value(f, t.value)); break;
            case lookup::iexact: cond = col + " = " + text_param(text_of(t.value)) + " COLLATE NOCASE"; break;
            case lookup::contains: cond = "instr(" + col + ", " + text_param(text_of(t.value)) + ") > 0"; break;
            case lookup::icontains:
                cond = col + " LIKE " + text_param("%" + escape_like(text_of(t.value)) + "%") + " ESCAPE '\\'";
                break;
            case lookup::startswith: {
                auto s = text_of(t.value);
                cond = "substr(" + col + ", 1, length(" + text_param(s) + ")) = " + text_param(s);
                break;
            }
            case lookup::istartswith:
                cond = col + " LIKE " + text_param(escape_like(text_of(t.value)) + "%") + " ESCAPE '\\'";
                break;
            case lookup::endswith: {
                auto s = text_of(t.value);
                // substr(x, -0) is the whole string, so the empty suffix is its own case.
                if (s.empty()) cond = col + " IS NOT NULL";
                else cond = "substr(" + col + ", -length(" + text_param(s) + ")) = " + text_param(s);
                break;
            }
            case lookup::in: {
                if (!t.value.is_array() || t.value.get_array().empty()) {
                    cond = "0";
                    break;
                }
                cond = col + " IN (";
                bool first = true;
                for (const auto& v : t.value.get_array()) {
                    if (!first) cond += ", ";
                    first = false;
                    cond += param(storage_value(f, v));
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
        if (*column == "id") {
            // id is unique: nothing after it can matter.
            return sql + "\"id\"" + (o.descending ? " DESC" : " ASC");
        }
        sql += quote_ident(*column) + (o.descending ? " DESC, " : " ASC, ");
    }
    return sql + "\"id\" ASC";
}

}  // namespace livebase::sqlite
