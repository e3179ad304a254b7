#pragma once
/// JSON helpers for assertions, shared by every suite: read a value as an object or a string
/// without throwing (a wrong shape reads as empty, and the assertion on it then fails), build
/// realtime.md requests, print a frame that may be missing.
#include <livebase/core/json.hpp>

#include <gtest/gtest.h>

#include <optional>
#include <string>
#include <string_view>
#include <utility>

namespace livebase::test {

/// The value as an object; an empty object when it is not one.
inline json::object obj(const json::value& v) { return v.is_object() ? v.get_object() : json::object{}; }

/// The value as a string; "" when it is not one.
inline std::string str(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : ""; }

/// JSON text that must be an object (a failed expectation otherwise; then an empty object).
inline json::object parse_obj(std::string_view text) {
    auto v = parse_json(text);
    EXPECT_TRUE(v && v->is_object()) << text;
    return v && v->is_object() ? v->as_object() : json::object{};
}

/// A realtime.md request payload: `more` with "action" set.
inline json::object req(std::string action, json::object more = {}) {
    more["action"] = std::move(action);
    return more;
}

/// A frame for a failure message ("no reply" when there is none).
inline std::string dump(const std::optional<json::value>& f) { return f ? json::serialize(*f) : "no reply"; }

}  // namespace livebase::test
