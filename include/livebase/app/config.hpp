#pragma once
/// The TOML configuration of config.md, loaded into plain structs. Every field's default is the
/// value beside it (the contract's defaults).
#include <livebase/core/result.hpp>
#include <livebase/core/units.hpp>
#include <livebase/http/options.hpp>
#include <livebase/schema/collection.hpp>

#include <chrono>
#include <cstdint>
#include <map>
#include <string>
#include <vector>

namespace livebase {

using namespace std::chrono_literals;

struct storage_options {
    std::string url = "sqlite:data/livebase.db";
    std::size_t readers = 0;  ///< reader connections; 0: SQLite 2, PostgreSQL 4
    std::uint64_t max_size = 0;  ///< SQLite: largest database file in bytes; 0: no limit
    bool quick_check = true;     ///< SQLite: PRAGMA quick_check when serve/worker open the file
    // PostgreSQL only:
    std::chrono::milliseconds connect_timeout = 5s;    ///< establishing a connection
    std::chrono::milliseconds statement_timeout = 30s; ///< SET statement_timeout; the wait for any result is this + 1 s
    bool keepalives = true;                            ///< TCP keepalives and tcp_user_timeout
    std::chrono::milliseconds startup_wait = 30s;      ///< serve/worker retry the first connection this long
};

struct realtime_options {
    std::uint64_t history = 100000;
    std::chrono::milliseconds history_age = 24h;
    /// A serve node whose heartbeat is older no longer holds the change-log trim back.
    std::chrono::milliseconds node_timeout = 5min;
    std::uint64_t send_queue = 4u << 20;
    std::uint64_t max_message = 1u << 20;
    std::size_t max_subscriptions = 1000;
    bool deflate = false;                    ///< permessage-deflate offered to clients
    std::uint64_t deflate_threshold = 1024;  ///< smaller frames go uncompressed
    std::size_t deflate_level = 6;           ///< zlib level 1..9
    // Set in code only (not read from the file):
    std::chrono::milliseconds trim_every = 60s;  ///< how often the change log is trimmed
};

struct task_kind_def {
    std::string name;
    std::vector<std::string> command;        ///< argv; empty = a C++ handler
    std::optional<std::chrono::milliseconds> timeout;
    std::optional<std::size_t> max_attempts;
    std::chrono::milliseconds kill_grace = 5s;
    /// Who may submit it directly (POST /api/tasks, the socket's `submit`); unset: nobody.
    /// A kind without `command` is then a C++ kind the app registers.
    std::optional<access_rule> submit;
    /// The `[tasks.queues.<name>]` that runs it; "" = the default queue (`tasks.workers`).
    std::string queue;
};

/// `[tasks.queues.<name>]`: workers of their own for the kinds that name it, with limits that
/// hold across every process (docs/tasks.md "Queues").
struct task_queue_def {
    std::string name;
    std::size_t workers = 1;             ///< threads per serve (or `livebase worker`) process
    rate rate_limit{0, 1s};              ///< tasks started per period, all processes together; 0: none
    std::map<std::string, std::size_t> concurrency;  ///< kind -> most running at once
    std::optional<int> priority;         ///< its kinds' priority when a submission names none
};

struct tasks_options {
    std::size_t workers = 4;
    std::chrono::milliseconds retention = 7 * 24h;
    std::size_t max_attempts = 3;
    std::chrono::milliseconds timeout = 10min;
    std::chrono::milliseconds lease = 30s;
    std::size_t prefetch = 128;  ///< tasks claimed ahead of idle workers while tasks run short
    std::size_t max_pending_per_user = 10000;     ///< pending tasks one user may hold; 0: no limit
    std::size_t max_pending_per_address = 10000;  ///< per anonymous client address; 0: no limit
    std::map<std::string, task_kind_def> kinds;
    std::map<std::string, task_queue_def> queues;
    /// `livebase worker --queue NAME` (repeatable): the queues this process serves ("default"
    /// for the default queue); empty: all of them.
    std::vector<std::string> serve_queues;
};

struct auth_options {
    bool signup = false;
    std::chrono::milliseconds token_ttl = 30 * 24h;
    rate throttle_anonymous{120, 60s};
    rate throttle_user{2000, 60s};
    /// Login (and sign-up) attempts per client address and username: guesses at one account
    /// from one place. Another address is not slowed by them.
    rate throttle_login{10, 60s};
    /// Login (and sign-up) attempts per client address, whatever the username.
    rate throttle_login_address{60, 60s};
};

/// `[endpoints.<name>]`: a path bound to a task kind.
struct endpoint_def {
    std::string name;
    std::string path;
    std::string method = "GET";
    std::string task;
    access_rule rule = access_rule::public_;
};

struct config {
    server_options server;
    storage_options storage;
    realtime_options realtime;
    tasks_options tasks;
    auth_options auth;
    std::vector<collection_def> collections;   ///< finalized
    std::vector<endpoint_def> endpoints;
};

/// Thrown-free loading: a problem whose detail reads like
/// "livebase.toml:12: collections.cars.fields.model.min: must be a number".
result<config> load_config_string(std::string_view toml_text, const std::string& file_name);
result<config> load_config_file(const std::string& path);

/// Applies LIVEBASE_<SECTION>_<KEY> overrides from `environ`-style "K=V" strings
/// (e.g. LIVEBASE_STORAGE_URL, LIVEBASE_SERVER_LISTEN, LIVEBASE_TASKS_WORKERS).
/// Unknown LIVEBASE_* names -> problem naming the variable.
result<void> apply_env_overrides(config& cfg, const std::vector<std::string>& env);

/// Parses "host:port", ":port" (all interfaces). Problem on malformed input.
result<std::pair<std::string, std::uint16_t>> parse_listen(std::string_view s);

}  // namespace livebase
