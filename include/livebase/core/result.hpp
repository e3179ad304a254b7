#pragma once
/// `result<T>`: a value or a `problem`, for fallible calls on the data path (no exceptions there).
#include <livebase/core/problem.hpp>

#include <cassert>
#include <utility>
#include <variant>

namespace livebase {

/// Holds either a T or a problem. Accessing the wrong alternative is a bug (asserted).
template <class T>
class [[nodiscard]] result {
public:
    result(T v) : v_(std::in_place_index<0>, std::move(v)) {}
    result(problem p) : v_(std::in_place_index<1>, std::move(p)) {}

    bool has_value() const noexcept { return v_.index() == 0; }
    explicit operator bool() const noexcept { return has_value(); }

    T& value() & { return std::get<0>(v_); }
    const T& value() const& { return std::get<0>(v_); }
    T&& value() && { return std::get<0>(std::move(v_)); }
    T* operator->() { return &value(); }
    const T* operator->() const { return &value(); }
    T& operator*() & { return value(); }
    const T& operator*() const& { return value(); }

    problem& error() & { return std::get<1>(v_); }
    const problem& error() const& { return std::get<1>(v_); }
    problem&& error() && { return std::get<1>(std::move(v_)); }

private:
    std::variant<T, problem> v_;
};

/// Success without a value, or a problem.
template <>
class [[nodiscard]] result<void> {
public:
    result() = default;
    result(problem p) : p_(std::move(p)), ok_(false) {}
    bool has_value() const noexcept { return ok_; }
    explicit operator bool() const noexcept { return ok_; }
    problem& error() & { return p_; }
    const problem& error() const& { return p_; }
    problem&& error() && { return std::move(p_); }

private:
    problem p_;
    bool ok_ = true;
};

}  // namespace livebase
