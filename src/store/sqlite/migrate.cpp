#include "store/sqlite/migrate.hpp"

#include "store/sqlite/sql.hpp"

#include <algorithm>
#include <map>
#include <set>

namespace livebase::sqlite {

namespace {

struct index_spec {
    std::string name;
    bool unique = false;
    std::vector<std::string> columns;  // unquoted column names, in order
};

// What migrate_schema does to one collection's table.
struct table_work {
    const collection_def* c = nullptr;
    bool create = false;
    std::vector<std::string> drop_indexes;
    std::vector<std::string> drop_columns;
    std::vector<const field_def*> add_columns;
    std::vector<index_spec> create_indexes;
};

std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string out;
    for (const auto& s : v) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
}

// Column names as the user knows them: "f_brand" -> "brand".
std::string field_names(const std::vector<std::string>& columns) {
    std::vector<std::string> names;
    for (const auto& col : columns) names.push_back(col.rfind("f_", 0) == 0 ? col.substr(2) : col);
    return join(names, ", ");
}

std::string describe(const collection_def& c, const index_spec& ix) {
    return std::string(ix.unique ? "create unique index " : "create index ") + ix.name + " on " + c.name +
           " (" + field_names(ix.columns) + ")";
}

result<std::vector<index_spec>> desired_indexes(const collection_def& c) {
    std::vector<index_spec> out;
    for (const auto& f : c.fields)
        if (f.unique) out.push_back({"u_" + c.name + "_" + f.name, true, {field_column(f.name)}});
    for (std::size_t n = 0; n < c.indexes.size(); ++n) {
        index_spec ix{"i_" + c.name + "_" + std::to_string(n), false, {}};
        for (const auto& name : c.indexes[n]) {
            auto col = column_for(c, name);
            if (!col)
                return problem::bad_request("Index " + std::to_string(n) + " of collection " + c.name +
                                            " names the unknown field \"" + name + "\".");
            ix.columns.push_back(*col);
        }
        if (ix.columns.empty())
            return problem::bad_request("Index " + std::to_string(n) + " of collection " + c.name +
                                        " names no field.");
        out.push_back(std::move(ix));
    }
    return out;
}

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

using stored_types = std::map<std::string, std::map<std::string, std::string>>;

result<stored_types> read_stored_types(connection& conn) {
    std::string sql = "SELECT collection, definition FROM _livebase_schema";
    auto cur = conn.prepare(sql);
    if (!cur) return std::move(cur).error();
    stored_types out;
    int rc;
    while ((rc = cur->step()) == SQLITE_ROW) {
        auto& types = out[cur->column_text(0)];
        auto def = parse_json(cur->column_text(1));
        if (!def || !def->is_object()) continue;
        for (const auto& kv : def->get_object())
            if (kv.value().is_string()) types[std::string(kv.key())] = std::string(kv.value().get_string());
    }
    if (rc != SQLITE_DONE) return conn.fail("reading the schema failed", sql);
    return out;
}

bool same_storage(std::string_view from, std::string_view to) {
    auto plain = [](std::string_view t) { return t == "string" || t == "text"; };
    return plain(from) && plain(to);
}

// Plans one collection. Steps go to `plan`; the work to `w`.
result<void> plan_collection(connection& conn, const collection_def& c, const stored_types& stored,
                             migration_plan& plan, table_work& w) {
    w.c = &c;
    std::string table = table_name(c.name);
    auto want_indexes = desired_indexes(c);
    if (!want_indexes) return std::move(want_indexes).error();
    auto exists = table_exists(conn, table);
    if (!exists) return std::move(exists).error();
    if (!*exists) {
        w.create = true;
        plan.steps.push_back("create table " + c.name);
        for (auto& ix : *want_indexes) {
            plan.steps.push_back(describe(c, ix));
            w.create_indexes.push_back(std::move(ix));
        }
        return {};
    }

    auto columns = table_columns(conn, table);
    if (!columns) return std::move(columns).error();
    std::set<std::string> have(columns->begin(), columns->end());
    const std::map<std::string, std::string>* old_types = nullptr;
    if (auto it = stored.find(c.name); it != stored.end()) old_types = &it->second;

    for (const auto& f : c.fields) {
        std::string col = field_column(f.name);
        std::string type(to_string(f.type));
        if (!have.count(col)) {
            plan.steps.push_back("add field " + c.name + "." + f.name + " (" + type + ")");
            w.add_columns.push_back(&f);
            continue;
        }
        if (!old_types) continue;
        auto it = old_types->find(f.name);
        if (it == old_types->end() || it->second == type) continue;
        if (same_storage(it->second, type)) {
            plan.steps.push_back("retype field " + c.name + "." + f.name + " from " + it->second + " to " +
                                 type + " (data kept)");
            continue;
        }
        plan.destructive.push_back("retype field " + c.name + "." + f.name + " from " + it->second + " to " +
                                   type + " (its data is dropped)");
        w.drop_columns.push_back(col);
        w.add_columns.push_back(&f);
    }
    for (const auto& col : *columns) {
        if (col.rfind("f_", 0) != 0 || field_for_column(c, col)) continue;
        plan.destructive.push_back("drop field " + c.name + "." + col.substr(2) + " (its data is lost)");
        w.drop_columns.push_back(col);
    }

    auto have_indexes = table_indexes(conn, table);
    if (!have_indexes) return std::move(have_indexes).error();
    auto find_wanted = [&](const std::string& name) -> const index_spec* {
        for (const auto& ix : *want_indexes)
            if (ix.name == name) return &ix;
        return nullptr;
    };
    auto dropped_column = [&](const index_spec& ix) {
        return std::any_of(ix.columns.begin(), ix.columns.end(), [&](const std::string& col) {
            return std::find(w.drop_columns.begin(), w.drop_columns.end(), col) != w.drop_columns.end();
        });
    };
    std::set<std::string> kept;
    for (const auto& ix : *have_indexes) {
        const auto* want = find_wanted(ix.name);
        if (!want) {
            plan.destructive.push_back("drop index " + ix.name + " on " + c.name + " (" +
                                       field_names(ix.columns) + ")");
            w.drop_indexes.push_back(ix.name);
        } else if (want->unique != ix.unique || want->columns != ix.columns) {
            plan.destructive.push_back("drop index " + ix.name + " on " + c.name + " (" +
                                       field_names(ix.columns) + ")");
            w.drop_indexes.push_back(ix.name);
        } else if (dropped_column(ix)) {
            // Part of a retype: SQLite cannot drop an indexed column. Re-created below, silently.
            w.drop_indexes.push_back(ix.name);
            w.create_indexes.push_back(*want);
            kept.insert(ix.name);
        } else {
            kept.insert(ix.name);
        }
    }
    for (const auto& ix : *want_indexes) {
        if (kept.count(ix.name)) continue;
        plan.steps.push_back(describe(c, ix));
        w.create_indexes.push_back(ix);
    }
    return {};
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
    json::object def;
    for (const auto& f : c.fields) def[f.name] = to_string(f.type);
    std::string sql =
        "INSERT INTO _livebase_schema (collection, definition) VALUES (?1, ?2)"
        " ON CONFLICT (collection) DO UPDATE SET definition = excluded.definition";
    auto cur = conn.prepare(sql);
    if (!cur) return std::move(cur).error();
    cur->bind_text(1, c.name);
    cur->bind_text(2, json::serialize(def));
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
    migration_plan plan;
    std::vector<table_work> work(collections.size());
    for (std::size_t i = 0; i < collections.size(); ++i) {
        if (auto r = plan_collection(conn, *collections[i], *stored, plan, work[i]); !r)
            return std::move(r).error();
    }
    if (dry_run) return plan;
    if (!plan.destructive.empty() && !allow_destructive) {
        auto p = problem::conflict("The schema change needs --allow-destructive: " + join(plan.destructive, "; ") +
                                   ".");
        json::array steps;
        for (const auto& s : plan.destructive) steps.emplace_back(s);
        p.extra["destructive"] = std::move(steps);
        return p;
    }
    for (const auto& w : work)
        if (auto r = apply(conn, w); !r) return std::move(r).error();
    return plan;
}

}  // namespace livebase::sqlite
