#include "store/sqlite/migrate.hpp"

#include "store/schema_plan.hpp"
#include "store/sqlite/sql.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace livebase::sqlite {

namespace {

using store_detail::index_spec;
using store_detail::table_work;
using store_detail::stored_types;
using store_detail::field_names;

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

std::string create_index_sql(const collection_def& c, const index_spec& ix) {
    std::string cols;
    for (const auto& col : ix.columns) cols += (cols.empty() ? "" : ", ") + quote_ident(col);
    return std::string(ix.unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ") + quote_ident(ix.name) + " ON " +
           quote_ident(table_name(c.name)) + " (" + cols + ")";
}

result<void> apply(connection& conn, const table_work& w) {
    const auto& c = *w.c;
    std::string table = quote_ident(table_name(c.name));
    if (w.create) {
        if (auto r = conn.exec(create_table_sql(c)); !r) return r;
    }
    for (const auto& name : w.drop_indexes)
        if (auto r = conn.exec("DROP INDEX " + quote_ident(name)); !r) return r;
    for (const auto& col : w.drop_columns)
        if (auto r = conn.exec("ALTER TABLE " + table + " DROP COLUMN " + quote_ident(col)); !r) return r;
    for (const auto* f : w.add_columns) {
        std::string sql = "ALTER TABLE " + table + " ADD COLUMN " + quote_ident(field_column(f->name)) + " ";
        sql += sql_type(f->type);
        if (auto r = conn.exec(sql); !r) return r;
    }
    for (const auto& ix : w.create_indexes) {
        if (conn.exec(create_index_sql(c, ix))) continue;
        if (ix.unique && (conn.extended_error() & 0xff) == SQLITE_CONSTRAINT)
            return problem::conflict("Cannot make " + c.name + "." + field_names(ix.columns) +
                                     " unique: some records share a value.");
        return problem::internal();
    }
    std::string sql =
        "INSERT INTO _livebase_schema (collection, definition) VALUES (?1, ?2)"
        " ON CONFLICT (collection) DO UPDATE SET definition = excluded.definition";
    auto cur = conn.prepare(sql);
    if (!cur) return std::move(cur).error();
    cur->bind_text(1, c.name);
    cur->bind_text(2, store_detail::definition_of(c));
    return cur->run();
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
            "CREATE TABLE IF NOT EXISTS _livebase_meta (key TEXT PRIMARY KEY NOT NULL, value);");
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
    auto stored = read_stored_types(conn);
    if (!stored) return std::move(stored).error();
    store_detail::schema_reader reader{
        [&](const std::string& table) { return table_exists(conn, table); },
        [&](const std::string& table) { return table_columns(conn, table); },
        [&](const std::string& table) { return table_indexes(conn, table); }};
    std::vector<table_work> work;
    auto plan = store_detail::plan_migration(reader, *stored, collections, allow_destructive, dry_run, work);
    if (!plan || dry_run) return plan;
    for (const auto& w : work)
        if (auto r = apply(conn, w); !r) return std::move(r).error();
    return plan;
}

}  // namespace livebase::sqlite
