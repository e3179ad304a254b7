#pragma once
/// Typed reads of a JSON body for C++ handlers: each read answers the 400 problem a client
/// expects (the field named, what was wrong) instead of leaving handlers to pick JSON apart.
///
///     auto color = call.input().require<std::string>("color");
///     if (!color) return std::move(color).error();  // 400 {"color": ["This field is required."]}
#include <livebase/core/json.hpp>
#include <livebase/core/problem.hpp>
#include <livebase/core/result.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <type_traits>

namespace livebase {

class input_reader {
public:
    /// Reads `body` (it must outlive the reader).
    explicit input_reader(const json::value& body) noexcept : body_(body) {}

    /// The member `name` as a T: std::string, bool, std::int64_t, int, double, json::object,
    /// json::array or json::value. 400 when the body is not an object, the member is missing
    /// or null, or it is not a T (an integer is not a string; 2.5 is not an integer; an
    /// integer is a double).
    template <class T>
    result<T> require(std::string_view name) const {
        auto v = find(name);
        if (!v) return std::move(v).error();
        if (!*v || (*v)->is_null()) return missing(name);
        return as<T>(name, **v);
    }

    /// The member `name` as a T, or nullopt when it is missing or null. 400 when the body is not
    /// an object or the member is not a T.
    template <class T>
    result<std::optional<T>> optional(std::string_view name) const {
        auto v = find(name);
        if (!v) return std::move(v).error();
        if (!*v || (*v)->is_null()) return std::optional<T>{};
        auto t = as<T>(name, **v);
        if (!t) return std::move(t).error();
        return std::optional<T>(std::move(*t));
    }

    /// The whole body.
    const json::value& body() const noexcept { return body_; }

private:
    result<const json::value*> find(std::string_view name) const;
    static problem missing(std::string_view name);
    static problem wrong_type(std::string_view name, std::string_view expected);

    template <class T>
    static result<T> as(std::string_view name, const json::value& v) {
        if constexpr (std::is_same_v<T, json::value>) {
            return v;
        } else if constexpr (std::is_same_v<T, std::string>) {
            if (!v.is_string()) return wrong_type(name, "a string");
            return std::string(v.get_string());
        } else if constexpr (std::is_same_v<T, bool>) {
            if (!v.is_bool()) return wrong_type(name, "a boolean");
            return v.get_bool();
        } else if constexpr (std::is_same_v<T, std::int64_t> || std::is_same_v<T, int>) {
            std::optional<std::int64_t> n;
            if (v.is_int64()) n = v.get_int64();
            else if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
                n = static_cast<std::int64_t>(v.get_uint64());
            if (!n) return wrong_type(name, "an integer");
            if constexpr (std::is_same_v<T, int>) {
                if (*n < INT32_MIN || *n > INT32_MAX) return wrong_type(name, "an integer that fits 32 bits");
                return static_cast<int>(*n);
            } else {
                return *n;
            }
        } else if constexpr (std::is_same_v<T, double>) {
            if (!v.is_number()) return wrong_type(name, "a number");
            return v.to_number<double>();
        } else if constexpr (std::is_same_v<T, json::object>) {
            if (!v.is_object()) return wrong_type(name, "an object");
            return v.get_object();
        } else if constexpr (std::is_same_v<T, json::array>) {
            if (!v.is_array()) return wrong_type(name, "an array");
            return v.get_array();
        } else {
            static_assert(sizeof(T) == 0,
                          "input_reader reads std::string, bool, std::int64_t, int, double, "
                          "json::object, json::array or json::value");
        }
    }

    const json::value& body_;
};

}  // namespace livebase
