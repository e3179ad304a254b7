#pragma once
/// The executor of operations: rules, validation, store calls, custom actions.
#include <livebase/ops/operation.hpp>
#include <livebase/core/input.hpp>
#include <livebase/core/log.hpp>
#include <livebase/core/result.hpp>
#include <livebase/core/units.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/store/store.hpp>

#include <atomic>
#include <chrono>
#include <functional>
#include <map>
#include <memory>
#include <mutex>
#include <string>

namespace livebase {

class api;
class auth_requests;
class authenticator;
class idempotency_keys;
class task_requests;
struct hook_tasks;
class throttle;
class task_queue;
class task_waiters;
class worker_pool;

/// `[endpoints.<name>]`: a path under the base path bound to a task kind (always async).
struct endpoint_binding {
    std::string name;
    std::string method = "GET";
    std::string path;  ///< full path, e.g. "/api/double"
    std::string task;  ///< task kind
    access_rule rule = access_rule::public_;
};

/// What a custom action handler gets. Handlers run on a store reader thread (never an I/O
/// thread) and may block on the store through the *_sync helpers.
struct action_call {
    const operation& op;
    const collection_def& collection;
    const json::object* record;  ///< the stored record for detail actions, else null
    store& db;
    api& self;

    /// The request's body, read by type: `call.input().require<std::string>("color")` is the
    /// color or the 400 problem that names the field.
    input_reader input() const noexcept { return input_reader(op.input); }
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

    /// Binds an endpoint (method + path) to a task kind.
    void add_endpoint(endpoint_binding e);
    const endpoint_binding* find_endpoint(std::string_view method, std::string_view path) const noexcept;
    const std::vector<endpoint_binding>& endpoints() const noexcept { return endpoints_; }

    /// Lets callers whom `rule` admits submit tasks of `kind` directly (POST {base}/tasks, the
    /// socket's `submit`; `[tasks.kinds.<kind>] submit` in the file).
    void add_submittable_kind(std::string kind, access_rule rule);
    /// The rule of a kind submittable directly, or null.
    const access_rule* submit_rule(std::string_view kind) const noexcept;
    const std::map<std::string, access_rule, std::less<>>& submittable_kinds() const noexcept { return submittable_; }

private:
    std::map<std::string, collection_def, std::less<>> collections_;
    std::map<std::pair<std::string, std::string>, action_handler> actions_;
    std::vector<endpoint_binding> endpoints_;
    std::map<std::string, access_rule, std::less<>> submittable_;
};

/// The built-in collection of remembered Idempotency-Keys (migrated like any collection).
const collection_def& idempotency_collection();

/// Who may reach a task by its id (retrieve, result, cancel, its SSE stream; http.md section
/// 3): admins every task, a user the tasks they own, an anonymous caller any anonymous task
/// (its unguessable id is the capability). `task` is the stored task. Thread-safe.
bool may_see_task(const principal& who, const json::object& task);
/// Who sees a task in lists, live queries and change feeds: admins every task, a user the
/// tasks they own, an anonymous caller only the tasks submitted from its own address (owner
/// "anon:<address>", principal::owner_key()). Thread-safe.
bool may_list_task(const principal& who, const json::object& task);
/// Narrows a query of the tasks collection to what `who` may list (may_list_task). False when
/// `who` may list no task at all (an anonymous caller whose address is unknown).
bool narrow_task_query(const principal& who, query& q);

/// The action `op` names, or null with `refusal` set (404, or 405 with Allow).
const action_def* find_action(const operation& op, const collection_def& c, outcome& refusal);

/// The task kind that runs an operation of `collection` asynchronously: "cars.create",
/// "cars.update", "cars.patch", "cars.delete", "cars.list", "cars.retrieve", and "cars:build"
/// for an action with a C++ handler.
std::string operation_task_kind(std::string_view collection, op_kind kind, std::string_view action = {});

/// "/api/cars/01J...": the path of record `id` of `collection` under `base_path` (the id
/// percent-encoded).
std::string record_path(std::string_view base_path, std::string_view collection,
                        std::string_view id);

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

    /// Turns on tasks: `Prefer: respond-async`, async collections/actions/endpoints and
    /// /api/tasks. Without it every request runs synchronously and /api/tasks is 404.
    /// REQUIRES: before serving; the three outlive the api.
    void enable_tasks(task_queue& queue, worker_pool& pool, task_waiters& waiters);

    /// Turns on the auth operations (collection "auth", op_kind::action, action "login",
    /// "logout", "me" or "register"; see docs/auth.md) and the re-check of a task submitter's
    /// identity at execution. `signup` allows "register". Rules are enforced with or without
    /// it; without it the auth operations answer 404.
    ///
    /// Auth operations: "login" (POST {"username","password"} -> 200 {"token","expires","user"};
    /// attempts are limited per client address and username, and per client address
    /// (set_login_limits), then 429 with Retry-After), "logout" (POST, needs a token: 204), "me" (GET: 200 user or 401),
    /// "register" (POST, only with `signup`: 201 user). They never run as tasks and never
    /// take part in Idempotency-Key replays (a stored response would hold a token).
    ///
    /// With auth on, an admin may send "password" in a create/update body of the `users`
    /// collection: it is checked (password_problem), hashed off the store threads and stored as
    /// password_hash; a changed password deletes the user's tokens in the same transaction.
    /// REQUIRES: before serving; `a` outlives the api.
    void enable_auth(authenticator& a, bool signup) noexcept;

    /// The login (and sign-up) attempt limits: `per_user` per (client address, lowercased
    /// username), `per_address` per client address whatever the username (count 0 = unlimited).
    /// There is no limit per username alone: it would let anyone lock an account's owner out.
    /// Defaults k_login_rate and k_login_address_rate. REQUIRES: before serving.
    void set_login_limits(rate per_user, rate per_address) noexcept;

    /// How long an Idempotency-Key is remembered (default 24 h; the app uses tasks.retention).
    void set_idempotency_retention(std::chrono::milliseconds retention) noexcept;

    /// This node's name in the holder of a pending Idempotency-Key (default "<host>:<pid>"; the
    /// server sets "<host>:<listen address>", which a restarted node keeps). A pending key whose
    /// holder has this name and another boot id was held by a process that is gone: a retry
    /// takes it over at once. REQUIRES: before serving.
    void set_node(std::string name);
    /// Renews the lease of the Idempotency-Keys this process holds (requests in flight), at
    /// most every 10 s; call it every few seconds (the server does, with its gauges).
    void keep_keys_alive();

    /// Whether `op` (a decoded request, before execute) does more than read: an endpoint, a
    /// custom action, or an operation that runs as a task. The HTTP door refuses such GETs when
    /// they come from another site with only the session cookie (a navigation the browser
    /// sends with a SameSite=Lax cookie). Thread-safe; reads only the registry.
    bool has_effects(const operation& op) const;

    /// Blocking form of execute() for action handlers and tools. Never call from an I/O thread.
    outcome execute_sync(operation op);

    /// Runs `cb` once, at the next change of task `id` the change log reports, or at
    /// `deadline`. False (and `cb` never runs) when tasks are off or shutting down. Task
    /// streams (SSE) wait with it. Thread-safe.
    bool watch_task(const std::string& id, std::chrono::steady_clock::time_point deadline,
                    std::function<void()> cb);

    const registry& reg() const noexcept { return reg_; }
    store& db() noexcept { return db_; }
    const std::string& base_path() const noexcept { return base_path_; }
    /// "/api/cars/01J..."
    std::string record_path(std::string_view collection, std::string_view id) const;

    /// {"count", "next", "previous"} of a page of `op`'s list (links keep `op`'s parameters
    /// but limit and offset).
    static json::object list_page(const operation& op, const query& q, std::int64_t count);

private:
    void do_list(operation op, const collection_def& c, std::function<void(outcome)> done);
    void do_retrieve(operation op, const collection_def& c, std::function<void(outcome)> done);
    void do_create(operation op, const collection_def& c, std::function<void(outcome)> done);
    void do_update(operation op, const collection_def& c, std::function<void(outcome)> done);
    void do_remove(operation op, const collection_def& c, std::function<void(outcome)> done);
    void do_action(operation op, const collection_def& c, std::function<void(outcome)> done);

    using done_fn = std::function<void(outcome)>;
    /// The write half of do_update: validates, checks the rule on the stored record and
    /// writes, in one write transaction. `password_hash`: a new password (users only).
    void write_update(operation op, const collection_def& c, json::object body,
                      std::optional<std::string> password_hash, done_fn done);
    /// Stores a new record (its rule and callback already allowed it; its refs must name
    /// records `who` may retrieve); `fin` (may be null) finishes the task that runs the create
    /// in the same transaction.
    void insert_record(const collection_def& c, json::object rec, principal who,
                       std::shared_ptr<task_finish> fin, done_fn done);
    /// insert_record's work inside the write transaction (after the before-hooks).
    result<json::value> insert_in(const collection_def& c, json::object rec, const principal& who,
                                  const std::shared_ptr<task_finish>& fin, write_txn& t);
    /// The record_write a before-hook of a write of `who` in `t` sees; its enqueues are kept
    /// in `tasks`.
    record_write hook_view(const principal& who, std::string_view action, json::object* record,
                           const json::object* stored, write_txn& t, hook_tasks& tasks);
    /// Runs `hooks` for a write (its state in `tasks`, reset for this run); what they enqueued
    /// is settled by hooks_done() once the write is over.
    result<void> run_hooks(const collection_def& c, const std::vector<before_hook>& hooks, const principal& who,
                           std::string_view action, json::object* record, const json::object* stored,
                           write_txn& t, const std::shared_ptr<hook_tasks>& tasks);
    void hooks_done(const std::shared_ptr<hook_tasks>& tasks, bool committed);
    /// Queues a committed write's after-hooks on the handler pool.
    void after_write(const collection_def& c, const std::vector<after_hook>& hooks, std::string action,
                     const principal& who, const json::object* record, const json::object* stored);
    /// 201 with the record and its Location.
    outcome created_outcome(const collection_def& c, const json::object& rec) const;
    /// Runs Argon2id for a password given to the users collection on the handler pool, then
    /// `next` with the hash (or answers the problem).
    void hash_then(std::string password, done_fn done, std::function<void(std::string, done_fn)> next);
    /// Drops the cached credentials of a user this process just changed or deleted (before the
    /// answer; the hub does the same for every node when it reads the change).
    void forget_user(const std::string& user_id);
    /// execute() without the Idempotency-Key step.
    void dispatch(operation op, done_fn done);

    /// Runs blocking work on the handler pool; false when the pool is full or stopping.
    bool run_blocking(std::function<void()> job);
    const registry& reg_;
    store& db_;
    logger& log_;
    std::string base_path_;
    class handler_pool;
    std::unique_ptr<handler_pool> pool_;
    /// Asynchronous operations and /api/tasks, once tasks are on (src/api/task_requests.cpp).
    std::unique_ptr<task_requests> task_ops_;
    authenticator* auth_ = nullptr;
    /// The auth operations and their attempt limits (src/api/auth_requests.cpp).
    std::unique_ptr<auth_requests> auth_ops_;
    /// Idempotency-Keys around dispatch() (src/api/idempotency.cpp).
    std::unique_ptr<idempotency_keys> keys_;
};

}  // namespace livebase
