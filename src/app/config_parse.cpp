// The helpers every part of the TOML loader uses, and the loader's checks of single values.
#include "app/config_parse.hpp"

#include <algorithm>
#include <cctype>
#include <cmath>

namespace livebase::config_detail {

problem config_problem(std::string detail) {
    problem p;
    p.status = 500;
    p.type = "/problems/config";
    p.title = "Invalid configuration";
    p.detail = std::move(detail);
    return p;
}

namespace {

bool is_bare_key(std::string_view k) {
    if (k.empty()) return false;
    return std::all_of(k.begin(), k.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
    });
}

}  // namespace

std::string join_key(std::string_view path, std::string_view key) {
    std::string k;
    if (is_bare_key(key)) {
        k = key;
    } else {
        k = "\"";
        for (char ch : key) {
            if (ch == '"' || ch == '\\') k += '\\';
            if (static_cast<unsigned char>(ch) < 0x20) {
                k += "?";
                continue;
            }
            k += ch;
        }
        k += "\"";
    }
    if (path.empty()) return k;
    return std::string(path) + "." + k;
}

bool is_identifier(std::string_view s) {
    if (s.empty() || s.size() > 63) return false;
    if (!(std::isalpha(static_cast<unsigned char>(s[0])) || s[0] == '_')) return false;
    return std::all_of(s.begin(), s.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_';
    });
}

bool is_kind_name(std::string_view s) {
    if (s.empty() || s.size() > 100) return false;
    if (!std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
    });
}

std::string quote_text(std::string_view s) {
    std::string out = "\"";
    for (char ch : s) {
        if (static_cast<unsigned char>(ch) < 0x20)
            out += '?';
        else
            out += ch;
    }
    out += '"';
    return out;
}

std::string type_name(const tvalue& v) {
    switch (v.type()) {
        case toml::value_t::boolean:
            return "a boolean";
        case toml::value_t::integer:
            return "an integer";
        case toml::value_t::floating:
            return "a float";
        case toml::value_t::string:
            return "a string";
        case toml::value_t::offset_datetime:
        case toml::value_t::local_datetime:
        case toml::value_t::local_date:
        case toml::value_t::local_time:
            return "a date/time";
        case toml::value_t::array:
            return "an array";
        case toml::value_t::table:
            return "a table";
        default:
            return "nothing";
    }
}

std::string join_names(const std::vector<std::string_view>& names) {
    std::string out;
    for (auto n : names) {
        if (!out.empty()) out += ", ";
        out += n;
    }
    return out;
}

std::string duration_text(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
    return std::to_string(d.count()) + "ms";
}

std::vector<entry> ordered_entries(const toml::table& t) {
    struct keyed {
        std::uint_least32_t line, column;
        entry e;
    };
    std::vector<keyed> items;
    items.reserve(t.size());
    for (const auto& [k, v] : t) {
        auto loc = v.location();
        items.push_back({loc.line(), loc.column(), {&k, &v}});
    }
    std::stable_sort(items.begin(), items.end(), [](const keyed& a, const keyed& b) {
        if (a.line != b.line) return a.line < b.line;
        if (a.column != b.column) return a.column < b.column;
        return *a.e.first < *b.e.first;
    });
    std::vector<entry> out;
    out.reserve(items.size());
    for (auto& i : items) out.push_back(i.e);
    return out;
}

// ---- the loader's checks of single values ----------------------------------------------------

void loader::fail(const tvalue& at, std::string_view key, std::string_view message) const {
    std::string msg = file_ + ":" + std::to_string(at.location().line()) + ": ";
    if (!key.empty()) {
        msg += key;
        msg += ": ";
    }
    msg += message;
    throw config_error{std::move(msg)};
}

const toml::table& loader::expect_table(const tvalue& v, std::string_view key) const {
    if (!v.is_table()) fail(v, key, "expected a table, got " + type_name(v));
    return v.as_table();
}

const std::string& loader::expect_string(const tvalue& v, std::string_view key) const {
    if (!v.is_string()) fail(v, key, "expected a string, got " + type_name(v));
    return v.as_string().str;
}

bool loader::expect_bool(const tvalue& v, std::string_view key) const {
    if (!v.is_boolean()) fail(v, key, "expected true or false, got " + type_name(v));
    return v.as_boolean();
}

const toml::array& loader::expect_array(const tvalue& v, std::string_view key) const {
    if (!v.is_array()) fail(v, key, "expected an array, got " + type_name(v));
    return v.as_array();
}

double loader::expect_number(const tvalue& v, std::string_view key) const {
    if (v.is_integer()) return static_cast<double>(v.as_integer());
    if (v.is_floating()) {
        if (!std::isfinite(v.as_floating())) fail(v, key, "must be a finite number");
        return v.as_floating();
    }
    fail(v, key, "expected a number, got " + type_name(v));
}

std::uint64_t loader::expect_count(const tvalue& v, std::string_view key, std::uint64_t min,
                                   std::uint64_t max) const {
    if (!v.is_integer()) fail(v, key, "expected an integer, got " + type_name(v));
    auto n = v.as_integer();
    if (n < 0 || static_cast<std::uint64_t>(n) < min)
        fail(v, key, "must be at least " + std::to_string(min));
    if (static_cast<std::uint64_t>(n) > max) fail(v, key, "must be at most " + std::to_string(max));
    return static_cast<std::uint64_t>(n);
}

std::vector<std::string> loader::expect_string_list(const tvalue& v, std::string_view key) const {
    std::vector<std::string> out;
    for (const auto& item : expect_array(v, key)) {
        out.push_back(expect_string(item, key));
    }
    return out;
}

std::chrono::milliseconds loader::expect_duration(const tvalue& v, std::string_view key,
                                                  std::chrono::milliseconds min) const {
    std::chrono::milliseconds d{0};
    if (v.is_string()) {
        auto r = parse_duration(v.as_string().str);
        if (!r) fail(v, key, r.error().detail);
        d = *r;
    } else if (v.is_integer()) {
        auto n = v.as_integer();
        if (n < 0) fail(v, key, "must not be negative");
        if (n > 1'000'000'000'000) fail(v, key, "is too large");
        d = std::chrono::seconds(n);
    } else {
        fail(v, key,
             "expected a duration such as \"60s\" or an integer number of seconds, got " +
                 type_name(v));
    }
    if (d < min) fail(v, key, "must be at least " + duration_text(min));
    return d;
}

void loader::check_keys(const toml::table& t, std::string_view path,
                        const std::vector<std::string_view>& known) const {
    for (const auto& [k, v] : ordered_entries(t)) {
        if (std::find(known.begin(), known.end(), *k) == known.end())
            fail(*v, join_key(path, *k),
                 "unknown key (expected one of: " + join_names(known) + ")");
    }
}

}  // namespace livebase::config_detail
