// The OpenAPI 3.1 document of the REST API: per collection its schemas and operations, the
// tasks, auth and operations endpoints, and the components every operation refers to.
#include <livebase/apidoc/documents.hpp>

#include "apidoc/schemas.hpp"

#include <livebase/ops/operation.hpp>
#include <livebase/tasks/queue.hpp>

#include <initializer_list>
#include <optional>
#include <string_view>

namespace livebase::apidoc {

namespace {

constexpr std::string_view k_session_cookie = "livebase_session";

json::object json_content(json::object schema, std::string_view type = "application/json") {
    return json::object{{std::string(type), json::object{{"schema", std::move(schema)}}}};
}

json::object response(std::string_view description, std::optional<json::object> schema = {},
                      std::string_view type = "application/json") {
    json::object r{{"description", description}};
    if (schema) r["content"] = json_content(std::move(*schema), type);
    return r;
}

json::object header_ref(std::string_view name) { return ref_to("headers", name); }

/// The security requirement of a rule: public operations may be called anonymously.
json::array security_for(access_rule rule) {
    json::array s{json::object{{"bearer", json::array{}}}, json::object{{"cookie", json::array{}}}};
    if (rule == access_rule::public_) s.emplace(s.begin(), json::object{});
    return s;
}

/// Problem responses by status, as components/responses names.
void add_errors(json::object& responses, std::initializer_list<int> statuses) {
    for (int st : statuses) responses[std::to_string(st)] = ref_to("responses", "problem_" + std::to_string(st));
}

json::object operation_object(std::string id, std::string summary, std::string tag,
                              json::array security) {
    return json::object{{"operationId", std::move(id)},
                        {"summary", std::move(summary)},
                        {"tags", json::array{json::value(std::move(tag))}},
                        {"security", std::move(security)}};
}

json::array params(std::initializer_list<std::string_view> names) {
    json::array out;
    for (auto n : names) out.push_back(ref_to("parameters", n));
    return out;
}

/// A 202 and the Prefer parameter on an operation that may (or must) run as a task.
void add_async(json::object& op, json::object& responses, async_mode mode) {
    if (mode == async_mode::never) return;
    responses["202"] = ref_to("responses", "accepted");
    auto& ps = op["parameters"].as_array();
    ps.push_back(ref_to("parameters", "prefer"));
    if (mode == async_mode::always) op["x-livebase-async"] = "always";
}

json::object request_body(json::object schema, bool required,
                          std::initializer_list<std::string_view> types = {"application/json"}) {
    json::object content;
    for (auto t : types) content[std::string(t)] = json::object{{"schema", schema}};
    return json::object{{"required", required}, {"content", std::move(content)}};
}

std::string status_title(int st) {
    switch (st) {
        case 400: return "Bad request: malformed JSON, invalid fields or query parameters";
        case 401: return "No or bad credentials";
        case 403: return "Not allowed";
        case 404: return "Not found (or not visible to the caller)";
        case 405: return "Method not allowed";
        case 409: return "Conflict";
        case 410: return "Gone";
        case 412: return "If-Match mismatch";
        case 413: return "Body too large";
        case 415: return "Body is not JSON";
        case 422: return "Idempotency-Key reused with a different request";
        case 429: return "Throttled";
        case 503: return "Shutting down or overloaded";
        default: return "Error";
    }
}

json::object openapi_components() {
    json::object schemas{{"livebase.problem", problem_schema()},
                         {"livebase.task", task_schema()},
                         {"livebase.task_page", page_schema("livebase.task")},
                         {"livebase.user", user_schema()},
                         {"livebase.credentials", credentials_schema()}};
    json::object responses;
    for (int st : {400, 401, 403, 404, 405, 409, 410, 412, 413, 415, 422, 429, 503}) {
        auto r = response(status_title(st), schema_ref("livebase.problem"), "application/problem+json");
        if (st == 401) r["headers"] = json::object{{"WWW-Authenticate", header_ref("www_authenticate")}};
        if (st == 429 || st == 503 || st == 507) r["headers"] = json::object{{"Retry-After", header_ref("retry_after")}};
        if (st == 405) r["headers"] = json::object{{"Allow", header_ref("allow")}};
        responses["problem_" + std::to_string(st)] = std::move(r);
    }
    auto accepted = response("Accepted: the request runs as a task (Prefer: respond-async, or an "
                             "asynchronous collection, action or endpoint)",
                             schema_ref("livebase.task"));
    accepted["headers"] = json::object{{"Location", header_ref("task_location")},
                                       {"Retry-After", header_ref("retry_after")},
                                       {"Preference-Applied", header_ref("preference_applied")}};
    responses["accepted"] = std::move(accepted);

    auto str = [](std::string_view d) {
        return json::object{{"description", d}, {"schema", {{"type", "string"}}}};
    };
    json::object headers{{"retry_after", json::object{{"description", "seconds to wait"}, {"schema", {{"type", "integer"}}}}},
                         {"www_authenticate", str("Bearer")},
                         {"allow", str("the allowed methods")},
                         {"task_location", str("/api/tasks/{id}")},
                         {"preference_applied", str("respond-async")},
                         {"location", str("URL of the created record")},
                         {"etag", str("\"v{version}\"")}};

    auto header_param = [](std::string_view name, std::string_view description) {
        return json::object{{"name", name}, {"in", "header"}, {"required", false},
                            {"description", description}, {"schema", {{"type", "string"}}}};
    };
    json::object parameters{
        {"id", json::object{{"name", "id"}, {"in", "path"}, {"required", true}, {"schema", {{"type", "string"}}}}},
        {"offset", json::object{{"name", "offset"}, {"in", "query"}, {"required", false},
                                {"schema", {{"type", "integer"}, {"minimum", 0}, {"default", 0}}}}},
        {"fields", json::object{{"name", "fields"}, {"in", "query"}, {"required", false},
                                {"description", "comma-separated fields to return (plus id)"},
                                {"schema", {{"type", "string"}}}}},
        {"prefer", header_param("Prefer", "RFC 7240: `respond-async` runs the request as a task "
                                          "(202); `wait=N` (N <= 60) waits that long for it first")},
        {"idempotency_key", header_param("Idempotency-Key", "opaque, <= 255 characters: a retry "
                                                            "returns the original response")},
        {"if_match", header_param("If-Match", "\"v{version}\": 412 when the record has changed")},
        {"if_none_match", header_param("If-None-Match", "\"v{version}\": 304 when unchanged")}};
    json::object security{
        {"bearer", json::object{{"type", "http"}, {"scheme", "bearer"},
                                {"description", "a token from POST {base}/auth/login"}}},
        {"cookie", json::object{{"type", "apiKey"}, {"in", "cookie"}, {"name", k_session_cookie},
                                {"description", "the session cookie set by login; unsafe requests "
                                                "must come from an allowed Origin"}}}};
    return json::object{{"schemas", std::move(schemas)}, {"responses", std::move(responses)},
                        {"headers", std::move(headers)}, {"parameters", std::move(parameters)},
                        {"securitySchemes", std::move(security)}};
}

/// Adds `method` (lower case) of `path`, merging with what the path already has.
void put(json::object& paths, const std::string& path, std::string_view method, json::object op) {
    auto it = paths.find(path);
    if (it == paths.end()) it = paths.emplace(path, json::object{}).first;
    it->value().as_object()[method] = std::move(op);
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& ch : out)
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    return out;
}

void add_collection_paths(json::object& paths, json::object& schemas, const collection_def& c,
                          const document_options& o) {
    const std::string& n = c.name;
    const std::string list_path = o.base_path + "/" + n;
    const std::string detail_path = list_path + "/{id}";
    schemas[n] = record_schema(c);
    schemas[n + ".input"] = input_schema(c, true);
    schemas[n + ".patch"] = input_schema(c, false);
    schemas[n + ".filter"] = filter_schema(c);
    schemas[n + ".page"] = page_schema(n);
    auto async = [&](std::string_view action) { return o.tasks ? c.async_for(action) : async_mode::never; };
    auto allowed = [&](std::string_view action) { return c.rule_for(action) != access_rule::nobody; };
    auto with_rule = [&](json::object op, std::string_view action) {
        op["x-livebase-rule"] = to_string(c.rule_for(action));
        return op;
    };

    if (allowed("list")) {
        auto op = with_rule(operation_object(n + "_list", "List " + n, n, security_for(c.rule_for("list"))), "list");
        json::array ps;
        ps.push_back(json::object{{"name", "filter"}, {"in", "query"}, {"required", false},
                                  {"style", "form"}, {"explode", true},
                                  {"description", "field=value, field__lookup=value"},
                                  {"schema", schema_ref(n + ".filter")}});
        ps.push_back(json::object{{"name", "ordering"}, {"in", "query"}, {"required", false},
                                  {"description", "comma-separated, '-' for descending, ties by id; "
                                                  "orderable: " + orderable_list(c)},
                                  {"schema", {{"type", "string"}}}});
        ps.push_back(json::object{{"name", "limit"}, {"in", "query"}, {"required", false},
                                  {"schema", {{"type", "integer"}, {"minimum", 1},
                                              {"maximum", c.max_page_size}, {"default", c.page_size}}}});
        ps.push_back(ref_to("parameters", "offset"));
        ps.push_back(ref_to("parameters", "fields"));
        op["parameters"] = std::move(ps);
        json::object rs{{"200", response("A page of records", schema_ref(n + ".page"))}};
        add_errors(rs, {400, 401, 403, 429});
        add_async(op, rs, async("list"));
        op["responses"] = std::move(rs);
        put(paths, list_path, "get", std::move(op));
    }
    if (allowed("create")) {
        auto op = with_rule(operation_object(n + "_create", "Create a record of " + n, n,
                                             security_for(c.rule_for("create"))), "create");
        op["parameters"] = params({"idempotency_key"});
        op["requestBody"] = request_body(schema_ref(n + ".input"), true);
        auto created = response("Created", schema_ref(n));
        created["headers"] = json::object{{"Location", header_ref("location")}, {"ETag", header_ref("etag")}};
        json::object rs{{"201", std::move(created)}};
        add_errors(rs, {400, 401, 403, 409, 413, 415, 422, 429});
        add_async(op, rs, async("create"));
        op["responses"] = std::move(rs);
        put(paths, list_path, "post", std::move(op));
    }
    if (allowed("list")) {
        auto op = with_rule(operation_object(n + "_events", "Server-Sent Events of " + n + "'s changes", n,
                                             security_for(c.rule_for("list"))), "list");
        op["description"] = "`id: <seq>`, `event: create|update|delete`, `data: <record>`; "
                            "Last-Event-ID or ?since= resumes (410 when the history is gone). "
                            "See the AsyncAPI document ({base}/schema/realtime).";
        op["parameters"] = json::array{json::object{{"name", "filter"}, {"in", "query"}, {"required", false},
                                                    {"style", "form"}, {"explode", true},
                                                    {"schema", schema_ref(n + ".filter")}},
                                       json::object{{"name", "since"}, {"in", "query"}, {"required", false},
                                                    {"schema", {{"type", "integer"}}}}};
        json::object rs{{"200", response("text/event-stream of changes", json::object{{"type", "string"}},
                                          "text/event-stream")}};
        add_errors(rs, {400, 401, 404, 410, 429});
        op["responses"] = std::move(rs);
        put(paths, list_path + "/events", "get", std::move(op));
    }
    struct detail_op {
        const char* method;
        const char* action;  // rule name
        const char* suffix;  // operationId suffix
        const char* summary;
    };
    for (const auto& d : {detail_op{"get", "retrieve", "retrieve", "Retrieve a record of "},
                          detail_op{"put", "update", "replace", "Replace the declared fields of a record of "},
                          detail_op{"patch", "update", "patch", "Patch (JSON merge patch) a record of "},
                          detail_op{"delete", "delete", "delete", "Delete a record of "}}) {
        if (!allowed(d.action)) continue;
        auto op = with_rule(operation_object(n + "_" + d.suffix, d.summary + n, n,
                                             security_for(c.rule_for(d.action))), d.action);
        const std::string_view m = d.method;
        json::array ps{ref_to("parameters", "id")};
        json::object rs;
        if (m == "get") {
            ps.push_back(ref_to("parameters", "if_none_match"));
            auto ok = response("The record", schema_ref(n));
            ok["headers"] = json::object{{"ETag", header_ref("etag")}};
            rs["200"] = std::move(ok);
            rs["304"] = json::object{{"description", "Not modified (If-None-Match)"}};
            add_errors(rs, {401, 404, 429});
        } else if (m == "delete") {
            ps.push_back(ref_to("parameters", "if_match"));
            ps.push_back(ref_to("parameters", "idempotency_key"));
            rs["204"] = json::object{{"description", "Deleted"}};
            add_errors(rs, {401, 403, 404, 409, 412, 422, 429});
        } else {
            ps.push_back(ref_to("parameters", "if_match"));
            ps.push_back(ref_to("parameters", "idempotency_key"));
            op["requestBody"] = m == "put" ? request_body(schema_ref(n + ".input"), true)
                                           : request_body(schema_ref(n + ".patch"), true,
                                                          {"application/merge-patch+json", "application/json"});
            auto ok = response("The record after the change", schema_ref(n));
            ok["headers"] = json::object{{"ETag", header_ref("etag")}};
            rs["200"] = std::move(ok);
            add_errors(rs, {400, 401, 403, 404, 409, 412, 413, 415, 422, 429});
        }
        op["parameters"] = std::move(ps);
        add_async(op, rs, async(d.action));
        op["responses"] = std::move(rs);
        put(paths, detail_path, m, std::move(op));
    }

    for (const auto& [name, a] : c.actions) {
        const std::string path = (a.detail ? detail_path : list_path) + ":" + name;
        for (const auto& method : a.methods) {
            const std::string m = lower(method);
            auto op = operation_object(n + "_" + name + (a.methods.size() > 1 ? "_" + m : ""),
                                       std::string(a.detail ? "Detail" : "List") + " action " + name + " of " + n, n,
                                       security_for(a.rule));
            op["x-livebase-rule"] = to_string(a.rule);
            if (!a.task.empty()) op["x-livebase-task"] = a.task;
            op["parameters"] = a.detail ? params({"id", "idempotency_key"}) : params({"idempotency_key"});
            if (m != "get") op["requestBody"] = request_body(json::object{{"type", "object"}}, false);
            json::object rs{{"200", response("The action's result", json::object{})}};
            add_errors(rs, {400, 401, 403, 404, 405, 409, 422, 429});
            if (o.tasks) add_async(op, rs, a.task.empty() ? async_mode::allowed : async_mode::always);
            op["responses"] = std::move(rs);
            put(paths, path, m, std::move(op));
        }
    }
}

void add_tasks_paths(json::object& paths, const registry& reg, const document_options& o) {
    const std::string base = o.base_path + "/tasks";
    const json::array anyone = security_for(access_rule::public_);
    if (!reg.submittable_kinds().empty()) {
        // The kinds submittable directly, each with its rule ([tasks.kinds.<kind>] submit).
        json::array kinds;
        json::object rules;
        bool open = false;
        for (const auto& [kind, rule] : reg.submittable_kinds()) {
            kinds.emplace_back(kind);
            rules[kind] = to_string(rule);
            open = open || rule == access_rule::public_;
        }
        auto op = operation_object("tasks_submit", "Submit a task of a kind that allows direct submission", "tasks",
                                   security_for(open ? access_rule::public_ : access_rule::authenticated));
        op["x-livebase-rules"] = std::move(rules);
        op["parameters"] = params({"prefer", "idempotency_key"});
        json::object props{
            {"kind", {{"type", "string"}, {"enum", std::move(kinds)}}},
            {"input", {{"description", "handed to the task's code"}}},
            {"delay", {{"oneOf", json::array{json::object{{"type", "number"}, {"minimum", 0}},
                                             json::object{{"type", "string"}}}},
                       {"description", "seconds, or a duration such as \"90s\" or \"10m\"; at most 366 days"}}},
            {"not_before", {{"type", "string"}, {"format", "date-time"},
                            {"description", "not run before this time (instead of delay)"}}},
            {"priority", {{"type", "integer"}, {"minimum", task_queue::kMinPriority},
                          {"maximum", task_queue::kMaxPriority}, {"default", 0},
                          {"description", "a higher one runs before every waiting task of a lower one"}}}};
        op["requestBody"] = request_body(json::object{{"type", "object"}, {"properties", std::move(props)},
                                                      {"required", strings({"kind"})},
                                                      {"additionalProperties", false}},
                                         true);
        json::object rs{{"200", response("With Prefer: wait=N, the task's result when it finished in time",
                                         json::object{})}};
        rs["202"] = response("Stored: the task", schema_ref("livebase.task"));
        add_errors(rs, {400, 401, 403, 413, 415, 429});
        op["responses"] = std::move(rs);
        put(paths, base, "post", std::move(op));
    }
    {
        auto op = operation_object("tasks_list", "List the caller's tasks (admins: all)", "tasks", anyone);
        json::array ps;
        for (auto [name, schema] : {std::pair<const char*, json::object>{"state", {{"type", "string"}}},
                                    {"kind", {{"type", "string"}}},
                                    {"created__gte", {{"type", "string"}, {"format", "date-time"}}},
                                    {"created__lt", {{"type", "string"}, {"format", "date-time"}}}})
            ps.push_back(json::object{{"name", name}, {"in", "query"}, {"required", false}, {"schema", schema}});
        ps.push_back(json::object{{"name", "ordering"}, {"in", "query"}, {"required", false},
                                  {"schema", {{"type", "string"}, {"default", "-created"}}}});
        ps.push_back(json::object{{"name", "limit"}, {"in", "query"}, {"required", false},
                                  {"schema", {{"type", "integer"}, {"minimum", 1}}}});
        ps.push_back(ref_to("parameters", "offset"));
        op["parameters"] = std::move(ps);
        json::object rs{{"200", response("A page of tasks", schema_ref("livebase.task_page"))}};
        add_errors(rs, {400, 429});
        op["responses"] = std::move(rs);
        put(paths, base, "get", std::move(op));
    }
    {
        auto op = operation_object("tasks_retrieve", "A task; long poll with Prefer: wait=N; "
                                                     "SSE with Accept: text/event-stream", "tasks", anyone);
        op["parameters"] = params({"id", "prefer"});
        auto running = response("Pending, running, failed or cancelled", schema_ref("livebase.task"));
        running["content"].as_object()["text/event-stream"] =
            json::object{{"schema", {{"type", "string"}, {"description", "event: task snapshots"}}}};
        running["headers"] = json::object{{"Retry-After", header_ref("retry_after")}};
        auto done = response("Succeeded: Location is the created record or the task's result",
                             schema_ref("livebase.task"));
        done["headers"] = json::object{{"Location", header_ref("location")}};
        json::object rs{{"200", std::move(running)}, {"303", std::move(done)}};
        add_errors(rs, {404, 429});
        op["responses"] = std::move(rs);
        put(paths, base + "/{id}", "get", std::move(op));
    }
    {
        auto op = operation_object("tasks_cancel", "Cancel a task", "tasks", anyone);
        op["parameters"] = params({"id"});
        json::object rs{{"200", response("Was pending: cancelled", schema_ref("livebase.task"))},
                        {"202", response("Running: cancellation requested", schema_ref("livebase.task"))}};
        add_errors(rs, {403, 404, 409, 429});
        op["responses"] = std::move(rs);
        put(paths, base + "/{id}", "delete", std::move(op));
    }
    {
        auto op = operation_object("tasks_result", "The stored result of a task", "tasks", anyone);
        op["parameters"] = params({"id"});
        auto pending = response("Not finished yet", schema_ref("livebase.task"));
        pending["headers"] = json::object{{"Location", header_ref("task_location")},
                                          {"Retry-After", header_ref("retry_after")}};
        json::object rs{{"200", response("The result the synchronous request would have returned", json::object{})},
                        {"201", response("The created record (the task was a create)", json::object{})},
                        {"202", std::move(pending)}};
        add_errors(rs, {404, 410, 429});
        rs["default"] = response("The failed task's problem", schema_ref("livebase.problem"), "application/problem+json");
        op["responses"] = std::move(rs);
        put(paths, base + "/{id}/result", "get", std::move(op));
    }
}

void add_auth_paths(json::object& paths, const document_options& o) {
    const std::string base = o.base_path + "/auth/";
    const json::array anyone = security_for(access_rule::public_);
    {
        auto op = operation_object("auth_login", "Log in: a token and the session cookie", "auth", json::array{json::object{}});
        op["requestBody"] = request_body(schema_ref("livebase.credentials"), true);
        auto ok = response("Logged in; Set-Cookie: " + std::string(k_session_cookie),
                           json::object{{"type", "object"},
                                        {"properties", json::object{{"token", {{"type", "string"}}},
                                                                    {"expires", {{"type", "string"}, {"format", "date-time"}}},
                                                                    {"user", schema_ref("livebase.user")}}},
                                        {"required", strings({"token", "user"})}});
        json::object rs{{"200", std::move(ok)}};
        add_errors(rs, {400, 401, 415, 429});
        op["responses"] = std::move(rs);
        put(paths, base + "login", "post", std::move(op));
    }
    {
        auto op = operation_object("auth_logout", "Log out: revokes the token, clears the cookie", "auth",
                                   security_for(access_rule::authenticated));
        json::object rs{{"204", json::object{{"description", "Logged out"}}}};
        add_errors(rs, {401, 429});
        op["responses"] = std::move(rs);
        put(paths, base + "logout", "post", std::move(op));
    }
    {
        auto op = operation_object("auth_me", "The caller", "auth", security_for(access_rule::authenticated));
        json::object rs{{"200", response("The caller's user", schema_ref("livebase.user"))}};
        add_errors(rs, {401, 429});
        op["responses"] = std::move(rs);
        put(paths, base + "me", "get", std::move(op));
    }
    {
        auto op = operation_object("auth_register", "Sign up (404 unless auth.signup)", "auth", anyone);
        op["requestBody"] = request_body(schema_ref("livebase.credentials"), true);
        json::object rs{{"201", response("The new user", schema_ref("livebase.user"))}};
        add_errors(rs, {400, 404, 415, 429});
        op["responses"] = std::move(rs);
        put(paths, base + "register", "post", std::move(op));
    }
}

void add_operations_paths(json::object& paths, const document_options& o) {
    const json::array anyone = json::array{json::object{}};
    {
        auto op = operation_object("health", "Liveness check: the process serves", "operations", anyone);
        json::object status{
            {"type", "object"},
            {"properties",
             json::object{{"status", {{"type", "string"}, {"enum", strings({"ok", "degraded", "draining"})}}},
                          {"storage", {{"type", "string"}, {"enum", strings({"full", "damaged", "unavailable"})}}}}}};
        auto draining = response("Draining (shutting down)", status);
        draining["headers"] = json::object{{"Retry-After", header_ref("retry_after")}};
        op["responses"] = json::object{{"200", response("Serving (degraded: the storage is full, damaged or unreachable)", status)},
                                       {"503", std::move(draining)}};
        put(paths, o.base_path + "/health", "get", std::move(op));
    }
    {
        auto op = operation_object("health_ready", "Readiness check: the server takes requests", "operations", anyone);
        json::object status{
            {"type", "object"},
            {"properties",
             json::object{{"status", {{"type", "string"}, {"enum", strings({"ok", "unavailable", "draining"})}}},
                          {"storage", {{"type", "string"}, {"enum", strings({"full", "unavailable"})}}}}}};
        auto away = response("Not ready: draining (shutting down) or the database is unreachable", status);
        away["headers"] = json::object{{"Retry-After", header_ref("retry_after")}};
        op["responses"] = json::object{{"200", response("Ready", status)}, {"503", std::move(away)}};
        put(paths, o.base_path + "/health/ready", "get", std::move(op));
    }
    {
        auto op = operation_object("schema_openapi", "This document (OpenAPI 3.1)", "operations", anyone);
        op["responses"] = json::object{{"200", response("OpenAPI 3.1", json::object{{"type", "object"}})}};
        put(paths, o.base_path + "/schema", "get", std::move(op));
    }
    {
        auto op = operation_object("schema_realtime", "The WebSocket protocol (AsyncAPI 3.0.0)", "operations", anyone);
        op["responses"] = json::object{{"200", response("AsyncAPI 3.0.0", json::object{{"type", "object"}})}};
        put(paths, o.base_path + "/schema/realtime", "get", std::move(op));
    }
    {
        auto op = operation_object("metrics", "Prometheus metrics", "operations", anyone);
        op["responses"] = json::object{{"200", response("Prometheus text format", json::object{{"type", "string"}},
                                                        "text/plain")}};
        put(paths, "/metrics", "get", std::move(op));
    }
}

}  // namespace

json::object openapi_document(const registry& reg, const document_options& o) {
    json::object components = openapi_components();
    auto& schemas = components["schemas"].as_object();
    json::object paths;
    json::array tags;
    for (const auto* c : reg.collections()) {
        if (hidden_from_schema(*c)) continue;
        add_collection_paths(paths, schemas, *c, o);
        tags.push_back(json::object{{"name", c->name},
                                    {"description", c->owned ? "owned collection" : "collection"}});
    }
    for (const auto& e : reg.endpoints()) {
        const std::string m = lower(e.method);
        auto op = operation_object("endpoint_" + e.name, "Endpoint " + e.name + " (runs task " + e.task + ")",
                                   "endpoints", security_for(e.rule));
        op["x-livebase-rule"] = to_string(e.rule);
        op["x-livebase-task"] = e.task;
        op["x-livebase-async"] = "always";
        op["parameters"] = params({"prefer", "idempotency_key"});
        if (m != "get" && m != "delete")
            op["requestBody"] = request_body(json::object{{"description", "the task's input"}}, false);
        json::object rs{{"200", response("With Prefer: wait=N, the task's result when it finished in time",
                                         json::object{})}};
        rs["202"] = ref_to("responses", "accepted");
        add_errors(rs, {400, 401, 403, 413, 415, 422, 429});
        op["responses"] = std::move(rs);
        put(paths, e.path, m, std::move(op));
    }
    if (!reg.endpoints().empty()) tags.push_back(json::object{{"name", "endpoints"}});
    if (o.tasks) {
        add_tasks_paths(paths, reg, o);
        tags.push_back(json::object{{"name", "tasks"}, {"description", "asynchronous operations (http.md section 3)"}});
    }
    if (o.auth) {
        add_auth_paths(paths, o);
        tags.push_back(json::object{{"name", "auth"}});
    }
    add_operations_paths(paths, o);
    tags.push_back(json::object{{"name", "operations"}});

    return json::object{
        {"openapi", "3.1.0"},
        {"info", json::object{{"title", "livebase API"},
                              {"version", k_api_version},
                              {"description", "Generated from the server's declared collections, actions and "
                                              "endpoints. Errors are RFC 9457 problem+json; any records "
                                              "request or action may run as a task with Prefer: respond-async."}}},
        {"jsonSchemaDialect", "https://spec.openapis.org/oas/3.1/dialect/base"},
        {"servers", json::array{json::object{{"url", "/"}}}},
        {"security", security_for(access_rule::public_)},
        {"tags", std::move(tags)},
        {"paths", std::move(paths)},
        {"components", std::move(components)}};
}

}  // namespace livebase::apidoc
