#include "store/tables.hpp"

#include <cmath>
#include <unordered_map>
#include <utility>
#include <vector>

namespace livebase::store_detail {

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

std::string placeholder(char param, int n) {
    std::string s(1, param);
    s += std::to_string(n);
    return s;
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

std::size_t column_count(const collection_def& c) { return std::size(k_managed_columns) + c.fields.size(); }
}  // namespace

std::string create_table_sql(const collection_def& c, std::string_view text,
                             std::string_view (*sql_type)(field_type) noexcept) {
    std::string t(text);
    std::string sql = "CREATE TABLE " + quote_ident(table_name(c.name)) + " (\"id\" " + t +
                      " PRIMARY KEY NOT NULL, \"created\" " + t + ", \"updated\" " + t + ", \"version\" " +
                      std::string(sql_type(field_type::integer)) + ", \"owner\" " + t;
    for (const auto& f : c.fields) {
        sql += ", " + quote_ident(field_column(f.name)) + " ";
        sql += sql_type(f.type);
    }
    sql += ")";
    return sql;
}

namespace {
std::string build_select(const collection_def& c, char) {
    return "SELECT " + column_list(c) + " FROM " + quote_ident(table_name(c.name));
}
std::string build_get(const collection_def& c, char param) {
    return build_select(c, param) + " WHERE \"id\" = " + placeholder(param, 1);
}
std::string build_insert(const collection_def& c, char param);
std::string build_update(const collection_def& c, char param);
std::string build_delete(const collection_def& c, char param);

// The statements of a collection, built once per thread: a write would otherwise quote and
// join every column name again. Keyed by the definition's address and checked against its
// name and fields (a definition freed and another made at its address is rebuilt).
struct statements {
    std::string name;
    std::vector<std::pair<std::string, field_type>> fields;
    bool owned = false;
    std::string sql[2][5];  // ['?' | '$'][select, get, insert, update, delete]; empty: not built yet
};

bool same_shape(const statements& s, const collection_def& c) {
    if (s.name != c.name || s.owned != c.owned || s.fields.size() != c.fields.size()) return false;
    for (std::size_t i = 0; i < c.fields.size(); ++i)
        if (s.fields[i].first != c.fields[i].name || s.fields[i].second != c.fields[i].type) return false;
    return true;
}

std::string cached(const collection_def& c, char param, int which, std::string (*build)(const collection_def&, char)) {
    thread_local std::unordered_map<const collection_def*, statements> cache;
    auto it = cache.find(&c);
    if (it == cache.end() || !same_shape(it->second, c)) {
        if (cache.size() >= 256) cache.clear();  // bounded (tests make many definitions)
        statements s;
        s.name = c.name;
        s.owned = c.owned;
        for (const auto& f : c.fields) s.fields.emplace_back(f.name, f.type);
        it = cache.insert_or_assign(&c, std::move(s)).first;
    }
    const int p = param == '$' ? 1 : 0;
    auto& st = it->second;
    if (st.sql[p][which].empty()) st.sql[p][which] = build(c, param);
    return st.sql[p][which];
}
}  // namespace

std::string select_sql(const collection_def& c) { return cached(c, '?', 0, &build_select); }
std::string get_sql(const collection_def& c, char param) { return cached(c, param, 1, &build_get); }
std::string insert_sql(const collection_def& c, char param) { return cached(c, param, 2, &build_insert); }
std::string update_sql(const collection_def& c, char param) { return cached(c, param, 3, &build_update); }
std::string delete_sql(const collection_def& c, char param) { return cached(c, param, 4, &build_delete); }

namespace {
std::string build_insert(const collection_def& c, char param) {
    std::string sql = "INSERT INTO " + quote_ident(table_name(c.name)) + " (" + column_list(c) + ") VALUES (";
    for (std::size_t i = 0; i < column_count(c); ++i) {
        if (i) sql += ", ";
        sql += placeholder(param, static_cast<int>(i + 1));
    }
    sql += ")";
    return sql;
}

std::string build_update(const collection_def& c, char param) {
    std::string sql = "UPDATE " + quote_ident(table_name(c.name)) + " SET ";
    int n = 1;
    bool first = true;
    auto set = [&](std::string_view col) {
        ++n;
        if (!first) sql += ", ";
        first = false;
        sql += quote_ident(col) + " = " + placeholder(param, n);
    };
    for (std::size_t i = 1; i < std::size(k_managed_columns); ++i) set(k_managed_columns[i]);
    for (const auto& f : c.fields) set(field_column(f.name));
    sql += " WHERE \"id\" = " + placeholder(param, 1);
    return sql;
}

std::string build_delete(const collection_def& c, char param) {
    return "DELETE FROM " + quote_ident(table_name(c.name)) + " WHERE \"id\" = " + placeholder(param, 1);
}
}  // namespace

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
    out.reserve(column_count(c));
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
        // A json field reads back as the value it was (its text parses to it): no round trip.
        out[f.name] = f.type == field_type::json ? it->value() : read_back(&f, storage_value(&f, it->value()));
    }
    return out;
}

std::string before_text(const collection_def& c, const json::object& stored) {
    // Written member by member (no copy of the record): json fields as true/null.
    std::string out;
    out.reserve(256);
    out += '{';
    bool first = true;
    for (const auto& kv : stored) {
        if (!first) out += ',';
        first = false;
        append_json_text(out, json::value(kv.key()));
        out += ':';
        const field_def* f = c.find_field(kv.key());
        if (f && f->type == field_type::json)
            out += kv.value().is_null() ? "null" : "true";
        else
            append_json_text(out, kv.value());
    }
    out += '}';
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

std::string text_of(const json::value& v) {
    if (v.is_string()) return std::string(v.get_string());
    return to_json_text(v);
}

}  // namespace livebase::store_detail
