#pragma once
/// Server-Sent Events policy (realtime.md "SSE"): which requests stream, the event format, and
/// when a task stream ends. No I/O, no Beast: the session writes what these return.
#include <cstdint>
#include <livebase/ops/operation.hpp>
#include <livebase/core/json.hpp>
#include <string>
#include <string_view>

namespace livebase::http_detail {

/// True when an Accept header value lists text/event-stream (media types compared without case;
/// parameters and q-values are ignored, so `text/event-stream;q=0` still counts).
bool accepts_event_stream(std::string_view accept) noexcept;

/// True for the operations the task stream serves: GET {base}/tasks/{id} (no subresource).
bool is_task_stream_request(std::string_view method, const operation& op) noexcept;

/// One event: `id: <id>`, `event: <event>`, one `data:` line per line of `data`, blank line.
std::string format_sse_event(std::uint64_t id, std::string_view event, std::string_view data);

/// A comment line (ignored by clients), e.g. ": keep-alive\n\n".
std::string format_sse_comment(std::string_view text);

/// True when a presented task's state is succeeded, failed or cancelled.
bool task_snapshot_finished(const json::value& task) noexcept;

/// The HTTP/1.1 chunk framing of `data` ("<hex size>\r\n<data>\r\n"); "" for empty data.
std::string frame_chunk(std::string_view data);

}  // namespace livebase::http_detail
