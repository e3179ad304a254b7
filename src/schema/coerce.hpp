#pragma once
/// Type coercion shared by validation (bodies) and query parsing (filters). Private to schema.
#include <livebase/core/json.hpp>
#include <livebase/schema/collection.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace livebase::schema_detail {

/// How strictly integers are taken: bodies accept integral doubles (JS clients send 3.0),
/// filters want real JSON integers so a typo'd 3.5 is not silently truncated.
enum class integer_policy { lenient, strict };

/// Converts a non-null JSON value to the stored representation of type `t` (int64, double,
/// bool, normalized datetime string, string, any for json). On failure returns nullopt and
/// sets `error` to the client message. Does not check constraints (min, choices, ...).
std::optional<json::value> coerce_value(field_type t, const json::value& v, integer_policy p,
                                        std::string& error);

/// Decimal integer with an optional leading '-', no spaces, within int64.
std::optional<std::int64_t> parse_int64(std::string_view s) noexcept;

/// Counts code points of valid UTF-8.
std::size_t utf8_length(std::string_view s) noexcept;

/// "1886" for integral values, shortest round-trip form otherwise (for messages).
std::string format_number(double d);

/// Human form of a value in messages: strings raw, everything else as JSON.
std::string display_value(const json::value& v);

}  // namespace livebase::schema_detail
