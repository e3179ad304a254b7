#pragma once
/// Operation -> Outcome: the one pipeline every door (REST, WebSocket, task worker) calls.
#include <livebase/core/principal.hpp>
#include <livebase/core/problem.hpp>
#include <livebase/core/result.hpp>
#include <livebase/schema/query.hpp>

#include <atomic>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace livebase {

enum class op_kind { list, retrieve, create, replace, patch, remove, action };
std::string_view to_string(op_kind k) noexcept;  ///< "list", "retrieve", "create", "update", "patch", "delete", "action"
/// The kind named `name` (to_string's names); nullopt for any other text.
std::optional<op_kind> op_kind_named(std::string_view name) noexcept;

class write_txn;
struct outcome;

/// Finishes the task that runs an operation in the same transaction as the operation's write
/// (a create, update or delete, or the one such write an action makes through the api): the
/// effect and the task's success commit together or not at all, so a task that ran again after
/// a crash finds itself either pending with no effect or finished with it. Set by the task
/// worker; the api uses it for the first write of the operation and marks it committed.
/// Thread-safe.
class task_finish {
public:
    virtual ~task_finish() = default;
    /// Inside the write's transaction: records `out` as the task's outcome. A problem (the task
    /// is no longer held by this worker) makes the write roll back.
    virtual result<void> in_txn(write_txn& t, const outcome& out) = 0;
    /// Takes the finisher for one write; false when another write of the run has it.
    bool take() noexcept { return !taken_.exchange(true); }
    /// The write that took it failed: the next write may take it.
    void give_back() noexcept { taken_.store(false); }
    /// The write that took it committed: the task is finished.
    void set_committed() noexcept { committed_.store(true); }
    bool committed() const noexcept { return committed_.load(); }

private:
    std::atomic<bool> taken_{false};
    std::atomic<bool> committed_{false};
};

/// A request, independent of the door it came through.
struct operation {
    op_kind kind = op_kind::retrieve;
    std::string collection;
    std::string id;                 ///< record id for detail operations
    std::string action;             ///< custom action name for op_kind::action
    std::string method = "GET";     ///< HTTP method for actions
    json::value input;              ///< body (null when none)
    query_params params;            ///< decoded query string (list filters; action args)
    std::string path;               ///< request path without query (REST: for page links)
    std::string query;              ///< raw (encoded) query string, "" when none
    std::string subresource;        ///< "result" for GET /api/tasks/{id}/result, else ""
    bool prefer_async = false;      ///< Prefer: respond-async
    std::optional<int> prefer_wait; ///< Prefer: wait=N (seconds, 0..60)
    bool from_task = false;         ///< executed by a task worker: never re-submitted as a task
    std::string idempotency_key;    ///< Idempotency-Key (1..255 chars), "" when none
    std::optional<std::int64_t> if_match;        ///< expected version (If-Match / body "version")
    principal who;
    std::string client_ip;          ///< the peer's address ("" when unknown, e.g. in a task)
    std::string request_id;
    std::shared_ptr<task_finish> finish;  ///< set when a task worker runs the operation
    /// Users only: the new password, already hashed. A task stores this instead of the password
    /// (which never reaches the store); the worker's create or update writes it.
    std::optional<std::string> password_hash;
};

/// What an operation produced, independent of encoding.
struct outcome {
    int status = 200;
    json::value body;               ///< null = no body (e.g. 204)
    bool is_problem = false;        ///< body is a problem object
    std::string location;           ///< path of a created record, or ""
    std::optional<std::int64_t> version;  ///< record version (ETag "v{n}") for detail responses
    std::vector<std::pair<std::string, std::string>> headers;  ///< extra headers (e.g. Allow)

    static outcome from_problem(const problem& p);
    static outcome json_body(int status, json::value body);
};

}  // namespace livebase
