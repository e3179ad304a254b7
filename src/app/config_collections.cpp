// The definitions of config.md: [collections] (fields, indexes, rules, async modes, actions)
// and [endpoints]. Each collection is read whole, then the references between collections are
// checked and finalize() has the last word, its message pointed back at the file's line.
#include <algorithm>
#include <charconv>
#include <cmath>
#include <optional>
#include <sstream>

#include "app/config_parse.hpp"

namespace livebase::config_detail {

void loader::read_collections(const toml::table& top, config& cfg) const {
    std::vector<const tvalue*> coll_values;
    if (auto it = top.find("collections"); it != top.end()) {
        for (const auto& [name, cv] : ordered_entries(expect_table(it->second, "collections"))) {
            auto path = join_key("collections", *name);
            if (!is_identifier(*name))
                fail(*cv, path,
                     "a collection name must be an identifier (letters, digits, '_'; not "
                     "starting with a digit; at most 63 characters)");
            if (is_reserved_collection_name(*name))
                fail(*cv, path, "\"" + *name + "\" is reserved for a built-in endpoint");
            cfg.collections.push_back(read_collection(*name, *cv, path));
            coll_values.push_back(cv);
        }
    }
    for (std::size_t i = 0; i < cfg.collections.size(); ++i) {
        auto& c = cfg.collections[i];
        const auto path = join_key("collections", c.name);
        for (const auto& f : c.fields) {
            if (f.type != field_type::ref) continue;
            bool found = std::any_of(cfg.collections.begin(), cfg.collections.end(),
                                     [&](const collection_def& o) { return o.name == f.ref_to; });
            if (!found) {
                const auto& fv = coll_values[i]->as_table().at("fields").as_table().at(f.name);
                fail(fv.as_table().at("to"), join_key(path + ".fields", f.name) + ".to",
                     "names no collection " + quote_text(f.ref_to));
            }
        }
        auto msg = finalize(c);
        if (!msg.empty()) fail_definition(*coll_values[i], path, msg);
    }
}

void loader::read_endpoints(const toml::table& top, config& cfg) const {
    if (auto it = top.find("endpoints"); it != top.end()) {
        for (const auto& [name, ev] : ordered_entries(expect_table(it->second, "endpoints"))) {
            auto path = join_key("endpoints", *name);
            if (!is_identifier(*name))
                fail(*ev, path, "an endpoint name must be an identifier (letters, digits, '_')");
            auto e = read_endpoint(*name, *ev, path);
            for (const auto& other : cfg.endpoints) {
                if (other.method == e.method && other.path == e.path)
                    fail(*ev, path,
                         "same method and path as endpoints." + other.name + " (" + e.method + " " +
                             e.path + ")");
            }
            cfg.endpoints.push_back(std::move(e));
        }
    }
}

access_rule loader::read_rule(const tvalue& v, std::string_view key) const {
    const auto& s = expect_string(v, key);
    auto r = access_rule_from_string(s);
    if (!r)
        fail(v, key,
             "unknown rule " + quote_text(s) +
                 " (expected one of: public, authenticated, owner, admin, nobody)");
    return *r;
}

json::value loader::to_json(const tvalue& v, std::string_view key, int depth) const {
    if (depth > 32) fail(v, key, "nested too deeply");
    // Dates and times become strings in toml11's own spelling of them.
    auto as_text = [](const auto& date_or_time) {
        std::ostringstream os;
        os << date_or_time;
        return json::value(json::string(os.str()));
    };
    switch (v.type()) {
        case toml::value_t::boolean:
            return v.as_boolean();
        case toml::value_t::integer:
            return static_cast<std::int64_t>(v.as_integer());
        case toml::value_t::floating:
            if (!std::isfinite(v.as_floating())) fail(v, key, "inf and nan are not JSON numbers");
            return v.as_floating();
        case toml::value_t::string:
            return json::string(v.as_string().str);
        case toml::value_t::offset_datetime:
            return as_text(v.as_offset_datetime());
        case toml::value_t::local_datetime:
            return as_text(v.as_local_datetime());
        case toml::value_t::local_date:
            return as_text(v.as_local_date());
        case toml::value_t::local_time:
            return as_text(v.as_local_time());
        case toml::value_t::array: {
            json::array a;
            for (const auto& item : v.as_array()) a.push_back(to_json(item, key, depth + 1));
            return a;
        }
        case toml::value_t::table: {
            json::object o;
            for (const auto& [k, item] : ordered_entries(v.as_table()))
                o[*k] = to_json(*item, join_key(key, *k), depth + 1);
            return o;
        }
        default:
            fail(v, key, "expected a value");
    }
}

field_def loader::read_field(const std::string& name, const tvalue& v,
                             const std::string& path) const {
    const auto& t = expect_table(v, path);
    check_keys(t, path,
               {"type", "required", "default", "unique", "min", "max", "min_length", "max_length",
                "choices", "pattern", "read_only", "write_only", "to", "on_delete"});
    field_def f;
    f.name = name;
    auto type_it = t.find("type");
    if (type_it == t.end())
        fail(v, path,
             "missing key \"type\" (string, text, integer, number, boolean, datetime, "
             "json or ref)");
    {
        const auto& s = expect_string(type_it->second, path + ".type");
        auto ft = field_type_from_string(s);
        if (!ft)
            fail(type_it->second, path + ".type",
                 "unknown field type " + quote_text(s) +
                     " (expected one of: string, text, integer, number, boolean, datetime, json, "
                     "ref)");
        f.type = *ft;
    }
    const bool numeric = f.type == field_type::integer || f.type == field_type::number;
    const bool textual = f.type == field_type::string || f.type == field_type::text;
    auto not_for_type = [&](const tvalue& at, std::string_view key, std::string_view which) {
        fail(at, path + "." + std::string(key),
             std::string(key) + " applies only to " + std::string(which) +
                 " fields (this field is " + std::string(to_string(f.type)) + ")");
    };

    for (const auto& [k, item] : ordered_entries(t)) {
        const std::string key = path + "." + *k;
        const tvalue& x = *item;
        if (*k == "type") continue;
        if (*k == "required")
            f.required = expect_bool(x, key);
        else if (*k == "unique")
            f.unique = expect_bool(x, key);
        else if (*k == "read_only")
            f.read_only = expect_bool(x, key);
        else if (*k == "write_only")
            f.write_only = expect_bool(x, key);
        else if (*k == "default")
            f.default_value = to_json(x, key);
        else if (*k == "min" || *k == "max") {
            if (!numeric) not_for_type(x, *k, "integer and number");
            (*k == "min" ? f.min : f.max) = expect_number(x, key);
        } else if (*k == "min_length" || *k == "max_length") {
            if (!textual) not_for_type(x, *k, "string and text");
            (*k == "min_length" ? f.min_length : f.max_length) = expect_count(x, key, 0);
        } else if (*k == "choices") {
            const auto& arr = expect_array(x, key);
            if (arr.empty()) fail(x, key, "must not be empty (leave it out to allow any value)");
            for (const auto& c : arr) f.choices.push_back(to_json(c, key));
        } else if (*k == "pattern") {
            if (!textual) not_for_type(x, *k, "string and text");
            f.pattern = expect_string(x, key);
            if (f.pattern.size() > 1000) fail(x, key, "is longer than 1000 characters");
        } else if (*k == "to") {
            if (f.type != field_type::ref) not_for_type(x, *k, "ref");
            f.ref_to = expect_string(x, key);
            if (f.ref_to.empty()) fail(x, key, "must name a collection");
        } else if (*k == "on_delete") {
            if (f.type != field_type::ref) not_for_type(x, *k, "ref");
            const auto& s = expect_string(x, key);
            if (s == "restrict")
                f.on_delete = on_delete_policy::restrict;
            else if (s == "cascade")
                f.on_delete = on_delete_policy::cascade;
            else if (s == "null")
                f.on_delete = on_delete_policy::set_null;
            else
                fail(x, key,
                     "expected \"restrict\", \"cascade\" or \"null\", got " + quote_text(s));
        }
    }
    if (f.type == field_type::ref && f.ref_to.empty())
        fail(v, path, "a ref field needs `to` (the referenced collection)");
    if (f.min && f.max && *f.min > *f.max) fail(t.at("min"), path + ".min", "is greater than max");
    if (f.min_length && f.max_length && *f.min_length > *f.max_length)
        fail(t.at("min_length"), path + ".min_length", "is greater than max_length");
    if (f.read_only && f.write_only)
        fail(t.at("write_only"), path + ".write_only",
             "a field cannot be read_only and write_only");
    if (f.read_only && f.required && !f.default_value)
        fail(t.at("required"), path + ".required",
             "a read_only field cannot be required without a default (clients cannot set it)");
    return f;
}

action_def loader::read_action(const std::string& name, const tvalue& v,
                               const std::string& path) const {
    const auto& t = expect_table(v, path);
    check_keys(t, path, {"detail", "task", "rule", "methods"});
    action_def a;
    a.name = name;
    if (auto it = t.find("detail"); it != t.end())
        a.detail = expect_bool(it->second, path + ".detail");
    if (auto it = t.find("task"); it != t.end()) {
        a.task = expect_string(it->second, path + ".task");
        if (!is_kind_name(a.task))
            fail(it->second, path + ".task",
                 "must name a task kind (letters, digits, '_', '-', '.')");
    }
    if (auto it = t.find("rule"); it != t.end()) a.rule = read_rule(it->second, path + ".rule");
    if (auto it = t.find("methods"); it != t.end()) {
        auto key = path + ".methods";
        a.methods.clear();
        for (const auto& m : expect_array(it->second, key)) {
            const auto& s = expect_string(m, key);
            if (s != "GET" && s != "POST")
                fail(m, key, "expected \"GET\" or \"POST\", got " + quote_text(s));
            if (std::find(a.methods.begin(), a.methods.end(), s) != a.methods.end())
                fail(m, key, "lists " + s + " twice");
            a.methods.push_back(s);
        }
        if (a.methods.empty()) fail(it->second, key, "must list at least one method");
    }
    return a;
}

collection_def loader::read_collection(const std::string& name, const tvalue& v,
                                       const std::string& path) const {
    const auto& t = expect_table(v, path);
    check_keys(
        t, path,
        {"owned", "fields", "indexes", "rules", "async", "page_size", "max_page_size", "actions"});
    collection_def c;
    c.name = name;
    static const std::vector<std::string_view> k_actions = {"list", "retrieve", "create", "update",
                                                            "delete"};
    // Fields first: indexes refer to them whatever the key order.
    if (auto it = t.find("fields"); it != t.end()) {
        auto fpath = path + ".fields";
        for (const auto& [fname, fv] : ordered_entries(expect_table(it->second, fpath))) {
            auto key = join_key(fpath, *fname);
            if (!is_identifier(*fname))
                fail(*fv, key,
                     "a field name must be an identifier (letters, digits, '_'; not starting "
                     "with a digit; at most 63 characters)");
            if (is_managed_field(*fname))
                fail(*fv, key, "\"" + *fname + "\" is a server-managed field name");
            c.fields.push_back(read_field(*fname, *fv, key));
        }
    }
    for (const auto& [k, item] : ordered_entries(t)) {
        const std::string key = path + "." + *k;
        const tvalue& x = *item;
        if (*k == "fields") continue;
        if (*k == "owned")
            c.owned = expect_bool(x, key);
        else if (*k == "page_size")
            c.page_size = expect_count(x, key, 1);
        else if (*k == "max_page_size")
            c.max_page_size = expect_count(x, key, 1);
        else if (*k == "indexes") {
            for (const auto& idx : expect_array(x, key)) {
                auto names = expect_string_list(idx, key);
                if (names.empty()) fail(idx, key, "an index must list at least one field");
                for (const auto& n : names) {
                    if (!c.find_field(n) && !is_managed_field(n))
                        fail(idx, key, "index names unknown field " + quote_text(n));
                }
                c.indexes.push_back(std::move(names));
            }
        } else if (*k == "rules" || *k == "async") {
            const auto& rt = expect_table(x, key);
            check_keys(rt, key, k_actions);
            for (const auto& [action, rv] : ordered_entries(rt)) {
                auto akey = join_key(key, *action);
                if (*k == "rules") {
                    c.rules[*action] = read_rule(*rv, akey);
                } else {
                    const auto& s = expect_string(*rv, akey);
                    auto m = async_mode_from_string(s);
                    if (!m)
                        fail(*rv, akey,
                             "unknown async mode " + quote_text(s) +
                                 " (expected one of: always, allowed, never)");
                    c.async[*action] = *m;
                }
            }
        } else if (*k == "actions") {
            for (const auto& [aname, av] : ordered_entries(expect_table(x, key))) {
                auto akey = join_key(key, *aname);
                if (!is_identifier(*aname))
                    fail(*av, akey, "an action name must be an identifier (letters, digits, '_')");
                c.actions[*aname] = read_action(*aname, *av, akey);
            }
        }
    }
    if (c.page_size > c.max_page_size)
        fail(t.count("page_size") ? t.at("page_size") : v, path + ".page_size",
             "is greater than max_page_size (" + std::to_string(c.max_page_size) + ")");
    return c;
}

endpoint_def loader::read_endpoint(const std::string& name, const tvalue& v,
                                   const std::string& path) const {
    const auto& t = expect_table(v, path);
    check_keys(t, path, {"path", "method", "task", "rule"});
    endpoint_def e;
    e.name = name;
    auto pit = t.find("path");
    if (pit == t.end()) fail(v, path, "missing key \"path\"");
    e.path = expect_string(pit->second, path + ".path");
    if (e.path.empty() || e.path[0] != '/')
        fail(pit->second, path + ".path", "must start with \"/\"");
    for (char ch : e.path) {
        auto u = static_cast<unsigned char>(ch);
        if (u <= 0x20 || u == 0x7f || ch == '?' || ch == '#')
            fail(pit->second, path + ".path", "must be a plain URL path (no spaces, ? or #)");
    }
    if (auto it = t.find("method"); it != t.end()) {
        e.method = expect_string(it->second, path + ".method");
        static const std::vector<std::string_view> k_methods = {"GET", "POST", "PUT", "PATCH",
                                                                "DELETE"};
        if (std::find(k_methods.begin(), k_methods.end(), e.method) == k_methods.end())
            fail(it->second, path + ".method",
                 "expected one of: " + join_names(k_methods) + ", got " + quote_text(e.method));
    }
    auto tit = t.find("task");
    if (tit == t.end()) fail(v, path, "missing key \"task\" (the task kind it runs)");
    e.task = expect_string(tit->second, path + ".task");
    if (!is_kind_name(e.task))
        fail(tit->second, path + ".task", "must name a task kind (letters, digits, '_', '-', '.')");
    if (auto it = t.find("rule"); it != t.end()) e.rule = read_rule(it->second, path + ".rule");
    return e;
}

void loader::fail_definition(const tvalue& collection, const std::string& path,
                             const std::string& message) const {
    auto colon = message.find(": ");
    if (colon == std::string::npos || message.find(' ') < colon) fail(collection, path, message);
    std::string_view rel(message.data(), colon);
    const tvalue* at = &collection;
    std::string key = path;
    if (rel != "name") {
        key += ".";
        key += rel;
        // Walk "fields.model.default" / "indexes[0]" as far as the file has those keys.
        std::string_view rest = rel;
        while (!rest.empty()) {
            auto dot = rest.find('.');
            std::string_view seg = rest.substr(0, dot);
            rest = dot == std::string_view::npos ? std::string_view() : rest.substr(dot + 1);
            std::optional<std::size_t> index;
            if (auto br = seg.find('['); br != std::string_view::npos) {
                std::size_t n = 0;
                auto digits = seg.substr(br + 1);
                auto [p, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
                if (ec == std::errc() && p < digits.data() + digits.size() && *p == ']') index = n;
                seg = seg.substr(0, br);
            }
            if (!at->is_table()) break;
            auto it = at->as_table().find(std::string(seg));
            if (it == at->as_table().end()) break;
            at = &it->second;
            if (index && at->is_array() && *index < at->as_array().size())
                at = &at->as_array()[*index];
        }
    }
    fail(*at, key, message.substr(colon + 2));
}

}  // namespace livebase::config_detail
