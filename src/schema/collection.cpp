#include <livebase/schema/collection.hpp>
#include <livebase/schema/validate.hpp>

#include "pattern.hpp"

#include <array>
#include <set>
#include <utility>

namespace livebase {

field_def make_field(std::string name, field_type t, bool required, bool unique) {
    field_def f;
    f.name = std::move(name);
    f.type = t;
    f.required = required;
    f.unique = unique;
    return f;
}

namespace {

constexpr std::array<std::pair<std::string_view, field_type>, 8> k_field_types{{
    {"string", field_type::string},
    {"text", field_type::text},
    {"integer", field_type::integer},
    {"number", field_type::number},
    {"boolean", field_type::boolean},
    {"datetime", field_type::datetime},
    {"json", field_type::json},
    {"ref", field_type::ref},
}};

constexpr std::array<std::pair<std::string_view, access_rule>, 5> k_access_rules{{
    {"public", access_rule::public_},
    {"authenticated", access_rule::authenticated},
    {"owner", access_rule::owner},
    {"admin", access_rule::admin},
    {"nobody", access_rule::nobody},
}};

constexpr std::array<std::pair<std::string_view, async_mode>, 3> k_async_modes{{
    {"allowed", async_mode::allowed},
    {"always", async_mode::always},
    {"never", async_mode::never},
}};

template <class E, std::size_t N>
std::optional<E> enum_from(const std::array<std::pair<std::string_view, E>, N>& table,
                           std::string_view s) noexcept {
    for (const auto& [name, value] : table) {
        if (name == s) return value;
    }
    return std::nullopt;
}

template <class E, std::size_t N>
std::string_view enum_name(const std::array<std::pair<std::string_view, E>, N>& table,
                           E e) noexcept {
    for (const auto& [name, value] : table) {
        if (value == e) return name;
    }
    return "unknown";
}

/// [A-Za-z_][A-Za-z0-9_]{0,62}: safe as an SQL identifier without quoting tricks.
bool is_identifier(std::string_view s) noexcept {
    if (s.empty() || s.size() > 63) return false;
    auto alpha = [](char ch) {
        return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || ch == '_';
    };
    if (!alpha(s[0])) return false;
    for (char ch : s) {
        if (!alpha(ch) && !(ch >= '0' && ch <= '9')) return false;
    }
    return true;
}

bool is_numeric(field_type t) noexcept {
    return t == field_type::integer || t == field_type::number;
}

bool is_textual(field_type t) noexcept {
    return t == field_type::string || t == field_type::text;
}

std::string check_field_name(const std::string& name) {
    const std::string key = "fields." + name;
    if (!is_identifier(name)) {
        return key + ": a field name must match [A-Za-z_][A-Za-z0-9_]{0,62}";
    }
    if (is_managed_field(name)) return key + ": \"" + name + "\" is a server-managed field";
    if (name[0] == '_') return key + ": names starting with '_' are reserved";
    // "__" separates a field from its lookup in query strings (brand__icontains).
    if (name.find("__") != std::string::npos) return key + ": a field name may not contain \"__\"";
    return {};
}

bool is_integral(double d) noexcept {
    return d == static_cast<double>(static_cast<long long>(d));
}

std::string check_bounds(const field_def& f, const std::string& key) {
    if ((f.min || f.max) && !is_numeric(f.type)) {
        return key + (f.min ? ".min" : ".max") + ": only integer and number fields take min/max";
    }
    if (f.type == field_type::integer) {
        // Integer bounds must be exact so comparisons with int64 values never round.
        for (auto [bound, suffix] : {std::pair{f.min, ".min"}, std::pair{f.max, ".max"}}) {
            if (bound && (!(*bound > -9.2e18 && *bound < 9.2e18) || !is_integral(*bound))) {
                return key + suffix + ": must be an integer for an integer field";
            }
        }
    }
    if (f.min && f.max && *f.min > *f.max) return key + ".min: must not exceed max";
    if ((f.min_length || f.max_length) && !is_textual(f.type)) {
        return key + (f.min_length ? ".min_length" : ".max_length") +
               ": only string and text fields take min_length/max_length";
    }
    if (f.min_length && f.max_length && *f.min_length > *f.max_length) {
        return key + ".min_length: must not exceed max_length";
    }
    return {};
}

std::string check_kind_options(field_def& f, const std::string& key) {
    if (!f.pattern.empty()) {
        if (!is_textual(f.type)) return key + ".pattern: only string and text fields take a pattern";
        try {
            f.pattern_re = schema_detail::compile_pattern(f.pattern);
        } catch (const std::regex_error& e) {
            return key + ".pattern: does not compile: " + e.what();
        }
    } else {
        f.pattern_re.reset();
    }
    if (f.type == field_type::ref && f.ref_to.empty()) return key + ".to: a ref field needs `to`";
    if (f.type != field_type::ref && !f.ref_to.empty()) return key + ".to: only ref fields take `to`";
    if (f.unique && (f.type == field_type::json || f.type == field_type::text)) {
        return key + ".unique: json and text fields cannot be unique";
    }
    if (f.read_only && f.write_only) return key + ": read_only and write_only exclude each other";
    return {};
}

// The "owner" rule compares a record's owner with the caller: without an owner column it
// could never allow anyone but admins, which is never what the author meant.
std::string check_owner_rules(const collection_def& c) {
    if (c.owned) return {};
    for (const auto& [action, rule] : c.rules) {
        if (rule == access_rule::owner)
            return "rules." + action + ": the \"owner\" rule needs an owned collection (owned = true)";
    }
    for (const auto& [name, a] : c.actions) {
        if (a.rule == access_rule::owner)
            return "actions." + name + ".rule: the \"owner\" rule needs an owned collection (owned = true)";
    }
    return {};
}

std::string join_messages(const std::vector<std::string>& errors) {
    std::string out;
    for (const auto& e : errors) {
        if (!out.empty()) out += ' ';
        out += e;
    }
    return out;
}

/// Choices and the default are stored in their normalized form so that membership tests
/// compare like with like (e.g. "2026-01-01" becomes "2026-01-01T00:00:00.000Z").
std::string check_values(field_def& f, const std::string& key) {
    field_def without_choices = f;
    without_choices.choices.clear();
    without_choices.required = true;  // a null choice makes no sense
    for (std::size_t i = 0; i < f.choices.size(); ++i) {
        std::vector<std::string> errors;
        auto v = validate_field_value(without_choices, f.choices[i], errors);
        if (!v) return key + ".choices[" + std::to_string(i) + "]: " + join_messages(errors);
        f.choices[i] = std::move(*v);
    }
    if (f.default_value) {
        std::vector<std::string> errors;
        auto v = validate_field_value(f, *f.default_value, errors);
        if (!v) return key + ".default: " + join_messages(errors);
        f.default_value = std::move(*v);
    }
    if (f.required && f.read_only && !f.default_value) {
        return key + ": a required read_only field needs a default (clients cannot set it)";
    }
    return {};
}

std::string check_field(field_def& f) {
    if (auto e = check_field_name(f.name); !e.empty()) return e;
    const std::string key = "fields." + f.name;
    if (auto e = check_bounds(f, key); !e.empty()) return e;
    if (auto e = check_kind_options(f, key); !e.empty()) return e;
    return check_values(f, key);
}

std::string check_indexes(const collection_def& c) {
    for (std::size_t i = 0; i < c.indexes.size(); ++i) {
        const std::string key = "indexes[" + std::to_string(i) + "]";
        if (c.indexes[i].empty()) return key + ": an index needs at least one field";
        std::set<std::string_view> seen;
        for (const auto& name : c.indexes[i]) {
            bool known = c.find_field(name) != nullptr ||
                         (is_managed_field(name) && (name != "owner" || c.owned));
            if (!known) return key + ": unknown field \"" + name + "\"";
            if (!seen.insert(name).second) return key + ": field \"" + name + "\" repeated";
        }
    }
    return {};
}

std::string check_actions(const collection_def& c) {
    for (const auto& [name, a] : c.actions) {
        const std::string key = "actions." + name;
        if (!is_identifier(name)) return key + ": an action name must match [A-Za-z_][A-Za-z0-9_]{0,62}";
        if (!a.name.empty() && a.name != name) return key + ".name: differs from the action's key";
        if (a.methods.empty()) return key + ".methods: needs at least one method";
        for (const auto& m : a.methods) {
            if (m != "GET" && m != "POST") return key + ".methods: only GET and POST are allowed";
        }
    }
    return {};
}

}  // namespace

std::optional<field_type> field_type_from_string(std::string_view s) noexcept {
    return enum_from(k_field_types, s);
}

std::string_view to_string(field_type t) noexcept { return enum_name(k_field_types, t); }

std::optional<access_rule> access_rule_from_string(std::string_view s) noexcept {
    return enum_from(k_access_rules, s);
}

std::string_view to_string(access_rule r) noexcept { return enum_name(k_access_rules, r); }

std::optional<async_mode> async_mode_from_string(std::string_view s) noexcept {
    return enum_from(k_async_modes, s);
}

const field_def* collection_def::find_field(std::string_view field_name) const noexcept {
    for (const auto& f : fields) {
        if (f.name == field_name) return &f;
    }
    return nullptr;
}

access_rule collection_def::rule_for(std::string_view action) const noexcept {
    if (auto it = rules.find(std::string(action)); it != rules.end()) return it->second;
    // Reading is open by default, writing needs a user: the common "public read" API.
    if (action == "list" || action == "retrieve") return access_rule::public_;
    return access_rule::authenticated;
}

async_mode collection_def::async_for(std::string_view action) const noexcept {
    if (auto it = async.find(std::string(action)); it != async.end()) return it->second;
    return async_mode::allowed;
}

bool is_reserved_collection_name(std::string_view name) noexcept {
    return name == "tasks" || name == "auth" || name == "health" || name == "schema" ||
           name == "idempotency_keys" || name == "users" || name == "auth_tokens" ||
           name == "schedules" || name == "task_queues";
}

bool is_managed_field(std::string_view name) noexcept {
    return name == "id" || name == "created" || name == "updated" || name == "version" ||
           name == "owner";
}

std::string finalize(collection_def& c) {
    if (!is_identifier(c.name)) {
        return "name: a collection name must match [A-Za-z_][A-Za-z0-9_]{0,62}, got \"" + c.name +
               "\"";
    }
    if (c.name[0] == '_') return "name: collection names starting with '_' are reserved";
    std::set<std::string_view> seen;
    for (auto& f : c.fields) {
        if (auto e = check_field(f); !e.empty()) return e;
        if (!seen.insert(f.name).second) return "fields." + f.name + ": declared twice";
    }
    if (auto e = check_indexes(c); !e.empty()) return e;
    if (c.page_size < 1) return "page_size: must be at least 1";
    if (c.max_page_size < c.page_size) return "max_page_size: must be at least page_size";
    if (auto e = check_actions(c); !e.empty()) return e;
    return check_owner_rules(c);
}

}  // namespace livebase
