#pragma once
/// The mapping between collections and SQLite tables, and the SQL text built from a query AST.
/// Pure functions (no connection), so they are tested without a database.
///
/// A collection `cars` is the table `c_cars` with the managed columns id (TEXT PRIMARY KEY),
/// created, updated (TEXT), version (INTEGER) and owner (TEXT, NULL when not owned), then one
/// column `f_<name>` per declared field: integer and boolean INTEGER, number REAL, json TEXT
/// holding serialized JSON, every other type TEXT. Identifiers come from finalized definitions
/// and are quoted anyway; values are always bound as parameters, never spliced into SQL.
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/schema/query.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace livebase::sqlite {

class cursor;

/// The managed columns, in table order.
inline constexpr std::string_view k_managed_columns[] = {"id", "created", "updated", "version", "owner"};
inline constexpr int k_first_field_column = 5;

/// "\"c_cars\"" style quoting (double quotes doubled).
std::string quote_ident(std::string_view name);
std::string table_name(std::string_view collection);   ///< "c_" + collection, unquoted
std::string field_column(std::string_view field);      ///< "f_" + field, unquoted
std::string_view sql_type(field_type t) noexcept;      ///< "INTEGER" | "REAL" | "TEXT"

/// The column of a managed or declared field name (unquoted), nullopt for unknown names.
std::optional<std::string> column_for(const collection_def& c, std::string_view name);

/// The declared field behind a column name ("f_vin" -> vin), nullptr for managed columns.
const field_def* field_for_column(const collection_def& c, std::string_view column) noexcept;

/// CREATE TABLE for `c` with every declared column.
std::string create_table_sql(const collection_def& c);
/// SELECT of every column (managed, then declared in order) FROM the table, no clauses.
std::string select_sql(const collection_def& c);
std::string get_sql(const collection_def& c);      ///< select_sql + WHERE id = ?1
std::string insert_sql(const collection_def& c);   ///< binds: managed columns then fields
std::string update_sql(const collection_def& c);   ///< same binds as insert; WHERE id = ?1
std::string delete_sql(const collection_def& c);   ///< WHERE id = ?1

/// The value bound for `v` in a column of field `f` (nullptr: a managed column): null stays
/// null; json fields hold serialized JSON; text columns hold strings (other values serialized);
/// booleans 0/1; integer columns int64.
json::value storage_value(const field_def* f, const json::value& v);

/// The record as the store returns it after a round trip: managed fields (owner only when
/// owned), every declared field (absent -> null), values coerced as storage_value() would
/// store and read them back. Keys that are neither are dropped.
json::object normalize_record(const collection_def& c, const json::object& record);

/// Reads the current row of a cursor over select_sql(c) into the stored form.
json::object read_record(const collection_def& c, const cursor& row);

/// A WHERE clause (without the keyword; empty when there are no filters) and its parameters
/// in order (positional `?`).
struct where_clause {
    std::string sql;
    std::vector<json::value> params;
};
/// REQUIRES: every term names a field of `c` (a validated query); others -> 400 problem.
result<where_clause> build_where(const collection_def& c, const std::vector<filter_term>& filters);

/// " ORDER BY ... , \"id\" ASC". Unknown fields -> 400 problem.
result<std::string> build_order_by(const collection_def& c, const std::vector<order_term>& ordering);

/// `s` with LIKE's wildcards and the escape character escaped by '\'.
std::string escape_like(std::string_view s);

}  // namespace livebase::sqlite
