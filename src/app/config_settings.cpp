// The scalar settings of config.md: one table row per key (section, key, kind, bounds, where
// the value goes), read from the file's [server], [storage], [realtime], [tasks] and [auth]
// sections and from LIVEBASE_<SECTION>_<KEY> environment variables alike.
#include <algorithm>
#include <cctype>
#include <charconv>
#include <livebase/core/client_address.hpp>

#include "app/config_parse.hpp"

namespace livebase::config_detail {

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

namespace {

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
                if (trim_space(item).empty()) return "must not contain empty strings";
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
            auto t = trim_space(text);
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
            auto t = trim_space(text);
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
            auto rest = trim_space(text);
            while (!rest.empty()) {
                auto comma = rest.find(',');
                auto item = trim_space(rest.substr(0, comma));
                v.list.emplace_back(item);
                if (comma == std::string_view::npos) break;
                rest = rest.substr(comma + 1);
                if (trim_space(rest).empty()) v.list.emplace_back();
            }
            return {};
        }
    }
    return "unsupported setting";
}

}  // namespace

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
        if (*k == "queues") {
            const auto& queues = expect_table(*item, "tasks.queues");
            for (const auto& [name, qv] : ordered_entries(queues)) {
                auto path = join_key("tasks.queues", *name);
                if (!is_kind_name(*name) || *name == "default")
                    fail(*qv, path, "a queue name must be letters, digits, '_', '-' or '.', and not \"default\" "
                                    "(the queue of tasks.workers)");
                cfg.tasks.queues[*name] = read_task_queue(*name, *qv, path);
            }
            continue;
        }
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
        if (k != "kinds" && k != "queues") rest.emplace(k, item);
    }
    read_section("tasks", tvalue(rest), cfg);
    // Every queue a kind names is declared, and every kind a queue limits is in it.
    for (const auto& [name, k] : cfg.tasks.kinds) {
        if (!k.queue.empty() && !cfg.tasks.queues.contains(k.queue)) {
            const auto& kv = t.at("kinds").as_table().at(name);
            fail(kv.as_table().at("queue"), "tasks.kinds." + name + ".queue",
                 "no [tasks.queues." + k.queue + "] is declared");
        }
    }
    for (const auto& [qname, q] : cfg.tasks.queues) {
        for (const auto& [kind, most] : q.concurrency) {
            auto it = cfg.tasks.kinds.find(kind);
            if (it == cfg.tasks.kinds.end() || it->second.queue != qname) {
                const auto& qv = t.at("queues").as_table().at(qname).as_table().at("concurrency").as_table().at(kind);
                fail(qv, "tasks.queues." + qname + ".concurrency." + kind,
                     "the kind must be declared with queue = \"" + qname + "\" ([tasks.kinds." + kind + "])");
            }
        }
    }
}

task_kind_def loader::read_task_kind(const std::string& name, const tvalue& v,
                                     const std::string& path) const {
    const auto& t = expect_table(v, path);
    check_keys(t, path, {"command", "timeout", "max_attempts", "kill_grace", "submit", "queue"});
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
    if (auto it = t.find("submit"); it != t.end()) {
        k.submit = read_rule(it->second, path + ".submit");
        // A task belongs to its submitter; there is no record whose owner could be asked.
        if (*k.submit == access_rule::owner)
            fail(it->second, path + ".submit",
                 "\"owner\" applies to records; use \"public\", \"authenticated\", \"admin\" or \"nobody\"");
    }
    if (auto it = t.find("queue"); it != t.end()) {
        k.queue = expect_string(it->second, path + ".queue");
        if (k.queue == "default") k.queue.clear();
    }
    return k;
}

task_queue_def loader::read_task_queue(const std::string& name, const tvalue& v, const std::string& path) const {
    const auto& t = expect_table(v, path);
    check_keys(t, path, {"workers", "rate_limit", "concurrency", "priority"});
    task_queue_def q;
    q.name = name;
    if (auto it = t.find("workers"); it != t.end()) q.workers = expect_count(it->second, path + ".workers", 0, 1024);
    if (auto it = t.find("rate_limit"); it != t.end()) {
        auto r = parse_rate(expect_string(it->second, path + ".rate_limit"));
        if (!r || r->count == 0)
            fail(it->second, path + ".rate_limit", "expected tasks per period such as \"50/s\" or \"600/min\"");
        q.rate_limit = *r;
    }
    if (auto it = t.find("concurrency"); it != t.end()) {
        const auto& c = expect_table(it->second, path + ".concurrency");
        for (const auto& [kind, n] : ordered_entries(c))
            q.concurrency[*kind] = expect_count(*n, path + ".concurrency." + *kind, 1, 1'000'000);
    }
    if (auto it = t.find("priority"); it != t.end()) {
        const auto key = path + ".priority";
        if (!it->second.is_integer() || it->second.as_integer() < -10 || it->second.as_integer() > 10)
            fail(it->second, key, "expected an integer from -10 to 10");
        q.priority = static_cast<int>(it->second.as_integer());
    }
    return q;
}

}  // namespace livebase::config_detail

namespace livebase {

result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view s) {
    using namespace config_detail;
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

result<void> apply_env_overrides(config& cfg, const std::vector<std::string>& env) {
    using namespace config_detail;
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
