#include <livebase/schema/query.hpp>

#include <livebase/core/clock.hpp>

#include "coerce.hpp"

#include <algorithm>
#include <array>
#include <charconv>
#include <cmath>
#include <set>

namespace livebase {
namespace {

using schema_detail::coerce_value;
using schema_detail::integer_policy;

// Bounds on client-controlled sizes: each term becomes SQL and per-event matching work.
constexpr std::size_t k_max_filters = 64;
constexpr std::size_t k_max_order_terms = 8;
constexpr std::size_t k_max_in_items = 100;
constexpr std::size_t k_max_projection = 256;
constexpr std::uint64_t k_max_offset = 1'000'000'000;

constexpr std::array<std::pair<std::string_view, lookup>, 14> k_lookups{{
    {"exact", lookup::exact},
    {"iexact", lookup::iexact},
    {"contains", lookup::contains},
    {"icontains", lookup::icontains},
    {"startswith", lookup::startswith},
    {"istartswith", lookup::istartswith},
    {"endswith", lookup::endswith},
    {"gt", lookup::gt},
    {"gte", lookup::gte},
    {"lt", lookup::lt},
    {"lte", lookup::lte},
    {"in", lookup::in},
    {"isnull", lookup::isnull},
    {"ne", lookup::ne},
}};

// ---------------------------------------------------------------- fields and lookups

/// The type a filter on `name` coerces to, or nullopt when clients may not filter on it.
/// ref and the id-like managed fields behave as strings.
std::optional<field_type> filter_type(const collection_def& c, std::string_view name) {
    if (name == "id" || (name == "owner" && c.owned)) return field_type::string;
    if (name == "created" || name == "updated") return field_type::datetime;
    if (name == "version") return field_type::integer;
    const field_def* f = c.find_field(name);
    if (f == nullptr || f->write_only) return std::nullopt;
    return f->type == field_type::ref ? field_type::string : f->type;
}

bool is_text_lookup(lookup op) noexcept {
    switch (op) {
        case lookup::iexact:
        case lookup::contains:
        case lookup::icontains:
        case lookup::startswith:
        case lookup::istartswith:
        case lookup::endswith:
            return true;
        default:
            return false;
    }
}

bool takes_text_lookups(field_type t) noexcept {
    return t == field_type::string || t == field_type::text || t == field_type::datetime;
}

std::string quoted(std::string_view s) { return "\"" + std::string(s) + "\""; }

struct resolved_key {
    std::string field;
    lookup op = lookup::exact;
    field_type type = field_type::string;
};

/// Splits `brand__icontains` at the last "__" when the suffix is a lookup name; field names
/// never contain "__" (finalize() refuses them), so the split is unambiguous.
result<resolved_key> resolve_key(const collection_def& c, std::string_view key,
                                 const std::string& param) {
    resolved_key out{std::string(key)};
    if (auto pos = key.rfind("__"); pos != std::string_view::npos) {
        std::string_view prefix = key.substr(0, pos), suffix = key.substr(pos + 2);
        if (auto op = lookup_from_string(suffix)) {
            out = {std::string(prefix), *op};
        } else if (!filter_type(c, key) && filter_type(c, prefix)) {
            return problem::bad_parameter(param, "Unknown lookup " + quoted(suffix) + ".");
        }
    }
    auto type = filter_type(c, out.field);
    if (!type) return problem::bad_parameter(param, "Unknown field " + quoted(out.field) + ".");
    out.type = *type;
    if (out.type == field_type::json && out.op != lookup::isnull) {
        return problem::bad_parameter(
            param, "The json field " + quoted(out.field) + " can only be filtered with isnull.");
    }
    if (is_text_lookup(out.op) && !takes_text_lookups(out.type)) {
        return problem::bad_parameter(param, "Lookup " + quoted(to_string(out.op)) +
                                                 " is not allowed on field " + quoted(out.field) +
                                                 ".");
    }
    return out;
}

/// Splits on ',' into at most `max` pieces; false when there are more.
bool split_bounded(std::string_view s, std::size_t max, std::vector<std::string_view>& out) {
    out.clear();
    while (true) {
        if (out.size() == max) return false;
        auto pos = s.find(',');
        out.push_back(s.substr(0, pos));
        if (pos == std::string_view::npos) return true;
        s.remove_prefix(pos + 1);
    }
}

// ---------------------------------------------------------------- values from query strings

std::optional<double> parse_double(std::string_view s) noexcept {
    double d = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), d);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || !std::isfinite(d)) {
        return std::nullopt;
    }
    return d;
}

std::optional<bool> parse_bool(std::string_view s) noexcept {
    if (s == "true" || s == "1") return true;
    if (s == "false" || s == "0") return false;
    return std::nullopt;
}

/// One query-string value typed for a field; sets `error` on failure.
std::optional<json::value> text_scalar(field_type t, std::string_view s, std::string& error) {
    switch (t) {
        case field_type::integer:
            if (auto v = schema_detail::parse_int64(s)) return json::value(*v);
            error = "Must be an integer.";
            return std::nullopt;
        case field_type::number:
            if (auto v = parse_double(s)) return json::value(*v);
            error = "Must be a number.";
            return std::nullopt;
        case field_type::boolean:
            if (auto v = parse_bool(s)) return json::value(*v);
            error = "Must be true or false.";
            return std::nullopt;
        case field_type::datetime:
            if (auto ms = parse_timestamp(s)) return json::value(format_timestamp(*ms));
            error = "Must be a valid RFC 3339 datetime.";
            return std::nullopt;
        default:
            if (valid_utf8(s)) return json::value(s);
            error = "Must be valid UTF-8.";
            return std::nullopt;
    }
}

result<json::value> text_value(const resolved_key& k, std::string_view s,
                               const std::string& param) {
    std::string error;
    if (k.op == lookup::isnull) {
        if (s == "true" || s == "false") return json::value(s == "true");
        return problem::bad_parameter(param, "Must be true or false.");
    }
    if (is_text_lookup(k.op)) {
        if (valid_utf8(s)) return json::value(s);
        return problem::bad_parameter(param, "Must be valid UTF-8.");
    }
    if (k.op != lookup::in) {
        if (auto v = text_scalar(k.type, s, error)) return std::move(*v);
        return problem::bad_parameter(param, error);
    }
    std::vector<std::string_view> items;
    if (s.empty()) return problem::bad_parameter(param, "Must be a non-empty comma-separated list.");
    if (!split_bounded(s, k_max_in_items, items)) {
        return problem::bad_parameter(param, "At most 100 values are allowed.");
    }
    json::array out;
    for (auto item : items) {
        auto v = text_scalar(k.type, item, error);
        if (!v) return problem::bad_parameter(param, quoted(item) + ": " + error);
        out.push_back(std::move(*v));
    }
    return json::value(std::move(out));
}

// ---------------------------------------------------------------- values from JSON

std::optional<json::value> json_scalar(field_type t, const json::value& v, std::string& error) {
    if (v.is_null()) {
        error = "May not be null; use the isnull lookup.";
        return std::nullopt;
    }
    return coerce_value(t, v, integer_policy::strict, error);
}

result<json::value> json_in_list(const resolved_key& k, const json::value& v,
                                 const std::string& param) {
    if (!v.is_array() || v.get_array().empty()) {
        return problem::bad_parameter(param, "Must be a non-empty array.");
    }
    if (v.get_array().size() > k_max_in_items) {
        return problem::bad_parameter(param, "At most 100 values are allowed.");
    }
    json::array out;
    std::string error;
    for (const auto& item : v.get_array()) {
        auto c = json_scalar(k.type, item, error);
        if (!c) return problem::bad_parameter(param, "Item " + to_json_text(item) + ": " + error);
        out.push_back(std::move(*c));
    }
    return json::value(std::move(out));
}

result<json::value> json_value(const resolved_key& k, const json::value& v,
                               const std::string& param) {
    std::string error;
    if (k.op == lookup::isnull) {
        if (v.is_bool()) return v;
        return problem::bad_parameter(param, "Must be a boolean.");
    }
    if (k.op == lookup::in) return json_in_list(k, v, param);
    // Text lookups match substrings of any text, so they take plain strings even on datetimes.
    field_type t = is_text_lookup(k.op) ? field_type::string : k.type;
    if (auto c = json_scalar(t, v, error)) return std::move(*c);
    return problem::bad_parameter(param, error);
}

// ---------------------------------------------------------------- ordering, fields, paging

result<std::vector<order_term>> parse_ordering_terms(const collection_def& c,
                                                     const std::vector<std::string_view>& terms) {
    const std::string param = "ordering";
    if (terms.size() > k_max_order_terms) {
        return problem::bad_parameter(param, "At most 8 ordering terms are allowed.");
    }
    std::vector<order_term> out;
    std::set<std::string_view> seen;
    for (auto term : terms) {
        bool desc = !term.empty() && term[0] == '-';
        std::string_view name = desc ? term.substr(1) : term;
        if (name.empty()) return problem::bad_parameter(param, "Empty ordering term.");
        auto type = filter_type(c, name);
        if (!type) return problem::bad_parameter(param, "Unknown field " + quoted(name) + ".");
        if (*type == field_type::json) {
            return problem::bad_parameter(param, "Cannot order by the json field " + quoted(name) + ".");
        }
        if (!seen.insert(name).second) {
            return problem::bad_parameter(param, "Field " + quoted(name) + " is ordered twice.");
        }
        out.push_back({std::string(name), desc});
    }
    return out;
}

result<std::vector<order_term>> parse_ordering_text(const collection_def& c, std::string_view s) {
    std::vector<std::string_view> terms;
    if (s.empty()) return std::vector<order_term>{};
    if (!split_bounded(s, k_max_order_terms + 1, terms)) terms.resize(k_max_order_terms + 1);
    return parse_ordering_terms(c, terms);
}

result<std::vector<order_term>> parse_ordering_json(const collection_def& c,
                                                    const json::value& v) {
    if (v.is_string()) return parse_ordering_text(c, v.get_string());
    if (!v.is_array()) {
        return problem::bad_parameter("ordering", "Must be a string or an array of strings.");
    }
    std::vector<std::string_view> terms;
    for (const auto& item : v.get_array()) {
        if (!item.is_string()) {
            return problem::bad_parameter("ordering", "Must be a string or an array of strings.");
        }
        if (terms.size() > k_max_order_terms) break;  // reported by parse_ordering_terms
        terms.push_back(item.get_string());
    }
    return parse_ordering_terms(c, terms);
}

bool projectable(const collection_def& c, std::string_view name) {
    return filter_type(c, name).has_value();
}

result<std::vector<std::string>> parse_fields_terms(const collection_def& c,
                                                    const std::vector<std::string_view>& terms) {
    std::vector<std::string> out;
    for (auto name : terms) {
        if (!projectable(c, name)) {
            return problem::bad_parameter("fields", "Unknown field " + quoted(name) + ".");
        }
        if (std::find(out.begin(), out.end(), name) == out.end()) out.emplace_back(name);
    }
    return out;
}

result<std::vector<std::string>> parse_fields_text(const collection_def& c, std::string_view s) {
    std::vector<std::string_view> terms;
    if (s.empty()) return std::vector<std::string>{};
    if (!split_bounded(s, k_max_projection, terms)) {
        return problem::bad_parameter("fields", "Too many fields.");
    }
    return parse_fields_terms(c, terms);
}

result<std::vector<std::string>> parse_fields_json(const collection_def& c,
                                                   const json::value& v) {
    if (v.is_string()) return parse_fields_text(c, v.get_string());
    if (!v.is_array()) return problem::bad_parameter("fields", "Must be a string or an array of strings.");
    if (v.get_array().size() > k_max_projection) return problem::bad_parameter("fields", "Too many fields.");
    std::vector<std::string_view> terms;
    for (const auto& item : v.get_array()) {
        if (!item.is_string()) {
            return problem::bad_parameter("fields", "Must be a string or an array of strings.");
        }
        terms.push_back(item.get_string());
    }
    return parse_fields_terms(c, terms);
}

/// A signed integer whose magnitude saturates, so "limit=99999999999999999999" is just large.
struct count_value {
    bool negative = false;
    std::uint64_t magnitude = 0;
};

std::optional<count_value> parse_count_text(std::string_view s) noexcept {
    count_value out;
    if (!s.empty() && s[0] == '-') {
        out.negative = true;
        s.remove_prefix(1);
    }
    if (s.empty()) return std::nullopt;
    for (char ch : s) {
        if (ch < '0' || ch > '9') return std::nullopt;
        auto digit = static_cast<std::uint64_t>(ch - '0');
        out.magnitude = out.magnitude > (UINT64_MAX - digit) / 10 ? UINT64_MAX
                                                                 : out.magnitude * 10 + digit;
    }
    if (out.magnitude == 0) out.negative = false;
    return out;
}

std::optional<count_value> parse_count_json(const json::value& v) noexcept {
    if (v.is_uint64()) return count_value{false, v.get_uint64()};
    if (!v.is_int64()) return std::nullopt;
    std::int64_t i = v.get_int64();
    if (i >= 0) return count_value{false, static_cast<std::uint64_t>(i)};
    return count_value{true, static_cast<std::uint64_t>(-(i + 1)) + 1};
}

result<std::size_t> check_limit(const collection_def& c, std::optional<count_value> v) {
    if (!v) return problem::bad_parameter("limit", "Must be an integer.");
    if (v->negative || v->magnitude == 0) return problem::bad_parameter("limit", "Must be at least 1.");
    // Over the maximum is capped, not refused: clients asking for "everything" get a full page.
    return static_cast<std::size_t>(std::min<std::uint64_t>(v->magnitude, c.max_page_size));
}

result<std::size_t> check_offset(std::optional<count_value> v) {
    if (!v) return problem::bad_parameter("offset", "Must be an integer.");
    if (v->negative) return problem::bad_parameter("offset", "Must not be negative.");
    if (v->magnitude > k_max_offset) {
        return problem::bad_parameter("offset", "Must be at most 1000000000.");
    }
    return static_cast<std::size_t>(v->magnitude);
}

// ---------------------------------------------------------------- query string

/// Applies one reserved parameter to `q`; observe and format belong to the HTTP layer.
result<void> apply_reserved(const collection_def& c, std::string_view name, std::string_view value,
                            query& q) {
    if (name == "limit") {
        auto r = check_limit(c, parse_count_text(value));
        if (!r) return std::move(r).error();
        q.limit = *r;
    } else if (name == "offset") {
        auto r = check_offset(parse_count_text(value));
        if (!r) return std::move(r).error();
        q.offset = *r;
    } else if (name == "ordering") {
        auto r = parse_ordering_text(c, value);
        if (!r) return std::move(r).error();
        q.ordering = std::move(*r);
    } else if (name == "fields") {
        auto r = parse_fields_text(c, value);
        if (!r) return std::move(r).error();
        q.fields = std::move(*r);
    }
    return {};
}

result<void> add_filter(std::vector<filter_term>& filters, filter_term term,
                        const std::string& param) {
    if (filters.size() >= k_max_filters) {
        return problem::bad_parameter(param, "At most 64 filters are allowed.");
    }
    filters.push_back(std::move(term));
    return {};
}

// ---------------------------------------------------------------- evaluation

enum class value_rank { null, numeric, text, other };

value_rank rank_of(const json::value* v) noexcept {
    if (v == nullptr || v->is_null()) return value_rank::null;
    if (v->is_number() || v->is_bool()) return value_rank::numeric;
    if (v->is_string()) return value_rank::text;
    return value_rank::other;
}

/// long double holds every int64, uint64 and double exactly on the supported targets, so
/// mixed integer/real comparisons are exact (as in SQLite).
long double as_number(const json::value& v) noexcept {
    if (v.is_bool()) return v.get_bool() ? 1 : 0;
    if (v.is_int64()) return static_cast<long double>(v.get_int64());
    if (v.is_uint64()) return static_cast<long double>(v.get_uint64());
    return v.get_double();
}

std::string_view as_text(const json::value& v) noexcept {
    const auto& s = v.get_string();
    return {s.data(), s.size()};
}

/// Orders values like SQLite: NULL < numbers < text < anything else; ties inside a rank by
/// value (text bytewise). Returns <0, 0, >0.
int compare_values(const json::value* a, const json::value* b) noexcept {
    value_rank ra = rank_of(a), rb = rank_of(b);
    if (ra != rb) return ra < rb ? -1 : 1;
    if (ra == value_rank::numeric) {
        long double x = as_number(*a), y = as_number(*b);
        return x < y ? -1 : (x > y ? 1 : 0);
    }
    if (ra == value_rank::text) {
        int r = as_text(*a).compare(as_text(*b));
        return r < 0 ? -1 : (r > 0 ? 1 : 0);
    }
    return 0;
}

bool is_null(const json::value* v) noexcept { return v == nullptr || v->is_null(); }

/// SQL `=` on two non-null values of comparable kinds.
bool equal_values(const json::value* a, const json::value* b) noexcept {
    if (is_null(a) || is_null(b) || rank_of(a) != rank_of(b)) return false;
    if (rank_of(a) == value_rank::other) return *a == *b;
    return compare_values(a, b) == 0;
}

char ascii_lower(char ch) noexcept {
    return (ch >= 'A' && ch <= 'Z') ? static_cast<char>(ch - 'A' + 'a') : ch;
}

std::string lowered(std::string_view s) {
    std::string out(s);
    for (char& ch : out) ch = ascii_lower(ch);
    return out;
}

bool text_match(lookup op, std::string_view hay, std::string_view needle) {
    switch (op) {
        case lookup::iexact:
            return hay.size() == needle.size() && lowered(hay) == lowered(needle);
        case lookup::contains:
            return hay.find(needle) != std::string_view::npos;
        case lookup::icontains:
            return lowered(hay).find(lowered(needle)) != std::string::npos;
        case lookup::startswith:
            return hay.substr(0, needle.size()) == needle;
        case lookup::istartswith:
            return lowered(hay.substr(0, needle.size())) == lowered(needle);
        case lookup::endswith:
            return hay.size() >= needle.size() && hay.substr(hay.size() - needle.size()) == needle;
        default:
            return false;
    }
}

bool ordered_match(lookup op, const json::value* field, const json::value& value) noexcept {
    if (is_null(field) || is_null(&value) || rank_of(field) != rank_of(&value) ||
        rank_of(field) == value_rank::other) {
        return false;
    }
    int r = compare_values(field, &value);
    switch (op) {
        case lookup::gt: return r > 0;
        case lookup::gte: return r >= 0;
        case lookup::lt: return r < 0;
        default: return r <= 0;
    }
}

bool in_match(const json::value* field, const json::value& value) noexcept {
    if (!value.is_array()) return false;
    for (const auto& item : value.get_array()) {
        if (equal_values(field, &item)) return true;
    }
    return false;
}

bool term_matches(const filter_term& t, const json::object& record) {
    auto it = record.find(t.field);
    const json::value* field = it == record.end() ? nullptr : &it->value();
    switch (t.op) {
        case lookup::exact:
            return equal_values(field, &t.value);
        case lookup::ne:  // SQL IS NOT: null differs from every value but not from null
            if (is_null(field)) return !t.value.is_null();
            return t.value.is_null() || !equal_values(field, &t.value);
        case lookup::isnull:
            return is_null(field) == (t.value.is_bool() && t.value.get_bool());
        case lookup::in:
            return in_match(field, t.value);
        case lookup::gt:
        case lookup::gte:
        case lookup::lt:
        case lookup::lte:
            return ordered_match(t.op, field, t.value);
        default:
            if (is_null(field) || !field->is_string() || !t.value.is_string()) return false;
            return text_match(t.op, as_text(*field), as_text(t.value));
    }
}

}  // namespace

std::optional<lookup> lookup_from_string(std::string_view s) noexcept {
    for (const auto& [name, op] : k_lookups) {
        if (name == s) return op;
    }
    return std::nullopt;
}

std::string_view to_string(lookup l) noexcept {
    for (const auto& [name, op] : k_lookups) {
        if (op == l) return name;
    }
    return "unknown";
}

bool is_reserved_param(std::string_view name) noexcept {
    return name == "limit" || name == "offset" || name == "ordering" || name == "fields" ||
           name == "observe" || name == "format";
}

result<query> parse_query_params(const collection_def& c, const query_params& params) {
    query q;
    q.limit = std::min(c.page_size, c.max_page_size);
    std::set<std::string_view> seen_reserved;
    for (const auto& [name, value] : params) {
        if (is_reserved_param(name)) {
            if (!seen_reserved.insert(name).second) {
                return problem::bad_parameter(name, "May be given only once.");
            }
            if (auto r = apply_reserved(c, name, value, q); !r) return std::move(r).error();
            continue;
        }
        auto key = resolve_key(c, name, name);
        if (!key) return std::move(key).error();
        auto v = text_value(*key, value, name);
        if (!v) return std::move(v).error();
        auto added = add_filter(q.filters, {key->field, key->op, std::move(*v)}, name);
        if (!added) return std::move(added).error();
    }
    return q;
}

result<std::vector<filter_term>> parse_filter_json(const collection_def& c,
                                                   const json::object& filter) {
    if (filter.size() > k_max_filters) {
        return problem::bad_parameter("filter", "At most 64 filters are allowed.");
    }
    std::vector<filter_term> out;
    for (const auto& [k, v] : filter) {
        const std::string param = "filter." + std::string(k);
        auto key = resolve_key(c, k, param);
        if (!key) return std::move(key).error();
        auto value = json_value(*key, v, param);
        if (!value) return std::move(value).error();
        out.push_back({key->field, key->op, std::move(*value)});
    }
    return out;
}

std::optional<problem> unknown_members(const json::object& data,
                                       std::initializer_list<std::string_view> known,
                                       std::string_view prefix) {
    std::vector<std::string_view> unknown;
    for (const auto& kv : data)
        if (std::find(known.begin(), known.end(), std::string_view(kv.key())) == known.end())
            unknown.push_back(kv.key());
    if (unknown.empty()) return std::nullopt;
    std::string detail = unknown.size() == 1 ? "Unknown member " : "Unknown members ";
    for (std::size_t i = 0; i < unknown.size(); ++i)
        detail += (i ? ", " : "") + quoted(unknown[i]);
    detail += "; expected ";
    std::size_t i = 0;
    for (auto k : known) detail += (i++ ? ", " : "") + std::string(k);
    detail += ".";
    auto p = problem::bad_parameter(std::string(prefix) + std::string(unknown.front()), std::move(detail));
    json::array names;
    for (auto u : unknown) names.emplace_back(std::string(prefix) + std::string(u));
    p.extra["unknown"] = std::move(names);
    return p;
}

result<query> parse_query_json(const collection_def& c, const json::object& data) {
    if (auto p = unknown_members(data, {"filter", "ordering", "limit", "offset", "fields"}))
        return std::move(*p);
    query q;
    q.limit = std::min(c.page_size, c.max_page_size);
    if (auto it = data.find("filter"); it != data.end() && !it->value().is_null()) {
        if (!it->value().is_object()) return problem::bad_parameter("filter", "Must be an object.");
        auto r = parse_filter_json(c, it->value().get_object());
        if (!r) return std::move(r).error();
        q.filters = std::move(*r);
    }
    if (auto it = data.find("ordering"); it != data.end() && !it->value().is_null()) {
        auto r = parse_ordering_json(c, it->value());
        if (!r) return std::move(r).error();
        q.ordering = std::move(*r);
    }
    if (auto it = data.find("fields"); it != data.end() && !it->value().is_null()) {
        auto r = parse_fields_json(c, it->value());
        if (!r) return std::move(r).error();
        q.fields = std::move(*r);
    }
    if (auto it = data.find("limit"); it != data.end() && !it->value().is_null()) {
        auto r = check_limit(c, parse_count_json(it->value()));
        if (!r) return std::move(r).error();
        q.limit = *r;
    }
    if (auto it = data.find("offset"); it != data.end() && !it->value().is_null()) {
        auto r = check_offset(parse_count_json(it->value()));
        if (!r) return std::move(r).error();
        q.offset = *r;
    }
    return q;
}

bool matches(const std::vector<filter_term>& filters, const json::object& record) noexcept {
    for (const auto& t : filters) {
        if (!term_matches(t, record)) return false;
    }
    return true;
}

bool record_less(const std::vector<order_term>& ordering, const json::object& a,
                 const json::object& b) noexcept {
    for (const auto& t : ordering) {
        auto ia = a.find(t.field), ib = b.find(t.field);
        int r = compare_values(ia == a.end() ? nullptr : &ia->value(),
                               ib == b.end() ? nullptr : &ib->value());
        if (r != 0) return t.descending ? r > 0 : r < 0;
    }
    return get_string(a, "id") < get_string(b, "id");
}

std::string percent_encode(std::string_view s) {
    static constexpr char hex[] = "0123456789ABCDEF";
    std::string out;
    out.reserve(s.size());
    for (unsigned char c : s) {
        const bool unreserved = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                                (c >= '0' && c <= '9') || c == '-' || c == '.' || c == '_' || c == '~';
        if (unreserved) {
            out += static_cast<char>(c);
        } else {
            out += '%';
            out += hex[c >> 4];
            out += hex[c & 15];
        }
    }
    return out;
}

std::string encode_query(const query_params& params) {
    std::string out;
    for (const auto& [k, v] : params) {
        if (!out.empty()) out += '&';
        out += percent_encode(k);
        out += '=';
        out += percent_encode(v);
    }
    return out;
}

}  // namespace livebase
