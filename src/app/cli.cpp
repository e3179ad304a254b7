// The command line of config.md: serve | check | migrate, --version, --help.
#include "app/app_impl.hpp"

#include <CLI/CLI.hpp>

#include <filesystem>
#include <iostream>

extern char** environ;

namespace livebase {

namespace {

std::vector<std::string> environment() {
    std::vector<std::string> env;
    for (char** e = environ; e && *e; ++e) env.emplace_back(*e);
    return env;
}

int fail(logger& log, std::string_view what, const problem& p) {
    log.error(what, {{"error", p.detail.empty() ? p.title : p.detail}});
    return 1;
}

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
    auto* check = cli.add_subcommand("check", "Validate the configuration and database, print the plan");
    auto* migrate = cli.add_subcommand("migrate", "Apply the database plan");
    migrate->add_flag("--allow-destructive", allow_destructive, "Allow dropping or retyping fields (loses their data)");
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
        if (must || std::filesystem::exists(path)) {
            if (auto r = load_config_file(path); !r) return fail(s.log, "invalid configuration", r.error());
        }
    }
    if (auto r = apply_env_overrides(s.cfg, environment()); !r)
        return fail(s.log, "invalid environment", r.error());

    if (check->parsed() || migrate->parsed()) {
        if (auto r = s.build_registry(); !r) return fail(s.log, "invalid configuration", r.error());
        auto db = open_store(s.cfg.storage.url, &s.log);
        if (!db) return fail(s.log, "cannot open storage", db.error());
        auto collections = s.reg.collections();
        collections.push_back(&tasks_collection());
        collections.push_back(&idempotency_collection());
        auto plan = (*db)->migrate(collections, allow_destructive, /*dry_run=*/check->parsed());
        (*db)->close();
        if (!plan) return fail(s.log, check->parsed() ? "check failed" : "migration refused", plan.error());
        std::cout << (check->parsed() ? "configuration ok; plan:\n" : "migrated:\n");
        for (const auto& step : plan->steps) std::cout << "  " << step << "\n";
        for (const auto& step : plan->destructive) std::cout << "  (destructive) " << step << "\n";
        if (plan->steps.empty() && plan->destructive.empty()) std::cout << "  nothing to do\n";
        return 0;
    }

    if (worker->parsed()) {
        if (auto r = start_worker(); !r) return fail(s.log, "cannot start", r.error());
        wait(/*handle_signals=*/true);
        return 0;
    }
    if (auto r = start(); !r) return fail(s.log, "cannot start", r.error());
    wait(/*handle_signals=*/true);
    return 0;
}

}  // namespace livebase
