#pragma once
#include <cstdint>
/// The WebSocket envelope (realtime.md "Envelope"): request frames in, reply and session frames
/// out. Policy only, no I/O: thread-safe (no shared state).
#include <livebase/ops/operation.hpp>
#include <livebase/core/json.hpp>
#include <livebase/core/problem.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace livebase::ws_detail {

/// One request frame: `{"stream": s, "payload": {"action", "pk", "data", "request_id"}}`.
struct ws_request {
    std::string stream;
    std::string action;
    json::value request_id;  ///< as sent (any JSON); null when absent
    json::value pk;          ///< as sent; null when absent (validated by plan_request)
    json::value data;        ///< as sent; null when absent
};

/// A decoded frame. For a bad frame `error` holds the 400 problem and `request` whatever could
/// be read (so the reply still echoes a request_id or an action the client did send).
struct decoded_frame {
    ws_request request;
    std::optional<problem> error;
};

/// Decodes one text frame. Bad frames (invalid UTF-8, not JSON, not an object, no string
/// `stream`, `payload` missing or not an object, no string `action`, an empty stream or
/// action) get `error` (400); nothing throws. JSON nesting is limited like REST bodies.
decoded_frame decode_frame(std::string_view text);

/// Whether a peer may send close code `code` (RFC 6455 section 7.4): 1000-1003, 1007-1013,
/// 3000-4999, or 0 (a close frame without a code). Anything else (1004-1006, 1014-1015, under 1000,
/// 1016-2999, 5000 and up) fails the connection with 1002.
bool valid_close_code(std::uint16_t code) noexcept;

/// The close frame (unmasked, server to client) that fails a connection: 1002, no reason.
inline constexpr std::string_view k_protocol_error_close{"\x88\x02\x03\xea", 4};

/// The stream that answers bad frames.
inline constexpr std::string_view k_error_stream = "error";

/// `{"stream": s, "payload": {"action": a, "request_id": r, "response_status": status,
/// "data": data, "errors": []}}`. `action` is null when the frame had none.
std::string encode_reply(std::string_view stream, const json::value& action,
                         const json::value& request_id, int status, const json::value& data);

/// The error reply for `p`: status p.status, data null, errors = problem_errors(p.to_json()).
std::string encode_error(std::string_view stream, const json::value& action,
                         const json::value& request_id, const problem& p);

/// The reply to a bad frame: on stream "error", echoing what decode_frame could read.
std::string encode_bad_frame(const decoded_frame& f);

/// Human-readable errors of a problem+json object: its detail (prefixed with the offending
/// parameter, "filter.model: Must be an integer.", when it names one) or else its title; a
/// validation problem gives its title and then one object of its field errors:
/// `["Invalid input", {"brand": ["This field is required."]}]`.
json::array problem_errors(const json::object& problem_json);

/// The reply for an outcome: data = body on success (null for 204), or errors from the
/// problem body (data null) when o.is_problem; a problem's "retry_after" member (seconds, set
/// on throttled requests) is copied into the payload.
std::string encode_outcome(std::string_view stream, const json::value& action,
                           const json::value& request_id, const outcome& o);

/// `{"stream": "session", "payload": {"action": "hello", "data": {"subscriber": id, "user":
/// user}}}`
std::string encode_hello(std::string_view subscriber, const json::value& user);

}  // namespace livebase::ws_detail
