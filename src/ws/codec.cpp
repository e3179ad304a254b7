#include "ws/codec.hpp"

namespace livebase::ws_detail {

namespace {

/// The same nesting limit as REST bodies get from parse_json's default.
constexpr std::size_t k_max_depth = 64;

json::object payload_object(const json::value& action, const json::value& request_id) {
    json::object p;
    p["action"] = action;
    p["request_id"] = request_id;
    return p;
}

std::string envelope(std::string_view stream, json::object payload) {
    json::object o;
    o["stream"] = stream;
    o["payload"] = std::move(payload);
    return to_json_text(o);
}

}  // namespace

decoded_frame decode_frame(std::string_view text) {
    decoded_frame f;
    auto bad = [&f](std::string detail) {
        f.error = problem::bad_request(std::move(detail));
        return f;
    };
    if (!valid_utf8(text)) return bad("The frame is not valid UTF-8.");
    std::optional<std::string> duplicate;
    auto v = parse_json_input(text, k_max_depth, &duplicate);
    if (!v && duplicate)
        return bad("The frame repeats a key in one object" +
                   (duplicate->size() <= 100 ? " (" + to_json_text(json::value(*duplicate)) + ")"
                                             : std::string()) +
                   ".");
    if (!v) return bad("The frame is not valid JSON.");
    if (!v->is_object()) return bad("The frame must be a JSON object.");
    const auto& o = v->get_object();
    const json::object* payload = nullptr;
    if (auto it = o.find("payload"); it != o.end() && it->value().is_object())
        payload = &it->value().get_object();
    // Read what can be echoed before judging the frame, so a bad frame's reply still carries
    // the client's request_id.
    if (payload) {
        if (auto it = payload->find("request_id"); it != payload->end())
            f.request.request_id = it->value();
        if (auto it = payload->find("action"); it != payload->end() && it->value().is_string())
            f.request.action = std::string(it->value().get_string());
        if (auto it = payload->find("pk"); it != payload->end()) f.request.pk = it->value();
        if (auto it = payload->find("data"); it != payload->end()) f.request.data = it->value();
    }
    auto stream = o.find("stream");
    if (stream == o.end() || !stream->value().is_string() || stream->value().get_string().empty())
        return bad("The frame has no \"stream\".");
    f.request.stream = std::string(stream->value().get_string());
    if (!payload) return bad("The frame has no \"payload\" object.");
    if (f.request.action.empty()) return bad("The frame has no \"action\".");
    return f;
}

bool valid_close_code(std::uint16_t code) noexcept {
    if (code == 0) return true;
    if (code >= 1000 && code <= 1003) return true;
    if (code >= 1007 && code <= 1013) return true;  // not 1014: Beast refuses it too
    return code >= 3000 && code <= 4999;
}

std::string encode_reply(std::string_view stream, const json::value& action,
                         const json::value& request_id, int status, const json::value& data) {
    auto p = payload_object(action, request_id);
    p["response_status"] = status;
    p["data"] = data;
    p["errors"] = json::array{};
    return envelope(stream, std::move(p));
}

json::array problem_errors(const json::object& pj) {
    json::array out;
    auto title = get_string(pj, "title");
    auto detail = get_string(pj, "detail");
    auto fields = pj.find("errors");
    if (fields != pj.end() && fields->value().is_object() &&
        !fields->value().get_object().empty()) {
        out.emplace_back(title.empty() ? std::string_view("Invalid input") : title);
        out.push_back(fields->value());
        return out;
    }
    std::string text(detail.empty() ? title : detail);
    if (text.empty()) text = "Error " + std::to_string(get_int(pj, "status").value_or(500)) + ".";
    if (auto param = get_string(pj, "parameter"); !param.empty())
        text = std::string(param) + ": " + text;
    out.emplace_back(std::move(text));
    return out;
}

std::string encode_error(std::string_view stream, const json::value& action,
                         const json::value& request_id, const problem& p) {
    return encode_outcome(stream, action, request_id, outcome::from_problem(p));
}

std::string encode_bad_frame(const decoded_frame& f) {
    const auto& r = f.request;
    json::value action = r.action.empty() ? json::value(nullptr) : json::value(r.action);
    return encode_error(k_error_stream, action, r.request_id,
                        f.error ? *f.error : problem::bad_request("Bad frame."));
}

std::string encode_outcome(std::string_view stream, const json::value& action,
                           const json::value& request_id, const outcome& o) {
    if (!o.is_problem) {
        const bool bodiless = o.status == 204;
        return encode_reply(stream, action, request_id, o.status,
                            bodiless ? json::value(nullptr) : o.body);
    }
    auto payload = payload_object(action, request_id);
    payload["response_status"] = o.status;
    payload["data"] = nullptr;
    if (o.body.is_object()) {
        const auto& pj = o.body.get_object();
        payload["errors"] = problem_errors(pj);
        // A throttled request's client needs the wait in a form it can act on, not only prose.
        if (auto it = pj.find("retry_after"); it != pj.end()) payload["retry_after"] = it->value();
    } else {
        payload["errors"] = json::array{json::value("Error " + std::to_string(o.status) + ".")};
    }
    return envelope(stream, std::move(payload));
}

std::string encode_hello(std::string_view subscriber, const json::value& user) {
    json::object data;
    data["subscriber"] = subscriber;
    data["user"] = user;
    json::object p;
    p["action"] = "hello";
    p["data"] = std::move(data);
    return envelope("session", std::move(p));
}

}  // namespace livebase::ws_detail
