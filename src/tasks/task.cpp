#include <livebase/tasks/task.hpp>

#include <livebase/core/clock.hpp>
#include <livebase/tasks/queue.hpp>

#include <cmath>

#include <array>
#include <utility>

namespace livebase {

namespace {
constexpr std::array<std::string_view, 5> k_state_names{"pending", "running", "succeeded",
                                                         "failed", "cancelled"};

collection_def build_tasks_collection() {
    collection_def c;
    c.name = "tasks";
    c.owned = true;
    c.built_in = true;
    c.fields = {
        make_field("kind", field_type::string, true),
        make_field("state", field_type::string),
        make_field("progress", field_type::number),
        make_field("message", field_type::text),
        make_field("eta", field_type::number),
        make_field("steps", field_type::json),
        make_field("request", field_type::json),
        make_field("input", field_type::json),
        make_field("result", field_type::json),
        make_field("result_status", field_type::integer),
        make_field("error", field_type::json),
        make_field("location", field_type::string),
        make_field("attempt", field_type::integer),
        make_field("max_attempts", field_type::integer),
        make_field("started", field_type::datetime),
        make_field("finished", field_type::datetime),
        make_field("not_before", field_type::integer),
        make_field("lease_until", field_type::integer),
        make_field("worker", field_type::string),
        make_field("cancel_requested", field_type::boolean),
        make_field("timeout_ms", field_type::integer),
        make_field("fair", field_type::integer),
        make_field("priority", field_type::integer),
        make_field("schedule", field_type::string),
        make_field("tick", field_type::datetime),
        make_field("schedule_tick", field_type::string, false, true),
    };
    c.fields[1].choices = {json::value("pending"), json::value("running"), json::value("succeeded"),
                           json::value("failed"), json::value("cancelled")};
    // Claims read the first due rows of (state, fair, id) in index order (`fair`: the claim
    // key, by priority then the owners' turns, then delayed and retried tasks by due time; see
    // task_queue); reaping and purging find expired
    // leases and old finished tasks; lists and counts of one owner's tasks by state use the
    // last.
    c.indexes = {{"state", "fair", "id"}, {"state", "lease_until"}, {"state", "finished"},
                 {"owner", "state", "created"}};
    c.rules = {{"list", access_rule::owner},     {"retrieve", access_rule::owner},
               {"create", access_rule::nobody},  {"update", access_rule::nobody},
               {"delete", access_rule::owner}};
    auto msg = finalize(c);
    (void)msg;  // a fixed definition: checked by the unit tests
    return c;
}

json::value field_or_null(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    return it == o.end() ? json::value(nullptr) : it->value();
}
}  // namespace

std::string_view to_string(task_state s) noexcept {
    return k_state_names[static_cast<std::size_t>(s)];
}

std::optional<task_state> task_state_from_string(std::string_view s) noexcept {
    for (std::size_t i = 0; i < k_state_names.size(); ++i)
        if (k_state_names[i] == s) return static_cast<task_state>(i);
    return std::nullopt;
}

const collection_def& tasks_collection() {
    static const collection_def def = build_tasks_collection();
    return def;
}

json::object present_task(const json::object& stored, std::string_view base_path) {
    json::object out;
    std::string id(get_string(stored, "id"));
    out["id"] = id;
    for (std::string_view k : {"kind", "state", "progress", "message", "eta"}) {
        auto v = field_or_null(stored, k);
        // 50.0 reads better as 50 (and compares equal to it in every client).
        if (v.is_double() && std::abs(v.get_double()) < 1e15 &&
            v.get_double() == static_cast<double>(static_cast<std::int64_t>(v.get_double())))
            v = static_cast<std::int64_t>(v.get_double());
        out[k] = std::move(v);
    }
    auto steps = field_or_null(stored, "steps");
    out["steps"] = steps.is_array() ? steps : json::value(json::array{});
    json::object request;
    if (auto r = stored.find("request"); r != stored.end() && r->value().is_object()) {
        const auto& ro = r->value().get_object();
        for (std::string_view k : {"method", "path", "query", "body"})
            request[k] = field_or_null(ro, k);
        out["request"] = std::move(request);
    } else {
        out["request"] = nullptr;
    }
    for (std::string_view k : {"result", "error", "location"}) out[k] = field_or_null(stored, k);
    auto attempt = get_int(stored, "attempt");
    out["attempt"] = attempt ? *attempt : 0;
    out["max_attempts"] = field_or_null(stored, "max_attempts");
    for (std::string_view k : {"owner", "created", "started", "finished"})
        out[k] = field_or_null(stored, k);
    // A task waiting for its time says when it may run (a delayed submission, a retry's
    // backoff): those wait in the due band of the claim order.
    auto not_before = get_int(stored, "not_before");
    auto key = get_int(stored, "fair");
    out["not_before"] = get_string(stored, "state") == "pending" && not_before && key &&
                                *key >= task_queue::kRetryBand
                            ? json::value(format_timestamp(*not_before))
                            : json::value(nullptr);
    out["priority"] = get_int(stored, "priority").value_or(0);
    // A task a schedule made: the schedule and the tick it is for.
    out["schedule"] = field_or_null(stored, "schedule");
    out["tick"] = field_or_null(stored, "tick");
    // The address an anonymous task is known by stays on the server.
    if (out["owner"].is_string() && out["owner"].get_string().starts_with(k_anonymous_owner_prefix))
        out["owner"] = nullptr;
    std::string self = std::string(base_path) + "/" + id;
    out["links"] = json::object{{"self", self}, {"result", self + "/result"}};
    return out;
}

json::object request_to_json(const operation& op, std::string_view query_string) {
    json::object o;
    o["method"] = op.method;
    o["path"] = op.path;
    o["query"] = query_string;
    o["body"] = op.input;
    const std::string_view kind = to_string(op.kind);
    json::array params;
    for (const auto& [name, value] : op.params) params.push_back(json::array{json::value(name), json::value(value)});
    json::object detail{{"kind", kind},
                        {"collection", op.collection},
                        {"id", op.id},
                        {"action", op.action},
                        {"params", std::move(params)},
                        {"request_id", op.request_id}};
    detail["if_match"] = op.if_match ? json::value(*op.if_match) : json::value(nullptr);
    if (op.password_hash) detail["password_hash"] = *op.password_hash;
    o["op"] = std::move(detail);
    o["who"] = json::object{{"user_id", op.who.user_id}, {"admin", op.who.admin}};
    return o;
}

result<operation> operation_from_request(const json::value& request) {
    auto bad = [] { return problem::internal("The task's stored request is malformed."); };
    if (!request.is_object()) return bad();
    const auto& o = request.get_object();
    auto opv = o.find("op");
    if (opv == o.end() || !opv->value().is_object()) return bad();
    const auto& d = opv->value().get_object();
    operation op;
    auto kind = get_string(d, "kind");
    auto known = op_kind_named(kind);
    if (!known) return bad();
    op.kind = *known;
    op.method = std::string(get_string(o, "method"));
    op.path = std::string(get_string(o, "path"));
    op.input = field_or_null(o, "body");
    op.collection = std::string(get_string(d, "collection"));
    op.id = std::string(get_string(d, "id"));
    op.action = std::string(get_string(d, "action"));
    op.request_id = std::string(get_string(d, "request_id"));
    op.if_match = get_int(d, "if_match");
    if (auto h = d.find("password_hash"); h != d.end() && h->value().is_string())
        op.password_hash = std::string(h->value().get_string());
    if (auto p = d.find("params"); p != d.end() && p->value().is_array()) {
        for (const auto& pair : p->value().get_array()) {
            if (!pair.is_array() || pair.get_array().size() != 2 || !pair.get_array()[0].is_string() ||
                !pair.get_array()[1].is_string())
                return bad();
            op.params.emplace_back(std::string(pair.get_array()[0].get_string()),
                                   std::string(pair.get_array()[1].get_string()));
        }
    }
    if (auto w = o.find("who"); w != o.end() && w->value().is_object()) {
        const auto& wo = w->value().get_object();
        op.who.user_id = std::string(get_string(wo, "user_id"));
        auto admin = wo.find("admin");
        op.who.admin = admin != wo.end() && admin->value().is_bool() && admin->value().get_bool();
    }
    return op;
}

}  // namespace livebase
