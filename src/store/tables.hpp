#pragma once
/// How collections map to tables, for both backends. Pure functions (no connection), so they
/// are tested without a database.
///
/// A collection `cars` is the table `c_cars` with the managed columns id (text primary key),
/// created, updated (text), version (integer) and owner (text, NULL when not owned), then one
/// column `f_<name>` per declared field. Identifiers come from finalized definitions and are
/// quoted anyway; values are always bound as parameters, never spliced into SQL. The backends
/// differ in column types and in how they number parameters ("?1" in SQLite, "$1" in
/// PostgreSQL): `param` below is that character.
#include <livebase/schema/collection.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace livebase::store_detail {

/// The managed columns, in table order.
inline constexpr std::string_view k_managed_columns[] = {"id", "created", "updated", "version", "owner"};
inline constexpr int k_first_field_column = 5;

/// "\"c_cars\"" style quoting (double quotes doubled).
std::string quote_ident(std::string_view name);
std::string table_name(std::string_view collection);   ///< "c_" + collection, unquoted
std::string field_column(std::string_view field);      ///< "f_" + field, unquoted

/// The column of a managed or declared field name (unquoted), nullopt for unknown names.
std::optional<std::string> column_for(const collection_def& c, std::string_view name);
/// The declared field behind a column name ("f_vin" -> vin), nullptr for managed columns.
const field_def* field_for_column(const collection_def& c, std::string_view column) noexcept;

/// Parameter `n` in a dialect's numbering: placeholder('?', 2) == "?2".
std::string placeholder(char param, int n);

/// CREATE TABLE for `c` with every declared column; `text` is the dialect's text column type
/// and `sql_type` its type for each field type.
std::string create_table_sql(const collection_def& c, std::string_view text,
                             std::string_view (*sql_type)(field_type) noexcept);
/// SELECT of every column (managed, then declared in order) FROM the table, no clauses.
std::string select_sql(const collection_def& c);
std::string get_sql(const collection_def& c, char param);     ///< select_sql + WHERE id = <1>
std::string insert_sql(const collection_def& c, char param);  ///< binds: managed columns then fields
std::string update_sql(const collection_def& c, char param);  ///< same binds as insert; WHERE id = <1>
std::string delete_sql(const collection_def& c, char param);  ///< WHERE id = <1>

/// The value bound for `v` in a column of field `f` (nullptr: a managed column): null stays
/// null; json fields hold serialized JSON; text columns hold strings (other values serialized);
/// booleans 0/1; integer columns int64.
json::value storage_value(const field_def* f, const json::value& v);

/// The record as the store returns it after a round trip: managed fields (owner only when
/// owned), every declared field (absent -> null), values coerced as storage_value() would
/// store and read them back. Keys that are neither are dropped.
json::object normalize_record(const collection_def& c, const json::object& record);

/// The change log's `before` of an update, as JSON text: the stored record with each json
/// field reduced to whether it was null (`true` when it was not). Filters test json fields only
/// with isnull, so this is all a reader needs to tell a record leaving a filter, and it keeps
/// large json fields (a task's request, input and result) out of every update's row.
std::string before_text(const collection_def& c, const json::object& stored);

/// `s` with LIKE's wildcards and the escape character escaped by '\'.
std::string escape_like(std::string_view s);
/// A filter value as text: strings as they are, other values serialized.
std::string text_of(const json::value& v);

}  // namespace livebase::store_detail
