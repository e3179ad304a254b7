#pragma once
/// The SQLite dialect of the collection tables (store/tables.hpp): integer and boolean INTEGER,
/// number REAL, json TEXT holding serialized JSON, every other type TEXT; parameters numbered
/// "?1". Pure functions (no connection), so they are tested without a database.
#include "store/tables.hpp"

#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/schema/query.hpp>

#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace livebase::sqlite {

class cursor;

using store_detail::column_for;
using store_detail::escape_like;
using store_detail::field_column;
using store_detail::field_for_column;
using store_detail::k_first_field_column;
using store_detail::k_managed_columns;
using store_detail::normalize_record;
using store_detail::quote_ident;
using store_detail::select_sql;
using store_detail::storage_value;
using store_detail::table_name;

std::string_view sql_type(field_type t) noexcept;  ///< "INTEGER" | "REAL" | "TEXT"

/// CREATE TABLE for `c` with every declared column.
std::string create_table_sql(const collection_def& c);
std::string get_sql(const collection_def& c);      ///< select_sql + WHERE id = ?1
std::string insert_sql(const collection_def& c);   ///< binds: managed columns then fields
std::string update_sql(const collection_def& c);   ///< same binds as insert; WHERE id = ?1
std::string delete_sql(const collection_def& c);   ///< WHERE id = ?1

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

}  // namespace livebase::sqlite
