#pragma once
/// JSON values are Boost.JSON throughout livebase; this header names them once.
#include <boost/json/array.hpp>
#include <boost/json/object.hpp>
#include <boost/json/parse.hpp>
#include <boost/json/serialize.hpp>
#include <boost/json/string.hpp>
#include <boost/json/value.hpp>

#include <livebase/core/text.hpp>

#include <optional>
#include <string>
#include <string_view>

namespace livebase {
namespace json = boost::json;

/// Parses `text` as one JSON value. Returns nullopt for malformed input, trailing garbage or
/// nesting deeper than `max_depth`. Never throws.
std::optional<json::value> parse_json(std::string_view text, std::size_t max_depth = 64) noexcept;

/// Parses JSON a client sent (a request body, a WebSocket frame): as parse_json, and nullopt
/// for an object that repeats a key too (RFC 8259 leaves its meaning open, and two parsers that
/// disagree on which one wins are a way around validation). When that is why, `*duplicate`
/// (if given) gets the key. Never throws.
std::optional<json::value> parse_json_input(std::string_view text, std::size_t max_depth = 64,
                                            std::optional<std::string>* duplicate = nullptr) noexcept;

/// The string content of `v[key]` if it is a string, else an empty view.
std::string_view get_string(const json::object& o, std::string_view key) noexcept;

/// `v[key]` as int64 if it is an integer (signed or unsigned that fits), else nullopt.
std::optional<std::int64_t> get_int(const json::object& o, std::string_view key) noexcept;

/// The JSON text of `v` as every client, event, log line and stored document gets it: what
/// json::serialize writes, except numbers. A double is written in its shortest form that parses
/// back to the same double (43.333333333333336, 0.9, 1e+21), with ".0" when that form would
/// read back as an integer (2.0, -0.0), and null when it is not finite (JSON has no NaN or
/// Infinity). Strings are escaped as json::serialize escapes them, except that a byte that is
/// not part of well-formed UTF-8 is written as \ufffd: the text is always valid JSON (inputs
/// are refused before that can happen; this is the last line).
std::string to_json_text(const json::value& v);

/// Appends to_json_text(v) to `out`.
void append_json_text(std::string& out, const json::value& v);

/// A double as to_json_text writes it (shortest round-trip form; "null" when not finite).
std::string json_number_text(double d);
}  // namespace livebase
