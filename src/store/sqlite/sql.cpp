#include "store/sqlite/sql.hpp"

#include "store/sqlite/connection.hpp"

#include <cmath>
#include <limits>

namespace livebase::sqlite {

std::string quote_ident(std::string_view name) {
    std::string out = "\"";
    for (char ch : name) {
        if (ch == '"') out += '"';
        out += ch;
    }
    out += '"';
    return out;
}

std::string table_name(std::string_view collection) { return "c_" + std::string(collection); }
std::string field_column(std::string_view field) { return "f_" + std::string(field); }

std::string_view sql_type(field_type t) noexcept {
    switch (t) {
        case field_type::integer:
        case field_type::boolean: return "INTEGER";
        case field_type::number: return "REAL";
        default: return "TEXT";
    }
}

std::optional<std::string> column_for(const collection_def& c, std::string_view name) {
    for (auto m : k_managed_columns)
        if (m == name) return std::string(m);
    if (c.find_field(name)) return field_column(name);
    return std::nullopt;
}

const field_def* field_for_column(const collection_def& c, std::string_view column) noexcept {
    if (column.substr(0, 2) != "f_") return nullptr;
    return c.find_field(column.substr(2));
}

std::string create_table_sql(const collection_def& c) {
    std::string sql = "CREATE TABLE " + quote_ident(table_name(c.name)) +
                      " (\"id\" TEXT PRIMARY KEY NOT NULL, \"created\" TEXT, \"updated\" TEXT,"
                      " \"version\" INTEGER, \"owner\" TEXT";
    for (const auto& f : c.fields) {
        sql += ", " + quote_ident(field_column(f.name)) + " ";
        sql += sql_type(f.type);
    }
    sql += ")";
    return sql;
}

namespace {
std::string column_list(const collection_def& c) {
    std::string out;
    for (auto m : k_managed_columns) {
        if (!out.empty()) out += ", ";
        out += quote_ident(m);
    }
    for (const auto& f : c.fields) out += ", " + quote_ident(field_column(f.name));
    return out;
}

std::size_t column_count(const collection_def& c) {
    return std::size(k_managed_columns) + c.fields.size();
}
}  // namespace

std::string select_sql(const collection_def& c) {
    return "SELECT " + column_list(c) + " FROM " + quote_ident(table_name(c.name));
}

std::string get_sql(const collection_def& c) { return select_sql(c) + " WHERE \"id\" = ?1"; }

std::string insert_sql(const collection_def& c) {
    std::string sql = "INSERT INTO " + quote_ident(table_name(c.name)) + " (" + column_list(c) + ") VALUES (";
    for (std::size_t i = 0; i < column_count(c); ++i) {
        if (i) sql += ", ";
        sql += '?';  // appended separately: GCC 12 warns (-Wrestrict) on "?" + std::string
        sql += std::to_string(i + 1);
    }
    sql += ")";
    return sql;
}

std::string update_sql(const collection_def& c) {
    std::string sql = "UPDATE " + quote_ident(table_name(c.name)) + " SET ";
    std::size_t n = 1;
    bool first = true;
    auto set = [&](std::string_view col) {
        ++n;
        if (!first) sql += ", ";
        first = false;
        sql += quote_ident(col) + " = ?" + std::to_string(n);
    };
    for (std::size_t i = 1; i < std::size(k_managed_columns); ++i) set(k_managed_columns[i]);
    for (const auto& f : c.fields) set(field_column(f.name));
    sql += " WHERE \"id\" = ?1";
    return sql;
}

std::string delete_sql(const collection_def& c) {
    return "DELETE FROM " + quote_ident(table_name(c.name)) + " WHERE \"id\" = ?1";
}

json::value storage_value(const field_def* f, const json::value& v) {
    if (v.is_null()) return nullptr;
    if (v.is_bool()) {
        bool numeric = !f || f->type == field_type::integer || f->type == field_type::number ||
                       f->type == field_type::boolean;
        if (!numeric) return json::value(to_json_text(v));  // text and json columns
        return json::value(std::int64_t{v.get_bool() ? 1 : 0});
    }
    if (!f) return v;
    switch (f->type) {
        case field_type::json: return json::value(to_json_text(v));
        case field_type::integer:
            if (v.is_double()) {
                double d = v.get_double();
                if (std::isfinite(d) && d >= -9.2e18 && d <= 9.2e18)
                    return json::value(static_cast<std::int64_t>(d));
            }
            return v;
        case field_type::number:
        case field_type::boolean: return v;
        default: return v.is_string() ? v : json::value(to_json_text(v));
    }
}

namespace {
// What a column of field `f` gives back for a value bound as storage_value(f, v).
json::value read_back(const field_def* f, const json::value& stored) {
    if (stored.is_null()) return nullptr;
    if (!f) return stored;
    switch (f->type) {
        case field_type::boolean:
            if (stored.is_int64()) return json::value(stored.get_int64() != 0);
            if (stored.is_double()) return json::value(stored.get_double() != 0);
            return stored;
        case field_type::number:
            if (stored.is_int64()) return json::value(static_cast<double>(stored.get_int64()));
            if (stored.is_uint64()) return json::value(static_cast<double>(stored.get_uint64()));
            return stored;
        case field_type::json:
            if (stored.is_string()) {
                if (auto parsed = parse_json(stored.get_string())) return std::move(*parsed);
            }
            return stored;
        default: return stored;
    }
}
}  // namespace

json::object normalize_record(const collection_def& c, const json::object& record) {
    json::object out;
    for (auto m : k_managed_columns) {
        if (m == "owner" && !c.owned) continue;
        auto it = record.find(m);
        out[m] = it == record.end() ? json::value(nullptr) : it->value();
    }
    for (const auto& f : c.fields) {
        auto it = record.find(f.name);
        if (it == record.end()) {
            out[f.name] = nullptr;
            continue;
        }
        out[f.name] = read_back(&f, storage_value(&f, it->value()));
    }
    return out;
}

json::object read_record(const collection_def& c, const cursor& row) {
    json::object out;
    out.reserve(column_count(c));
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

std::string escape_like(std::string_view s) {
    std::string out;
    out.reserve(s.size() + 2);
    for (char ch : s) {
        if (ch == '%' || ch == '_' || ch == '\\') out += '\\';
        out += ch;
    }
    return out;
}

namespace {
std::string text_of(const json::value& v) {
    if (v.is_string()) return std::string(v.get_string());
    return to_json_text(v);
}
}  // namespace

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
