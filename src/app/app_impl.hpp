#pragma once
// The app's composition root: every service, in the order they must outlive each other.
#include <livebase/app/app.hpp>
#include <livebase/auth/auth.hpp>
#include <livebase/http/server.hpp>
#include <livebase/realtime/hub.hpp>
#include <livebase/store/store.hpp>
#include <livebase/tasks/queue.hpp>
#include <livebase/tasks/scheduler.hpp>
#include <livebase/tasks/waiters.hpp>
#include <livebase/tasks/worker_pool.hpp>
#include <livebase/ws/ws_server.hpp>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/signal_set.hpp>
#include <boost/asio/steady_timer.hpp>

#include <atomic>
#include <map>
#include <condition_variable>
#include <mutex>
#include <optional>
#include <thread>

namespace livebase {

namespace asio = boost::asio;

/// The file of a "sqlite:path" storage URL (as open_store reads it), nullopt for other URLs.
std::optional<std::string> sqlite_file(std::string_view url);

/// A storage URL as logs show it: a password redacted, a SQLite file made absolute (relative
/// ones are relative to the working directory).
std::string storage_for_log(std::string_view url);

/// The PostgreSQL timeouts of [storage].
postgres_timeouts pg_timeouts(const storage_options& s);

struct app::impl {
    // Shared services first: they outlive the io_context and the handlers it owns.
    livebase::logger log;
    livebase::config cfg;
    bool config_loaded = false;
    std::string config_file;  ///< the loaded file, absolute ("" when the config came from a string)
    std::vector<collection_def> code_collections;
    struct code_action {
        std::string collection;
        action_def def;
        action_handler handler;
    };
    std::vector<code_action> code_actions;
    struct code_task_kind {
        std::string name;
        task_handler handler;
        task_kind_options options;
    };
    std::vector<code_task_kind> code_task_kinds;
    /// Permissions attached through collection handles, in the order they were attached.
    std::vector<std::pair<std::string, permission_fn>> code_permissions;
    /// Record hooks attached through collection handles, by collection, in attach order.
    std::map<std::string, record_hooks> code_hooks;
    /// build_registry() ran (start() or start_worker()): attaching now would change nothing.
    bool registry_built = false;
    /// What a collection handle could not take (a bad action or task kind): start() fails with
    /// the first.
    std::vector<problem> setup_problems;

    registry reg;
    livebase::metrics metrics;
    std::unique_ptr<livebase::store> db;
    // Before the api and the doors, which hold pointers to them.
    std::unique_ptr<authenticator> auth;
    std::unique_ptr<throttle> limiter;
    std::unique_ptr<task_queue> queue;
    std::unique_ptr<task_waiters> waiters;
    std::unique_ptr<worker_pool> workers;
    /// The pools of the [tasks.queues.*] this process serves (the default queue's is `workers`).
    std::vector<std::unique_ptr<worker_pool>> queue_pools;
    /// Kind -> the named queue that runs it (kinds not here: the default queue).
    std::map<std::string, std::string> kind_queue;
    std::unique_ptr<scheduler> schedules;  ///< makes the tasks of the schedules' ticks
    std::unique_ptr<livebase::api> api;
    // Serve mode only. Before the io_context: sessions destroyed with its unrun handlers still
    // detach from the hub.
    std::unique_ptr<hub> realtime;

    asio::io_context ioc;
    std::optional<asio::executor_work_guard<asio::io_context::executor_type>> work;
    std::unique_ptr<http_server> server;
    std::unique_ptr<ws_server> ws;
    std::vector<std::thread> threads;
    std::optional<asio::signal_set> signals;
    std::optional<asio::steady_timer> gauge_timer;

    std::mutex stop_mu;       // held for the whole shutdown
    std::mutex state_mu;
    std::condition_variable state_cv;
    bool started = false;
    bool stop_requested = false;
    bool stopped = false;
    std::atomic<bool> stop_requested_gauges{false};

    void request_stop() {
        std::lock_guard<std::mutex> lock(state_mu);
        stop_requested = true;
        state_cv.notify_all();
    }

    result<void> build_registry();
    /// Opens and migrates the store, builds the api and the task services (workers not started).
    result<void> open_services();
    void close_services();
    /// Whether a schedule may start tasks of `kind`: a kind the workers run that is not a
    /// records operation's.
    bool schedulable_kind(std::string_view kind) const;
    result<void> start();
    result<void> start_worker();
    /// The realtime hub over the open store and registry (serve mode).
    std::unique_ptr<hub> make_hub();
    /// Every 2 s: tasks by state (and so queue depth), the change log's last seq, and the hub's
    /// clients and lag as gauges.
    void refresh_gauges(bool wait = false);
    /// Says where the console is served, or that it is not built and how to build it.
    void log_console();
    /// `drain_period`: keep accepting (answering 503 draining) for server.drain_period first
    /// (SIGTERM/SIGINT); app::stop() does not.
    void stop(bool drain_period = false);
};

}  // namespace livebase
