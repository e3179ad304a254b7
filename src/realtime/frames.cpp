#include "realtime/frames.hpp"

#include <charconv>

namespace livebase::realtime_detail {

namespace {

void append_int(std::string& out, std::int64_t v) {
    char buf[24];
    auto r = std::to_chars(buf, buf + sizeof buf, v);
    out.append(buf, r.ptr);
}

}  // namespace

std::string json_string(std::string_view name) { return to_json_text(json::string(name)); }

std::string websocket_event(const change_text& t, event_action a, std::string_view subscription) {
    const std::string_view action = to_string(a);
    std::string out;
    out.reserve(t.stream.size() + t.pk.size() + t.data.size() + action.size() + subscription.size() + 96);
    out += R"({"stream":)";
    out += t.stream;
    out += R"(,"payload":{"action":")";
    out += action;
    out += R"(","pk":)";
    out += t.pk;
    out += R"(,"data":)";
    out += t.data;
    out += R"(,"seq":)";
    append_int(out, t.seq);
    out += R"(,"subscription":")";
    out += subscription;  // "s-<n>": nothing to escape
    out += R"("}})";
    return out;
}

std::string sse_event(const change_text& t, event_action a) {
    const std::string_view action = to_string(a);
    std::string out;
    out.reserve(t.data.size() + action.size() + 48);
    out += "id: ";
    append_int(out, t.seq);
    out += "\nevent: ";
    out += action;
    out += "\ndata: ";
    out += t.data;
    out += "\n\n";
    return out;
}

std::string websocket_observe(std::string_view stream, std::string_view observer, std::int64_t seq,
                              const json::object& data) {
    std::string body = to_json_text(data);
    std::string out;
    out.reserve(stream.size() + observer.size() + body.size() + 96);
    out += R"({"stream":)";
    out += stream;
    out += R"(,"payload":{"action":"observe","observer":")";
    out += observer;  // "o-<n>": nothing to escape
    out += R"(","seq":)";
    append_int(out, seq);
    out += R"(,"data":)";
    out += body;
    out += "}}";
    return out;
}

}  // namespace livebase::realtime_detail
