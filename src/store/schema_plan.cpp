#include "store/schema_plan.hpp"

#include "store/tables.hpp"

#include <algorithm>
#include <set>

namespace livebase::store_detail {

namespace {

std::string join(const std::vector<std::string>& v, std::string_view sep) {
    std::string out;
    for (const auto& s : v) {
        if (!out.empty()) out += sep;
        out += s;
    }
    return out;
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

bool same_storage(std::string_view from, std::string_view to) {
    auto plain = [](std::string_view t) { return t == "string" || t == "text"; };
    return plain(from) && plain(to);
}

// Plans one collection. Steps go to `plan`; the work to `w`.
result<void> plan_collection(const schema_reader& reader, const collection_def& c, const stored_types& stored,
                             migration_plan& plan, table_work& w) {
    w.c = &c;
    std::string table = table_name(c.name);
    auto want_indexes = desired_indexes(c);
    if (!want_indexes) return std::move(want_indexes).error();
    auto exists = reader.table_exists(table);
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

    auto columns = reader.table_columns(table);
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

    auto have_indexes = reader.table_indexes(table);
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
        if (!want || want->unique != ix.unique || want->columns != ix.columns) {
            auto step = "drop index " + ix.name + " on " + c.name + " (" + field_names(ix.columns) + ")";
            (c.built_in ? plan.steps : plan.destructive).push_back(std::move(step));
            w.drop_indexes.push_back(ix.name);
        } else if (dropped_column(ix)) {
            // Part of a retype: the indexed column is dropped. Re-created below, silently.
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

}  // namespace

std::string field_names(const std::vector<std::string>& columns) {
    std::vector<std::string> names;
    for (const auto& col : columns) names.push_back(col.rfind("f_", 0) == 0 ? col.substr(2) : col);
    return join(names, ", ");
}

void add_stored_definition(stored_types& out, const std::string& collection, std::string_view definition) {
    auto& types = out[collection];
    auto def = parse_json(definition);
    if (!def || !def->is_object()) return;
    for (const auto& kv : def->get_object())
        if (kv.value().is_string()) types[std::string(kv.key())] = std::string(kv.value().get_string());
}

std::string definition_of(const collection_def& c) {
    json::object def;
    for (const auto& f : c.fields) def[f.name] = to_string(f.type);
    return json::serialize(def);
}

result<migration_plan> plan_migration(const schema_reader& reader, const stored_types& stored,
                                      const std::vector<const collection_def*>& collections,
                                      bool allow_destructive, bool dry_run, std::vector<table_work>& work) {
    migration_plan plan;
    work.assign(collections.size(), table_work{});
    for (std::size_t i = 0; i < collections.size(); ++i) {
        if (auto r = plan_collection(reader, *collections[i], stored, plan, work[i]); !r)
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
    return plan;
}

namespace {

std::string create_index_sql(const ddl_target& ddl, const collection_def& c, const index_spec& ix) {
    std::string cols;
    for (const auto& col : ix.columns) cols += (cols.empty() ? "" : ", ") + quote_ident(col) + ddl.index_order;
    return std::string(ix.unique ? "CREATE UNIQUE INDEX " : "CREATE INDEX ") + quote_ident(ix.name) + " ON " +
           quote_ident(table_name(c.name)) + " (" + cols + ")";
}

result<void> apply(const ddl_target& ddl, const table_work& w) {
    const auto& c = *w.c;
    std::string table = quote_ident(table_name(c.name));
    if (w.create) {
        if (auto r = ddl.exec(ddl.create_table(c)); !r) return r;
    }
    for (const auto& name : w.drop_indexes)
        if (auto r = ddl.exec("DROP INDEX " + quote_ident(name)); !r) return r;
    for (const auto& col : w.drop_columns)
        if (auto r = ddl.exec("ALTER TABLE " + table + " DROP COLUMN " + quote_ident(col)); !r) return r;
    for (const auto* f : w.add_columns) {
        std::string sql = "ALTER TABLE " + table + " ADD COLUMN " + quote_ident(field_column(f->name)) + " ";
        sql += ddl.sql_type(f->type);
        if (auto r = ddl.exec(sql); !r) return r;
    }
    for (const auto& ix : w.create_indexes) {
        if (ddl.exec(create_index_sql(ddl, c, ix))) continue;
        if (ix.unique && ddl.unique_violation())
            return problem::conflict("Cannot make " + c.name + "." + field_names(ix.columns) +
                                     " unique: some records share a value.");
        return problem::internal();
    }
    return ddl.save_definition(c.name, definition_of(c));
}

}  // namespace

result<migration_plan> run_migration(const schema_reader& reader, const ddl_target& ddl,
                                     const std::vector<const collection_def*>& collections,
                                     bool allow_destructive, bool dry_run) {
    auto stored = ddl.read_stored();
    if (!stored) return std::move(stored).error();
    std::vector<table_work> work;
    auto plan = plan_migration(reader, *stored, collections, allow_destructive, dry_run, work);
    if (!plan || dry_run) return plan;
    for (const auto& w : work)
        if (auto r = apply(ddl, w); !r) return std::move(r).error();
    return plan;
}

}  // namespace livebase::store_detail
