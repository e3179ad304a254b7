#pragma once
/// The PostgreSQL dialect of the collection tables (names as in store/tables.hpp: c_<name>,
/// f_<field>): integer BIGINT, number DOUBLE PRECISION, boolean BOOLEAN, every other type TEXT
/// with the "C" collation (byte order, as SQLite compares), json as serialized JSON text. Lists
/// order NULL first ascending and last descending, as SQLite does, so both backends answer a
/// query with the same rows in the same order. Pure functions (no connection).
#include "store/pg/connection.hpp"

#include <livebase/schema/collection.hpp>
#include <livebase/schema/query.hpp>

namespace livebase::pg {

std::string_view sql_type(field_type t) noexcept;
std::string create_table_sql(const collection_def& c);
std::string select_sql(const collection_def& c);
std::string get_sql(const collection_def& c, bool for_update);  ///< WHERE id = $1
std::string insert_sql(const collection_def& c);                 ///< managed columns then fields
std::string update_sql(const collection_def& c);                 ///< same binds; WHERE id = $1
std::string delete_sql(const collection_def& c);                 ///< WHERE id = $1

/// The text parameter of a JSON value bound to a column of field `f` (nullptr: managed).
std::optional<std::string> param_of(const field_def* f, const json::value& v);

/// Reads row `r` of a select_sql(c) result into the stored form.
json::object read_record(const collection_def& c, const rows& res, int r);

struct where_clause {
    std::string sql;  ///< without WHERE; empty when there are no filters
    params values;
};
/// Placeholders are numbered from `first` ($first, $first+1, ...).
result<where_clause> build_where(const collection_def& c, const std::vector<filter_term>& filters, int first = 1);
result<std::string> build_order_by(const collection_def& c, const std::vector<order_term>& ordering);

}  // namespace livebase::pg
