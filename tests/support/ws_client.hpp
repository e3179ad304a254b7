#pragma once
/// The WebSocket side of the loopback test support: the public test client
/// (<livebase/testing/ws_client.hpp>, what users get for their own tests) plus small helpers
/// for reading realtime.md frames in assertions.
#include <chrono>
#include <livebase/testing/ws_client.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace livebase::testing {

/// payload.response_status of a reply, 0 when absent (no reply, or an event).
inline int status_of(const std::optional<json::value>& frame) {
    if (!frame) return 0;
    const auto& s = payload_of(*frame, "response_status");
    return s.is_int64() ? static_cast<int>(s.get_int64()) : 0;
}

/// payload.data (null when absent).
inline const json::value& data_of(const json::value& frame) { return payload_of(frame, "data"); }

/// payload[key] as a string, "" when absent or not a string.
inline std::string payload_string(const json::value& frame, std::string_view key) {
    const auto& v = payload_of(frame, key);
    return v.is_string() ? std::string(v.get_string()) : std::string();
}

/// payload[key] as an integer, -1 when absent.
inline std::int64_t payload_int(const json::value& frame, std::string_view key) {
    const auto& v = payload_of(frame, key);
    return v.is_int64() ? v.get_int64()
                        : (v.is_uint64() ? static_cast<std::int64_t>(v.get_uint64()) : -1);
}

/// A subscription event (create/update/delete with a subscription tag), optionally of one
/// subscription.
inline bool is_event(const json::value& frame, std::string_view subscription = {}) {
    if (!payload_of(frame, "response_status").is_null()) return false;
    auto sub = payload_string(frame, "subscription");
    return !sub.empty() && (subscription.empty() || sub == subscription);
}

/// A live-query diff frame, optionally of one observer.
inline bool is_diff(const json::value& frame, std::string_view observer = {}) {
    if (payload_string(frame, "action") != "observe") return false;
    auto o = payload_string(frame, "observer");
    return !o.empty() && (observer.empty() || o == observer);
}

/// A string field of a JSON object value, "" when absent.
inline std::string field(const json::value& obj, std::string_view key) {
    return obj.is_object() ? std::string(get_string(obj.get_object(), key)) : std::string();
}

}  // namespace livebase::testing
