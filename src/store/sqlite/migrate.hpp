#pragma once
/// Schema migration of a SQLite store (runs on the writer connection, inside a transaction the
/// caller opens and commits; a returned problem means the caller rolls back).
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
#include "store/sqlite/connection.hpp"

#include <livebase/store/store.hpp>

namespace livebase::sqlite {

/// Creates the store's own tables (`_changes`, `_livebase_schema`, `_livebase_meta`) if
/// missing, and adds `_changes.before` to databases made before it existed (NULL on old rows).
result<void> create_system_tables(connection& conn);

result<migration_plan> migrate_schema(connection& conn, const std::vector<const collection_def*>& collections,
                                      bool allow_destructive, bool dry_run);

}  // namespace livebase::sqlite
