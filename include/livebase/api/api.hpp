#pragma once
/// The executor of operations: rules, validation, store calls, custom actions.
#include <livebase/api/operation.hpp>
#include <livebase/core/log.hpp>
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/store/store.hpp>

#include <functional>
#include <map>
#include <memory>
#include <string>

namespace livebase {

class api;

/// What a custom action handler gets. Handlers run on a store reader thread (never an I/O
/// thread) and may block on the store through the *_sync helpers.
struct action_call {
    const operation& op;
    const collection_def& collection;
    const json::object* record;  ///< the stored record for detail actions, else null
    store& db;
    api& self;
};

/// A C++ action handler: returns the response (status, body) or a problem.
using action_handler = std::function<result<outcome>(action_call&)>;

/// The set of collections and handlers a server serves. Built at startup, then read-only
/// (thread-safe to read concurrently once built).
class registry {
public:
    /// Adds or replaces a collection. REQUIRES: c finalized (see finalize()).
    void add_collection(collection_def c);
    const collection_def* find(std::string_view name) const noexcept;
    collection_def* find_mutable(std::string_view name) noexcept;
    std::vector<const collection_def*> collections() const;

    /// Registers the handler of `collection`'s action (declared in its action_def).
    void add_action_handler(std::string collection, std::string action, action_handler h);
    const action_handler* find_action_handler(std::string_view collection,
                                              std::string_view action) const noexcept;

private:
    std::map<std::string, collection_def, std::less<>> collections_;
    std::map<std::pair<std::string, std::string>, action_handler> actions_;
};

/// Executes operations. Thread-safe; holds references (registry, store and logger must outlive
/// it). Owns a small pool of threads that run C++ action handlers, which may block.
class api {
public:
    /// `base_path` prefixes the URLs the api writes (Location, page links).
    api(const registry& reg, store& db, logger& log, std::string base_path = "/api");
    ~api();
    api(const api&) = delete;
    api& operator=(const api&) = delete;

    /// Runs `op` and calls `done` exactly once, on a store thread (or inline for immediate
    /// failures). Never throws; a handler exception becomes a 500 (logged with the request id).
    void execute(operation op, std::function<void(outcome)> done);

    /// Blocking form of execute() for action handlers and tools. Never call from an I/O thread.
    outcome execute_sync(operation op);

    const registry& reg() const noexcept { return reg_; }
    store& db() noexcept { return db_; }
    const std::string& base_path() const noexcept { return base_path_; }
    /// "/api/cars/01J..."
    std::string record_path(std::string_view collection, std::string_view id) const;

private:
    void do_list(operation op, const collection_def& c, std::function<void(outcome)> done);
    void do_retrieve(operation op, const collection_def& c, std::function<void(outcome)> done);
    void do_create(operation op, const collection_def& c, std::function<void(outcome)> done);
    void do_update(operation op, const collection_def& c, std::function<void(outcome)> done);
    void do_remove(operation op, const collection_def& c, std::function<void(outcome)> done);
    void do_action(operation op, const collection_def& c, std::function<void(outcome)> done);

    const registry& reg_;
    store& db_;
    logger& log_;
    std::string base_path_;
    struct handler_pool;
    std::unique_ptr<handler_pool> pool_;
};

}  // namespace livebase
