#pragma once
/// The machine-readable descriptions of the API (docs/schema.md): an OpenAPI 3.1 document of the
/// REST API and an AsyncAPI 3.0.0 document of the WebSocket protocol, both generated from the
/// registry's collections, actions and endpoints. Policy only: no I/O.
#include <livebase/api/api.hpp>
#include <livebase/core/json.hpp>

#include <string>

namespace livebase::apidoc {

/// Where the server serves what the documents describe.
struct document_options {
    std::string base_path = "/api";   ///< as the router normalizes it: "" for the root
    std::string websocket_path;       ///< "" when the server has no WebSocket endpoint
    bool auth = true;                 ///< document {base}/auth/* (the server has an authenticator)
    bool tasks = true;                ///< document {base}/tasks and asynchronous answers
};

/// OpenAPI 3.1: per collection the record, input, patch, filter and page schemas, the list,
/// create, retrieve, replace, patch and delete operations (omitting those whose rule is
/// "nobody"), its change stream, its custom actions; the `[endpoints.*]`, the tasks API, the
/// auth endpoints, health, metrics and the documents themselves; problem+json errors, the
/// `Prefer: respond-async` 202 answer, and the bearer and cookie security schemes. Thread-safe
/// for a registry that is no longer changing.
json::object openapi_document(const registry& reg, const document_options& o);

/// AsyncAPI 3.0.0 of realtime.md: one channel at the WebSocket path with every request and
/// reply per stream and action, the events and live-query diffs of every collection, task
/// events, errors and hello; and one channel per collection for its SSE change stream.
/// Thread-safe for a registry that is no longer changing.
json::object asyncapi_document(const registry& reg, const document_options& o);

}  // namespace livebase::apidoc
