#pragma once
/// Wall-clock time as milliseconds since the Unix epoch, and RFC 3339 formatting.
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace livebase {

/// Milliseconds since the epoch (system clock). Thread-safe.
std::int64_t now_ms() noexcept;

/// "2026-11-24T06:37:21.123Z" (UTC, milliseconds).
std::string format_timestamp(std::int64_t ms);

/// Parses RFC 3339 ("2026-11-24T06:37:21Z", "...21.5+02:00", "2026-11-24" = midnight UTC).
/// Returns milliseconds since the epoch, or nullopt when malformed or out of range.
std::optional<std::int64_t> parse_timestamp(std::string_view s) noexcept;

}  // namespace livebase
