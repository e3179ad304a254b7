#pragma once
/// Schema migration of a PostgreSQL store: the same plan as SQLite's (store/schema_plan.hpp),
/// read from PostgreSQL's catalogs of the connection's schema and applied in its dialect. Runs
/// inside a transaction the caller opens and commits, under an advisory lock so that nodes
/// starting together migrate one after the other.
#include "store/pg/connection.hpp"

#include <livebase/store/store.hpp>

namespace livebase::pg {

/// Creates `_changes`, its sequence, `_livebase_schema` and `_livebase_meta` when missing.
result<void> create_system_tables(connection& conn);

result<migration_plan> migrate_schema(connection& conn, const std::vector<const collection_def*>& collections,
                                      bool allow_destructive, bool dry_run);

}  // namespace livebase::pg
