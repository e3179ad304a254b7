#include "ws/request_plan.hpp"

#include <cctype>
#include <livebase/tasks/task.hpp>

namespace livebase::ws_detail {

namespace {

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

/// 400 naming the members of a list's or live query's `data` that parse_query_json does not know.
std::optional<problem> unknown_query_members(const json::object& data) {
    return unknown_members(data, {"filter", "ordering", "limit", "offset", "fields"}, "data.");
}

request_plan refuse(problem p) {
    request_plan plan;
    plan.kind = plan_kind::refuse;
    plan.refusal = std::move(p);
    return plan;
}

/// pk as the api wants it: strings as sent, integers (channels-api clients send them) as
/// decimal text. nullopt when absent/null; a problem for other types.
result<std::optional<std::string>> pk_of(const ws_request& r) {
    const auto& v = r.pk;
    if (v.is_null()) return std::optional<std::string>{};
    if (v.is_string()) {
        if (v.get_string().empty()) return std::optional<std::string>{};
        return std::optional<std::string>{std::string(v.get_string())};
    }
    if (v.is_int64()) return std::optional<std::string>{std::to_string(v.get_int64())};
    if (v.is_uint64()) return std::optional<std::string>{std::to_string(v.get_uint64())};
    return problem::bad_parameter("pk", "Must be a string or an integer.");
}

result<std::string> required_pk(const ws_request& r) {
    auto pk = pk_of(r);
    if (!pk) return std::move(pk).error();
    if (!*pk) return problem::bad_parameter("pk", "This action needs a pk.");
    return std::move(**pk);
}

/// data as an object; null counts as {}.
result<json::object> data_object(const ws_request& r) {
    if (r.data.is_null()) return json::object{};
    if (!r.data.is_object()) return problem::bad_parameter("data", "Must be an object.");
    return r.data.get_object();
}

std::string collection_path(std::string_view base, std::string_view collection) {
    std::string p(base);
    if (!p.empty() && p.back() == '/') p.pop_back();
    p += '/';
    p += collection;
    return p;
}

/// A scalar as query-string text that parse_query_params types back to the same value.
std::string scalar_text(const json::value& v) {
    if (v.is_string()) return std::string(v.get_string());
    if (v.is_bool()) return v.get_bool() ? "true" : "false";
    if (v.is_int64()) return std::to_string(v.get_int64());
    if (v.is_uint64()) return std::to_string(v.get_uint64());
    return to_json_text(v);  // doubles: shortest round-trip form, which from_chars reads
}

/// A list: validates {filter, ordering, limit, offset, fields} with parse_query_json (errors
/// name "filter.<key>") and runs the equivalent REST list through the api.
request_plan list_plan(const ws_request& r, const collection_def& c, std::string_view base_path) {
    auto data = data_object(r);
    if (!data) return refuse(std::move(data).error());
    if (auto p = unknown_query_members(*data)) return refuse(std::move(*p));
    auto q = parse_query_json(c, *data);
    if (!q) return refuse(std::move(q).error());
    auto params = to_query_params(*q);
    if (!params) return refuse(std::move(params).error());
    request_plan plan;
    plan.kind = plan_kind::execute;
    plan.shape = reply_shape::list;
    plan.limit = q->limit;
    plan.offset = q->offset;
    plan.op.kind = op_kind::list;
    plan.op.collection = r.stream;
    plan.op.method = "GET";
    plan.op.path = collection_path(base_path, r.stream);
    plan.op.query = encode_query(*params);
    plan.op.params = std::move(*params);
    return plan;
}

request_plan detail_plan(const ws_request& r, op_kind kind, std::string method,
                         std::string_view base_path) {
    auto pk = required_pk(r);
    if (!pk) return refuse(std::move(pk).error());
    request_plan plan;
    plan.kind = plan_kind::execute;
    plan.op.kind = kind;
    plan.op.collection = r.stream;
    plan.op.id = std::move(*pk);
    plan.op.method = std::move(method);
    plan.op.path = collection_path(base_path, r.stream) + "/" + plan.op.id;
    if (kind == op_kind::replace || kind == op_kind::patch) plan.op.input = r.data;
    return plan;
}

request_plan subscribe_plan(const ws_request& r, std::string collection) {
    auto data = data_object(r);
    if (!data) return refuse(std::move(data).error());
    if (auto p = unknown_members(*data, {"actions", "action", "filter", "since"}, "data."))
        return refuse(std::move(*p));
    auto pk = pk_of(r);
    if (!pk) return refuse(std::move(pk).error());
    request_plan plan;
    plan.kind = plan_kind::subscribe;
    plan.sub.collection = std::move(collection);
    if (*pk) plan.sub.pk = std::move(**pk);
    if (auto it = data->find("actions"); it != data->end() && !it->value().is_null()) {
        if (!it->value().is_array())
            return refuse(problem::bad_parameter("data.actions", "Must be an array of strings."));
        for (const auto& a : it->value().get_array()) {
            if (!a.is_string())
                return refuse(
                    problem::bad_parameter("data.actions", "Must be an array of strings."));
            plan.sub.actions.emplace_back(a.get_string());
        }
    } else if (auto one = data->find("action"); one != data->end() && !one->value().is_null()) {
        // channels-api: {"action": "subscribe", "pk": "1", "data": {"action": "update"}}
        if (!one->value().is_string())
            return refuse(problem::bad_parameter("data.action", "Must be a string."));
        plan.sub.actions.emplace_back(one->value().get_string());
    }
    if (auto it = data->find("filter"); it != data->end() && !it->value().is_null()) {
        if (!it->value().is_object())
            return refuse(problem::bad_parameter("data.filter", "Must be an object."));
        plan.sub.filter = it->value().get_object();
    }
    if (auto it = data->find("since"); it != data->end() && !it->value().is_null()) {
        auto since = get_int(*data, "since");
        if (!since || *since < 0)
            return refuse(problem::bad_parameter("data.since", "Must be a non-negative integer."));
        plan.sub.since = *since;
    }
    return plan;
}

request_plan handle_plan(const ws_request& r, plan_kind kind, std::string_view key) {
    auto data = data_object(r);
    if (!data) return refuse(std::move(data).error());
    auto it = data->find(key);
    if (it == data->end() || !it->value().is_string() || it->value().get_string().empty())
        return refuse(
            problem::bad_parameter("data." + std::string(key), "Must be a non-empty string."));
    request_plan plan;
    plan.kind = kind;
    plan.handle = std::string(it->value().get_string());
    return plan;
}

/// A custom action: POST unless the action only allows GET; detail actions need a pk. A GET
/// action takes `data` (an object) as its query arguments, a POST action as its body.
request_plan action_plan(const ws_request& r, const action_def& def, std::string_view base_path) {
    request_plan plan;
    plan.kind = plan_kind::execute;
    plan.op.kind = op_kind::action;
    plan.op.collection = r.stream;
    plan.op.action = r.action;
    bool post = false, get = false;
    for (const auto& m : def.methods) {
        post = post || m == "POST";
        get = get || m == "GET";
    }
    plan.op.method = (get && !post) ? "GET" : "POST";
    plan.op.path = collection_path(base_path, r.stream);
    if (def.detail) {
        auto pk = required_pk(r);
        if (!pk) return refuse(std::move(pk).error());
        plan.op.id = std::move(*pk);
        plan.op.path += "/" + plan.op.id;
    }
    plan.op.path += ":" + r.action;
    if (plan.op.method == "GET") {
        if (!r.data.is_null() && !r.data.is_object())
            return refuse(problem::bad_parameter("data", "Must be an object."));
        if (r.data.is_object())
            for (const auto& [k, v] : r.data.get_object())
                plan.op.params.emplace_back(std::string(k), scalar_text(v));
        plan.op.query = encode_query(plan.op.params);
    } else {
        plan.op.input = r.data;
    }
    return plan;
}

request_plan records_plan(const ws_request& r, const collection_def& c, std::string_view base) {
    const auto& a = r.action;
    if (a == "list") return list_plan(r, c, base);
    if (a == "retrieve") return detail_plan(r, op_kind::retrieve, "GET", base);
    if (a == "update") return detail_plan(r, op_kind::replace, "PUT", base);
    if (a == "patch") return detail_plan(r, op_kind::patch, "PATCH", base);
    if (a == "delete") return detail_plan(r, op_kind::remove, "DELETE", base);
    if (a == "create") {
        request_plan plan;
        plan.kind = plan_kind::execute;
        plan.op.kind = op_kind::create;
        plan.op.collection = r.stream;
        plan.op.method = "POST";
        plan.op.path = collection_path(base, r.stream);
        plan.op.input = r.data;
        return plan;
    }
    if (a == "subscribe") return subscribe_plan(r, r.stream);
    if (a == "unsubscribe") return handle_plan(r, plan_kind::unsubscribe, "subscription");
    if (a == "unobserve") return handle_plan(r, plan_kind::unobserve, "observer");
    if (a == "observe") {
        auto data = data_object(r);
        if (!data) return refuse(std::move(data).error());
        // The hub validates the query (parse_query_json, which refuses unknown members too);
        // checked here as well so the refusal comes before any hub work.
        if (auto p = unknown_query_members(*data))
            return refuse(std::move(*p));
        request_plan plan;
        plan.kind = plan_kind::observe;
        plan.obs.collection = r.stream;
        plan.obs.query = std::move(*data);
        return plan;
    }
    if (auto it = c.actions.find(a); it != c.actions.end()) return action_plan(r, it->second, base);
    return refuse(problem::not_found("Unknown action " + quoted(a) + "."));
}

/// `submit`: a kind bound by an [endpoints.*] entry runs through that endpoint, exactly as a
/// request to its path would.
request_plan submit_plan(const ws_request& r, const registry& reg, std::string_view base) {
    auto data = data_object(r);
    if (!data) return refuse(std::move(data).error());
    auto kind = get_string(*data, "kind");
    if (kind.empty())
        return refuse(problem::bad_parameter("data.kind", "Must be a non-empty string."));
    if (reg.submit_rule(kind)) {
        // A kind submittable directly: as POST {base}/tasks with `data` as its body (the api
        // checks the kind's rule and the fields).
        request_plan plan;
        plan.kind = plan_kind::execute;
        plan.op.kind = op_kind::create;
        plan.op.method = "POST";
        plan.op.collection = "tasks";
        plan.op.path = collection_path(base, "tasks");
        plan.op.input = std::move(*data);
        return plan;
    }
    for (std::string_view k : {"delay", "not_before", "priority"})
        if (data->contains(k))
            return refuse(problem::bad_parameter(
                "data." + std::string(k), "Only kinds submittable directly ([tasks.kinds.<kind>] submit) take it."));
    const endpoint_binding* e = nullptr;
    for (const auto& b : reg.endpoints())
        if (b.task == kind) {
            e = &b;
            break;
        }
    if (!e)  // as POST {base}/tasks answers: nothing told of the app's other kinds
        return refuse(problem::bad_parameter("data.kind", "No task kind of this name may be submitted directly."));
    json::value input = nullptr;
    if (auto it = data->find("input"); it != data->end()) input = it->value();
    request_plan plan;
    plan.kind = plan_kind::execute;
    plan.op.method = e->method;
    plan.op.path = e->path;
    plan.op.kind = e->method == "GET" ? op_kind::list : op_kind::create;
    auto slash = e->path.rfind('/');
    plan.op.collection = e->path.substr(slash == std::string::npos ? 0 : slash + 1);
    if (e->method == "GET") {
        // GET endpoints take their arguments from the query string.
        if (!input.is_null() && !input.is_object())
            return refuse(problem::bad_parameter("data.input", "Must be an object."));
        if (input.is_object())
            for (const auto& [k, v] : input.get_object())
                plan.op.params.emplace_back(std::string(k), scalar_text(v));
        plan.op.query = encode_query(plan.op.params);
    } else {
        plan.op.input = std::move(input);
    }
    return plan;
}

request_plan tasks_plan(const ws_request& r, const registry& reg, std::string_view base) {
    const auto& a = r.action;
    if (a == "list") {
        auto plan = list_plan(r, tasks_collection(), base);
        if (plan.kind == plan_kind::execute) plan.op.collection = "tasks";
        return plan;
    }
    if (a == "retrieve") {
        auto plan = detail_plan(r, op_kind::retrieve, "GET", base);
        plan.shape = reply_shape::task;
        return plan;
    }
    if (a == "cancel") return detail_plan(r, op_kind::remove, "DELETE", base);
    if (a == "subscribe") return subscribe_plan(r, "tasks");
    if (a == "unsubscribe") return handle_plan(r, plan_kind::unsubscribe, "subscription");
    if (a == "submit") return submit_plan(r, reg, base);
    return refuse(problem::not_found("Unknown action " + quoted(a) + "."));
}

/// An api auth operation ("login", "logout", "me"), as POST/GET {base}/auth/{action} would be.
operation auth_op(std::string_view action, std::string method, std::string_view base) {
    operation op;
    op.kind = op_kind::action;
    op.collection = "auth";
    op.action = std::string(action);
    op.method = std::move(method);
    op.path = collection_path(base, "auth") + "/" + op.action;
    return op;
}

/// The `auth` stream (realtime.md): `login` with {"token"} or {"username", "password"},
/// `logout`, `me`.
request_plan auth_plan(const ws_request& r, std::string_view base) {
    const auto& a = r.action;
    if (a == "login") {
        auto data = data_object(r);
        if (!data) return refuse(std::move(data).error());
        request_plan plan;
        plan.kind = plan_kind::login;
        if (auto it = data->find("token"); it != data->end() && !it->value().is_null()) {
            if (!it->value().is_string() || it->value().get_string().empty())
                return refuse(problem::bad_parameter("data.token", "Must be a non-empty string."));
            plan.token = std::string(it->value().get_string());
            return plan;
        }
        // The api checks the fields (400 naming them) after its throttle, as REST does.
        plan.op = auth_op("login", "POST", base);
        plan.op.input = std::move(*data);
        return plan;
    }
    if (a == "logout") {
        request_plan plan;
        plan.kind = plan_kind::logout;
        plan.op = auth_op("logout", "POST", base);
        return plan;
    }
    if (a == "me") {
        request_plan plan;
        plan.kind = plan_kind::execute;
        plan.op = auth_op("me", "GET", base);
        return plan;
    }
    return refuse(problem::not_found("Unknown action " + quoted(a) + "."));
}

}  // namespace

result<query_params> to_query_params(const query& q) {
    query_params out;
    for (const auto& t : q.filters) {
        std::string key = t.field + "__" + std::string(to_string(t.op));
        if (t.op == lookup::in) {
            if (!t.value.is_array() || t.value.get_array().empty())
                return problem::bad_parameter("filter." + key, "Must be a non-empty array.");
            std::string joined;
            for (const auto& item : t.value.get_array()) {
                auto text = scalar_text(item);
                if (text.empty() || text.find(',') != std::string::npos)
                    return problem::bad_parameter("filter." + key,
                                                  "Items may not be empty or contain ',' here.");
                if (!joined.empty()) joined += ',';
                joined += text;
            }
            out.emplace_back(std::move(key), std::move(joined));
        } else {
            out.emplace_back(std::move(key), scalar_text(t.value));
        }
    }
    if (!q.ordering.empty()) {
        std::string o;
        for (const auto& t : q.ordering) {
            if (!o.empty()) o += ',';
            if (t.descending) o += '-';
            o += t.field;
        }
        out.emplace_back("ordering", std::move(o));
    }
    if (!q.fields.empty()) {
        std::string f;
        for (const auto& name : q.fields) {
            if (!f.empty()) f += ',';
            f += name;
        }
        out.emplace_back("fields", std::move(f));
    }
    out.emplace_back("limit", std::to_string(q.limit));
    if (q.offset > 0) out.emplace_back("offset", std::to_string(q.offset));
    return out;
}

request_plan plan_request(const ws_request& r, const registry& reg, std::string_view base_path,
                          bool auth) {
    if (r.stream == "tasks") return tasks_plan(r, reg, base_path);
    // "auth" is a reserved collection name, so no collection can shadow it.
    if (auth && r.stream == "auth") return auth_plan(r, base_path);
    if (const auto* c = reg.find(r.stream)) return records_plan(r, *c, base_path);
    return refuse(problem::not_found("Unknown stream " + quoted(r.stream) + "."));
}

std::string encode_plan_reply(const request_plan& plan, const ws_request& r, const outcome& o) {
    json::value action(r.action);
    if (o.is_problem) return encode_outcome(r.stream, action, r.request_id, o);
    if (plan.shape == reply_shape::list && o.status == 200 && o.body.is_object()) {
        const auto& b = o.body.get_object();
        json::object data;
        if (auto it = b.find("count"); it != b.end()) data["count"] = it->value();
        if (auto it = b.find("results"); it != b.end()) data["results"] = it->value();
        data["limit"] = plan.limit;
        data["offset"] = plan.offset;
        return encode_reply(r.stream, action, r.request_id, 200, data);
    }
    if (plan.shape == reply_shape::task && o.status == 303)
        return encode_reply(r.stream, action, r.request_id, 200, o.body);
    return encode_outcome(r.stream, action, r.request_id, o);
}

}  // namespace livebase::ws_detail
