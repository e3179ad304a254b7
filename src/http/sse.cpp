#include "http/sse.hpp"
#include <livebase/core/text.hpp>

#include <cctype>
#include <cstdio>

namespace livebase::http_detail {

namespace {

}  // namespace

bool accepts_event_stream(std::string_view accept) noexcept {
    while (!accept.empty()) {
        auto comma = accept.find(',');
        auto item = accept.substr(0, comma);
        accept = comma == std::string_view::npos ? std::string_view() : accept.substr(comma + 1);
        auto type = trim_ows(item.substr(0, item.find(';')));
        if (iequals(type, "text/event-stream")) return true;
    }
    return false;
}

bool is_task_stream_request(std::string_view method, const operation& op) noexcept {
    return method == "GET" && op.collection == "tasks" && op.kind == op_kind::retrieve &&
           !op.id.empty() && op.subresource.empty();
}

std::string format_sse_event(std::uint64_t id, std::string_view event, std::string_view data) {
    std::string out = "id: " + std::to_string(id) + "\nevent: ";
    out += event;
    out += '\n';
    // A newline inside data would end the field: each line gets its own `data:` field.
    for (;;) {
        auto nl = data.find('\n');
        out += "data: ";
        out += data.substr(0, nl);
        out += '\n';
        if (nl == std::string_view::npos) break;
        data.remove_prefix(nl + 1);
    }
    out += '\n';
    return out;
}

std::string format_sse_comment(std::string_view text) {
    std::string out = ": ";
    out += text;
    out += "\n\n";
    return out;
}

bool task_snapshot_finished(const json::value& task) noexcept {
    if (!task.is_object()) return false;
    auto it = task.get_object().find("state");
    if (it == task.get_object().end() || !it->value().is_string()) return false;
    auto s = it->value().get_string();
    return s == "succeeded" || s == "failed" || s == "cancelled";
}

std::string frame_chunk(std::string_view data) {
    if (data.empty()) return {};
    char size[32];
    std::snprintf(size, sizeof size, "%zx\r\n", data.size());
    std::string out = size;
    out += data;
    out += "\r\n";
    return out;
}

}  // namespace livebase::http_detail
