#include <livebase/core/problem.hpp>

namespace livebase {

json::object problem::to_json() const {
    json::object o;
    o["type"] = type.empty() ? "about:blank" : type;
    o["title"] = title;
    o["status"] = status;
    if (!detail.empty()) o["detail"] = detail;
    for (const auto& kv : extra) o[kv.key()] = kv.value();
    return o;
}

problem problem::make(int status, std::string type, std::string title, std::string detail) {
    problem p;
    p.status = status;
    p.type = std::move(type);
    p.title = std::move(title);
    p.detail = std::move(detail);
    return p;
}

problem problem::bad_request(std::string detail) {
    return make(400, "/problems/bad-request", "Bad request", std::move(detail));
}
problem problem::bad_parameter(std::string parameter, std::string detail) {
    auto p = make(400, "/problems/bad-parameter", "Invalid query parameter", std::move(detail));
    p.extra["parameter"] = parameter;
    return p;
}
problem problem::malformed_json(std::string detail) {
    return make(400, "/problems/malformed-json", "Malformed JSON", std::move(detail));
}
problem problem::validation(field_errors errors) {
    auto n = errors.size();
    auto p = make(400, "/problems/validation", "Invalid input",
                  std::to_string(n) + (n == 1 ? " field is invalid" : " fields are invalid"));
    json::object e;
    for (auto& [field, msgs] : errors) {
        json::array a;
        for (auto& m : msgs) a.emplace_back(m);
        e[field] = std::move(a);
    }
    p.extra["errors"] = std::move(e);
    return p;
}
problem problem::unauthorized(std::string detail) {
    return make(401, "/problems/unauthorized", "Unauthorized", std::move(detail));
}
problem problem::forbidden(std::string detail) {
    return make(403, "/problems/forbidden", "Forbidden", std::move(detail));
}
problem problem::not_found(std::string detail) {
    return make(404, "/problems/not-found", "Not found", std::move(detail));
}
problem problem::method_not_allowed(std::string detail) {
    return make(405, "/problems/method-not-allowed", "Method not allowed", std::move(detail));
}
problem problem::conflict(std::string detail) {
    return make(409, "/problems/conflict", "Conflict", std::move(detail));
}
problem problem::gone(std::string detail) {
    return make(410, "/problems/gone", "Gone", std::move(detail));
}
problem problem::precondition_failed(std::string detail) {
    return make(412, "/problems/precondition-failed", "Precondition failed", std::move(detail));
}
problem problem::payload_too_large(std::string detail) {
    return make(413, "/problems/payload-too-large", "Payload too large", std::move(detail));
}
problem problem::unsupported_media_type(std::string detail) {
    return make(415, "/problems/unsupported-media-type", "Unsupported media type", std::move(detail));
}
problem problem::unprocessable(std::string detail) {
    return make(422, "/problems/unprocessable", "Unprocessable request", std::move(detail));
}
problem problem::too_many_requests(std::string detail) {
    return make(429, "/problems/throttled", "Too many requests", std::move(detail));
}
problem problem::internal(std::string detail) {
    return make(500, "/problems/internal", "Internal server error", std::move(detail));
}
problem problem::unavailable(std::string detail) {
    // An outage is temporary: the answer says when to try again (Retry-After, see outcome).
    auto p = make(503, "/problems/unavailable", "Service unavailable", std::move(detail));
    p.extra["retry_after"] = 1;
    return p;
}

}  // namespace livebase
