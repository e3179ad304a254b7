#pragma once
/// Operation -> Outcome: the one pipeline every door (REST, WebSocket, task worker) calls.
#include <livebase/core/principal.hpp>
#include <livebase/core/problem.hpp>
#include <livebase/schema/query.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <utility>
#include <vector>

namespace livebase {

enum class op_kind { list, retrieve, create, replace, patch, remove, action };
std::string_view to_string(op_kind k) noexcept;  ///< "list", "retrieve", "create", "update", "patch", "delete", "action"

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
