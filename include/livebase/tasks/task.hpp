#pragma once
/// Tasks: records of the built-in `tasks` collection, a durable queue on the same store, and
/// the worker pool that executes them (C++ handlers and command tasks).
#include <livebase/ops/operation.hpp>
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>

#include <chrono>
#include <cstdint>
#include <exception>
#include <functional>
#include <memory>
#include <optional>
#include <stdexcept>
#include <string>
#include <string_view>

namespace livebase {

enum class task_state { pending, running, succeeded, failed, cancelled };
std::string_view to_string(task_state s) noexcept;
std::optional<task_state> task_state_from_string(std::string_view s) noexcept;
inline bool is_finished(task_state s) noexcept {
    return s == task_state::succeeded || s == task_state::failed || s == task_state::cancelled;
}

/// The definition of the built-in `tasks` collection (fields of http.md's task resource plus
/// internal scheduling fields: lease_until, not_before, worker, cancel_requested, result_status).
/// Finalized. The store migrates it like any collection, so every task change is in the change
/// log. Owned (owner = the submitting user). Stored `attempt` is the number of the current (or
/// last) attempt: 0 until the first claim, then 1, 2, ...
const collection_def& tasks_collection();

/// How the `owner` of an anonymous caller's task begins: "anon:<address>" (principal::
/// owner_key()). A user's task is owned by the user id. A task submitted in-process without an
/// address has a null owner.
inline constexpr std::string_view k_anonymous_owner_prefix = "anon:";

/// The client view of a stored task: exactly http.md's task resource (id, kind, state,
/// progress, message, eta, steps, request {method, path, query, body}, result, error, location,
/// attempt, max_attempts, owner, created, started, finished, links {self, result}). Internal
/// scheduling fields are left out, and so is an anonymous submitter's address (owner null).
/// `base_path` is the tasks URL prefix, e.g. "/api/tasks".
json::object present_task(const json::object& stored, std::string_view base_path);

/// The `request` JSON stored with a task: http.md's {"method", "path", "query", "body"} plus
/// "op" (kind, collection, id, action, params, if_match, request_id, password_hash when set)
/// and "who" {user_id, admin} so a worker can rebuild the operation. `query_string` is the raw
/// query ("" when none).
json::object request_to_json(const operation& op, std::string_view query_string);
/// Rebuilds the operation stored by request_to_json(). 500 problem when the JSON is not of
/// that shape.
result<operation> operation_from_request(const json::value& request);

/// Thrown by task_context::throw_if_cancelled(); the worker records the task as cancelled.
struct task_cancelled : std::exception {
    const char* what() const noexcept override { return "task cancelled"; }
};
/// Thrown by a handler for a failure worth retrying (the task goes back to pending with
/// attempt + 1 until max_attempts, with exponential backoff and jitter).
struct task_retry : std::runtime_error {
    using std::runtime_error::runtime_error;
};

/// What a running task's code sees. Thread-safe: progress calls may come from any thread.
/// Progress writes are coalesced (at most a few per second reach the store).
class task_context {
public:
    virtual ~task_context() = default;
    virtual const std::string& id() const noexcept = 0;
    virtual const std::string& kind() const noexcept = 0;
    virtual const json::value& input() const noexcept = 0;
    virtual int attempt() const noexcept = 0;
    virtual const principal& who() const noexcept = 0;

    /// progress 0..100 (clamped) or nullopt to clear.
    virtual void progress(std::optional<double> percent) = 0;
    virtual void message(std::string_view text) = 0;
    /// Seconds left, or nullopt.
    virtual void eta(std::optional<double> seconds) = 0;
    /// Sets a named step's state (pending|running|done|failed|skipped); new names append.
    virtual void step(std::string_view name, std::string_view state) = 0;

    /// True once cancellation was requested (DELETE /api/tasks/{id}) or the attempt timed out.
    virtual bool cancelled() const noexcept = 0;
    /// The finisher of this attempt (ops/operation.hpp): set on the operation a records task
    /// runs, it commits the task's success together with the operation's write. Null when the
    /// context offers none (the worker then records the outcome after the handler returns).
    virtual std::shared_ptr<task_finish> finisher() { return nullptr; }
    void throw_if_cancelled() const {
        if (cancelled()) throw task_cancelled{};
    }
};

/// A C++ task kind: returns the outcome the synchronous request would have produced
/// (status + body + location), or a problem (the task fails with it). Exceptions: task_retry
/// retries, task_cancelled cancels, anything else fails the attempt with a 500 problem.
using task_handler = std::function<result<outcome>(task_context&)>;

}  // namespace livebase
