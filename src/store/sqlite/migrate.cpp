#include "store/sqlite/migrate.hpp"

#include "store/schema_plan.hpp"
#include "store/sqlite/sql.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace livebase::sqlite {

namespace {

using store_detail::index_spec;
using store_detail::stored_types;

result<bool> table_exists(connection& conn, const std::string& table) {
    std::string sql = "SELECT 1 FROM sqlite_master WHERE type = 'table' AND name = ?1";
    auto cur = conn.prepare(sql);
    if (!cur) return std::move(cur).error();
    cur->bind_text(1, table);
    int rc = cur->step();
    if (rc == SQLITE_ROW) return true;
    if (rc == SQLITE_DONE) return false;
    return conn.fail("reading the schema failed", sql);
}

result<std::vector<std::string>> table_columns(connection& conn, const std::string& table) {
    std::string sql = "SELECT name FROM pragma_table_info(?1) ORDER BY cid";
    auto cur = conn.prepare(sql);
    if (!cur) return std::move(cur).error();
    cur->bind_text(1, table);
    std::vector<std::string> out;
    int rc;
    while ((rc = cur->step()) == SQLITE_ROW) out.push_back(cur->column_text(0));
    if (rc != SQLITE_DONE) return conn.fail("reading the schema failed", sql);
    return out;
}

// The table's indexes that livebase made (u_* and i_*; not SQLite's automatic ones).
result<std::vector<index_spec>> table_indexes(connection& conn, const std::string& table) {
    std::vector<index_spec> out;
    {
        std::string sql = "SELECT name, \"unique\" FROM pragma_index_list(?1)";
        auto cur = conn.prepare(sql);
        if (!cur) return std::move(cur).error();
        cur->bind_text(1, table);
        int rc;
        while ((rc = cur->step()) == SQLITE_ROW) {
            auto name = cur->column_text(0);
            if (name.rfind("u_", 0) == 0 || name.rfind("i_", 0) == 0)
                out.push_back({name, cur->column_int(1) != 0, {}});
        }
        if (rc != SQLITE_DONE) return conn.fail("reading the schema failed", sql);
    }
    std::string sql = "SELECT name FROM pragma_index_info(?1) ORDER BY seqno";
    for (auto& ix : out) {
        auto cur = conn.prepare(sql);
        if (!cur) return std::move(cur).error();
        cur->bind_text(1, ix.name);
        int rc;
        while ((rc = cur->step()) == SQLITE_ROW) ix.columns.push_back(cur->column_text(0));
        if (rc != SQLITE_DONE) return conn.fail("reading the schema failed", sql);
    }
    return out;
}

result<stored_types> read_stored_types(connection& conn) {
    std::string sql = "SELECT collection, definition FROM _livebase_schema";
    auto cur = conn.prepare(sql);
    if (!cur) return std::move(cur).error();
    stored_types out;
    int rc;
    while ((rc = cur->step()) == SQLITE_ROW) store_detail::add_stored_definition(out, cur->column_text(0), cur->column_text(1));
    if (rc != SQLITE_DONE) return conn.fail("reading the schema failed", sql);
    return out;
}

}  // namespace

result<void> create_system_tables(connection& conn) {
    // AUTOINCREMENT: seqs are never reused, even after the newest rows are gone, so a resume
    // position stays meaningful across trims and restarts.
    if (auto r = conn.exec(
            "CREATE TABLE IF NOT EXISTS _changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,"
            " collection TEXT NOT NULL, op TEXT NOT NULL, record_id TEXT NOT NULL, record TEXT NOT NULL,"
            " \"before\" TEXT);"
            "CREATE TABLE IF NOT EXISTS _livebase_schema (collection TEXT PRIMARY KEY NOT NULL,"
            " definition TEXT NOT NULL);"
            "CREATE TABLE IF NOT EXISTS _livebase_meta (key TEXT PRIMARY KEY NOT NULL, value);"
            "CREATE TABLE IF NOT EXISTS _livebase_nodes (node INTEGER PRIMARY KEY NOT NULL,"
            " delivered INTEGER NOT NULL, seen INTEGER NOT NULL);");
        !r)
        return r;
    // Databases created before the change log kept the previous record of an update.
    auto columns = table_columns(conn, "_changes");
    if (!columns) return std::move(columns).error();
    if (std::find(columns->begin(), columns->end(), "before") == columns->end())
        return conn.exec("ALTER TABLE _changes ADD COLUMN \"before\" TEXT");
    return {};
}

result<migration_plan> migrate_schema(connection& conn, const std::vector<const collection_def*>& collections,
                                      bool allow_destructive, bool dry_run) {
    store_detail::schema_reader reader{
        [&](const std::string& table) { return table_exists(conn, table); },
        [&](const std::string& table) { return table_columns(conn, table); },
        [&](const std::string& table) { return table_indexes(conn, table); }};
    store_detail::ddl_target ddl;
    ddl.exec = [&](const std::string& sql) { return conn.exec(sql); };
    ddl.unique_violation = [&] { return (conn.extended_error() & 0xff) == SQLITE_CONSTRAINT; };
    ddl.create_table = [](const collection_def& c) { return create_table_sql(c); };
    ddl.sql_type = &sql_type;
    ddl.read_stored = [&] { return read_stored_types(conn); };
    ddl.save_definition = [&](const std::string& collection, const std::string& definition) -> result<void> {
        std::string sql =
            "INSERT INTO _livebase_schema (collection, definition) VALUES (?1, ?2)"
            " ON CONFLICT (collection) DO UPDATE SET definition = excluded.definition";
        auto cur = conn.prepare(sql);
        if (!cur) return std::move(cur).error();
        cur->bind_text(1, collection);
        cur->bind_text(2, definition);
        return cur->run();
    };
    return store_detail::run_migration(reader, ddl, collections, allow_destructive, dry_run);
}

}  // namespace livebase::sqlite
