// The JSON Schemas both documents share. Everything a collection contributes comes from its
// collection_def; what is fixed (the task resource, problems, users, credentials) is the
// contract of http.md and realtime.md written once here.
//
// Component names: a collection's schemas are "<c>", "<c>.input", "<c>.patch", "<c>.filter"
// and "<c>.page"; built-in ones start with "livebase." (collection names are identifiers, so
// neither can collide).
#include "apidoc/schemas.hpp"

#include <utility>
#include <vector>

namespace livebase::apidoc {

namespace {

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

}  // namespace

bool hidden_from_schema(const collection_def& c) noexcept {
    return c.name == "auth_tokens" || c.name == "idempotency_keys" || c.name == "tasks";
}

bool hidden_from_schema(const field_def& f) noexcept {
    // Neither accepted nor returned: set by the server only (users.password_hash).
    return f.read_only && f.write_only;
}

json::object ref_to(std::string_view kind, std::string_view name) {
    return json::object{{"$ref", "#/components/" + std::string(kind) + "/" + std::string(name)}};
}

json::object schema_ref(std::string_view name) { return ref_to("schemas", name); }

json::array strings(std::initializer_list<std::string_view> items) {
    json::array out;
    for (auto s : items) out.emplace_back(s);
    return out;
}

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
        {"not_before", {{"type", json::array{"string", "null"}}, {"format", "date-time"},
                        {"description", "a pending task that waits for its time (a delay, a retry's backoff) runs from then"}}},
        {"priority", {{"type", "integer"}, {"description", "a higher one is claimed first"}}},
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

}  // namespace livebase::apidoc
