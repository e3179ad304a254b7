#include <livebase/schema/validate.hpp>

#include <livebase/core/clock.hpp>

#include "coerce.hpp"

#include <charconv>
#include <cmath>
#include <limits>
#include <utility>

namespace livebase {
namespace schema_detail {
namespace {

/// Same bound as parse_json's default: values deeper than a body can be are refused, so the
/// recursive merge below and the store's serializers see bounded nesting.
constexpr std::size_t k_max_json_depth = 64;

/// Even the polynomial executor (see pattern.cpp) searches unanchored patterns in time
/// quadratic in the input, so only bounded values are matched; longer ones are refused.
constexpr std::size_t k_max_pattern_input = 4096;

/// Doubles are taken as integers only up to 2^53: beyond it a double is usually a rounded
/// out-of-range literal (e.g. -9223372036854775809 parses as -2^63), not what the client meant.
constexpr double k_two_53 = 9007199254740992.0;

bool too_deep(const json::value& root) {
    std::vector<std::pair<const json::value*, std::size_t>> stack{{&root, 1}};
    while (!stack.empty()) {
        auto [v, depth] = stack.back();
        stack.pop_back();
        if (depth > k_max_json_depth) return true;
        if (v->is_object()) {
            for (const auto& kv : v->get_object()) stack.emplace_back(&kv.value(), depth + 1);
        } else if (v->is_array()) {
            for (const auto& e : v->get_array()) stack.emplace_back(&e, depth + 1);
        }
    }
    return false;
}

std::optional<json::value> coerce_integer(const json::value& v, integer_policy p) {
    if (v.is_int64()) return v;
    if (v.is_uint64()) {
        if (v.get_uint64() > static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max())) {
            return std::nullopt;
        }
        return json::value(static_cast<std::int64_t>(v.get_uint64()));
    }
    if (v.is_double() && p == integer_policy::lenient) {
        double d = v.get_double();
        if (d >= -k_two_53 && d <= k_two_53 && std::trunc(d) == d) {
            return json::value(static_cast<std::int64_t>(d));
        }
    }
    return std::nullopt;
}

std::optional<json::value> coerce_number(const json::value& v) {
    if (v.is_int64()) return json::value(static_cast<double>(v.get_int64()));
    if (v.is_uint64()) return json::value(static_cast<double>(v.get_uint64()));
    if (v.is_double() && std::isfinite(v.get_double())) return v;
    return std::nullopt;
}

std::optional<json::value> coerce_string(const json::value& v, std::string& error) {
    if (!v.is_string()) {
        error = "Must be a string.";
        return std::nullopt;
    }
    const auto& s = v.get_string();
    if (!valid_utf8({s.data(), s.size()})) {
        error = "Must be valid UTF-8.";
        return std::nullopt;
    }
    return v;
}

std::optional<json::value> coerce_datetime(const json::value& v) {
    if (!v.is_string()) return std::nullopt;
    const auto& s = v.get_string();
    auto ms = parse_timestamp({s.data(), s.size()});
    if (!ms) return std::nullopt;
    return json::value(format_timestamp(*ms));
}

std::optional<json::value> fail(std::string& error, const char* message) {
    error = message;
    return std::nullopt;
}

}  // namespace

std::optional<json::value> coerce_value(field_type t, const json::value& v, integer_policy p,
                                        std::string& error) {
    switch (t) {
        case field_type::integer:
            if (auto r = coerce_integer(v, p)) return r;
            return fail(error, "Must be an integer.");
        case field_type::number:
            if (auto r = coerce_number(v)) return r;
            return fail(error, "Must be a number.");
        case field_type::boolean:
            if (v.is_bool()) return v;
            return fail(error, "Must be a boolean.");
        case field_type::datetime:
            if (auto r = coerce_datetime(v)) return r;
            return fail(error, "Must be a valid RFC 3339 datetime.");
        case field_type::json:
            if (too_deep(v)) return fail(error, "Nesting is deeper than 64 levels.");
            return v;
        case field_type::ref: {
            auto r = coerce_string(v, error);
            if (r && r->get_string().empty()) return fail(error, "This field may not be blank.");
            return r;
        }
        case field_type::string:
        case field_type::text:
            return coerce_string(v, error);
    }
    return fail(error, "Unsupported field type.");
}

std::optional<std::int64_t> parse_int64(std::string_view s) noexcept {
    // from_chars stops at the first non-digit; only a full match counts. A leading '+' or
    // space is refused so "1 " and "+1" do not pass as integers.
    if (s.empty() || (s[0] != '-' && (s[0] < '0' || s[0] > '9'))) return std::nullopt;
    std::int64_t v = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec != std::errc() || ptr != s.data() + s.size()) return std::nullopt;
    return v;
}

std::size_t utf8_length(std::string_view s) noexcept {
    std::size_t n = 0;
    for (char ch : s) n += (static_cast<unsigned char>(ch) & 0xC0) != 0x80;
    return n;
}

std::string format_number(double d) {
    if (std::isfinite(d) && std::trunc(d) == d && std::fabs(d) < 1e15) {
        return std::to_string(static_cast<long long>(d));
    }
    char buf[32];
    auto [ptr, ec] = std::to_chars(buf, buf + sizeof buf, d);
    return ec == std::errc() ? std::string(buf, ptr) : std::string("?");
}

std::string display_value(const json::value& v) {
    if (v.is_string()) return std::string(v.get_string());
    return to_json_text(v);
}

}  // namespace schema_detail

namespace {

using namespace schema_detail;

/// Unknown-field errors are capped so a body of many tiny keys cannot amplify into a much
/// larger error response.
constexpr std::size_t k_max_unknown_reported = 100;

/// -1, 0, 1 for value vs bound. Integer bounds are integral doubles within int64 (finalize()
/// checks), so integers compare exactly.
int compare_to_bound(const json::value& v, double bound) {
    if (v.is_int64()) {
        auto b = static_cast<std::int64_t>(bound);
        return v.get_int64() < b ? -1 : (v.get_int64() > b ? 1 : 0);
    }
    double d = v.get_double();
    return d < bound ? -1 : (d > bound ? 1 : 0);
}

void check_range(const field_def& f, const json::value& v, std::vector<std::string>& errors) {
    if (f.min && compare_to_bound(v, *f.min) < 0) {
        errors.push_back("Ensure this value is greater than or equal to " + format_number(*f.min) +
                         ".");
    }
    if (f.max && compare_to_bound(v, *f.max) > 0) {
        errors.push_back("Ensure this value is less than or equal to " + format_number(*f.max) +
                         ".");
    }
}

void check_pattern(const field_def& f, std::string_view s, std::vector<std::string>& errors) {
    if (s.size() > k_max_pattern_input) {
        errors.push_back("Ensure this field has no more than " +
                         std::to_string(k_max_pattern_input) +
                         " bytes (the limit for pattern checks).");
        return;
    }
    try {
        if (!std::regex_search(s.begin(), s.end(), *f.pattern_re)) {
            errors.push_back("This value does not match the required pattern.");
        }
    } catch (const std::regex_error&) {
        // error_complexity / error_stack: the pattern is too costly for this input.
        errors.push_back("This value could not be checked against the required pattern.");
    }
}

void check_text(const field_def& f, const json::value& v, std::vector<std::string>& errors) {
    const auto& js = v.get_string();
    std::string_view s{js.data(), js.size()};
    std::size_t len = utf8_length(s);
    if (f.min_length && len < *f.min_length) {
        errors.push_back("Ensure this field has at least " + std::to_string(*f.min_length) +
                         " characters.");
    }
    if (f.max_length && len > *f.max_length) {
        errors.push_back("Ensure this field has no more than " + std::to_string(*f.max_length) +
                         " characters.");
    }
    if (f.pattern_re) check_pattern(f, s, errors);
}

bool is_choice(const field_def& f, const json::value& v) {
    for (const auto& c : f.choices) {
        if (c == v) return true;
    }
    return false;
}

/// RFC 7396 applied to one json field's value.
json::value merge_patch(const json::value& target, const json::value& patch) {
    if (!patch.is_object()) return patch;
    json::object out = target.is_object() ? target.get_object() : json::object{};
    for (const auto& [key, pv] : patch.get_object()) {
        if (pv.is_null()) {
            out.erase(key);
        } else {
            auto it = out.find(key);
            out[key] = merge_patch(it == out.end() ? json::value() : it->value(), pv);
        }
    }
    return out;
}

/// The body keys that carry client input; reports unknown ones.
json::object accepted_input(const collection_def& c, const json::object& body,
                            field_errors& errors) {
    json::object input;
    std::size_t unknown = 0;
    for (const auto& [key, value] : body) {
        if (is_managed_field(key)) continue;
        const field_def* f = c.find_field(key);
        if (f == nullptr) {
            if (unknown++ < k_max_unknown_reported) errors[std::string(key)] = {"Unknown field."};
            continue;
        }
        if (!f->read_only) input[key] = value;
    }
    return input;
}

/// Existing declared, client-writable values with the merge patch applied on top.
json::object patched_input(const collection_def& c, const json::object& input,
                           const json::object& existing, field_errors& errors) {
    json::object out;
    for (const auto& f : c.fields) {
        if (f.read_only) continue;
        if (auto it = existing.find(f.name); it != existing.end()) out[f.name] = it->value();
    }
    for (const auto& [key, pv] : input) {
        const field_def* f = c.find_field(key);
        auto it = out.find(key);
        bool merge = f->type == field_type::json && pv.is_object() && it != out.end();
        if (merge && too_deep(pv)) {
            errors[std::string(key)] = {"Nesting is deeper than 64 levels."};
            continue;
        }
        out[key] = merge ? merge_patch(it->value(), pv) : pv;
    }
    return out;
}

json::value default_or_null(const field_def& f) {
    return f.default_value ? *f.default_value : json::value();
}

json::value read_only_value(const field_def& f, write_mode mode, const json::object* existing) {
    if (mode != write_mode::create && existing != nullptr) {
        if (auto it = existing->find(f.name); it != existing->end()) return it->value();
    }
    return default_or_null(f);
}

}  // namespace

std::optional<json::value> validate_field_value(const field_def& f, const json::value& v,
                                                std::vector<std::string>& errors) {
    if (v.is_null()) {
        if (!f.required) return json::value();
        errors.emplace_back("This field may not be null.");
        return std::nullopt;
    }
    std::string error;
    auto out = coerce_value(f.type, v, integer_policy::lenient, error);
    if (!out) {
        errors.push_back(std::move(error));
        return std::nullopt;
    }
    if (!f.choices.empty() && !is_choice(f, *out)) {
        errors.push_back("\"" + display_value(*out) + "\" is not a valid choice.");
        return std::nullopt;
    }
    std::size_t before = errors.size();
    if (f.type == field_type::integer || f.type == field_type::number) check_range(f, *out, errors);
    if (f.type == field_type::string || f.type == field_type::text) check_text(f, *out, errors);
    if (errors.size() != before) return std::nullopt;
    return out;
}

result<json::object> validate_write(const collection_def& c, const json::object& body,
                                    write_mode mode, const json::object* existing) {
    field_errors errors;
    json::object input = accepted_input(c, body, errors);
    if (mode == write_mode::patch && existing != nullptr) {
        input = patched_input(c, input, *existing, errors);
    }
    json::object out;
    for (const auto& f : c.fields) {
        if (f.read_only) {
            out[f.name] = read_only_value(f, mode, existing);
            continue;
        }
        auto it = input.find(f.name);
        if (it == input.end()) {
            if (f.required && !f.default_value) {
                errors[f.name].emplace_back("This field is required.");
            }
            out[f.name] = default_or_null(f);
            continue;
        }
        std::vector<std::string> messages;
        if (auto v = validate_field_value(f, it->value(), messages)) {
            out[f.name] = std::move(*v);
        } else if (!errors.count(f.name)) {
            errors[f.name] = std::move(messages);
        }
    }
    if (!errors.empty()) return problem::validation(std::move(errors));
    return out;
}

json::object present_record(const collection_def& c, const json::object& stored,
                            const std::vector<std::string>& fields) {
    auto wanted = [&](std::string_view name) {
        if (name == "id" || fields.empty()) return true;
        for (const auto& f : fields) {
            if (f == name) return true;
        }
        return false;
    };
    json::object out;
    if (auto it = stored.find("id"); it != stored.end()) out["id"] = it->value();
    for (const auto& f : c.fields) {
        if (f.write_only || !wanted(f.name)) continue;
        auto it = stored.find(f.name);
        out[f.name] = it == stored.end() ? json::value() : it->value();
    }
    for (std::string_view name : {"created", "updated", "version"}) {
        if (!wanted(name)) continue;
        if (auto it = stored.find(name); it != stored.end()) out[name] = it->value();
    }
    if (c.owned && wanted("owner")) {
        auto it = stored.find("owner");
        out["owner"] = it == stored.end() ? json::value() : it->value();
    }
    return out;
}

}  // namespace livebase
