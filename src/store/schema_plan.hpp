#pragma once
/// Schema migration planning shared by the SQLite and PostgreSQL stores: what to create, add,
/// drop and re-index for each declared collection, given what the database has. The backends
/// read their catalogs (through `schema_reader`) and apply the work in their own SQL dialect.
/// Tables, columns and indexes are named as in store/sqlite/sql.hpp (c_<collection>, f_<field>,
/// u_<collection>_<field>, i_<collection>_<n>).
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

}  // namespace livebase::store_detail
