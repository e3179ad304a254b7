// The AsyncAPI 3.0.0 document of the WebSocket protocol (realtime.md): one channel at the
// WebSocket path with every request and reply, the events and live-query diffs of every
// collection, and one channel per collection for its SSE change stream.
#include <livebase/apidoc/documents.hpp>

#include "apidoc/schemas.hpp"

#include <initializer_list>
#include <string_view>
#include <vector>

namespace livebase::apidoc {

namespace {

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

json::object asyncapi_document(const registry& reg, const document_options& o) {
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
                  data_of(object_of(json::object{{"kind", {{"type", "string"}}},
                                                 {"input", json::object{}},
                                                 {"delay", {{"description", "seconds, or a duration such as \"90s\""}}},
                                                 {"not_before", {{"type", "string"}, {"format", "date-time"}}},
                                                 {"priority", {{"type", "integer"}}}},
                                    {"kind"})),
                  schema_ref("livebase.task"),
                  "Submit a task of a kind that allows direct submission (202); delay, not_before and priority "
                  "as POST /api/tasks takes them");
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

}  // namespace livebase::apidoc
