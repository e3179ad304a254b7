#pragma once
// The bytes the hub hands to sinks (realtime.md "Events", "SSE", live queries). Each change's
// JSON is serialized once (change_text); frames are concatenations around it.
#include <livebase/core/json.hpp>
#include <livebase/realtime/event_filter.hpp>

#include <cstdint>
#include <string>
#include <string_view>

namespace livebase::realtime_detail {

/// The serialized parts every frame of one change shares.
struct change_text {
    std::string stream;  ///< the collection name as a JSON string, quotes included
    std::string pk;      ///< the record id as a JSON string, quotes included
    std::string data;    ///< the presented record, serialized (one line: JSON has no raw newline)
    std::int64_t seq = 0;
};

/// `name` as a JSON string literal (quotes and escapes).
std::string json_string(std::string_view name);

/// {"stream":S,"payload":{"action":A,"pk":P,"data":D,"seq":N,"subscription":"s-1"}}
std::string websocket_event(const change_text& t, event_action a, std::string_view subscription);

/// "id: N\nevent: A\ndata: D\n\n"
std::string sse_event(const change_text& t, event_action a);

/// {"stream":S,"payload":{"action":"observe","observer":"o-1","seq":N,"data":{...}}}
std::string websocket_observe(std::string_view stream, std::string_view observer, std::int64_t seq,
                              const json::object& data);

}  // namespace livebase::realtime_detail
