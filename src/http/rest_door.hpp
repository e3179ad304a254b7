#pragma once
/// The REST door's policy: request -> operation fields, outcome -> response parts. No I/O, no
/// Beast: the session copies views out of its message and writes what render_* return.
#include <cstdint>
#include <livebase/ops/operation.hpp>
#include <livebase/core/result.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace livebase::http_detail {

/// A request-target split into its still-encoded path and query.
struct target_parts {
    std::string path;   ///< percent-encoded, as sent ("/api/cars/a%20b")
    std::string query;  ///< percent-encoded, without '?'; "" when absent
};

/// Accepts origin-form ("/api/cars?x=1") and absolute-form ("http://h/api/cars") targets.
/// Anything else (including "*"), and a path segment that is not UTF-8 once percent-decoded,
/// -> 400 problem.
result<target_parts> split_target(std::string_view target);

/// Decodes a query string into ordered pairs: percent-decoding, '+' as space. "a" (no '=')
/// yields {"a", ""}; empty pieces ("a=1&&b=2") are skipped. Invalid escapes, and a name or
/// value that is not UTF-8 once decoded -> 400 problem (never naming an invalid name).
result<query_params> decode_query(std::string_view encoded_query);

/// The parts of a request the door reads, as views into the session's message.
struct request_view {
    std::string_view method;
    std::string_view content_type;  ///< "" when absent
    std::optional<std::string_view> if_match;
    std::optional<std::string_view> prefer;  ///< the Prefer header (RFC 7240)
    std::optional<std::string_view> idempotency_key;
    std::string_view body;
};

/// Prefer (RFC 7240): `respond-async` and `wait=N` (any order, comma or semicolon separated,
/// case-insensitive names; unknown preferences are ignored as the RFC says). wait is clamped
/// to 0..60 seconds; a malformed wait value is ignored.
void parse_prefer(std::string_view header, bool& respond_async, std::optional<int>& wait);

/// Fills op.input, op.params and op.if_match. REQUIRES: op's kind/collection/id/action/method
/// come from the router. Body rules: read only for POST, PUT and PATCH with a non-empty body;
/// its Content-Type must be application/json (or application/merge-patch+json for PATCH), with
/// any parameters but a charset other than UTF-8 -> 415; invalid UTF-8, malformed JSON or an
/// object repeating a key -> 400 malformed-json problem; an Idempotency-Key that is not 1 to
/// 255 printable ASCII characters -> 400; create/replace/patch need a JSON object (an empty body included) -> 400.
result<void> decode_request(operation& op, const request_view& req, std::string_view encoded_query);

/// If-Match: `"v{n}"` -> n; `*` -> nullopt (any existing version). Anything else, including
/// weak tags and lists, -> 400: a client that sends a tag we never issued has a bug worth
/// reporting, and 412 would suggest a concurrent change that did not happen.
result<std::optional<std::int64_t>> parse_if_match(std::string_view value);

/// `"v{n}"`
std::string make_etag(std::int64_t version);

/// If-None-Match with weak comparison (RFC 9110 13.1.2): true for `*` or when any listed tag,
/// with or without W/, equals `"v{version}"`.
bool if_none_match_hits(std::string_view header, std::int64_t version) noexcept;

/// A response minus its framing headers (Server, X-Request-Id, Content-Length, Connection),
/// which the session adds.
struct response_parts {
    int status = 200;
    std::string content_type;  ///< "" when there is no body
    std::string body;
    std::vector<std::pair<std::string, std::string>> headers;
};

/// Status, body (application/json or application/problem+json), Location, ETag, extra headers;
/// 401 adds `WWW-Authenticate: Bearer` unless present; 204 and 304 never carry a body.
/// `if_none_match` (only passed for GET of a detail): a 200 whose version hits -> 304 with ETag.
response_parts render_outcome(const outcome& o, std::optional<std::string_view> if_none_match = {});

/// A problem+json response.
response_parts render_problem(const problem& p);

/// A JSON response (application/json).
response_parts render_json(int status, const json::value& body);

/// 414 and 431, which core's problem has no factory for.
problem uri_too_long();
problem header_fields_too_large();

}  // namespace livebase::http_detail
