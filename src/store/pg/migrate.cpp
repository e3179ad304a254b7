#include "store/pg/migrate.hpp"

#include "store/pg/sql.hpp"
#include "store/pg/txn.hpp"
#include "store/schema_plan.hpp"

namespace livebase::pg {

namespace {

using store_detail::index_spec;
using store_detail::stored_types;

const std::string k_lock_sql =
    "SELECT pg_advisory_xact_lock(" + std::to_string(k_lock_class_migrate) + ", hashtext(current_schema()))";

result<bool> table_exists(connection& conn, const std::string& table) {
    auto r = conn.query(
        "SELECT 1 FROM information_schema.tables WHERE table_schema = current_schema() AND table_name = $1",
        {table});
    if (!r) return std::move(r).error();
    return r->size() > 0;
}

result<std::vector<std::string>> table_columns(connection& conn, const std::string& table) {
    auto r = conn.query(
        "SELECT column_name FROM information_schema.columns WHERE table_schema = current_schema()"
        " AND table_name = $1 ORDER BY ordinal_position",
        {table});
    if (!r) return std::move(r).error();
    std::vector<std::string> out;
    for (int i = 0; i < r->size(); ++i) out.emplace_back(r->text(i, 0));
    return out;
}

// livebase's own indexes (u_*, i_*) of the table, with their columns in order.
result<std::vector<index_spec>> table_indexes(connection& conn, const std::string& table) {
    auto r = conn.query(
        "SELECT ic.relname, ix.indisunique, a.attname FROM pg_index ix"
        " JOIN pg_class ic ON ic.oid = ix.indexrelid"
        " JOIN pg_class tc ON tc.oid = ix.indrelid"
        " JOIN pg_namespace n ON n.oid = tc.relnamespace AND n.nspname = current_schema()"
        " CROSS JOIN LATERAL unnest(ix.indkey::int2[]) WITH ORDINALITY AS k(attnum, pos)"
        " JOIN pg_attribute a ON a.attrelid = tc.oid AND a.attnum = k.attnum"
        " WHERE tc.relname = $1 AND (ic.relname LIKE 'u\\_%' OR ic.relname LIKE 'i\\_%')"
        " ORDER BY ic.relname, k.pos",
        {table});
    if (!r) return std::move(r).error();
    std::vector<index_spec> out;
    for (int i = 0; i < r->size(); ++i) {
        std::string name(r->text(i, 0));
        if (out.empty() || out.back().name != name) out.push_back({name, r->text(i, 1) == "t", {}});
        out.back().columns.emplace_back(r->text(i, 2));
    }
    return out;
}

result<stored_types> read_stored_types(connection& conn) {
    auto r = conn.query("SELECT collection, definition FROM _livebase_schema");
    if (!r) return std::move(r).error();
    stored_types out;
    for (int i = 0; i < r->size(); ++i)
        store_detail::add_stored_definition(out, std::string(r->text(i, 0)), r->text(i, 1));
    return out;
}

}  // namespace

result<void> create_system_tables(connection& conn) {
    // Inside one transaction under the migration lock: nodes starting together do not race on
    // CREATE ... IF NOT EXISTS (which is not atomic in PostgreSQL).
    if (auto r = conn.exec("BEGIN"); !r) return r;
    auto done = [&]() -> result<void> {
        if (auto r = conn.exec(k_lock_sql); !r) return r;
        return conn.exec(
            "CREATE SEQUENCE IF NOT EXISTS _changes_seq;"
            "CREATE TABLE IF NOT EXISTS _changes (seq BIGINT PRIMARY KEY, ts BIGINT NOT NULL,"
            " collection TEXT NOT NULL, op TEXT NOT NULL, record_id TEXT NOT NULL, record TEXT NOT NULL,"
            " \"before\" TEXT);"
            // Appends take seq from the sequence row by row (pg/txn.hpp). Altered only once:
            // ALTER TABLE would lock out the other nodes' appends at every start.
            "DO $$ BEGIN IF NOT EXISTS (SELECT 1 FROM information_schema.columns WHERE"
            " table_schema = current_schema() AND table_name = '_changes' AND column_name = 'seq'"
            " AND column_default IS NOT NULL) THEN"
            " ALTER TABLE _changes ALTER COLUMN seq SET DEFAULT nextval('_changes_seq'); END IF; END $$;"
            "CREATE TABLE IF NOT EXISTS _livebase_schema (collection TEXT PRIMARY KEY NOT NULL,"
            " definition TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS _livebase_meta (key TEXT PRIMARY KEY NOT NULL, value BIGINT);"
            // Each serve node's delivered position and heartbeat: the log is trimmed only
            // below what every live node has delivered.
            "CREATE TABLE IF NOT EXISTS _livebase_nodes (node BIGINT PRIMARY KEY NOT NULL,"
            " delivered BIGINT NOT NULL, seen BIGINT NOT NULL);");
    }();
    if (!done) {
        (void)conn.exec("ROLLBACK");
        return done;
    }
    return conn.exec("COMMIT");
}

result<migration_plan> migrate_schema(connection& conn, const std::vector<const collection_def*>& collections,
                                      bool allow_destructive, bool dry_run) {
    if (auto r = conn.exec(k_lock_sql); !r) return std::move(r).error();
    store_detail::schema_reader reader{
        [&](const std::string& table) { return table_exists(conn, table); },
        [&](const std::string& table) { return table_columns(conn, table); },
        [&](const std::string& table) { return table_indexes(conn, table); }};
    store_detail::ddl_target ddl;
    ddl.exec = [&](const std::string& sql) { return conn.exec(sql); };
    ddl.unique_violation = [&] { return conn.last_error().sqlstate == "23505"; };
    ddl.create_table = [](const collection_def& c) { return create_table_sql(c); };
    ddl.sql_type = &sql_type;
    ddl.index_order = " NULLS FIRST";
    ddl.read_stored = [&] { return read_stored_types(conn); };
    ddl.save_definition = [&](const std::string& collection, const std::string& definition) -> result<void> {
        auto r = conn.query(
            "INSERT INTO _livebase_schema (collection, definition) VALUES ($1, $2)"
            " ON CONFLICT (collection) DO UPDATE SET definition = excluded.definition",
            {collection, definition});
        if (!r) return std::move(r).error();
        return {};
    };
    return store_detail::run_migration(reader, ddl, collections, allow_destructive, dry_run);
}

}  // namespace livebase::pg
