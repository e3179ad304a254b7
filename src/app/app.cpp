#include "app/app_impl.hpp"
#include <livebase/http/server.hpp>
#include <livebase/store/store.hpp>

#include <thread>

namespace livebase {

std::string_view version() noexcept { return "0.1.0"; }

result<void> app::impl::build_registry() {
    reg = registry{};
    for (const auto& c : cfg.collections) reg.add_collection(c);
    for (const auto& c : code_collections) reg.add_collection(c);
    for (const auto& a : code_actions) {
        auto* c = reg.find_mutable(a.collection);
        if (!c) return problem::bad_request("action " + a.def.name + ": unknown collection \"" + a.collection + "\"");
        c->actions.insert_or_assign(a.def.name, a.def);
        reg.add_action_handler(a.collection, a.def.name, a.handler);
    }
    // Every declared action must be runnable: a C++ handler, or a task kind once tasks exist.
    for (const auto* c : reg.collections()) {
        for (const auto& [name, def] : c->actions) {
            if (reg.find_action_handler(c->name, name)) continue;
            if (!def.task.empty())
                return problem::bad_request("collections." + c->name + ".actions." + name +
                                            ": task actions need the task engine, which this build does not include yet");
            return problem::bad_request("collections." + c->name + ".actions." + name +
                                        ": no C++ handler is registered for this action");
        }
    }
    if (!cfg.endpoints.empty())
        return problem::bad_request("endpoints." + cfg.endpoints.front().name +
                                    ": task endpoints need the task engine, which this build does not include yet");
    return {};
}

result<void> app::impl::start() {
    if (started) return problem::bad_request("the app is already started");
    if (auto r = build_registry(); !r) return r;
    auto opened = open_store(cfg.storage.url, &log);
    if (!opened) return std::move(opened).error();
    db = std::move(opened).value();
    auto plan = db->migrate(reg.collections(), /*allow_destructive=*/false, /*dry_run=*/false);
    if (!plan) {
        db->close();
        return std::move(plan).error();
    }
    for (const auto& step : plan->steps) log.info("migrated", {{"step", step}});
    api = std::make_unique<livebase::api>(reg, *db, log, cfg.server.base_path);
    server = std::make_unique<http_server>(ioc, *api, cfg.server, log, metrics);
    if (auto r = server->listen(); !r) {
        server.reset();
        api.reset();
        db->close();
        return r;
    }
    work.emplace(ioc.get_executor());
    std::size_t n = cfg.server.threads ? cfg.server.threads : std::max(1u, std::thread::hardware_concurrency());
    for (std::size_t i = 0; i < n; ++i) threads.emplace_back([this] { ioc.run(); });
    started = true;
    log.info("listening", {{"address", cfg.server.host.empty() ? "*" : cfg.server.host},
                           {"port", server->port()},
                           {"storage", cfg.storage.url},
                           {"threads", n}});
    return {};
}

void app::impl::stop() {
    std::lock_guard<std::mutex> guard(stop_mu);
    {
        std::lock_guard<std::mutex> lock(state_mu);
        if (!started || stopped) return;
    }
    log.info("shutting down", {{"grace_ms", cfg.server.shutdown_grace.count()}});
    server->drain();
    auto deadline = std::chrono::steady_clock::now() + cfg.server.shutdown_grace;
    while (server->connections() > 0 && std::chrono::steady_clock::now() < deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
    server->close_all();
    if (signals) {
        boost::system::error_code ec;
        signals->cancel(ec);
    }
    work.reset();
    // Let closing sockets finish their handlers briefly, then stop the loop.
    auto loop_deadline = std::chrono::steady_clock::now() + std::chrono::milliseconds(500);
    while (!ioc.stopped() && std::chrono::steady_clock::now() < loop_deadline)
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    ioc.stop();
    for (auto& t : threads) t.join();
    threads.clear();
    db->close();  // finishes queued writes: every acknowledged write is committed
    api.reset();
    server.reset();
    log.info("stopped");
    std::lock_guard<std::mutex> lock(state_mu);
    stopped = true;
    state_cv.notify_all();
}

app::app() : impl_(std::make_unique<impl>()) {}

app::~app() { stop(); }

result<void> app::load_config_file(const std::string& path) {
    auto c = livebase::load_config_file(path);
    if (!c) return std::move(c).error();
    impl_->cfg = std::move(c).value();
    impl_->config_loaded = true;
    return {};
}

result<void> app::load_config_string(std::string_view toml, const std::string& name) {
    auto c = livebase::load_config_string(toml, name);
    if (!c) return std::move(c).error();
    impl_->cfg = std::move(c).value();
    impl_->config_loaded = true;
    return {};
}

livebase::config& app::config() noexcept { return impl_->cfg; }
livebase::logger& app::log() noexcept { return impl_->log; }

result<void> app::add_collection(collection_def c) {
    if (is_reserved_collection_name(c.name))
        return problem::bad_request("collections." + c.name + ": \"" + c.name +
                                    "\" is reserved for a built-in endpoint");
    if (auto msg = finalize(c); !msg.empty())
        return problem::bad_request("collections." + c.name + ": " + msg);
    std::erase_if(impl_->code_collections, [&](const auto& x) { return x.name == c.name; });
    impl_->code_collections.push_back(std::move(c));
    return {};
}

result<void> app::add_action(const std::string& collection, action_def def, action_handler h) {
    if (def.name.empty() || !h) return problem::bad_request("an action needs a name and a handler");
    for (const auto& m : def.methods)
        if (m != "GET" && m != "POST")
            return problem::bad_request("action " + def.name + ": methods may be GET and POST");
    impl_->code_actions.push_back({collection, std::move(def), std::move(h)});
    return {};
}

result<void> app::start() { return impl_->start(); }

std::uint16_t app::port() const noexcept { return impl_->server ? impl_->server->port() : 0; }

livebase::store& app::store() { return *impl_->db; }

void app::stop() { impl_->stop(); }

void app::wait(bool handle_signals) {
    auto& s = *impl_;
    if (handle_signals && s.started && !s.signals) {
        s.signals.emplace(s.ioc, SIGINT, SIGTERM);
        s.signals->async_wait([&s](const boost::system::error_code& ec, int sig) {
            if (ec) return;
            s.log.info("signal received", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
            s.request_stop();
        });
    }
    {
        std::unique_lock<std::mutex> lock(s.state_mu);
        s.state_cv.wait(lock, [&] { return s.stop_requested || s.stopped || !s.started; });
    }
    stop();
}

}  // namespace livebase
