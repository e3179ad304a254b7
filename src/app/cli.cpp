// The command line of config.md: serve | worker | check | migrate | users, --version, --help.
#include "app/app_impl.hpp"

#include <livebase/auth/auth.hpp>

#include <CLI/CLI.hpp>

#include <signal.h>
#include <termios.h>
#include <unistd.h>

#include <cstdlib>
#include <filesystem>
#include <iostream>
#include <optional>

extern char** environ;

namespace livebase {

namespace {

std::vector<std::string> environment() {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
    return env;
}

int fail(logger& log, std::string_view what, const problem& p) {
    json::object fields{{"error", p.detail.empty() ? p.title : p.detail}};
    // Validation problems say which field is wrong and why ("A user with that username ...").
    if (auto it = p.extra.find("errors"); it != p.extra.end()) fields["errors"] = it->value();
    log.error(what, fields);
    return 1;
}

// The terminal settings to put back if the user interrupts a password prompt (echo is off).
struct termios g_saved_tty;
volatile sig_atomic_t g_tty_changed = 0;

void restore_tty_and_exit(int sig) {
    if (g_tty_changed) tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_tty);
    signal(sig, SIG_DFL);
    raise(sig);
}

/// One line of stdin without its line ending; nullopt at end of input before any character.
std::optional<std::string> read_line() {
    std::string line;
    if (!std::getline(std::cin, line) && line.empty()) return std::nullopt;
    if (!line.empty() && line.back() == '\r') line.pop_back();
    return line;
}

/// A password typed at the terminal, not echoed; the prompt goes to stderr so that stdout
/// stays the command's output.
std::optional<std::string> read_hidden(const char* prompt) {
    std::cerr << prompt << std::flush;
    struct termios off;
    if (tcgetattr(STDIN_FILENO, &g_saved_tty) != 0) return read_line();
    off = g_saved_tty;
    off.c_lflag &= ~static_cast<tcflag_t>(ECHO);
    struct sigaction sa {}, old_int {}, old_term {};
    sa.sa_handler = restore_tty_and_exit;
    sigemptyset(&sa.sa_mask);
    sigaction(SIGINT, &sa, &old_int);
    sigaction(SIGTERM, &sa, &old_term);
    g_tty_changed = 1;
    tcsetattr(STDIN_FILENO, TCSAFLUSH, &off);
    auto line = read_line();
    tcsetattr(STDIN_FILENO, TCSANOW, &g_saved_tty);
    g_tty_changed = 0;
    sigaction(SIGINT, &old_int, nullptr);
    sigaction(SIGTERM, &old_term, nullptr);
    std::cerr << "\n";
    return line;
}

/// The password of `users create|passwd`: one line of stdin with --password-stdin or when stdin
/// is not a terminal (scripts), else typed twice at the terminal without echo.
result<std::string> read_password(bool from_stdin) {
    if (from_stdin || !isatty(STDIN_FILENO)) {
        auto line = read_line();
        if (!line) return problem::bad_request("No password on standard input.");
        return std::move(*line);
    }
    auto first = read_hidden("Password: ");
    if (!first) return problem::bad_request("No password given.");
    auto again = read_hidden("Password (again): ");
    if (!again || *again != *first) return problem::bad_request("The passwords do not match.");
    return std::move(*first);
}

/// `livebase users ...`: the store with the users and tokens tables (other tables untouched),
/// and an authenticator's blocking administration calls.
struct users_commands {
    CLI::App* create;
    CLI::App* passwd;
    CLI::App* disable;
    CLI::App* enable;
    CLI::App* promote;
    CLI::App* demote;
    CLI::App* remove;
};

int run_users(logger& log, const config& cfg, const users_commands& cmd, const std::string& name, bool admin,
              bool password_stdin) {
    const CLI::App& create = *cmd.create;
    const CLI::App& passwd = *cmd.passwd;
    auto opened = open_store(cfg.storage.url, &log, cfg.storage.readers, cfg.storage.max_size, integrity_check::off,
                             pg_timeouts(cfg.storage));
    if (!opened) return fail(log, "cannot open storage", opened.error());
    auto db = std::move(opened).value();
    if (auto plan = db->migrate({&users_collection(), &tokens_collection()}, false, false); !plan) {
        db->close();
        return fail(log, "migration refused", plan.error());
    }
    auth_settings as;
    as.token_ttl = cfg.auth.token_ttl;
    int rc = 0;
    {
        authenticator auth(*db, as, log);
        if (create.parsed() || passwd.parsed()) {
            auto password = read_password(password_stdin);
            if (!password) {
                rc = fail(log, "cannot read the password", password.error());
            } else if (create.parsed()) {
                auto user = auth.create_user_sync(name, *password, admin);
                if (!user) {
                    rc = fail(log, "cannot create user", user.error());
                } else {
                    std::cout << to_json_text(*user) << "\n";
                    log.info("user created", {{"username", name}, {"admin", admin}});
                }
            } else if (auto r = auth.set_password_sync(name, *password); !r) {
                rc = fail(log, "cannot change the password", r.error());
            } else {
                log.info("password changed; the user's tokens are revoked", {{"username", name}});
            }
            if (password) std::fill(password->begin(), password->end(), '\0');
        } else if (cmd.disable->parsed()) {
            if (auto r = auth.disable_sync(name); !r) {
                rc = fail(log, "cannot disable user", r.error());
            } else {
                log.info("user disabled; the user's tokens are revoked", {{"username", name}});
            }
        } else if (cmd.enable->parsed()) {
            if (auto r = auth.enable_sync(name); !r) {
                rc = fail(log, "cannot enable user", r.error());
            } else {
                log.info("user enabled; the user may log in again", {{"username", name}});
            }
        } else if (cmd.promote->parsed() || cmd.demote->parsed()) {
            const bool to_admin = cmd.promote->parsed();
            if (auto r = auth.set_admin_sync(name, to_admin); !r) {
                rc = fail(log, to_admin ? "cannot promote user" : "cannot demote user", r.error());
            } else {
                log.info(to_admin ? "user promoted to admin" : "user demoted: no longer an admin",
                         {{"username", name}});
            }
        } else if (cmd.remove->parsed()) {
            if (auto r = auth.delete_user_sync(name); !r) {
                rc = fail(log, "cannot delete user", r.error());
            } else {
                log.info("user deleted with the user's tokens", {{"username", name}});
            }
        } else {
            auto users = auth.list_users_sync();
            if (!users) {
                rc = fail(log, "cannot list users", users.error());
            } else {
                for (const auto& u : *users) std::cout << to_json_text(u) << "\n";
            }
        }
    }  // the authenticator before the store it uses
    db->close();
    std::cout.flush();
    return rc;
}

/// A fresh directory under the system's temporary directory, removed with everything in it.
struct temp_directory {
    std::filesystem::path path;  ///< empty when it could not be made
    temp_directory() {
        std::error_code ec;
        auto base = std::filesystem::temp_directory_path(ec);
        if (ec) return;
        std::string tmpl = (base / "livebase-check.XXXXXX").string();
        if (mkdtemp(tmpl.data())) path = tmpl;
    }
    ~temp_directory() {
        std::error_code ec;
        if (!path.empty()) std::filesystem::remove_all(path, ec);
    }
    temp_directory(const temp_directory&) = delete;
    temp_directory& operator=(const temp_directory&) = delete;
};

}  // namespace

int app::main(int argc, char** argv) {
    auto& s = *impl_;
    CLI::App cli{"livebase: REST, tasks and live data from one server"};
    cli.require_subcommand(0, 1);
    std::string config_path;
    std::string log_format = "json";
    std::string log_level = "info";
    bool allow_destructive = false;
    cli.set_version_flag("--version", std::string(version()));
    cli.add_option("-c,--config", config_path, "TOML configuration file (default: livebase.toml)");
    cli.add_option("--log-format", log_format, "json (default) or text")->check(CLI::IsMember({"json", "text"}));
    cli.add_option("--log-level", log_level, "debug, info (default), warn, error")
        ->check(CLI::IsMember({"debug", "info", "warn", "error"}));
    // Options given after the subcommand (`serve -c x --log-format text`) belong to the top level;
    // subcommands copy this setting when they are added.
    cli.fallthrough(true);
    cli.add_subcommand("serve", "Serve HTTP and run in-process task workers (default)");
    auto* worker = cli.add_subcommand("worker", "Run task workers only (scale-out)");
    std::vector<std::string> worker_queues;
    worker->add_option("--queue", worker_queues,
                       "Serve only this queue ([tasks.queues.NAME]; \"default\": the tasks.workers one); repeatable");
    auto* check = cli.add_subcommand("check", "Validate the configuration and database, print the plan");
    bool full_check = false;
    check->add_flag("--full", full_check, "Check every page of a SQLite database (PRAGMA integrity_check; slower)");
    auto* migrate = cli.add_subcommand("migrate", "Apply the database plan");
    migrate->add_flag("--allow-destructive", allow_destructive, "Allow dropping or retyping fields (loses their data)");
    auto* users = cli.add_subcommand("users", "Manage users: create, passwd, disable, enable, promote, demote, delete, list");
    users->require_subcommand(1);
    std::string user_name;
    bool user_admin = false;
    bool password_stdin = false;
    auto* users_create = users->add_subcommand("create", "Create a user (prints it as JSON)");
    users_create->add_option("NAME", user_name, "Username")->required();
    users_create->add_flag("--admin", user_admin, "Make the user an admin");
    users_create->add_flag("--password-stdin", password_stdin, "Read the password from the first line of stdin");
    auto* users_passwd = users->add_subcommand("passwd", "Set a user's password (revokes the user's tokens)");
    users_passwd->add_option("NAME", user_name, "Username")->required();
    users_passwd->add_flag("--password-stdin", password_stdin, "Read the password from the first line of stdin");
    auto* users_disable = users->add_subcommand("disable", "Disable a user (revokes the user's tokens)");
    users_disable->add_option("NAME", user_name, "Username")->required();
    auto* users_enable = users->add_subcommand("enable", "Enable a disabled user (they may log in again)");
    users_enable->add_option("NAME", user_name, "Username")->required();
    auto* users_promote = users->add_subcommand("promote", "Make a user an admin");
    users_promote->add_option("NAME", user_name, "Username")->required();
    auto* users_demote = users->add_subcommand("demote", "Make an admin a plain user");
    users_demote->add_option("NAME", user_name, "Username")->required();
    auto* users_delete = users->add_subcommand("delete", "Delete a user and the user's tokens");
    users_delete->add_option("NAME", user_name, "Username")->required();
    users->add_subcommand("list", "Print every user as one JSON object per line");
    try {
        cli.parse(argc, argv);
    } catch (const CLI::ParseError& e) {
        return cli.exit(e);
    }

    s.log.set_format(log_format == "text" ? log_format::text : log_format::json);
    s.log.set_level(log_level == "debug" ? log_level::debug
                    : log_level == "warn" ? log_level::warn
                    : log_level == "error" ? log_level::error
                                           : log_level::info);

    // A config file named on the command line always loads; the default one loads if present,
    // or is required when the program declared nothing itself.
    if (!config_path.empty() || !s.config_loaded) {
        std::string path = config_path.empty() ? "livebase.toml" : config_path;
        bool must = !config_path.empty() || s.code_collections.empty();
        std::error_code ec;
        if (std::filesystem::exists(path, ec)) {
            if (auto r = load_config_file(path); !r) return fail(s.log, "invalid configuration", r.error());
        } else {
            auto looked_for = std::filesystem::absolute(path, ec).string();
            if (must) {
                return fail(s.log, "no configuration file",
                            problem::bad_request("No configuration file: looked for " + looked_for +
                                                 (config_path.empty() ? " (give one with -c FILE)." : ".")));
            }
            s.log.info("no configuration file; serving the collections declared in code with default settings",
                       {{"looked_for", looked_for}});
        }
    }
    if (auto r = apply_env_overrides(s.cfg, environment()); !r)
        return fail(s.log, "invalid environment", r.error());

    if (check->parsed() || migrate->parsed()) {
        if (auto r = s.build_registry(); !r) return fail(s.log, "invalid configuration", r.error());
        // `check` changes nothing: a SQLite file that does not exist yet is planned against an
        // empty database in a temporary directory, and neither the file nor its directory is made.
        std::string url = s.cfg.storage.url;
        std::optional<temp_directory> scratch;
        if (auto file = sqlite_file(url); check->parsed() && file && !std::filesystem::exists(*file)) {
            scratch.emplace();
            if (scratch->path.empty()) return fail(s.log, "check failed", problem::internal());
            std::cout << "database " << *file << " does not exist yet; serve or migrate creates it\n";
            url = "sqlite:" + (scratch->path / "check.db").string();
        }
        // `check` checks a SQLite file's pages too (quick_check; integrity_check with --full).
        auto db = open_store(url, &s.log, 0, 0,
                             check->parsed() ? (full_check ? integrity_check::full : integrity_check::quick)
                                             : integrity_check::off,
                             pg_timeouts(s.cfg.storage));
        if (!db) return fail(s.log, "cannot open storage", db.error());
        auto collections = s.reg.collections();
        collections.push_back(&tasks_collection());
    collections.push_back(&task_queues_collection());
        collections.push_back(&idempotency_collection());
        collections.push_back(&tokens_collection());
        auto plan = (*db)->migrate(collections, allow_destructive, /*dry_run=*/check->parsed());
        (*db)->close();
        if (!plan) return fail(s.log, check->parsed() ? "check failed" : "migration refused", plan.error());
        std::cout << (check->parsed() ? "configuration ok; plan:\n" : "migrated:\n");
        for (const auto& step : plan->steps) std::cout << "  " << step << "\n";
        for (const auto& step : plan->destructive) std::cout << "  (destructive) " << step << "\n";
        if (plan->steps.empty() && plan->destructive.empty()) std::cout << "  nothing to do\n";
        return 0;
    }

    if (users->parsed())
        return run_users(s.log, s.cfg,
                         {users_create, users_passwd, users_disable, users_enable, users_promote, users_demote, users_delete},
                         user_name, user_admin, password_stdin);

    // Signals are handled before start-up: a SIGTERM right after "listening" stops gracefully.
    handle_signals();
    if (worker->parsed()) {
        s.cfg.tasks.serve_queues = worker_queues;
        if (auto r = start_worker(); !r) return fail(s.log, "cannot start", r.error());
        wait(/*handle_signals=*/true);
        return 0;
    }
    if (auto r = start(); !r) return fail(s.log, "cannot start", r.error());
    wait(/*handle_signals=*/true);
    return 0;
}

}  // namespace livebase
