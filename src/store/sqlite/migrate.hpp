#pragma once
/// Schema migration of a SQLite store (runs on the writer connection, inside a transaction the
/// caller opens and commits; a returned problem means the caller rolls back).
/// The rules are store/schema_plan.hpp's; this file reads SQLite's catalog and speaks its DDL.
#include "store/sqlite/connection.hpp"

#include <livebase/store/store.hpp>

namespace livebase::sqlite {

/// Creates the store's own tables (`_changes`, `_livebase_schema`, `_livebase_meta`) if
/// missing, and adds `_changes.before` to databases made before it existed (NULL on old rows).
result<void> create_system_tables(connection& conn);

result<migration_plan> migrate_schema(connection& conn, const std::vector<const collection_def*>& collections,
                                      bool allow_destructive, bool dry_run);

}  // namespace livebase::sqlite
