#pragma once
/// The public entry point: declare collections and actions (in code and/or TOML), then serve.
#include <livebase/api/api.hpp>
#include <livebase/app/config.hpp>
#include <livebase/auth/auth.hpp>
#include <livebase/core/log.hpp>
#include <livebase/tasks/task.hpp>
#include <livebase/tasks/worker_pool.hpp>

#include <memory>
#include <string>
#include <string_view>
#include <vector>

namespace livebase {

/// A C++ permission (collection_def::permission): asked after the collection's rules allow,
/// with the action ("list", "retrieve", "create", "update", "patch", "delete" or a custom
/// action's name) and the record (stored, or about to be created; null for lists and list
/// actions). verdict::deny("why") refuses with 403 and that detail (404 for "retrieve").
using permission_fn =
    std::function<verdict(const principal& who, std::string_view action, const json::object* record)>;

class app;

/// A collection the app serves, declared in the TOML file or in code, as C++ parts attach to
/// it (app::collection). What is attached is applied when the app starts, whether the file was
/// loaded or the collection declared before or after; start() fails naming a collection that
/// nothing declares, or an action that is not valid. Attaching after start() changes nothing
/// and logs an error saying so. Cheap to copy; valid as long as its app.
class collection_handle {
public:
    /// Adds a permission. Several all have to allow; the first refusal answers.
    collection_handle& permission(permission_fn fn);
    /// Serves action `def` (`{base}/{c}:{name}`, or `{base}/{c}/{id}:{name}` when detail) with
    /// `h`. A C++20 designated initializer reads well:
    /// `.action({.name = "repaint", .detail = true}, repaint)`.
    collection_handle& action(action_def def, action_handler h);
    /// Registers a C++ task kind that this collection's actions or endpoints run (as
    /// app::add_task_kind).
    collection_handle& task_kind(const std::string& name, task_handler h, task_kind_options o = {});

    /// Record hooks (record_write, before_hook, after_hook; docs/embedding.md). Before-hooks run
    /// inside the write's transaction and may change the record or refuse the write; after-hooks
    /// run once it committed. "update" covers full replaces and patches.
    collection_handle& before_create(before_hook h);
    collection_handle& before_update(before_hook h);
    collection_handle& before_delete(before_hook h);
    collection_handle& after_create(after_hook h);
    collection_handle& after_update(after_hook h);
    collection_handle& after_delete(after_hook h);

    const std::string& name() const noexcept { return name_; }

private:
    friend class app;
    collection_handle(app& a, std::string name) : app_(&a), name_(std::move(name)) {}
    /// False (and logged) once the app has started: what is attached then would be ignored.
    bool attachable(std::string_view what);
    template <class Hook>
    collection_handle& hook(Hook h, std::vector<Hook> record_hooks::*list, std::string_view what);
    app* app_;
    std::string name_;
};

/// A livebase application: configuration, registry and (once started) the running server.
/// Not thread-safe during setup; start()/stop()/wait() may be called from any one thread.
class app {
public:
    app();
    ~app();
    app(const app&) = delete;
    app& operator=(const app&) = delete;

    /// Loads (replacing the current config) a TOML file / text. Problem names file, line, key.
    result<void> load_config_file(const std::string& path);
    result<void> load_config_string(std::string_view toml, const std::string& name = "<string>");

    /// The configuration; may be edited before start().
    livebase::config& config() noexcept;
    livebase::logger& log() noexcept;

    /// Declares (or replaces) a collection in code. finalize() is applied; problem on bad defs.
    result<void> add_collection(collection_def c);

    /// Declares an action on `collection` with its C++ handler. Problem if the collection is
    /// unknown or the def is invalid.
    result<void> add_action(const std::string& collection, action_def def, action_handler h);

    /// Registers a C++ task kind (e.g. the `task` of an action or endpoint). Problem when the
    /// name is empty or already taken.
    result<void> add_task_kind(const std::string& name, task_handler h, task_kind_options o = {});

    /// The collection `name` (declared in the TOML file or in code, before or after this
    /// call), for C++ parts to attach to: permissions, actions, task kinds, record hooks. What is attached
    /// is applied at start; a name that nothing declares fails start() naming it.
    collection_handle collection(std::string name);

    /// Opens the store, migrates (additive only), starts I/O threads and listens. Returns once
    /// listening. Problem on any startup error.
    result<void> start();
    /// The listening port (after start()).
    std::uint16_t port() const noexcept;
    /// The store (after start()).
    livebase::store& store();
    /// Users and tokens (after start()): create users, log in, revoke (docs/auth.md).
    livebase::authenticator& auth();

    /// Graceful stop: stop accepting, finish in-flight requests (up to shutdown_grace), close,
    /// stop threads, close the store. Idempotent; safe from a signal-handling thread.
    void stop();
    /// Blocks until stop() completes or SIGINT/SIGTERM (when handle_signals) triggers it.
    void wait(bool handle_signals = true);
    /// Handles SIGINT/SIGTERM from now on (a graceful stop, as wait() does): call it before
    /// start(), so that a signal that arrives while the server starts (it may already be
    /// listening) stops it gracefully instead of killing the process.
    void handle_signals();

    /// Opens the store and runs task workers only (`livebase worker`), until stop().
    result<void> start_worker();

    /// The command line of config.md: serve|worker|check|migrate [-c file] [--allow-destructive],
    /// --version, --help, --log-format. Returns the process exit code.
    int main(int argc, char** argv);

private:
    friend class collection_handle;
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// "0.1.0"
std::string_view version() noexcept;

}  // namespace livebase
