#pragma once
/// Maps (method, path) to a route of the REST door. Policy only, no I/O, no Beast.
#include <livebase/ops/operation.hpp>
#include <string>
#include <string_view>

namespace livebase::http_detail {

enum class route_kind {
    health,              ///< GET {base}/health (liveness)
    ready,               ///< GET {base}/health/ready (readiness)
    metrics,             ///< GET /metrics (outside the base path)
    records,             ///< {base}/{c}, {base}/{c}/{id}, and their :actions -> api
    events,              ///< GET {base}/{c}/events: SSE stream of the collection's changes
    websocket,           ///< GET of the WebSocket path (outside the base path), e.g. /ws
    schema,              ///< GET {base}/schema: the OpenAPI document
    schema_realtime,     ///< GET {base}/schema/realtime: the AsyncAPI document
    console,             ///< GET or HEAD of /_ and /_/... (outside the base path): the console
    not_found,           ///< unknown path -> 404
    method_not_allowed,  ///< known path, wrong method -> 405 with `allow`
};

struct route_match {
    route_kind kind = route_kind::not_found;
    /// Template for metrics labels ("/api/{c}/{id}"); bounded set, never a raw path.
    std::string route;
    /// For records: kind, collection, id, action and method filled in; the rest is the door's.
    /// For events: collection (and method) only.
    operation op;
    /// For method_not_allowed: the Allow header value ("GET, POST").
    std::string allow;
    /// For console: the path after "/_", still percent-encoded ("" or "/assets/app.js").
    std::string rest;
};

/// Immutable after construction; thread-safe to call match() concurrently.
class router {
public:
    /// `base_path` like "/api"; a trailing slash is ignored, "" or "/" mean the root.
    /// `websocket_path` ("/ws", outside the base path; "" = none) routes to `websocket`; it is
    /// matched exactly (a trailing slash is accepted) and shadows a collection of that name
    /// when the base path is the root.
    explicit router(std::string_view base_path, std::string_view websocket_path = {});

    /// `method` as sent ("GET"); `encoded_path` is the request-target's path, still
    /// percent-encoded, without the query. A trailing slash means the same as none. Segments are
    /// percent-decoded; an empty segment, invalid percent-encoding or a decoded segment that
    /// contains '/' makes the path unknown. A literal ':' in the last segment introduces an
    /// action (AIP-136); "%3A" is an ordinary character of a name or id. Action routes accept
    /// any method (the api decides, with its own 405). HEAD is not special: it gets a 405.
    ///
    /// `/_` and everything under `/_/` is the console (GET and HEAD, others 405); it is matched
    /// before the base path, so it shadows a collection named "_" when the base path is the
    /// root. `{base}/schema` and `{base}/schema/realtime` are the API documents (GET only).
    ///
    /// `{base}/{c}/events` is the change stream of `c` (GET only, other methods 405), so
    /// "events" is never a record id: ids are server-generated ULIDs, which are 26 characters
    /// long. `{base}/{c}/events:{action}` stays a detail action (on a record "events" that
    /// cannot exist, so the api answers 404).
    route_match match(std::string_view method, std::string_view encoded_path) const;

    const std::string& base_path() const noexcept { return base_; }

private:
    std::string base_;  // normalized: "" or "/x" without trailing slash
    std::string websocket_;  // "" when there is no WebSocket endpoint
};

}  // namespace livebase::http_detail
