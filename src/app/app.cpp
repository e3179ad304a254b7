#include "app/app_impl.hpp"
#include <livebase/apidoc/documents.hpp>
#include <livebase/auth/rules.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/http/server.hpp>
#include <livebase/gate/upgrade.hpp>
#include <livebase/schema/validate.hpp>
#include <livebase/store/store.hpp>

#include <boost/asio/ip/tcp.hpp>

#include <filesystem>
#include <algorithm>
#include <cstdlib>
#include <future>
#include <thread>

#include <unistd.h>

namespace livebase {

std::string_view version() noexcept { return "0.1.0"; }

std::optional<std::string> sqlite_file(std::string_view url) {
    constexpr std::string_view prefix = "sqlite:";
    if (url.substr(0, prefix.size()) != prefix) return std::nullopt;
    auto path = url.substr(prefix.size());
    if (path.substr(0, 2) == "//") path.remove_prefix(2);
    if (path.empty()) return std::nullopt;
    return std::string(path);
}

std::string storage_for_log(std::string_view url) {
    auto file = sqlite_file(url);
    if (!file) return redacted_storage_url(url);
    std::error_code ec;
    auto abs = std::filesystem::absolute(*file, ec);
    return "sqlite:" + (ec ? *file : abs.lexically_normal().string());
}

namespace {

/// "host:port" as server.listen spells it.
std::string listen_text(const server_options& o) {
    bool v6 = o.host.find(':') != std::string::npos;
    return (v6 ? "[" + o.host + "]" : o.host) + ":" + std::to_string(o.port);
}

/// Where the address comes from, appended to every listen problem.
constexpr std::string_view k_listen_hint =
    " Choose another address with server.listen in the configuration file, or "
    "LIVEBASE_SERVER_LISTEN=127.0.0.1:8081 in the environment.";

/// Fails fast, before the database is opened and migrated, when the listen address cannot be
/// bound (another server on the port). The server binds again for real once the services are
/// up; that bind reports the rare port taken in between.
result<void> check_listen_address(const server_options& o) {
    if (o.port == 0) return {};
    namespace ip = boost::asio::ip;
    boost::asio::io_context ioc;
    boost::system::error_code ec;
    ip::tcp::resolver resolver(ioc);
    auto found = resolver.resolve(o.host.empty() ? "0.0.0.0" : o.host, std::to_string(o.port),
                                  ip::resolver_base::numeric_service, ec);
    if (ec || found.empty()) return {};  // the server's own listen() reports it
    ip::tcp::acceptor probe(ioc);
    auto ep = found.begin()->endpoint();
    probe.open(ep.protocol(), ec);
    if (ec) return {};
    probe.set_option(ip::tcp::acceptor::reuse_address(true), ec);
    probe.bind(ep, ec);
    if (!ec) return {};
    problem p = problem::internal();
    p.detail = "Cannot listen on " + listen_text(o) + ": " + ec.message() +
               (ec == boost::asio::error::address_in_use ? " (another server is running there?)." : ".") +
               std::string(k_listen_hint);
    return p;
}

/// One line for a whole migration: "create table: 5, create index: 11".
std::string migration_summary(const std::vector<std::string>& steps) {
    std::vector<std::pair<std::string, std::size_t>> counts;  // in order of first appearance
    for (const auto& step : steps) {
        auto second_space = step.find(' ', step.find(' ') + 1);
        auto what = step.substr(0, second_space);
        auto it = std::find_if(counts.begin(), counts.end(), [&](const auto& c) { return c.first == what; });
        if (it == counts.end())
            counts.emplace_back(what, 1);
        else
            ++it->second;
    }
    std::string out;
    for (const auto& [what, n] : counts) out += (out.empty() ? "" : ", ") + what + ": " + std::to_string(n);
    return out;
}

/// The address a browser on this machine uses for the server.
std::string local_url(const server_options& o, std::uint16_t port) {
    std::string host = o.host;
    if (host.empty() || host == "0.0.0.0") host = "127.0.0.1";
    if (host == "::") host = "::1";
    if (host.find(':') != std::string::npos) host = "[" + host + "]";
    return "http://" + host + ":" + std::to_string(port);
}

}  // namespace

result<void> app::impl::build_registry() {
    if (!setup_problems.empty()) return setup_problems.front();
    reg = registry{};
    // The built-in users collection is served like a declared one (admin-only rules).
    reg.add_collection(users_collection());
    // So is the built-in schedules collection; its before-hooks check a schedule and set its
    // next_run (docs/tasks.md "Schedules").
    {
        collection_def sc = schedules_collection();
        auto prepare = [this](record_write& w) -> result<void> {
            if (!w.record) return {};
            return prepare_schedule(*w.record, w.stored, now_ms(),
                                    [this](std::string_view kind) { return schedulable_kind(kind); });
        };
        sc.hooks.before_create.push_back(prepare);
        sc.hooks.before_update.push_back(prepare);
        reg.add_collection(std::move(sc));
    }
    for (const auto& c : cfg.collections) reg.add_collection(c);
    for (const auto& c : code_collections) reg.add_collection(c);
    for (const auto& a : code_actions) {
        auto* c = reg.find_mutable(a.collection);
        if (!c) return problem::bad_request("action " + a.def.name + ": unknown collection \"" + a.collection + "\"");
        c->actions.insert_or_assign(a.def.name, a.def);
        reg.add_action_handler(a.collection, a.def.name, a.handler);
    }
    // Permissions attached to a collection all have to allow (after one declared with the
    // collection in code); the first refusal answers.
    std::map<std::string, std::vector<permission_fn>> attached;
    for (const auto& [name, fn] : code_permissions) attached[name].push_back(fn);
    for (auto& [name, fns] : attached) {
        auto* c = reg.find_mutable(name);
        if (!c)
            return problem::bad_request("collection \"" + name +
                                        "\": a permission is attached to it, but neither the "
                                        "configuration nor the code declares it");
        if (c->permission) fns.insert(fns.begin(), c->permission);
        c->permission = [fns = std::move(fns)](const principal& who, std::string_view action,
                                               const json::object* record) -> verdict {
            for (const auto& fn : fns)
                if (auto v = fn(who, action, record); !v) return v;
            return verdict::allow();
        };
    }
    for (const auto& [name, hooks] : code_hooks) {
        auto* c = reg.find_mutable(name);
        if (!c)
            return problem::bad_request("collection \"" + name +
                                        "\": a record hook is attached to it, but neither the "
                                        "configuration nor the code declares it");
        auto append = [](auto& to, const auto& from) { to.insert(to.end(), from.begin(), from.end()); };
        append(c->hooks.before_create, hooks.before_create);
        append(c->hooks.before_update, hooks.before_update);
        append(c->hooks.before_delete, hooks.before_delete);
        append(c->hooks.after_create, hooks.after_create);
        append(c->hooks.after_update, hooks.after_update);
        append(c->hooks.after_delete, hooks.after_delete);
    }
    for (const auto& e : cfg.endpoints) {
        std::string base = cfg.server.base_path == "/" ? "" : cfg.server.base_path;
        auto path = e.path.size() > 1 && e.path.back() == '/' ? e.path.substr(0, e.path.size() - 1) : e.path;
        auto rest = std::string_view(path).substr(std::min(path.size(), base.size()));
        if (path.rfind(base + "/", 0) != 0 || rest.size() < 2 || rest.find('/', 1) != std::string_view::npos ||
            rest.find(':') != std::string_view::npos)
            return problem::bad_request("endpoints." + e.name + ".path: must be " + base +
                                        "/<name> (one segment under the base path)");
        if (reg.find(rest.substr(1)))
            return problem::bad_request("endpoints." + e.name + ".path: a collection already serves " + path);
        reg.add_endpoint({e.name, e.method, path, e.task, e.rule});
    }
    for (const auto& [name, k] : cfg.tasks.kinds)
        if (k.submit) reg.add_submittable_kind(name, *k.submit);
    registry_built = true;
    return {};
}

postgres_timeouts pg_timeouts(const storage_options& s) {
    postgres_timeouts t;
    t.connect = s.connect_timeout;
    t.statement = s.statement_timeout;
    t.keepalives = s.keepalives;
    return t;
}

result<void> app::impl::open_services() {
    if (auto r = build_registry(); !r) return r;
    // A PostgreSQL that is not up yet (containers starting together) is waited for, up to
    // storage.startup_wait, with one line per attempt.
    const auto give_up = std::chrono::steady_clock::now() + cfg.storage.startup_wait;
    auto opened = open_store(cfg.storage.url, &log, cfg.storage.readers, cfg.storage.max_size,
                             cfg.storage.quick_check ? integrity_check::quick : integrity_check::off,
                             pg_timeouts(cfg.storage));
    while (!opened && opened.error().extra.contains("endpoint")) {
        const auto& p = opened.error();
        const std::string endpoint(p.extra.at("endpoint").as_string());
        const std::string reason(p.extra.contains("reason") ? std::string(p.extra.at("reason").as_string()) : p.detail);
        const auto now = std::chrono::steady_clock::now();
        if (now >= give_up) {
            const auto ms = cfg.storage.startup_wait.count();
            const auto wait = ms % 1000 == 0 ? std::to_string(ms / 1000) + "s" : std::to_string(ms) + "ms";
            return problem::unavailable("PostgreSQL at " + endpoint + " was not reachable within storage.startup_wait (" +
                                        wait + "): " + reason);
        }
        log.warn("waiting for PostgreSQL at " + endpoint + ": " + reason + ", retrying",
                 {{"endpoint", endpoint}, {"error", reason}});
        std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(give_up - now, std::chrono::seconds(1)));
        opened = open_store(cfg.storage.url, &log, cfg.storage.readers, cfg.storage.max_size,
                            cfg.storage.quick_check ? integrity_check::quick : integrity_check::off,
                            pg_timeouts(cfg.storage));
    }
    if (!opened) return std::move(opened).error();
    db = std::move(opened).value();
    auto collections = reg.collections();
    collections.push_back(&tasks_collection());
    collections.push_back(&task_queues_collection());
    collections.push_back(&idempotency_collection());
    collections.push_back(&tokens_collection());
    auto plan = db->migrate(collections, /*allow_destructive=*/false, /*dry_run=*/false);
    if (!plan) {
        close_services();
        return std::move(plan).error();
    }
    if (!plan->steps.empty()) {
        for (const auto& step : plan->steps) log.debug("migrated", {{"step", step}});
        log.info("database migrated", {{"steps", plan->steps.size()}, {"summary", migration_summary(plan->steps)}});
    }

    queue = std::make_unique<task_queue>(*db);
    queue->set_limits({cfg.tasks.max_pending_per_user, cfg.tasks.max_pending_per_address});
    // Tasks made pending by other processes (PostgreSQL NOTIFY) wake idle workers at once.
    db->on_task_ready([q = queue.get()] { q->notify(); });
    waiters = std::make_unique<task_waiters>();
    worker_pool_options wo;
    wo.workers = cfg.tasks.workers;
    wo.lease = cfg.tasks.lease;
    wo.prefetch = cfg.tasks.prefetch;
    wo.retention = cfg.tasks.retention;
    wo.max_attempts = static_cast<int>(cfg.tasks.max_attempts);
    wo.timeout = cfg.tasks.timeout;
    wo.shutdown_grace = std::min(cfg.server.shutdown_grace, std::chrono::milliseconds(5000));
    wo.log = &log;
    wo.on_finished = [w = waiters.get()](const std::string& id) { w->notify(id); };
    // Queues (docs/tasks.md "Queues"): the kinds that name a [tasks.queues.*] run on that
    // queue's pool; the rest on the default pool (tasks.workers). `livebase worker --queue`
    // serves only the queues it names.
    kind_queue.clear();
    for (const auto& k : code_task_kinds)
        if (!k.options.queue.empty()) kind_queue[k.name] = k.options.queue;
    for (const auto& [name, k] : cfg.tasks.kinds)
        if (!k.queue.empty()) kind_queue[name] = k.queue;
    for (const auto& [kind, q] : kind_queue)
        if (!cfg.tasks.queues.contains(q))
            return problem::bad_request("task kind " + kind + ": queue \"" + q +
                                        "\" is not declared (add [tasks.queues." + q + "])");
    auto serving = [this](const std::string& q) {
        const auto& only = cfg.tasks.serve_queues;
        return only.empty() || std::find(only.begin(), only.end(), q) != only.end();
    };
    for (const auto& q : cfg.tasks.serve_queues)
        if (q != "default" && !cfg.tasks.queues.contains(q))
            return problem::bad_request("--queue " + q + ": no [tasks.queues." + q + "] is declared");
    {
        auto main = wo;
        if (!serving("default")) main.workers = 0;
        main.serves = [this](std::string_view kind) { return !kind_queue.contains(std::string(kind)); };
        workers = std::make_unique<worker_pool>(*queue, main);
    }
    queue_pools.clear();
    for (const auto& [name, q] : cfg.tasks.queues) {
        if (!serving(name) || q.workers == 0) continue;
        auto o = wo;
        o.workers = q.workers;
        o.queue = name;
        o.serves = [this, name = name](std::string_view kind) {
            auto it = kind_queue.find(std::string(kind));
            return it != kind_queue.end() && it->second == name;
        };
        o.limits.name = name;
        o.limits.rate_limit = q.rate_limit;
        for (const auto& [kind, most] : q.concurrency) o.limits.concurrency[kind] = most;
        queue_pools.push_back(std::make_unique<worker_pool>(*queue, o));
    }
    auth_settings as;
    as.token_ttl = cfg.auth.token_ttl;
    auth = std::make_unique<authenticator>(*db, as, log);
    limiter = std::make_unique<throttle>();
    api = std::make_unique<livebase::api>(reg, *db, log, cfg.server.base_path);
    api->enable_tasks(*queue, *workers, *waiters);
    api->enable_auth(*auth, cfg.auth.signup);
    api->set_login_limits(cfg.auth.throttle_login, cfg.auth.throttle_login_address);
    api->set_idempotency_retention(cfg.tasks.retention);

    // Task kinds: C++ kinds, commands from the file, and one per records operation and C++
    // action (they run the stored request again through the same pipeline). Every pool knows
    // every kind (submissions ask the default pool); each claims only its queue's.
    auto run_request = [a = api.get()](task_context& ctx) -> result<outcome> {
        auto op = operation_from_request(ctx.input());
        if (!op) return std::move(op).error();
        op->from_task = true;
        // Its write commits the task's success with it (exactly-once record tasks).
        op->finish = ctx.finisher();
        return a->execute_sync(std::move(op).value());
    };
    auto with_queue = [this](const std::string& kind, task_kind_options o) {
        if (auto it = kind_queue.find(kind); it != kind_queue.end() && !o.priority)
            o.priority = cfg.tasks.queues.at(it->second).priority;
        return o;
    };
    auto register_kinds = [&](worker_pool& pool) {
        for (const auto& k : code_task_kinds) pool.register_handler(k.name, k.handler, with_queue(k.name, k.options));
        for (const auto& [name, k] : cfg.tasks.kinds) {
            if (k.command.empty()) continue;
            if (pool.known_kind(name)) continue;  // a C++ kind of the same name wins
            command_kind_def def;
            def.name = name;
            def.command = k.command;
            def.timeout = k.timeout;
            if (k.max_attempts) def.max_attempts = static_cast<int>(*k.max_attempts);
            def.kill_grace = k.kill_grace;
            def.priority = with_queue(name, {}).priority;
            pool.register_command(std::move(def));
        }
        for (const auto* c : reg.collections()) {
            for (auto k : {op_kind::list, op_kind::retrieve, op_kind::create, op_kind::replace,
                           op_kind::patch, op_kind::remove})
                pool.register_handler(operation_task_kind(c->name, k), run_request);
            for (const auto& [name, def] : c->actions)
                if (def.task.empty()) pool.register_handler(operation_task_kind(c->name, op_kind::action, name), run_request);
        }
    };
    register_kinds(*workers);
    for (auto& p : queue_pools) register_kinds(*p);
    for (const auto& [kind, q] : kind_queue)
        if (!workers->known_kind(kind))
            return problem::bad_request("tasks.kinds." + kind + ".queue: the kind has no command and no C++ handler "
                                        "is registered under this name");

    // Every declared action and endpoint must be runnable.
    for (const auto* c : reg.collections()) {
        for (const auto& [name, def] : c->actions) {
            if (!def.task.empty() && !workers->known_kind(def.task))
                return problem::bad_request("collections." + c->name + ".actions." + name +
                                            ".task: unknown task kind \"" + def.task +
                                            "\" (declare [tasks.kinds." + def.task + "] or register it in C++)");
            if (def.task.empty() && !reg.find_action_handler(c->name, name))
                return problem::bad_request("collections." + c->name + ".actions." + name +
                                            ": no C++ handler is registered for this action");
        }
    }
    for (const auto& e : reg.endpoints())
        if (!workers->known_kind(e.task))
            return problem::bad_request("endpoints." + e.name + ".task: unknown task kind \"" + e.task + "\"");
    for (const auto& [name, rule] : reg.submittable_kinds()) {
        // A records operation's kind runs the request its input holds: submitted directly, a
        // caller would write that request itself.
        const auto dot = name.find_first_of(".:");
        if (dot != std::string::npos && reg.find(std::string_view(name).substr(0, dot)))
            return problem::bad_request("tasks.kinds." + name +
                                        ".submit: this is a records operation's kind; submit it through its "
                                        "collection's URL (Prefer: respond-async)");
        if (!workers->known_kind(name))
            return problem::bad_request("tasks.kinds." + name +
                                        ".submit: the kind has no command and no C++ handler is registered "
                                        "under this name");
    }
    scheduler_options so;
    so.log = &log;
    so.make_submission = [w = workers.get()](std::string_view kind, json::value input, const principal& who) {
        return w->make_submission(kind, std::move(input), nullptr, who);
    };
    schedules = std::make_unique<scheduler>(*db, *queue, so);
    return {};
}

bool app::impl::schedulable_kind(std::string_view kind) const {
    if (!workers || !workers->known_kind(kind)) return false;
    // A records operation's kind runs the request its input holds, which a schedule has not.
    const auto dot = kind.find_first_of(".:");
    return dot == std::string_view::npos || !reg.find(kind.substr(0, dot));
}

void app::impl::close_services() {
    if (schedules) schedules->stop();
    for (auto& p : queue_pools) p->stop();
    if (workers) workers->stop();  // hands running tasks back to the queue
    if (waiters) waiters->stop();
    if (db) db->close();           // finishes queued writes: every acknowledged write is committed
    api.reset();
    auth.reset();
    limiter.reset();
    schedules.reset();
    queue_pools.clear();
    workers.reset();
    waiters.reset();
    queue.reset();
}

std::unique_ptr<hub> app::impl::make_hub() {
    hub_hooks hooks;
    // Streamable: declared collections and the built-in tasks; never idempotency_keys (it is
    // not in the registry), whose rows are other users' responses.
    hooks.find_collection = [this](std::string_view name) -> const collection_def* {
        if (name == tasks_collection().name) return &tasks_collection();
        return reg.find(name);
    };
    std::string tasks_url = cfg.server.base_path;
    while (!tasks_url.empty() && tasks_url.back() == '/') tasks_url.pop_back();
    tasks_url += "/tasks";
    hooks.present = [tasks_url](const collection_def& c, const json::object& stored) {
        if (&c == &tasks_collection()) return present_task(stored, tasks_url);
        return present_record(c, stored);
    };
    // Tasks follow GET /api/tasks's visibility (an anonymous caller: its own address's tasks);
    // records their collection's retrieve rule and C++ permission callback (the same test as a
    // REST retrieve).
    hooks.may_see = [](const principal& who, const collection_def& c, const json::object& stored) {
        if (&c == &tasks_collection()) return may_list_task(who, stored);
        return may_retrieve(c, who, stored);
    };
    // Live-query windows are narrowed in the query (counts and limits stay right): tasks to the
    // caller's own, exactly as GET /api/tasks lists them.
    hooks.narrow = [](const principal& who, const collection_def& c, query& q) {
        if (&c == &tasks_collection()) return narrow_task_query(who, q);
        return narrow_query(c, who, q);
    };
    // Revocations from any process on the database (logout, password change, disable) reach
    // the hub through the change log. The authenticator and the waiters outlive the hub (stop()
    // stops it first).
    // Long polls and task streams learn of every task change from the log too: those made
    // here, and those of other processes (`livebase worker`, other nodes).
    // The queue keeps its owners' pending counts and the fair claim head from the log too.
    // A schedule changed on any node: the scheduler looks again (its next_run may be earlier).
    hooks.on_change = [a = auth.get(), w = waiters.get(), q = queue.get(), s = schedules.get()](const change& ch) {
        if (ch.collection == schedules_collection().name) s->poke();
        if (ch.collection == tasks_collection().name) {
            q->observe(ch);
            auto st = task_state_from_string(get_string(ch.record, "state"));
            w->notify(ch.id, ch.op == "delete" || (st && is_finished(*st)));
        }
        return a->on_change(ch);
    };
    hub_options ho;
    ho.history = cfg.realtime.history;
    ho.history_age = cfg.realtime.history_age;
    ho.max_subscriptions = cfg.realtime.max_subscriptions;
    ho.trim_every = cfg.realtime.trim_every;
    // A replay page fits a quarter of the send queue (the room when_ready() waits for), so a
    // resume never holds more than about the queue's bound: at most 1 MiB, at least one event.
    ho.replay_page_bytes = static_cast<std::size_t>(
        std::clamp<std::uint64_t>(cfg.realtime.send_queue / 4, 1, ho.replay_page_bytes));
    ho.node_timeout = cfg.realtime.node_timeout;
    // Tests of the cluster trim run a `serve` process with a short trim period.
    if (const char* t = std::getenv("LIVEBASE_TEST_TRIM_EVERY_MS"); t && std::atoi(t) > 0)
        ho.trim_every = std::chrono::milliseconds(std::atoi(t));
    return std::make_unique<hub>(*db, std::move(hooks), ho, log);
}

result<void> app::impl::start() {
    if (started) return problem::bad_request("the app is already started");
    if (auto r = check_listen_address(cfg.server); !r) return r;
    if (auto r = open_services(); !r) {
        close_services();
        return r;
    }
    // The hub starts at the store's last seq before anything can write (workers, listeners).
    // A restarted node keeps its name: its pending Idempotency-Keys are taken over at once.
    {
        char host[256] = {};
        if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
        api->set_node(std::string(host) + ":" + listen_text(cfg.server));
    }
    realtime = make_hub();
    realtime->start();
    auto http_opts = cfg.server;
    http_opts.sse_max_pending = cfg.realtime.send_queue;  // SSE's bound is the socket's
    server = std::make_unique<http_server>(ioc, *api, http_opts, log, metrics);
    server->set_hub(*realtime);
    // One gate for both doors: the same credentials, buckets, cookie and Origin policy.
    gate_options door;
    door.auth = auth.get();
    door.limiter = limiter.get();
    door.anonymous = cfg.auth.throttle_anonymous;
    door.user = cfg.auth.throttle_user;
    door.token_ttl = cfg.auth.token_ttl;
    door.allowed_origins = cfg.server.cors_origins;
    door.secure_cookie = cfg.server.secure_cookie;
    if (auto t = address_set::parse(cfg.server.trusted_proxies))
        door.trusted_proxies = std::move(*t);
    else
        log.warn("trusted_proxies ignored", {{"error", t.error().detail}});
    server->set_gate(door);
    ws_options wo;
    wo.max_message = cfg.realtime.max_message;
    wo.send_queue = cfg.realtime.send_queue;
    wo.idle_timeout = cfg.server.idle_timeout;
    wo.gate = std::move(door);
    wo.lanes = cfg.server.threads ? cfg.server.threads : std::max(1u, std::thread::hardware_concurrency());
    wo.deflate = cfg.realtime.deflate;
    wo.deflate_threshold = cfg.realtime.deflate_threshold;
    wo.deflate_level = static_cast<int>(cfg.realtime.deflate_level);
    ws = std::make_unique<ws_server>(*api, *realtime, wo, log, metrics);
    server->set_upgrade_handler(
        "/ws", [w = ws.get()](websocket_upgrade&& up) { w->accept(std::move(up)); });
    server->set_api_documents([a = api.get()](bool realtime, const api_document_context& ctx) {
        apidoc::document_options o;
        o.base_path = ctx.base_path;
        o.websocket_path = ctx.websocket_path;
        o.auth = ctx.auth;
        o.tasks = true;  // the app always serves /api/tasks
        return to_json_text(realtime ? apidoc::asyncapi_document(a->reg(), o)
                                     : apidoc::openapi_document(a->reg(), o));
    });
    if (auto r = server->listen(); !r) {
        server.reset();
        ws.reset();
        realtime->stop();
        close_services();
        auto p = std::move(r).error();
        p.detail += std::string(k_listen_hint);
        return p;
    }
    workers->start();
    for (auto& p : queue_pools) p->start();
    schedules->start();
    work.emplace(ioc.get_executor());
    gauge_timer.emplace(ioc);
    refresh_gauges(/*wait=*/true);
    std::size_t n = cfg.server.threads ? cfg.server.threads : std::max(1u, std::thread::hardware_concurrency());
    for (std::size_t i = 0; i < n; ++i) threads.emplace_back([this] { ioc.run(); });
    started = true;
    log.info("listening", {{"address", cfg.server.host.empty() ? "*" : cfg.server.host},
                           {"port", server->port()},
                           {"storage", storage_for_log(cfg.storage.url)},
                           {"config", config_file.empty() ? "(none)" : config_file},
                           {"threads", n},
                           {"workers", cfg.tasks.workers}});
    log_console();
    return {};
}

void app::impl::log_console() {
    namespace fs = std::filesystem;
    const fs::path dir = cfg.server.console_dir.empty() ? fs::path("console/dist") : fs::path(cfg.server.console_dir);
    std::error_code abs_ec, ec;
    const fs::path abs = fs::absolute(dir, abs_ec).lexically_normal();
    if (fs::is_regular_file(dir / "index.html", ec)) {
        log.info("console", {{"url", local_url(cfg.server, server->port()) + "/_/"}});
        return;
    }
    json::object fields{{"looked_in", (abs_ec ? dir : abs).string()}};
    // The repository's layout: the sources next to the default directory.
    if (cfg.server.console_dir.empty() && fs::is_regular_file("console/package.json", ec))
        fields["build"] = "(cd console && npm ci && npm run build)";
    else
        fields["build"] = "build the console (console/ in the livebase repository: npm ci && npm run build) "
                          "and set server.console_dir to its dist directory";
    log.warn("console not built: /_/ answers 404 until it is", fields);
}

void app::impl::refresh_gauges(bool wait) {
    api->keep_keys_alive();  // the leases of the Idempotency-Keys of requests in flight here
    auto read_done = std::make_shared<std::promise<void>>();
    auto first = read_done->get_future();
    db->read([this, read_done](read_txn& t) {
        for (auto state : {task_state::pending, task_state::running, task_state::succeeded,
                           task_state::failed, task_state::cancelled}) {
            query q;
            q.filters.push_back({"state", lookup::exact, json::value(to_string(state))});
            q.limit = 1;
            if (auto pg = t.list(tasks_collection(), q))
                metrics.set_gauge("livebase_tasks{state=\"" + std::string(to_string(state)) + "\"}",
                                  static_cast<double>(pg->count));
        }
        // Queues: depth and running tasks by queue (the default one: the tasks of no named
        // queue), and the tasks this process's pools started.
        if (!cfg.tasks.queues.empty()) {
            std::map<std::string, json::array> kinds_of;
            for (const auto& [kind, q] : kind_queue) kinds_of[q].emplace_back(kind);
            for (auto state : {task_state::pending, task_state::running}) {
                const auto family = std::string(state == task_state::pending ? "livebase_queue_pending" : "livebase_queue_running");
                query all;
                all.filters.push_back({"state", lookup::exact, json::value(to_string(state))});
                all.limit = 0;
                auto total = t.list(tasks_collection(), all);
                if (!total) continue;
                std::int64_t named = 0;
                for (const auto& [name, q] : cfg.tasks.queues) {
                    std::int64_t n = 0;
                    if (auto it = kinds_of.find(name); it != kinds_of.end()) {
                        query q2 = all;
                        q2.filters.push_back({"kind", lookup::in, json::value(it->second)});
                        if (auto pg = t.list(tasks_collection(), q2)) n = pg->count;
                    }
                    named += n;
                    metrics.set_gauge(family + "{queue=\"" + name + "\"}", static_cast<double>(n));
                }
                metrics.set_gauge(family + "{queue=\"default\"}", static_cast<double>(std::max<std::int64_t>(0, total->count - named)));
            }
            metrics.set_gauge("livebase_queue_started{queue=\"default\"}", static_cast<double>(workers->started()));
            for (const auto& p : queue_pools)
                metrics.set_gauge("livebase_queue_started{queue=\"" + p->queue() + "\"}", static_cast<double>(p->started()));
        }
        const auto last = db->last_seq();
        metrics.set_gauge("livebase_change_log_seq", static_cast<double>(last));
        if (realtime) {
            // Clients attached to the hub (sockets and SSE streams) and changes committed but
            // not yet handed to them (event lag, in changes).
            const auto lag = std::max<std::int64_t>(0, last - realtime->seq());
            metrics.set_gauge("livebase_realtime_clients",
                              static_cast<double>(realtime->clients()));
            metrics.set_gauge("livebase_realtime_lag", static_cast<double>(lag));
            // Resumes still replaying (paged, not yet live) and events replayed since start.
            metrics.set_gauge("livebase_realtime_replays", static_cast<double>(realtime->replays()));
            metrics.set_gauge("livebase_realtime_replayed_events",
                              static_cast<double>(realtime->replayed_events()));
        }
        read_done->set_value();
    });
    // At start: the documented gauges are there before the first scrape.
    if (wait) first.wait();
    gauge_timer->expires_after(std::chrono::seconds(2));
    gauge_timer->async_wait([this](const boost::system::error_code& ec) {
        if (!ec && !stop_requested_gauges.load()) refresh_gauges();
    });
}

result<void> app::impl::start_worker() {
    if (started) return problem::bad_request("the app is already started");
    if (auto r = open_services(); !r) {
        close_services();
        return r;
    }
    const auto& only = cfg.tasks.serve_queues;
    auto serving = [&](const std::string& q) { return only.empty() || std::find(only.begin(), only.end(), q) != only.end(); };
    std::size_t threads_here = serving("default") ? cfg.tasks.workers : 0;
    for (const auto& [name, q] : cfg.tasks.queues)
        if (serving(name)) threads_here += q.workers;
    if (threads_here == 0) {
        close_services();
        return problem::bad_request(only.empty() ? "tasks.workers is 0: a worker process needs at least one worker"
                                                 : "the queues this worker serves (--queue) have no workers");
    }
    workers->start();
    for (auto& p : queue_pools) p->start();
    schedules->start();
    work.emplace(ioc.get_executor());
    threads.emplace_back([this] { ioc.run(); });  // runs the signal handler
    started = true;
    log.info("worker started", {{"storage", storage_for_log(cfg.storage.url)},
                                {"config", config_file.empty() ? "(none)" : config_file},
                                {"workers", cfg.tasks.workers}});
    return {};
}

void app::impl::stop(bool drain_period) {
    std::lock_guard<std::mutex> guard(stop_mu);
    {
        std::lock_guard<std::mutex> lock(state_mu);
        if (!started || stopped) return;
    }
    const auto period = drain_period && server ? cfg.server.drain_period : std::chrono::milliseconds(0);
    log.info("shutting down", {{"grace_ms", cfg.server.shutdown_grace.count()}, {"drain_ms", period.count()}});
    if (server) {
        // New connections keep being accepted for the drain period (503 draining, so a balancer
        // sees the node leave); idle keep-alive connections stay open as long, plus a short grace.
        server->drain(period);
        if (ws) ws->drain();  // sockets close with 1001
        waiters->stop();  // long polls answer now, with the task as it is
        const auto accept_until = std::chrono::steady_clock::now() + period;
        while (std::chrono::steady_clock::now() < accept_until)
            std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
                accept_until - std::chrono::steady_clock::now(), std::chrono::milliseconds(50)));
        server->stop_accepting();
        auto deadline = std::chrono::steady_clock::now() + cfg.server.shutdown_grace;
        while ((server->connections() > 0 || (ws && ws->sockets() > 0)) &&
               std::chrono::steady_clock::now() < deadline)
            std::this_thread::sleep_for(std::chrono::milliseconds(10));
        server->close_all();
        if (ws) ws->close_all();
    }
    stop_requested_gauges = true;
    if (gauge_timer) gauge_timer->cancel();
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
    // After every door is closed (no new subscriptions) and before the store closes (the hub
    // reads the change log). The hub object stays until the app goes: handlers destroyed with
    // the io_context may still detach from it.
    if (realtime) realtime->stop();
    close_services();
    server.reset();
    ws.reset();
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
    std::error_code ec;
    auto abs = std::filesystem::absolute(path, ec);
    impl_->config_file = ec ? path : abs.lexically_normal().string();
    return {};
}

result<void> app::load_config_string(std::string_view toml, const std::string& name) {
    auto c = livebase::load_config_string(toml, name);
    if (!c) return std::move(c).error();
    impl_->cfg = std::move(c).value();
    impl_->config_loaded = true;
    impl_->config_file.clear();
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

result<void> app::add_task_kind(const std::string& name, task_handler h, task_kind_options o) {
    if (name.empty() || !h) return problem::bad_request("a task kind needs a name and a handler");
    for (const auto& k : impl_->code_task_kinds)
        if (k.name == name) return problem::bad_request("task kind \"" + name + "\" is already registered");
    impl_->code_task_kinds.push_back({name, std::move(h), o});
    return {};
}

collection_handle app::collection(std::string name) { return collection_handle(*this, std::move(name)); }

bool collection_handle::attachable(std::string_view what) {
    if (!app_->impl_->registry_built) return true;
    app_->impl_->log.error("attached after the app started: ignored (attach before app::start())",
                           {{"collection", name_}, {"what", what}});
    return false;
}

template <class Hook>
collection_handle& collection_handle::hook(Hook h, std::vector<Hook> record_hooks::*list, std::string_view what) {
    if (!attachable(what)) return *this;
    if (!h)
        app_->impl_->setup_problems.push_back(
            problem::bad_request("collection \"" + name_ + "\": an empty " + std::string(what)));
    else
        (app_->impl_->code_hooks[name_].*list).push_back(std::move(h));
    return *this;
}

collection_handle& collection_handle::before_create(before_hook h) {
    return hook(std::move(h), &record_hooks::before_create, "before_create hook");
}
collection_handle& collection_handle::before_update(before_hook h) {
    return hook(std::move(h), &record_hooks::before_update, "before_update hook");
}
collection_handle& collection_handle::before_delete(before_hook h) {
    return hook(std::move(h), &record_hooks::before_delete, "before_delete hook");
}
collection_handle& collection_handle::after_create(after_hook h) {
    return hook(std::move(h), &record_hooks::after_create, "after_create hook");
}
collection_handle& collection_handle::after_update(after_hook h) {
    return hook(std::move(h), &record_hooks::after_update, "after_update hook");
}
collection_handle& collection_handle::after_delete(after_hook h) {
    return hook(std::move(h), &record_hooks::after_delete, "after_delete hook");
}

collection_handle& collection_handle::permission(permission_fn fn) {
    if (!attachable("permission")) return *this;
    if (!fn)
        app_->impl_->setup_problems.push_back(
            problem::bad_request("collection \"" + name_ + "\": an empty permission"));
    else
        app_->impl_->code_permissions.emplace_back(name_, std::move(fn));
    return *this;
}

collection_handle& collection_handle::action(action_def def, action_handler h) {
    if (!attachable("action")) return *this;
    if (auto r = app_->add_action(name_, std::move(def), std::move(h)); !r)
        app_->impl_->setup_problems.push_back(std::move(r).error());
    return *this;
}

collection_handle& collection_handle::task_kind(const std::string& name, task_handler h,
                                                task_kind_options o) {
    if (!attachable("task kind")) return *this;
    if (auto r = app_->add_task_kind(name, std::move(h), o); !r)
        app_->impl_->setup_problems.push_back(std::move(r).error());
    return *this;
}

result<void> app::start() { return impl_->start(); }

result<void> app::start_worker() { return impl_->start_worker(); }

std::uint16_t app::port() const noexcept { return impl_->server ? impl_->server->port() : 0; }

livebase::store& app::store() { return *impl_->db; }

livebase::authenticator& app::auth() { return *impl_->auth; }

void app::stop() { impl_->stop(); }

void app::handle_signals() {
    auto& s = *impl_;
    if (s.signals) return;
    s.signals.emplace(s.ioc, SIGINT, SIGTERM);
    s.signals->async_wait([&s](const boost::system::error_code& ec, int sig) {
        if (ec) return;
        s.log.info("signal received", {{"signal", sig == SIGINT ? "SIGINT" : "SIGTERM"}});
        s.request_stop();
    });
}

void app::wait(bool handle_signals) {
    auto& s = *impl_;
    if (handle_signals && s.started) this->handle_signals();
    {
        std::unique_lock<std::mutex> lock(s.state_mu);
        s.state_cv.wait(lock, [&] { return s.stop_requested || s.stopped || !s.started; });
    }
    s.stop(/*drain_period=*/true);
}

}  // namespace livebase
