#pragma once
// Small helpers on stored task rows, shared by the queue's files (queue.cpp: submission,
// claims, cancel, reaping; outcomes.cpp: completions, failures, releases, heartbeats).
// Private to the tasks component.
#include <livebase/core/clock.hpp>
#include <livebase/tasks/queue.hpp>

#include <optional>
#include <string>

namespace livebase::task_rows {

inline const collection_def& tasks() { return tasks_collection(); }

inline void touch(json::object& t, std::int64_t now) {
    t["updated"] = format_timestamp(now);
    t["version"] = get_int(t, "version").value_or(0) + 1;
}

inline std::int64_t int_or(const json::object& t, std::string_view key, std::int64_t fallback) {
    return get_int(t, key).value_or(fallback);
}

inline bool bool_field(const json::object& t, std::string_view key) {
    auto it = t.find(key);
    return it != t.end() && it->value().is_bool() && it->value().get_bool();
}

inline std::optional<task_state> state_of(const json::object& t) {
    return task_state_from_string(get_string(t, "state"));
}

inline void finish(json::object& t, task_state s, std::int64_t now) {
    t["state"] = to_string(s);
    t["finished"] = format_timestamp(now);
    t["lease_until"] = nullptr;
    t["worker"] = nullptr;
    t["not_before"] = nullptr;
}

// Cancelled tasks carry a 410 problem as their error (what GET .../result answers).
inline void finish_as_cancelled(json::object& t, std::int64_t now) {
    finish(t, task_state::cancelled, now);
    auto p = problem::make(410, "/problems/task-cancelled", "Task cancelled", "The task was cancelled.");
    t["error"] = p.to_json();
    t["result_status"] = p.status;
}

inline result<json::object> load(write_txn& txn, const std::string& id) {
    auto got = txn.get(tasks(), id);
    if (!got) return std::move(got).error();
    if (!*got) return problem::not_found("No task with this id.");
    return std::move(**got);
}

inline result<json::object> as_object(result<json::value> r) {
    if (!r) return std::move(r).error();
    if (!r->is_object()) return problem::internal("The task write returned no task.");
    return std::move(r->get_object());
}

inline filter_term term(std::string field, lookup op, json::value v) {
    return filter_term{std::move(field), op, std::move(v)};
}

inline std::string stored_owner(const json::object& rec) {
    auto it = rec.find("owner");
    if (it == rec.end() || !it->value().is_string()) return {};
    return std::string(it->value().get_string());
}

inline bool is_anonymous_owner(const std::string& owner) { return owner.empty() || owner.rfind("anon:", 0) == 0; }

inline bool pending_row(const json::object& rec) { return get_string(rec, "state") == "pending"; }

inline filter_term owner_term(const std::string& owner) {
    if (owner.empty()) return filter_term{"owner", lookup::isnull, json::value(true)};
    return filter_term{"owner", lookup::exact, json::value(owner)};
}

// Counts `owner`'s pending tasks (retries included), no rows.
inline query pending_count(const std::string& owner) {
    query q;
    q.filters = {owner_term(owner), term("state", lookup::exact, json::value("pending"))};
    q.limit = 0;
    return q;
}

// Owners with no pending task and nothing in flight are forgotten past this many entries.
constexpr std::size_t kOwnersKept = 10000;

}  // namespace livebase::task_rows
