// The OpenAPI and AsyncAPI documents. Everything a collection contributes comes from its
// collection_def; what is fixed (the task resource, problems, auth bodies, the envelope) is the
// contract of http.md and realtime.md written once here.
//
// Component names: a collection's schemas are "<c>", "<c>.input", "<c>.patch", "<c>.filter"
// and "<c>.page"; built-in ones start with "livebase." (collection names are identifiers, so
// neither can collide).
#include "http/schema_doc.hpp"

#include <livebase/api/operation.hpp>

#include <initializer_list>
#include <string_view>
#include <vector>

namespace livebase::http_detail {

namespace {

using namespace std::string_literals;

constexpr std::string_view k_session_cookie = "livebase_session";
constexpr std::string_view k_api_version = "1";

json::object ref_to(std::string_view kind, std::string_view name) {
    return json::object{{"$ref", "#/components/" + std::string(kind) + "/" + std::string(name)}};
}
json::object schema_ref(std::string_view name) { return ref_to("schemas", name); }

json::array strings(std::initializer_list<std::string_view> items) {
    json::array out;
    for (auto s : items) out.emplace_back(s);
    return out;
}

json::object nullable(json::object s) {
    // OpenAPI 3.1 / JSON Schema 2020-12: null is a type of its own.
    if (auto it = s.find("type"); it != s.end() && it->value().is_string()) {
        json::array t;
        t.emplace_back(it->value().get_string());
        t.emplace_back("null");
        it->value() = std::move(t);
    }
    if (auto it = s.find("enum"); it != s.end() && it->value().is_array())
        it->value().get_array().emplace_back(nullptr);
    return s;
}

/// The JSON Schema of one field's values (without readOnly/writeOnly).
json::object value_schema(const field_def& f) {
    json::object s;
    switch (f.type) {
        case field_type::string:
        case field_type::text:
            s["type"] = "string";
            if (f.min_length) s["minLength"] = *f.min_length;
            if (f.max_length) s["maxLength"] = *f.max_length;
            if (!f.pattern.empty()) s["pattern"] = f.pattern;
            break;
        case field_type::integer:
            s["type"] = "integer";
            break;
        case field_type::number:
            s["type"] = "number";
            break;
        case field_type::boolean:
            s["type"] = "boolean";
            break;
        case field_type::datetime:
            s["type"] = "string";
            s["format"] = "date-time";
            break;
        case field_type::json:
            break;  // any JSON value
        case field_type::ref:
            s["type"] = "string";
            s["description"] = "id of a record of " + f.ref_to;
            s["x-livebase-ref"] = f.ref_to;
            break;
    }
    if (f.type == field_type::integer || f.type == field_type::number) {
        if (f.min) s["minimum"] = *f.min;
        if (f.max) s["maximum"] = *f.max;
    }
    if (!f.choices.empty()) {
        json::array e;
        for (const auto& c : f.choices) e.push_back(c);
        s["enum"] = std::move(e);
    }
    s["x-livebase-type"] = to_string(f.type);
    return s;
}

json::object managed_string(std::string_view description, bool datetime = false) {
    json::object s{{"type", "string"}, {"readOnly", true}, {"description", description}};
    if (datetime) s["format"] = "date-time";
    return s;
}

/// The record as the server returns it.
json::object record_schema(const collection_def& c) {
    json::object props;
    props["id"] = managed_string("server-generated, time-sortable id (ULID)");
    props["created"] = managed_string("creation time (RFC 3339 UTC)", true);
    props["updated"] = managed_string("time of the last change (RFC 3339 UTC)", true);
    props["version"] = json::object{{"type", "integer"}, {"minimum", 1}, {"readOnly", true},
                                    {"description", "1 on create, +1 on every change (ETag \"v{version}\")"}};
    json::array required = strings({"id", "created", "updated", "version"});
    if (c.owned) {
        props["owner"] = nullable(managed_string("id of the creating user"));
        required.emplace_back("owner");
    }
    for (const auto& f : c.fields) {
        if (hidden_from_schema(f) || f.write_only) continue;
        auto s = f.required ? value_schema(f) : nullable(value_schema(f));
        if (f.read_only) s["readOnly"] = true;
        if (f.unique) s["x-livebase-unique"] = true;
        if (f.default_value) s["default"] = *f.default_value;
        props[f.name] = std::move(s);
        if (f.required) required.emplace_back(f.name);
    }
    return json::object{{"type", "object"}, {"title", c.name},
                        {"properties", std::move(props)}, {"required", std::move(required)}};
}

/// A create/replace body (`full`) or a merge patch. Unknown fields are refused (400).
json::object input_schema(const collection_def& c, bool full) {
    json::object props;
    json::array required;
    for (const auto& f : c.fields) {
        if (hidden_from_schema(f) || f.read_only) continue;
        auto s = f.required && full ? value_schema(f) : nullable(value_schema(f));
        if (f.write_only) s["writeOnly"] = true;
        if (f.default_value) s["default"] = *f.default_value;
        props[f.name] = std::move(s);
        if (f.required && full && !f.default_value) required.emplace_back(f.name);
    }
    if (c.name == "users")  // http.md section 5: an admin may set a password, stored hashed
        props["password"] = json::object{{"type", "string"}, {"writeOnly", true},
                                         {"description", "new password (admins only), stored as a hash"}};
    props["version"] = json::object{
        {"type", "integer"},
        {"description", "optional: checked like If-Match (412 when the stored version differs)"}};
    json::object s{{"type", "object"},
                   {"title", c.name + (full ? " input" : " patch")},
                   {"properties", std::move(props)},
                   {"additionalProperties", false}};
    if (!required.empty()) s["required"] = std::move(required);
    return s;
}

/// Names a client may filter and order by, with the type their values have.
std::vector<std::pair<std::string, field_type>> queryable_fields(const collection_def& c) {
    std::vector<std::pair<std::string, field_type>> out{{"id", field_type::string},
                                                        {"created", field_type::datetime},
                                                        {"updated", field_type::datetime},
                                                        {"version", field_type::integer}};
    if (c.owned) out.emplace_back("owner", field_type::string);
    for (const auto& f : c.fields)
        if (!hidden_from_schema(f) && !f.write_only)
            out.emplace_back(f.name, f.type == field_type::ref ? field_type::string : f.type);
    return out;
}

/// The lookups the query parser accepts for a type (src/schema/query.cpp).
std::vector<std::string_view> lookups_for(field_type t) {
    switch (t) {
        case field_type::json:
            return {"isnull"};
        case field_type::boolean:
            return {"exact", "ne", "in", "isnull"};
        case field_type::integer:
        case field_type::number:
            return {"exact", "ne", "gt", "gte", "lt", "lte", "in", "isnull"};
        default:
            return {"exact", "iexact", "contains", "icontains", "startswith", "istartswith",
                    "endswith", "gt", "gte", "lt", "lte", "in", "isnull", "ne"};
    }
}

json::object scalar_of(field_type t) {
    switch (t) {
        case field_type::integer: return {{"type", "integer"}};
        case field_type::number: return {{"type", "number"}};
        case field_type::boolean: return {{"type", "boolean"}};
        case field_type::datetime: return {{"type", "string"}, {"format", "date-time"}};
        default: return {{"type", "string"}};
    }
}

/// `field` and `field__lookup` keys of a list's filters (REST query parameters, or the
/// WebSocket `filter` object, where `in` also takes an array).
json::object filter_schema(const collection_def& c) {
    json::object props;
    for (const auto& [name, type] : queryable_fields(c)) {
        for (auto lk : lookups_for(type)) {
            json::object s;
            if (lk == "isnull") {
                s = {{"type", "boolean"}};
            } else if (lk == "in") {
                json::object list{{"type", "array"}, {"items", scalar_of(type)}};
                s = {{"oneOf", json::array{json::object{{"type", "string"},
                                                        {"description", "comma-separated"}},
                                           std::move(list)}}};
            } else if (lk == "iexact" || lk == "contains" || lk == "icontains" ||
                       lk == "startswith" || lk == "istartswith" || lk == "endswith") {
                s = {{"type", "string"}};
            } else {
                s = scalar_of(type);
            }
            if (lk == "exact" && type != field_type::json) props[name] = s;
            props[name + "__" + std::string(lk)] = std::move(s);
        }
    }
    return json::object{{"type", "object"},
                        {"title", c.name + " filter"},
                        {"description", "field=value is field__exact; unknown names -> 400"},
                        {"properties", std::move(props)},
                        {"additionalProperties", false}};
}

std::string orderable_list(const collection_def& c) {
    std::string out;
    for (const auto& [name, type] : queryable_fields(c)) {
        if (type == field_type::json) continue;
        if (!out.empty()) out += ", ";
        out += name;
    }
    return out;
}

json::object page_schema(std::string_view item_ref) {
    json::object link{{"type", json::array{"string", "null"}}};
    return json::object{
        {"type", "object"},
        {"properties", json::object{{"count", json::object{{"type", "integer"}, {"minimum", 0}}},
                                    {"next", link},
                                    {"previous", link},
                                    {"results", json::object{{"type", "array"}, {"items", schema_ref(item_ref)}}}}},
        {"required", strings({"count", "next", "previous", "results"})}};
}

// ---- OpenAPI building blocks ------------------------------------------------------------

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

json::object task_schema() {
    json::object nullable_str{{"type", json::array{"string", "null"}}};
    json::object nullable_time{{"type", json::array{"string", "null"}}, {"format", "date-time"}};
    json::object step{{"type", "object"},
                      {"properties", json::object{{"name", {{"type", "string"}}},
                                                  {"state", {{"type", "string"},
                                                             {"enum", strings({"pending", "running", "done", "failed", "skipped"})}}}}},
                      {"required", strings({"name", "state"})}};
    json::object props{
        {"id", {{"type", "string"}}},
        {"kind", {{"type", "string"}, {"description", "e.g. cars.create, cars:build, or a declared task kind"}}},
        {"state", {{"type", "string"}, {"enum", strings({"pending", "running", "succeeded", "failed", "cancelled"})}}},
        {"progress", {{"type", json::array{"integer", "null"}}, {"minimum", 0}, {"maximum", 100}}},
        {"message", nullable_str},
        {"eta", {{"type", json::array{"number", "null"}}, {"description", "seconds"}}},
        {"steps", {{"type", "array"}, {"items", step}}},
        {"request", {{"type", json::array{"object", "null"}},
                     {"properties", json::object{{"method", {{"type", "string"}}},
                                                 {"path", {{"type", "string"}}},
                                                 {"query", {{"type", "string"}}},
                                                 {"body", json::object{}}}}}},
        {"result", json::object{{"description", "the body the synchronous request would have returned"}}},
        {"error", {{"oneOf", json::array{schema_ref("livebase.problem"), json::object{{"type", "null"}}}}}},
        {"location", nullable_str},
        {"attempt", {{"type", "integer"}}},
        {"max_attempts", {{"type", "integer"}}},
        {"owner", nullable_str},
        {"created", {{"type", "string"}, {"format", "date-time"}}},
        {"started", nullable_time},
        {"finished", nullable_time},
        {"links", {{"type", "object"},
                   {"properties", json::object{{"self", {{"type", "string"}}}, {"result", {{"type", "string"}}}}}}}};
    return json::object{{"type", "object"}, {"title", "task"}, {"properties", std::move(props)},
                        {"required", strings({"id", "kind", "state", "created"})}};
}

json::object problem_schema() {
    return json::object{
        {"type", "object"},
        {"title", "problem"},
        {"description", "RFC 9457 problem details"},
        {"properties",
         json::object{{"type", {{"type", "string"}}},
                      {"title", {{"type", "string"}}},
                      {"status", {{"type", "integer"}}},
                      {"detail", {{"type", "string"}}},
                      {"parameter", {{"type", "string"}, {"description", "the offending query parameter"}}},
                      {"errors", {{"type", "object"},
                                  {"description", "field -> messages (validation problems)"},
                                  {"additionalProperties", {{"type", "array"}, {"items", {{"type", "string"}}}}}}}}},
        {"required", strings({"title", "status"})}};
}

json::object user_schema() {
    return json::object{{"type", "object"},
                        {"title", "user"},
                        {"properties", json::object{{"id", {{"type", "string"}}},
                                                    {"username", {{"type", "string"}}},
                                                    {"admin", {{"type", "boolean"}}},
                                                    {"disabled", {{"type", "boolean"}}},
                                                    {"created", {{"type", "string"}, {"format", "date-time"}}},
                                                    {"updated", {{"type", "string"}, {"format", "date-time"}}},
                                                    {"version", {{"type", "integer"}}}}},
                        {"required", strings({"id", "username"})}};
}

json::object credentials_schema() {
    return json::object{{"type", "object"},
                        {"properties", json::object{{"username", {{"type", "string"}}},
                                                    {"password", {{"type", "string"}, {"writeOnly", true}}}}},
                        {"required", strings({"username", "password"})},
                        {"additionalProperties", false}};
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
                          const schema_doc_options& o) {
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

void add_tasks_paths(json::object& paths, const schema_doc_options& o) {
    const std::string base = o.base_path + "/tasks";
    const json::array anyone = security_for(access_rule::public_);
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

void add_auth_paths(json::object& paths, const schema_doc_options& o) {
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

void add_operations_paths(json::object& paths, const schema_doc_options& o) {
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

// ---- AsyncAPI building blocks -----------------------------------------------------------

/// {"stream": <const>, "payload": <payload>}
json::object envelope(std::string_view stream, json::object payload) {
    json::object stream_schema{{"type", "string"}};
    if (!stream.empty()) stream_schema["const"] = stream;
    return json::object{{"type", "object"},
                        {"properties", json::object{{"stream", std::move(stream_schema)}, {"payload", std::move(payload)}}},
                        {"required", strings({"stream", "payload"})}};
}

json::object object_of(json::object props, std::initializer_list<std::string_view> required) {
    json::object s{{"type", "object"}, {"properties", std::move(props)}};
    if (required.size()) s["required"] = strings(required);
    return s;
}

json::object const_string(std::string_view v) { return json::object{{"type", "string"}, {"const", v}}; }

/// A request's payload: action, request_id, and the action's own members.
json::object request_payload(std::string_view action, json::object extra) {
    json::object props{{"action", const_string(action)},
                       {"request_id", json::object{{"description", "echoed verbatim (any JSON value)"}}}};
    for (auto& [k, v] : extra) props[k] = std::move(v);
    return object_of(std::move(props), {"action"});
}

/// A reply's payload: `data` on success, `errors` on failure.
json::object reply_payload(std::string_view action, json::object data) {
    json::object errors{{"type", "array"},
                        {"description", "human-readable strings, plus one object of field errors for validation"},
                        {"items", json::object{{"oneOf", json::array{json::object{{"type", "string"}},
                                                                       json::object{{"type", "object"}}}}}}};
    return object_of(json::object{{"action", const_string(action)},
                                  {"request_id", json::object{}},
                                  {"response_status", json::object{{"type", "integer"},
                                                                   {"description", "HTTP status codes of http.md"}}},
                                  {"data", json::object{{"oneOf", json::array{std::move(data), json::object{{"type", "null"}}}}}},
                                  {"errors", std::move(errors)}},
                     {"action", "response_status", "data", "errors"});
}

json::object message(std::string name, std::string title, json::object payload) {
    return json::object{{"name", std::move(name)}, {"title", std::move(title)},
                        {"contentType", "application/json"}, {"payload", std::move(payload)}};
}

struct async_builder {
    json::object messages;        // components.messages
    json::object channel_msgs;    // socket channel's messages (refs)
    json::object operations;
    std::string channel = "socket";

    json::object msg_ref(std::string_view name) const {
        return json::object{{"$ref", "#/channels/" + channel + "/messages/" + std::string(name)}};
    }
    void add_message(const std::string& key, json::object m) {
        messages[key] = std::move(m);
        channel_msgs[key] = json::object{{"$ref", "#/components/messages/" + key}};
    }
    /// A request the client sends and the reply it gets.
    void request(const std::string& stream, const std::string& action, json::object req_extra,
                 json::object reply_data, std::string summary) {
        const std::string base = stream + "." + action;
        add_message(base + ".request", message(base + ".request", summary,
                                               envelope(stream, request_payload(action, std::move(req_extra)))));
        add_message(base + ".reply", message(base + ".reply", "Reply to " + base,
                                             envelope(stream, reply_payload(action, std::move(reply_data)))));
        operations[base] = json::object{
            {"action", "send"},
            {"channel", json::object{{"$ref", "#/channels/" + channel}}},
            {"summary", std::move(summary)},
            {"messages", json::array{msg_ref(base + ".request")}},
            {"reply", json::object{{"channel", json::object{{"$ref", "#/channels/" + channel}}},
                                   {"messages", json::array{msg_ref(base + ".reply")}}}}};
    }
    /// Messages the server pushes.
    void receive(const std::string& op_name, std::vector<std::string> keys, std::string summary) {
        json::array refs;
        for (const auto& k : keys) refs.push_back(msg_ref(k));
        operations[op_name] = json::object{{"action", "receive"},
                                           {"channel", json::object{{"$ref", "#/channels/" + channel}}},
                                           {"summary", std::move(summary)},
                                           {"messages", std::move(refs)}};
    }
};

json::object record_event_payload(const std::string& n, std::string_view action) {
    return object_of(json::object{{"action", const_string(action)},
                                  {"pk", json::object{{"type", "string"}}},
                                  {"data", schema_ref(n)},
                                  {"seq", json::object{{"type", "integer"}, {"description", "change-log sequence number"}}},
                                  {"subscription", json::object{{"type", "string"}}}},
                     {"action", "pk", "data", "seq", "subscription"});
}

}  // namespace

bool hidden_from_schema(const collection_def& c) noexcept {
    return c.name == "auth_tokens" || c.name == "idempotency_keys" || c.name == "tasks";
}

bool hidden_from_schema(const field_def& f) noexcept {
    // Neither accepted nor returned: set by the server only (users.password_hash).
    return f.read_only && f.write_only;
}

json::object openapi_document(const registry& reg, const schema_doc_options& o) {
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
        add_tasks_paths(paths, o);
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

json::object asyncapi_document(const registry& reg, const schema_doc_options& o) {
    async_builder b;
    json::object schemas{{"livebase.task", task_schema()}, {"livebase.problem", problem_schema()},
                         {"livebase.user", user_schema()}};
    json::object sse_channels;
    const json::object nothing{{"type", "null"}};
    const json::object pk{{"type", "string"}};
    auto data_of = [](json::object s) { return json::object{{"data", std::move(s)}}; };

    // Session and errors.
    b.add_message("session.hello",
                  message("session.hello", "Sent once on connect",
                          envelope("session", object_of(json::object{{"action", const_string("hello")},
                                                                     {"data", object_of(json::object{{"subscriber", {{"type", "string"}}},
                                                                                                     {"user", json::object{{"oneOf", json::array{schema_ref("livebase.user"), nothing}}}}},
                                                                                        {"subscriber", "user"})}},
                                                        {"action", "data"}))));
    b.receive("session.hello", {"session.hello"}, "Greeting with the socket id (for ?observe=) and the user");
    b.add_message("error", message("error", "A frame that is not JSON, or lacks stream or action (400)",
                                   envelope("error", reply_payload("", json::object{}))));
    b.messages["error"].as_object()["payload"].as_object()["properties"].as_object()["payload"]
        .as_object()["properties"].as_object()["action"] = json::object{{"type", json::array{"string", "null"}}};
    b.receive("error", {"error"}, "Bad frames; the socket stays open");

    for (const auto* cp : reg.collections()) {
        const auto& c = *cp;
        if (hidden_from_schema(c)) continue;
        const std::string& n = c.name;
        schemas[n] = record_schema(c);
        schemas[n + ".input"] = input_schema(c, true);
        schemas[n + ".patch"] = input_schema(c, false);
        schemas[n + ".filter"] = filter_schema(c);
        auto allowed = [&](std::string_view a) { return c.rule_for(a) != access_rule::nobody; };
        json::object list_args = object_of(
            json::object{{"filter", schema_ref(n + ".filter")},
                         {"ordering", json::object{{"type", "string"}, {"description", "orderable: " + orderable_list(c)}}},
                         {"limit", json::object{{"type", "integer"}, {"minimum", 1}, {"maximum", c.max_page_size}}},
                         {"offset", json::object{{"type", "integer"}, {"minimum", 0}}}},
            {});
        if (allowed("list")) {
            b.request(n, "list", data_of(list_args),
                      object_of(json::object{{"count", {{"type", "integer"}}},
                                             {"results", json::object{{"type", "array"}, {"items", schema_ref(n)}}},
                                             {"limit", {{"type", "integer"}}},
                                             {"offset", {{"type", "integer"}}}},
                                {"count", "results"}),
                      "List " + n);
        }
        if (allowed("retrieve")) b.request(n, "retrieve", json::object{{"pk", pk}}, schema_ref(n), "Retrieve a record of " + n);
        if (allowed("create"))
            b.request(n, "create", data_of(schema_ref(n + ".input")), schema_ref(n), "Create a record of " + n + " (201)");
        if (allowed("update")) {
            b.request(n, "update", json::object{{"pk", pk}, {"data", schema_ref(n + ".input")}}, schema_ref(n),
                      "Replace a record of " + n);
            b.request(n, "patch", json::object{{"pk", pk}, {"data", schema_ref(n + ".patch")}}, schema_ref(n),
                      "Patch a record of " + n);
        }
        if (allowed("delete")) b.request(n, "delete", json::object{{"pk", pk}}, nothing, "Delete a record of " + n + " (204)");
        for (const auto& [name, a] : c.actions) {
            json::object args{{"data", json::object{{"type", "object"}}}};
            if (a.detail) args["pk"] = pk;
            b.request(n, name, std::move(args),
                      json::object{{"description", a.task.empty() ? "the action's result, or a task (202)"
                                                                   : "a task (202) running " + a.task}},
                      std::string(a.detail ? "Detail" : "List") + " action " + name + " of " + n);
        }
        if (allowed("retrieve") || allowed("list")) {
            json::object sub_args = object_of(
                json::object{{"actions", json::object{{"type", "array"},
                                                      {"items", json::object{{"type", "string"}, {"enum", strings({"create", "update", "delete"})}}}}},
                             {"filter", schema_ref(n + ".filter")},
                             {"since", json::object{{"type", "integer"}, {"description", "replay changes after this seq (410 when gone)"}}}},
                {});
            b.request(n, "subscribe", json::object{{"pk", json::object{{"type", json::array{"string", "null"}}}}, {"data", std::move(sub_args)}},
                      object_of(json::object{{"subscription", {{"type", "string"}}}, {"seq", {{"type", "integer"}}}},
                                {"subscription", "seq"}),
                      "Subscribe to " + n + "'s changes (201)");
            b.request(n, "unsubscribe", data_of(object_of(json::object{{"subscription", {{"type", "string"}}}}, {"subscription"})),
                      nothing, "Unsubscribe (204)");
            b.request(n, "observe", data_of(list_args),
                      object_of(json::object{{"observer", {{"type", "string"}}},
                                             {"items", json::object{{"type", "array"}, {"items", schema_ref(n)}}},
                                             {"seq", {{"type", "integer"}}}},
                                {"observer", "items", "seq"}),
                      "Start a live query of " + n);
            b.request(n, "unobserve", data_of(object_of(json::object{{"observer", {{"type", "string"}}}}, {"observer"})),
                      nothing, "Stop a live query (204)");

            std::vector<std::string> events;
            for (std::string_view action : {"create", "update", "delete"}) {
                const std::string key = n + ".event." + std::string(action);
                b.add_message(key, message(key, "A record of " + n + (action == "delete" ? " left (data: the record before)" : " " + std::string(action) + "d"),
                                           envelope(n, record_event_payload(n, action))));
                events.push_back(key);
            }
            b.receive(n + ".events", events, "Changes of " + n + " per subscription, after commit, in commit order");
            const std::string diff_key = n + ".observe.diff";
            json::object diff_data = object_of(
                json::object{{"msg", json::object{{"type", "string"}, {"enum", strings({"added", "changed", "removed", "moved"})}}},
                             {"order", {{"type", "integer"}}},
                             {"from", {{"type", "integer"}}},
                             {"pk", {{"type", "string"}}},
                             {"item", schema_ref(n)}},
                {"msg", "pk"});
            b.add_message(diff_key, message(diff_key, "A live-query diff of " + n,
                                            envelope(n, object_of(json::object{{"action", const_string("observe")},
                                                                               {"observer", {{"type", "string"}}},
                                                                               {"seq", {{"type", "integer"}}},
                                                                               {"data", std::move(diff_data)}},
                                                                  {"action", "observer", "seq", "data"}))));
            b.receive(diff_key, {diff_key}, "Diffs of " + n + "'s live queries");

            // The same events over SSE: GET {base}/{c}/events.
            json::object sse_msgs;
            for (const auto& k : events)
                sse_msgs[k] = json::object{{"$ref", "#/components/messages/" + k}};
            sse_channels[n + ".sse"] = json::object{
                {"address", o.base_path + "/" + n + "/events"},
                {"servers", json::array{json::object{{"$ref", "#/servers/sse"}}}},
                {"description", "Server-Sent Events: `id: <seq>`, `event: create|update|delete`, "
                                "`data: <record>` (the `data` of the WebSocket event); query parameters "
                                "filter like a list; Last-Event-ID or ?since= resumes."},
                {"messages", std::move(sse_msgs)}};
        }
    }

    // The tasks and auth streams.
    if (o.tasks) {
        b.request("tasks", "list", data_of(object_of(json::object{{"filter", {{"type", "object"}}},
                                                                   {"ordering", {{"type", "string"}}},
                                                                   {"limit", {{"type", "integer"}}},
                                                                   {"offset", {{"type", "integer"}}}}, {})),
                  object_of(json::object{{"count", {{"type", "integer"}}},
                                         {"results", json::object{{"type", "array"}, {"items", schema_ref("livebase.task")}}}},
                            {"count", "results"}),
                  "List the caller's tasks");
        b.request("tasks", "retrieve", json::object{{"pk", pk}}, schema_ref("livebase.task"), "A task");
        b.request("tasks", "cancel", json::object{{"pk", pk}}, schema_ref("livebase.task"), "Cancel a task");
        b.request("tasks", "submit",
                  data_of(object_of(json::object{{"kind", {{"type", "string"}}}, {"input", json::object{}}}, {"kind"})),
                  schema_ref("livebase.task"), "Submit a task of a kind that allows direct submission (202)");
        b.request("tasks", "subscribe", json::object{{"pk", pk}},
                  object_of(json::object{{"subscription", {{"type", "string"}}}, {"seq", {{"type", "integer"}}}}, {"subscription"}),
                  "Follow a task's progress and state");
        b.add_message("tasks.event", message("tasks.event", "A task changed",
                                             envelope("tasks", object_of(json::object{{"action", {{"type", "string"}}},
                                                                                      {"pk", {{"type", "string"}}},
                                                                                      {"data", schema_ref("livebase.task")},
                                                                                      {"seq", {{"type", "integer"}}},
                                                                                      {"subscription", {{"type", "string"}}}},
                                                                         {"pk", "data"}))));
        b.receive("tasks.events", {"tasks.event"}, "Progress and state changes of subscribed tasks");
    }
    if (o.auth) {
        schemas["livebase.credentials"] = credentials_schema();  // auth.login's data may be credentials
        b.request("auth", "login",
                  data_of(json::object{{"oneOf", json::array{object_of(json::object{{"token", {{"type", "string"}}}}, {"token"}),
                                                             schema_ref("livebase.credentials")}}}),
                  object_of(json::object{{"user", schema_ref("livebase.user")}}, {}),
                  "Authenticate the socket (browsers cannot set headers on a WebSocket)");
        b.request("auth", "logout", json::object{}, nothing, "Forget the socket's credentials");
    }

    json::object channels{
        {b.channel, json::object{{"address", o.websocket_path.empty() ? "/ws" : o.websocket_path},
                                 {"title", "livebase WebSocket"},
                                 {"description", "Text frames, one JSON envelope each (channels-api's "
                                                 "{stream, payload}); optional subprotocol livebase.v1. "
                                                 "Close codes: 1001 going away, 1008 origin refused, 1009 too "
                                                 "big, 4008 slow consumer, 4401 credentials no longer valid, "
                                                 "4429 throttled."},
                                 {"servers", json::array{json::object{{"$ref", "#/servers/websocket"}}}},
                                 {"messages", std::move(b.channel_msgs)},
                                 {"bindings", json::object{{"ws", json::object{{"method", "GET"}, {"bindingVersion", "0.1.0"}}}}}}}};
    for (auto& [k, v] : sse_channels) channels[k] = std::move(v);

    json::object host_var{{"host", json::object{{"default", "localhost:8080"},
                                                {"description", "the server's host and port"}}}};
    return json::object{
        {"asyncapi", "3.0.0"},
        {"info", json::object{{"title", "livebase realtime"},
                              {"version", k_api_version},
                              {"description", "The WebSocket protocol of livebase (realtime.md), generated from "
                                              "the declared collections. Authenticate by the session cookie or "
                                              "Authorization at the upgrade, or with auth.login. The same change "
                                              "events are served as Server-Sent Events (channels *.sse)."}}},
        {"defaultContentType", "application/json"},
        {"servers", json::object{{"websocket", json::object{{"host", "{host}"}, {"protocol", "ws"},
                                                            {"description", "wss behind TLS"},
                                                            {"variables", host_var}}},
                                 {"sse", json::object{{"host", "{host}"}, {"protocol", "http"},
                                                      {"description", "Server-Sent Events (text/event-stream)"},
                                                      {"variables", host_var}}}}},
        {"channels", std::move(channels)},
        {"operations", std::move(b.operations)},
        {"components", json::object{{"schemas", std::move(schemas)}, {"messages", std::move(b.messages)}}}};
}

}  // namespace livebase::http_detail
