#pragma once
/// Parsing of the config file's durations ("60s") and sizes ("1MiB").
#include <livebase/core/result.hpp>

#include <chrono>
#include <cstdint>
#include <string_view>

namespace livebase {

/// "500ms", "60s", "10m", "24h", "7d", or a bare number of seconds ("30").
/// Returns a 400-style problem naming the text when malformed or negative.
result<std::chrono::milliseconds> parse_duration(std::string_view text);

/// "1MiB", "4 MiB", "512KiB", "1GiB", "10MB" (10^6), "100KB", "123B", or a bare byte count.
result<std::uint64_t> parse_size(std::string_view text);

/// "120/min", "10/s", "2000/h", "50000/day": tokens per period. `per` in milliseconds.
/// "120/min": `count` events per `per`. count 0 means unlimited (parsed from "unlimited").
struct rate {
    std::uint64_t count = 0;
    std::chrono::milliseconds per{1000};
};
result<rate> parse_rate(std::string_view text);

}  // namespace livebase
