#pragma once
/// Schema migration planning shared by the SQLite and PostgreSQL stores: what to create, add,
/// drop and re-index for each declared collection, given what the database has. The backends
/// read their catalogs (through `schema_reader`) and apply the work in their own SQL dialect.
/// Tables, columns and indexes are named as in store/tables.hpp (c_<collection>, f_<field>,
/// u_<collection>_<field>, i_<collection>_<n>).
///
/// - Missing tables are created, new fields become new (NULL) columns, missing indexes are
///   created: additive, always applied.
/// - A field whose type changed between string and text keeps its data (same column type).
/// - Destructive steps: a dropped field (its column is dropped), any other retyped field (its
///   column is dropped and re-added empty: the data is lost), an index that is no longer
///   declared or whose columns/uniqueness changed (dropped, and re-created when still declared).
///   They are refused with a 409 problem listing them unless `allow_destructive`.
/// - Tables of collections that are no longer declared are left alone.
/// - `_livebase_schema` keeps each collection's field name -> type, to detect retyped fields.
/// - dry_run: only computes the plan (destructive steps are listed, not refused).
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/store/store.hpp>

#include <functional>
#include <map>
#include <string>
#include <vector>

namespace livebase::store_detail {

struct index_spec {
    std::string name;
    bool unique = false;
    std::vector<std::string> columns;  // unquoted column names, in order
};

/// What migration does to one collection's table.
struct table_work {
    const collection_def* c = nullptr;
    bool create = false;
    std::vector<std::string> drop_indexes;
    std::vector<std::string> drop_columns;
    std::vector<const field_def*> add_columns;
    std::vector<index_spec> create_indexes;
};

/// Collection -> (field -> declared type name) as recorded in `_livebase_schema` at the last
/// migration (to detect retyped fields).
using stored_types = std::map<std::string, std::map<std::string, std::string>>;

/// A backend's view of its catalog.
struct schema_reader {
    std::function<result<bool>(const std::string& table)> table_exists;
    std::function<result<std::vector<std::string>>(const std::string& table)> table_columns;
    /// Only the indexes livebase made (names starting u_ or i_).
    std::function<result<std::vector<index_spec>>(const std::string& table)> table_indexes;
};

/// Plans every collection; refuses destructive steps unless allowed (409 listing them) unless
/// dry_run. `work` gets one entry per collection.
result<migration_plan> plan_migration(const schema_reader& reader, const stored_types& stored,
                                      const std::vector<const collection_def*>& collections,
                                      bool allow_destructive, bool dry_run, std::vector<table_work>& work);

/// "brand, model" from "f_brand", "f_model".
std::string field_names(const std::vector<std::string>& columns);

/// Adds one `_livebase_schema` definition row's content ({"field": "type"}) to `out`.
void add_stored_definition(stored_types& out, const std::string& collection, std::string_view definition);
/// The definition row written after applying a collection's work.
std::string definition_of(const collection_def& c);

/// A backend's DDL in its own dialect, for run_migration().
struct ddl_target {
    std::function<result<void>(const std::string& sql)> exec;
    /// The last exec() failed on a unique constraint (a unique index over duplicate values).
    std::function<bool()> unique_violation;
    std::function<std::string(const collection_def&)> create_table;
    std::string_view (*sql_type)(field_type) noexcept = nullptr;
    /// After each index column: the order that matches the dialect's list ordering (lists sort
    /// NULL first ascending, so an index serves ORDER BY without a sort).
    std::string index_order;
    /// The `_livebase_schema` rows, and the upsert of one.
    std::function<result<stored_types>()> read_stored;
    std::function<result<void>(const std::string& collection, const std::string& definition)> save_definition;
};

/// Plans every collection and, unless dry_run, applies the work. Runs inside a transaction the
/// caller opens and commits; a returned problem means the caller rolls back.
result<migration_plan> run_migration(const schema_reader& reader, const ddl_target& ddl,
                                     const std::vector<const collection_def*>& collections,
                                     bool allow_destructive, bool dry_run);

}  // namespace livebase::store_detail
