#include "http/router.hpp"

#include <boost/url/pct_string_view.hpp>
#include <optional>
#include <vector>

namespace livebase::http_detail {

namespace {

/// Percent-decodes one path segment; nullopt when the encoding is invalid, the segment is empty
/// or it would smuggle a '/' (or a NUL) into a name or id.
std::optional<std::string> decode_segment(std::string_view encoded) {
    if (encoded.empty()) return std::nullopt;
    auto pct = boost::urls::make_pct_string_view(encoded);
    if (!pct) return std::nullopt;
    std::string out = pct->decode();  // default options: '+' stays '+' in a path
    if (out.empty() || out.find('/') != std::string::npos || out.find('\0') != std::string::npos)
        return std::nullopt;
    return out;
}

route_match not_allowed(std::string route, std::string allow) {
    route_match m;
    m.kind = route_kind::method_not_allowed;
    m.route = std::move(route);
    m.allow = std::move(allow);
    return m;
}

}  // namespace

router::router(std::string_view base_path, std::string_view websocket_path) {
    auto normalize = [](std::string_view p) {
        std::string b(p);
        while (!b.empty() && b.back() == '/') b.pop_back();
        if (!b.empty() && b.front() != '/') b.insert(b.begin(), '/');
        return b;
    };
    base_ = normalize(base_path);
    websocket_ = normalize(websocket_path);
}

route_match router::match(std::string_view method, std::string_view path) const {
    route_match miss;
    miss.route = "unmatched";

    if (path == "/metrics" || path == "/metrics/") {
        if (method != "GET") return not_allowed("/metrics", "GET");
        route_match m;
        m.kind = route_kind::metrics;
        m.route = "/metrics";
        return m;
    }

    if (path == "/_" || path.substr(0, 3) == "/_/") {
        if (method != "GET" && method != "HEAD") return not_allowed("/_/", "GET, HEAD");
        route_match m;
        m.kind = route_kind::console;
        m.route = "/_/";
        m.rest = std::string(path.substr(2));
        return m;
    }

    if (!websocket_.empty() && (path == websocket_ || path == websocket_ + "/")) {
        if (method != "GET") return not_allowed(websocket_, "GET");
        route_match m;
        m.kind = route_kind::websocket;
        m.route = websocket_;
        return m;
    }

    if (path.substr(0, base_.size()) != base_) return miss;
    std::string_view rest = path.substr(base_.size());
    if (rest.size() < 2 || rest.front() != '/') return miss;  // "{base}" and "{base}/": no route
    rest.remove_prefix(1);
    if (rest.back() == '/') rest.remove_suffix(1);  // one trailing slash means the same

    std::vector<std::string_view> segs;
    for (std::size_t start = 0;;) {
        auto slash = rest.find('/', start);
        segs.push_back(rest.substr(start, slash == std::string_view::npos ? slash : slash - start));
        if (slash == std::string_view::npos) break;
        start = slash + 1;
    }
    // GET {base}/tasks/{id}/result: the stored result of a task.
    if (segs.size() == 3 && segs[0] == "tasks" && segs[2] == "result") {
        auto task_id = decode_segment(segs[1]);
        if (!task_id || segs[1].find(':') != std::string_view::npos) return miss;
        if (method != "GET") return not_allowed(base_ + "/tasks/{id}/result", "GET");
        route_match r;
        r.kind = route_kind::records;
        r.route = base_ + "/tasks/{id}/result";
        r.op.kind = op_kind::retrieve;
        r.op.collection = "tasks";
        r.op.id = std::move(*task_id);
        r.op.subresource = "result";
        r.op.method = "GET";
        return r;
    }
    if (segs.size() > 2) return miss;

    // {base}/schema and {base}/schema/realtime: the API documents; reserved like "auth".
    if (segs[0] == "schema") {
        const bool realtime = segs.size() == 2 && segs[1] == "realtime";
        if (segs.size() == 2 && !realtime) return miss;
        route_match r;
        r.kind = realtime ? route_kind::schema_realtime : route_kind::schema;
        r.route = base_ + (realtime ? "/schema/realtime" : "/schema");
        if (method != "GET") return not_allowed(r.route, "GET");
        return r;
    }

    // {base}/auth/{login,logout,me,register} (http.md section 5): operations of the api's
    // "auth" collection, which no declared collection may shadow.
    if (segs[0] == "auth") {
        if (segs.size() != 2) return miss;
        auto name = decode_segment(segs[1]);
        if (!name) return miss;
        const bool known = *name == "login" || *name == "logout" || *name == "me" || *name == "register";
        if (!known) return miss;
        route_match r;
        r.kind = route_kind::records;
        r.route = base_ + "/auth/" + *name;
        const char* allowed = *name == "me" ? "GET" : "POST";
        if (method != allowed) return not_allowed(r.route, allowed);
        r.op.kind = op_kind::action;
        r.op.collection = "auth";
        r.op.action = std::move(*name);
        r.op.method = std::string(method);
        return r;
    }

    // The literal ':' of an action lives in the last segment.
    std::string_view last = segs.back();
    std::optional<std::string> action;
    if (auto colon = last.rfind(':'); colon != std::string_view::npos) {
        action = decode_segment(last.substr(colon + 1));
        if (!action) return miss;
        last = last.substr(0, colon);
    }

    std::optional<std::string> collection, id;
    if (segs.size() == 1) {
        collection = decode_segment(last);
    } else {
        if (segs[0].find(':') != std::string_view::npos) return miss;
        collection = decode_segment(segs[0]);
        id = decode_segment(last);
        if (!id) return miss;
    }
    if (!collection) return miss;

    route_match m;
    m.kind = route_kind::records;
    m.op.collection = std::move(*collection);
    m.op.method = std::string(method);

    if (action) {
        m.route = base_ + (id ? "/{c}/{id}:{action}" : "/{c}:{action}");
        m.op.kind = op_kind::action;
        m.op.action = std::move(*action);
        if (id) m.op.id = std::move(*id);
        return m;
    }

    if (!id) {
        if (m.op.collection == "health" && segs[0] == "health") {
            // {base}/health is the health check; it shadows a collection of that name.
            if (method != "GET") return not_allowed(base_ + "/health", "GET");
            route_match h;
            h.kind = route_kind::health;
            h.route = base_ + "/health";
            return h;
        }
        m.route = base_ + "/{c}";
        if (method == "GET")
            m.op.kind = op_kind::list;
        else if (method == "POST")
            m.op.kind = op_kind::create;
        else
            return not_allowed(m.route, "GET, POST");
        return m;
    }

    if (*id == "events" && segs[1] == "events") {
        m.route = base_ + "/{c}/events";
        if (method != "GET") return not_allowed(m.route, "GET");
        m.kind = route_kind::events;
        return m;
    }

    if (m.op.collection == "health" && segs[0] == "health" && *id == "ready" && segs[1] == "ready") {
        // {base}/health/ready is the readiness check (beside the liveness check {base}/health).
        if (method != "GET") return not_allowed(base_ + "/health/ready", "GET");
        route_match h;
        h.kind = route_kind::ready;
        h.route = base_ + "/health/ready";
        return h;
    }

    m.route = base_ + "/{c}/{id}";
    m.op.id = std::move(*id);
    if (method == "GET")
        m.op.kind = op_kind::retrieve;
    else if (method == "PUT")
        m.op.kind = op_kind::replace;
    else if (method == "PATCH")
        m.op.kind = op_kind::patch;
    else if (method == "DELETE")
        m.op.kind = op_kind::remove;
    else
        return not_allowed(m.route, "GET, PUT, PATCH, DELETE");
    return m;
}

}  // namespace livebase::http_detail
