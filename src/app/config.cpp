// The TOML loader of config.md. toml11 parses; this file walks the tree with the key path in
// hand so that every error reads "file:line: dotted.key: what is wrong". Unknown keys are errors
// everywhere: a typo must not silently fall back to a default.
#include <algorithm>
#include <cerrno>
#include <charconv>
#include <cmath>
#include <cstring>
#include <fstream>
#include <limits>
#include <livebase/app/config.hpp>
#include <livebase/core/client_address.hpp>
#include <sstream>
#include <toml.hpp>

namespace livebase {

namespace {

using tvalue = toml::value;

/// Raised inside the loader only; load_config_string turns it into a problem.
struct config_error {
    std::string message;
};

problem config_problem(std::string detail) {
    problem p;
    p.status = 500;
    p.type = "/problems/config";
    p.title = "Invalid configuration";
    p.detail = std::move(detail);
    return p;
}

bool is_bare_key(std::string_view k) {
    if (k.empty()) return false;
    return std::all_of(k.begin(), k.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-';
    });
}

/// Appends `key` to a dotted path, quoting it the way TOML would when it is not a bare key.
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

/// Task kind names are also used in URLs and logs; allow dots and dashes besides identifiers.
bool is_kind_name(std::string_view s) {
    if (s.empty() || s.size() > 100) return false;
    if (!std::isalnum(static_cast<unsigned char>(s[0]))) return false;
    return std::all_of(s.begin(), s.end(), [](char ch) {
        return std::isalnum(static_cast<unsigned char>(ch)) || ch == '_' || ch == '-' || ch == '.';
    });
}

std::string_view trim(std::string_view s) {
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.front()))) s.remove_prefix(1);
    while (!s.empty() && std::isspace(static_cast<unsigned char>(s.back()))) s.remove_suffix(1);
    return s;
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

// ---- scalar settings shared by the file and the environment --------------------------------

enum class kind { text, listen, base_path, count, size, duration, rate, boolean, list, networks };

struct parsed_value {
    std::string text;
    std::uint64_t number = 0;
    std::chrono::milliseconds duration{0};
    rate per{};
    bool flag = false;
    std::vector<std::string> list;
    std::string host;
    std::uint16_t port = 0;
};

struct setting {
    std::string_view section;
    std::string_view key;  ///< may be dotted ("throttle.anonymous")
    kind k;
    std::uint64_t min;  ///< count/size: smallest value; duration: smallest milliseconds
    std::uint64_t max;  ///< count only
    void (*apply)(config&, parsed_value&&);
};

constexpr std::uint64_t k_unbounded = std::numeric_limits<std::uint64_t>::max();
constexpr std::uint64_t k_max_threads = 1024;

// clang-format off
const setting k_settings[] = {
    {"server", "listen", kind::listen, 0, 0,
     [](config& c, parsed_value&& v) { c.server.host = std::move(v.host); c.server.port = v.port; }},
    {"server", "threads", kind::count, 0, k_max_threads,
     [](config& c, parsed_value&& v) { c.server.threads = v.number; }},
    {"server", "base_path", kind::base_path, 0, 0,
     [](config& c, parsed_value&& v) { c.server.base_path = std::move(v.text); }},
    {"server", "max_body", kind::size, 1, 0,
     [](config& c, parsed_value&& v) { c.server.max_body = v.number; }},
    {"server", "max_connections", kind::count, 1, k_unbounded,
     [](config& c, parsed_value&& v) { c.server.max_connections = v.number; }},
    {"server", "idle_timeout", kind::duration, 1, 0,
     [](config& c, parsed_value&& v) { c.server.idle_timeout = v.duration; }},
    {"server", "shutdown_grace", kind::duration, 0, 0,
     [](config& c, parsed_value&& v) { c.server.shutdown_grace = v.duration; }},
    {"server", "drain_period", kind::duration, 0, 0,
     [](config& c, parsed_value&& v) { c.server.drain_period = v.duration; }},
    {"server", "cors_origins", kind::list, 0, 0,
     [](config& c, parsed_value&& v) { c.server.cors_origins = std::move(v.list); }},
    {"server", "max_header", kind::size, 1, 0,
     [](config& c, parsed_value&& v) { c.server.max_header = v.number; }},
    {"server", "max_uri", kind::size, 1, 0,
     [](config& c, parsed_value&& v) { c.server.max_uri = v.number; }},
    {"server", "read_timeout", kind::duration, 1, 0,
     [](config& c, parsed_value&& v) { c.server.read_timeout = v.duration; }},
    {"server", "pipeline_limit", kind::count, 1, k_unbounded,
     [](config& c, parsed_value&& v) { c.server.pipeline_limit = v.number; }},
    {"server", "console_dir", kind::text, 0, 0,
     [](config& c, parsed_value&& v) { c.server.console_dir = std::move(v.text); }},
    {"server", "trusted_proxies", kind::networks, 0, 0,
     [](config& c, parsed_value&& v) { c.server.trusted_proxies = std::move(v.list); }},
    {"server", "secure_cookie", kind::boolean, 0, 0,
     [](config& c, parsed_value&& v) { c.server.secure_cookie = v.flag; }},
    {"server", "metrics_token", kind::text, 0, 0,
     [](config& c, parsed_value&& v) { c.server.metrics_token = std::move(v.text); }},

    {"storage", "url", kind::text, 0, 0,
     [](config& c, parsed_value&& v) { c.storage.url = std::move(v.text); }},
    {"storage", "readers", kind::count, 0, 64,
     [](config& c, parsed_value&& v) { c.storage.readers = v.number; }},
    {"storage", "max_size", kind::size, 0, 0,
     [](config& c, parsed_value&& v) { c.storage.max_size = v.number; }},
    {"storage", "quick_check", kind::boolean, 0, 0,
     [](config& c, parsed_value&& v) { c.storage.quick_check = v.flag; }},
    {"storage", "connect_timeout", kind::duration, 100, 0,
     [](config& c, parsed_value&& v) { c.storage.connect_timeout = v.duration; }},
    {"storage", "statement_timeout", kind::duration, 100, 0,
     [](config& c, parsed_value&& v) { c.storage.statement_timeout = v.duration; }},
    {"storage", "keepalives", kind::boolean, 0, 0,
     [](config& c, parsed_value&& v) { c.storage.keepalives = v.flag; }},
    {"storage", "startup_wait", kind::duration, 0, 0,
     [](config& c, parsed_value&& v) { c.storage.startup_wait = v.duration; }},

    {"realtime", "history", kind::count, 0, k_unbounded,
     [](config& c, parsed_value&& v) { c.realtime.history = v.number; }},
    {"realtime", "history_age", kind::duration, 0, 0,
     [](config& c, parsed_value&& v) { c.realtime.history_age = v.duration; }},
    {"realtime", "node_timeout", kind::duration, 1000, 0,
     [](config& c, parsed_value&& v) { c.realtime.node_timeout = v.duration; }},
    {"realtime", "send_queue", kind::size, 1, 0,
     [](config& c, parsed_value&& v) { c.realtime.send_queue = v.number; }},
    {"realtime", "max_message", kind::size, 1, 0,
     [](config& c, parsed_value&& v) { c.realtime.max_message = v.number; }},
    {"realtime", "max_subscriptions", kind::count, 1, k_unbounded,
     [](config& c, parsed_value&& v) { c.realtime.max_subscriptions = v.number; }},
    {"realtime", "deflate", kind::boolean, 0, 0,
     [](config& c, parsed_value&& v) { c.realtime.deflate = v.flag; }},
    {"realtime", "deflate_threshold", kind::size, 0, 0,
     [](config& c, parsed_value&& v) { c.realtime.deflate_threshold = v.number; }},
    {"realtime", "deflate_level", kind::count, 1, 9,
     [](config& c, parsed_value&& v) { c.realtime.deflate_level = v.number; }},

    {"tasks", "workers", kind::count, 0, k_max_threads,
     [](config& c, parsed_value&& v) { c.tasks.workers = v.number; }},
    {"tasks", "retention", kind::duration, 0, 0,
     [](config& c, parsed_value&& v) { c.tasks.retention = v.duration; }},
    {"tasks", "max_attempts", kind::count, 1, k_unbounded,
     [](config& c, parsed_value&& v) { c.tasks.max_attempts = v.number; }},
    {"tasks", "timeout", kind::duration, 1, 0,
     [](config& c, parsed_value&& v) { c.tasks.timeout = v.duration; }},
    {"tasks", "lease", kind::duration, 1, 0,
     [](config& c, parsed_value&& v) { c.tasks.lease = v.duration; }},
    {"tasks", "prefetch", kind::count, 0, 10000,
     [](config& c, parsed_value&& v) { c.tasks.prefetch = v.number; }},
    {"tasks", "max_pending_per_user", kind::count, 0, k_unbounded,
     [](config& c, parsed_value&& v) { c.tasks.max_pending_per_user = v.number; }},
    {"tasks", "max_pending_per_address", kind::count, 0, k_unbounded,
     [](config& c, parsed_value&& v) { c.tasks.max_pending_per_address = v.number; }},

    {"auth", "signup", kind::boolean, 0, 0,
     [](config& c, parsed_value&& v) { c.auth.signup = v.flag; }},
    {"auth", "token_ttl", kind::duration, 1, 0,
     [](config& c, parsed_value&& v) { c.auth.token_ttl = v.duration; }},
    {"auth", "throttle.anonymous", kind::rate, 0, 0,
     [](config& c, parsed_value&& v) { c.auth.throttle_anonymous = v.per; }},
    {"auth", "throttle.user", kind::rate, 0, 0,
     [](config& c, parsed_value&& v) { c.auth.throttle_user = v.per; }},
    {"auth", "throttle.login", kind::rate, 0, 0,
     [](config& c, parsed_value&& v) { c.auth.throttle_login = v.per; }},
    {"auth", "throttle.login_address", kind::rate, 0, 0,
     [](config& c, parsed_value&& v) { c.auth.throttle_login_address = v.per; }},
};
// clang-format on

const setting* find_setting(std::string_view section, std::string_view key) {
    for (const auto& s : k_settings) {
        if (s.section == section && s.key == key) return &s;
    }
    return nullptr;
}

std::vector<std::string_view> keys_of_section(std::string_view section) {
    std::vector<std::string_view> out;
    for (const auto& s : k_settings) {
        if (s.section == section) out.push_back(s.key);
    }
    return out;
}

std::string duration_text(std::chrono::milliseconds d) {
    if (d.count() % 1000 == 0) return std::to_string(d.count() / 1000) + "s";
    return std::to_string(d.count()) + "ms";
}

/// Range checks common to both sources. Returns an error message or "".
std::string check_range(const setting& s, const parsed_value& v) {
    switch (s.k) {
        case kind::count:
            if (v.number < s.min) return "must be at least " + std::to_string(s.min);
            if (v.number > s.max) return "must be at most " + std::to_string(s.max);
            if (v.number > std::numeric_limits<std::size_t>::max()) return "is too large";
            return {};
        case kind::size:
            if (v.number < s.min) return "must be at least " + std::to_string(s.min) + " byte(s)";
            return {};
        case kind::duration:
            if (static_cast<std::uint64_t>(v.duration.count()) < s.min)
                return "must be at least " + duration_text(std::chrono::milliseconds(s.min));
            return {};
        case kind::rate:  // parse_rate refuses "0/min"; a count of 0 is "unlimited"
            return {};
        case kind::text:
            if (v.text.empty()) return "must not be empty";
            return {};
        case kind::list:
            for (const auto& item : v.list) {
                if (trim(item).empty()) return "must not contain empty strings";
            }
            return {};
        case kind::networks:
            if (auto set = address_set::parse(v.list); !set) return set.error().detail;
            return {};
        default:
            return {};
    }
}

std::string normalize_base_path(std::string_view text, std::string& out) {
    if (text.empty() || text[0] != '/') return "must start with \"/\"";
    for (char ch : text) {
        auto u = static_cast<unsigned char>(ch);
        if (u <= 0x20 || u == 0x7f || ch == '?' || ch == '#' || ch == '{' || ch == '}' ||
            ch == ':' || ch == '%' || ch == '\\')
            return "must be a plain URL path (no spaces, ?, #, :, %, braces)";
    }
    if (text.find("//") != std::string_view::npos) return "must not contain \"//\"";
    out = std::string(text);
    while (out.size() > 1 && out.back() == '/') out.pop_back();
    return {};
}

/// Converts text (an environment variable, or a TOML string for durations/sizes/rates) per the
/// setting's kind. Returns an error message or "".
std::string parse_text(const setting& s, std::string_view text, parsed_value& v) {
    switch (s.k) {
        case kind::text:
            v.text = std::string(text);
            return {};
        case kind::listen: {
            auto r = parse_listen(text);
            if (!r) return r.error().detail;
            v.host = std::move(r->first);
            v.port = r->second;
            return {};
        }
        case kind::base_path:
            return normalize_base_path(text, v.text);
        case kind::count: {
            auto t = trim(text);
            auto [p, ec] = std::from_chars(t.data(), t.data() + t.size(), v.number);
            if (t.empty() || ec != std::errc() || p != t.data() + t.size())
                return "expected a non-negative integer, got " + quote_text(text);
            return {};
        }
        case kind::size: {
            auto r = parse_size(text);
            if (!r) return r.error().detail;
            v.number = *r;
            return {};
        }
        case kind::duration: {
            auto r = parse_duration(text);
            if (!r) return r.error().detail;
            v.duration = *r;
            return {};
        }
        case kind::rate: {
            auto r = parse_rate(text);
            if (!r) return r.error().detail;
            v.per = *r;
            return {};
        }
        case kind::boolean: {
            auto t = trim(text);
            if (t == "true" || t == "1" || t == "yes" || t == "on")
                v.flag = true;
            else if (t == "false" || t == "0" || t == "no" || t == "off")
                v.flag = false;
            else
                return "expected true or false, got " + quote_text(text);
            return {};
        }
        case kind::list:
        case kind::networks: {
            // Comma-separated in the environment; "" is the empty list.
            v.list.clear();
            auto rest = trim(text);
            while (!rest.empty()) {
                auto comma = rest.find(',');
                auto item = trim(rest.substr(0, comma));
                v.list.emplace_back(item);
                if (comma == std::string_view::npos) break;
                rest = rest.substr(comma + 1);
                if (trim(rest).empty()) v.list.emplace_back();
            }
            return {};
        }
    }
    return "unsupported setting";
}

// ---- the TOML walker -------------------------------------------------------------------------

using entry = std::pair<const std::string*, const tvalue*>;

/// A table's entries in the order they appear in the file (toml11 keeps an unordered_map; every
/// value carries its source position, which recovers the order).
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

class loader {
public:
    explicit loader(std::string file) : file_(std::move(file)) {}

    config load(const tvalue& root);

private:
    [[noreturn]] void fail(const tvalue& at, std::string_view key, std::string_view message) const {
        std::string msg = file_ + ":" + std::to_string(at.location().line()) + ": ";
        if (!key.empty()) {
            msg += key;
            msg += ": ";
        }
        msg += message;
        throw config_error{std::move(msg)};
    }

    const toml::table& expect_table(const tvalue& v, std::string_view key) const {
        if (!v.is_table()) fail(v, key, "expected a table, got " + type_name(v));
        return v.as_table();
    }
    const std::string& expect_string(const tvalue& v, std::string_view key) const {
        if (!v.is_string()) fail(v, key, "expected a string, got " + type_name(v));
        return v.as_string().str;
    }
    bool expect_bool(const tvalue& v, std::string_view key) const {
        if (!v.is_boolean()) fail(v, key, "expected true or false, got " + type_name(v));
        return v.as_boolean();
    }
    const toml::array& expect_array(const tvalue& v, std::string_view key) const {
        if (!v.is_array()) fail(v, key, "expected an array, got " + type_name(v));
        return v.as_array();
    }
    double expect_number(const tvalue& v, std::string_view key) const {
        if (v.is_integer()) return static_cast<double>(v.as_integer());
        if (v.is_floating()) {
            if (!std::isfinite(v.as_floating())) fail(v, key, "must be a finite number");
            return v.as_floating();
        }
        fail(v, key, "expected a number, got " + type_name(v));
    }
    std::uint64_t expect_count(const tvalue& v, std::string_view key, std::uint64_t min,
                               std::uint64_t max = k_unbounded) const {
        if (!v.is_integer()) fail(v, key, "expected an integer, got " + type_name(v));
        auto n = v.as_integer();
        if (n < 0 || static_cast<std::uint64_t>(n) < min)
            fail(v, key, "must be at least " + std::to_string(min));
        if (static_cast<std::uint64_t>(n) > max)
            fail(v, key, "must be at most " + std::to_string(max));
        return static_cast<std::uint64_t>(n);
    }
    std::vector<std::string> expect_string_list(const tvalue& v, std::string_view key) const {
        std::vector<std::string> out;
        for (const auto& item : expect_array(v, key)) {
            out.push_back(expect_string(item, key));
        }
        return out;
    }

    /// Rejects any key of `t` not in `known`.
    void check_keys(const toml::table& t, std::string_view path,
                    const std::vector<std::string_view>& known) const {
        for (const auto& [k, v] : ordered_entries(t)) {
            if (std::find(known.begin(), known.end(), *k) == known.end())
                fail(*v, join_key(path, *k),
                     "unknown key (expected one of: " + join_names(known) + ")");
        }
    }

    /// Reports a finalize() message ("fields.model.default: Must be an integer.") at the value
    /// its leading key names, falling back to the nearest enclosing table that exists.
    [[noreturn]] void fail_definition(const tvalue& collection, const std::string& path,
                                      const std::string& message) const;

    std::chrono::milliseconds expect_duration(const tvalue& v, std::string_view key,
                                              std::chrono::milliseconds min) const;

    void read_setting(const setting& s, const tvalue& v, std::string_view key, config& cfg) const;
    void read_section(std::string_view section, const tvalue& v, config& cfg) const;
    void read_tasks(const tvalue& v, config& cfg) const;
    task_kind_def read_task_kind(const std::string& name, const tvalue& v,
                                 const std::string& path) const;
    collection_def read_collection(const std::string& name, const tvalue& v,
                                   const std::string& path) const;
    field_def read_field(const std::string& name, const tvalue& v, const std::string& path) const;
    action_def read_action(const std::string& name, const tvalue& v, const std::string& path) const;
    endpoint_def read_endpoint(const std::string& name, const tvalue& v,
                               const std::string& path) const;
    access_rule read_rule(const tvalue& v, std::string_view key) const;
    json::value to_json(const tvalue& v, std::string_view key, int depth = 0) const;

    std::string file_;
};

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

void loader::read_setting(const setting& s, const tvalue& v, std::string_view key,
                          config& cfg) const {
    parsed_value pv;
    std::string err;
    switch (s.k) {
        case kind::text:
        case kind::listen:
        case kind::base_path:
        case kind::rate:
            err = parse_text(s, expect_string(v, key), pv);
            break;
        case kind::boolean:
            pv.flag = expect_bool(v, key);
            break;
        case kind::count:
            pv.number = expect_count(v, key, 0);
            break;
        case kind::list:
        case kind::networks:
            pv.list = expect_string_list(v, key);
            break;
        case kind::size:
            if (v.is_string()) {
                err = parse_text(s, v.as_string().str, pv);
            } else if (v.is_integer()) {
                if (v.as_integer() < 0) fail(v, key, "must not be negative");
                pv.number = static_cast<std::uint64_t>(v.as_integer());
            } else {
                fail(v, key,
                     "expected a size such as \"1MiB\" or an integer number of bytes, got " +
                         type_name(v));
            }
            break;
        case kind::duration:
            pv.duration = expect_duration(v, key, std::chrono::milliseconds(0));
            break;
    }
    if (err.empty()) err = check_range(s, pv);
    if (!err.empty()) fail(v, key, err);
    s.apply(cfg, std::move(pv));
}

void loader::read_section(std::string_view section, const tvalue& v, config& cfg) const {
    const auto& t = expect_table(v, section);
    // Nested tables (auth.throttle) are flattened into dotted setting keys.
    std::vector<std::pair<std::string, const tvalue*>> flat;
    for (const auto& [k, item] : ordered_entries(t)) {
        if (item->is_table() && section == "auth" && *k == "throttle") {
            for (const auto& [k2, item2] : ordered_entries(item->as_table()))
                flat.emplace_back(*k + "." + *k2, item2);
        } else {
            flat.emplace_back(*k, item);
        }
    }
    for (const auto& [k, item] : flat) {
        auto key = std::string(section) + "." + k;
        const setting* s = find_setting(section, k);
        if (!s) {
            fail(*item, key,
                 "unknown key (expected one of: " + join_names(keys_of_section(section)) + ")");
        }
        read_setting(*s, *item, key, cfg);
    }
}

void loader::read_tasks(const tvalue& v, config& cfg) const {
    const auto& t = expect_table(v, "tasks");
    for (const auto& [k, item] : ordered_entries(t)) {
        if (*k != "kinds") continue;
        const auto& kinds = expect_table(*item, "tasks.kinds");
        for (const auto& [name, kv] : ordered_entries(kinds)) {
            auto path = join_key("tasks.kinds", *name);
            if (!is_kind_name(*name))
                fail(*kv, path, "a task kind name must be letters, digits, '_', '-' or '.'");
            cfg.tasks.kinds[*name] = read_task_kind(*name, *kv, path);
        }
    }
    // The scalars of [tasks], without the kinds table.
    toml::table rest;
    for (const auto& [k, item] : t) {
        if (k != "kinds") rest.emplace(k, item);
    }
    read_section("tasks", tvalue(rest), cfg);
}

task_kind_def loader::read_task_kind(const std::string& name, const tvalue& v,
                                     const std::string& path) const {
    const auto& t = expect_table(v, path);
    check_keys(t, path, {"command", "timeout", "max_attempts", "kill_grace"});
    task_kind_def k;
    k.name = name;
    if (auto it = t.find("command"); it != t.end()) {
        auto key = path + ".command";
        k.command = expect_string_list(it->second, key);
        if (k.command.empty()) fail(it->second, key, "must name a program (a non-empty array)");
        if (k.command.front().empty()) fail(it->second, key, "the program must not be empty");
        for (const auto& arg : k.command) {
            if (arg.find('\0') != std::string::npos)
                fail(it->second, key, "arguments must not contain NUL characters");
        }
    }
    if (auto it = t.find("timeout"); it != t.end())
        k.timeout = expect_duration(it->second, path + ".timeout", std::chrono::milliseconds(1));
    if (auto it = t.find("max_attempts"); it != t.end())
        k.max_attempts = expect_count(it->second, path + ".max_attempts", 1);
    if (auto it = t.find("kill_grace"); it != t.end())
        k.kill_grace =
            expect_duration(it->second, path + ".kill_grace", std::chrono::milliseconds(0));
    return k;
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
        case toml::value_t::offset_datetime: {
            std::ostringstream os;
            os << v.as_offset_datetime();
            return json::string(os.str());
        }
        case toml::value_t::local_datetime: {
            std::ostringstream os;
            os << v.as_local_datetime();
            return json::string(os.str());
        }
        case toml::value_t::local_date: {
            std::ostringstream os;
            os << v.as_local_date();
            return json::string(os.str());
        }
        case toml::value_t::local_time: {
            std::ostringstream os;
            os << v.as_local_time();
            return json::string(os.str());
        }
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

config loader::load(const tvalue& root) {
    config cfg;
    const auto& top = expect_table(root, "");
    check_keys(top, "",
               {"server", "storage", "realtime", "tasks", "auth", "collections", "endpoints"});
    for (const auto& [k, item] : ordered_entries(top)) {
        if (*k == "tasks")
            read_tasks(*item, cfg);
        else if (*k == "server" || *k == "storage" || *k == "realtime" || *k == "auth")
            read_section(*k, *item, cfg);
    }

    // Collections: read all, then check references between them.
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
    return cfg;
}

/// Offset of the first byte that is not part of well-formed UTF-8 (RFC 3629), or npos.
/// TOML must be UTF-8, and toml11 3.7's own error path for invalid UTF-8 inside strings reads
/// out of bounds, so the loader refuses such input before toml11 sees it.
std::size_t first_invalid_utf8(std::string_view s) {
    std::size_t i = 0;
    auto at = [&](std::size_t k) { return static_cast<unsigned char>(s[k]); };
    auto cont = [&](std::size_t k, unsigned lo = 0x80, unsigned hi = 0xBF) {
        return k < s.size() && at(k) >= lo && at(k) <= hi;
    };
    while (i < s.size()) {
        const unsigned b = at(i);
        std::size_t n = 0;
        if (b < 0x80)
            n = 1;
        else if (b >= 0xC2 && b <= 0xDF)
            n = cont(i + 1) ? 2 : 0;
        else if (b == 0xE0)
            n = cont(i + 1, 0xA0) && cont(i + 2) ? 3 : 0;
        else if ((b >= 0xE1 && b <= 0xEC) || b == 0xEE || b == 0xEF)
            n = cont(i + 1) && cont(i + 2) ? 3 : 0;
        else if (b == 0xED)
            n = cont(i + 1, 0x80, 0x9F) && cont(i + 2) ? 3 : 0;
        else if (b == 0xF0)
            n = cont(i + 1, 0x90) && cont(i + 2) && cont(i + 3) ? 4 : 0;
        else if (b >= 0xF1 && b <= 0xF3)
            n = cont(i + 1) && cont(i + 2) && cont(i + 3) ? 4 : 0;
        else if (b == 0xF4)
            n = cont(i + 1, 0x80, 0x8F) && cont(i + 2) && cont(i + 3) ? 4 : 0;
        if (n == 0) return i;
        i += n;
    }
    return std::string_view::npos;
}

/// toml11 parses arrays and inline tables recursively; deep nesting would overflow the stack.
/// Finds the first line where `[`/`{` nesting (outside strings and comments) exceeds `limit`,
/// or 0 when it never does.
std::size_t line_nested_too_deep(std::string_view text, std::size_t limit) {
    std::size_t depth = 0, line = 1, i = 0;
    auto starts = [&](std::string_view token) { return text.substr(i, token.size()) == token; };
    while (i < text.size()) {
        const char ch = text[i];
        if (ch == '\n') {
            ++line;
            ++i;
        } else if (ch == '#') {
            while (i < text.size() && text[i] != '\n') ++i;
        } else if (starts(R"(""")") || starts("'''")) {
            const std::string_view close = text.substr(i, 3);
            const bool escapes = ch == '"';
            i += 3;
            while (i < text.size() && !starts(close)) {
                if (text[i] == '\n') ++line;
                if (escapes && text[i] == '\\') ++i;
                ++i;
            }
            i += 3;
        } else if (ch == '"' || ch == '\'') {
            ++i;
            while (i < text.size() && text[i] != ch && text[i] != '\n') {
                if (ch == '"' && text[i] == '\\' && i + 1 < text.size() && text[i + 1] != '\n') ++i;
                ++i;
            }
            if (i < text.size() && text[i] == ch) ++i;
        } else {
            if (ch == '[' || ch == '{') {
                if (++depth > limit) return line;
            } else if ((ch == ']' || ch == '}') && depth > 0) {
                --depth;
            }
            ++i;
        }
    }
    return 0;
}

constexpr std::size_t k_max_nesting = 64;

/// "cars.toml:3: invalid TOML: <toml11's message>" followed by toml11's source excerpt.
std::string describe_syntax_error(const toml::syntax_error& e, const std::string& file) {
    std::string what = e.what();
    auto nl = what.find('\n');
    std::string first = what.substr(0, nl);
    std::string rest = nl == std::string::npos ? std::string() : what.substr(nl);
    if (first.rfind("[error] ", 0) == 0) first.erase(0, 8);
    // Drop toml11's internal function name ("toml::parse_key: ").
    if (first.rfind("toml::", 0) == 0) {
        auto colon = first.find(": ");
        if (colon != std::string::npos) first.erase(0, colon + 2);
    }
    return file + ":" + std::to_string(e.location().line()) + ": invalid TOML: " + first + rest;
}

}  // namespace

result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view s) {
    auto bad = [&](std::string_view why) {
        return problem::bad_request("invalid listen address " + quote_text(s) + ": " +
                                    std::string(why) +
                                    " (expected \"host:port\", \"[v6]:port\" or \":port\")");
    };
    std::string host;
    std::string_view port_text;
    if (!s.empty() && s[0] == '[') {
        auto close = s.find(']');
        if (close == std::string_view::npos) return bad("unterminated '['");
        host = std::string(s.substr(1, close - 1));
        if (host.empty()) return bad("empty IPv6 address");
        auto rest = s.substr(close + 1);
        if (rest.empty() || rest[0] != ':') return bad("missing port");
        port_text = rest.substr(1);
    } else {
        auto colon = s.rfind(':');
        if (colon == std::string_view::npos) return bad("missing port");
        host = std::string(s.substr(0, colon));
        if (host.find(':') != std::string::npos) return bad("write IPv6 addresses in brackets");
        port_text = s.substr(colon + 1);
    }
    for (char ch : host) {
        auto u = static_cast<unsigned char>(ch);
        if (u <= 0x20 || u >= 0x7f || ch == '/' || ch == '[' || ch == ']')
            return bad("invalid host");
    }
    if (port_text.empty()) return bad("missing port");
    unsigned port = 0;
    auto [p, ec] = std::from_chars(port_text.data(), port_text.data() + port_text.size(), port);
    if (ec != std::errc() || p != port_text.data() + port_text.size() || port > 65535)
        return bad("invalid port");
    return std::pair<std::string, std::uint16_t>{std::move(host), static_cast<std::uint16_t>(port)};
}

result<config> load_config_string(std::string_view toml_text, const std::string& file_name) {
    if (auto bad = first_invalid_utf8(toml_text); bad != std::string_view::npos) {
        auto line = 1 + std::count(toml_text.begin(), toml_text.begin() + bad, '\n');
        return config_problem(file_name + ":" + std::to_string(line) +
                              ": invalid TOML: not valid UTF-8 (byte " + std::to_string(bad) + ")");
    }
    if (auto line = line_nested_too_deep(toml_text, k_max_nesting))
        return config_problem(file_name + ":" + std::to_string(line) +
                              ": invalid TOML: arrays and tables nested more than " +
                              std::to_string(k_max_nesting) + " levels deep");
    try {
        std::istringstream is{std::string(toml_text)};
        const tvalue root = toml::parse(is, file_name);
        loader l(file_name);
        return l.load(root);
    } catch (const config_error& e) {
        return config_problem(e.message);
    } catch (const toml::syntax_error& e) {
        return config_problem(describe_syntax_error(e, file_name));
    } catch (const toml::exception& e) {
        return config_problem(file_name + ":" + std::to_string(e.location().line()) + ": " +
                              e.what());
    } catch (const std::exception& e) {
        return config_problem(file_name + ": " + e.what());
    } catch (...) {
        return config_problem(file_name + ": cannot be loaded");
    }
}

result<config> load_config_file(const std::string& path) {
    std::ifstream in(path, std::ios::binary);
    if (!in) return config_problem("cannot read " + path + ": " + std::strerror(errno));
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) return config_problem("cannot read " + path + ": " + std::strerror(errno));
    return load_config_string(buf.str(), path);
}

result<void> apply_env_overrides(config& cfg, const std::vector<std::string>& env) {
    constexpr std::string_view prefix = "LIVEBASE_";
    // Validate everything before changing `cfg`: a bad variable leaves it untouched.
    config next = cfg;
    for (const auto& entry_text : env) {
        std::string_view kv = entry_text;
        auto eq = kv.find('=');
        std::string_view name = kv.substr(0, eq);
        std::string_view value =
            eq == std::string_view::npos ? std::string_view() : kv.substr(eq + 1);
        if (name.substr(0, prefix.size()) != prefix) continue;
        if (name.substr(0, 14) == "LIVEBASE_TEST_") continue;
        const setting* found = nullptr;
        for (const auto& s : k_settings) {
            std::string var(prefix);
            for (char ch : s.section)
                var += static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            var += '_';
            for (char ch : s.key)
                var += ch == '.' ? '_'
                                 : static_cast<char>(std::toupper(static_cast<unsigned char>(ch)));
            if (var == name) {
                found = &s;
                break;
            }
        }
        if (!found)
            return config_problem(
                "unknown environment variable " + std::string(name) +
                " (expected LIVEBASE_<SECTION>_<KEY>, e.g. LIVEBASE_STORAGE_URL)");
        parsed_value pv;
        auto err = parse_text(*found, value, pv);
        if (err.empty()) err = check_range(*found, pv);
        if (!err.empty()) return config_problem(std::string(name) + ": " + err);
        found->apply(next, std::move(pv));
    }
    cfg = std::move(next);
    return {};
}

}  // namespace livebase
