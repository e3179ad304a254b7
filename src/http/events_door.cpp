#include "http/events_door.hpp"

#include <charconv>
#include <livebase/schema/query.hpp>
#include <set>

namespace livebase::http_detail {

namespace {

/// The filters of `params` as a JSON filter object, keyed by the parameter names as sent and
/// holding the values typed the way the list types them (so integer fields get integers, not
/// the query string's text). REQUIRES: `params` holds no reserved parameter.
result<json::object> filter_object(const collection_def& c, const query_params& params) {
    std::set<std::string_view> seen;
    for (const auto& [name, value] : params)
        if (!seen.insert(name).second)
            return problem::bad_parameter(name, "May be given only once here.");
    auto q = parse_query_params(c, params);
    if (!q) return std::move(q).error();
    // parse_query_params adds one term per non-reserved parameter, in order.
    json::object out;
    for (std::size_t i = 0; i < params.size() && i < q->filters.size(); ++i)
        out[params[i].first] = std::move(q->filters[i].value);
    return out;
}

std::optional<std::int64_t> parse_seq(std::string_view s) noexcept {
    while (!s.empty() && (s.front() == ' ' || s.front() == '\t')) s.remove_prefix(1);
    while (!s.empty() && (s.back() == ' ' || s.back() == '\t')) s.remove_suffix(1);
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(s.data(), s.data() + s.size(), n);
    if (s.empty() || ec != std::errc() || ptr != s.data() + s.size() || n < 0) return std::nullopt;
    return n;
}

}  // namespace

result<events_request> decode_events_request(const collection_def& c, const query_params& params,
                                             std::optional<std::string_view> last_event_id) {
    events_request out;
    query_params filters;
    bool since_seen = false;
    for (const auto& [name, value] : params) {
        if (name == "since") {
            if (since_seen) return problem::bad_parameter(name, "May be given only once.");
            since_seen = true;
            auto seq = parse_seq(value);
            if (!seq) return problem::bad_parameter(name, "Must be a non-negative integer.");
            out.since = *seq;
        } else if (is_reserved_param(name)) {
            return problem::bad_parameter(name, "Not supported on an event stream.");
        } else {
            filters.emplace_back(name, value);
        }
    }
    if (last_event_id) {
        auto seq = parse_seq(*last_event_id);
        if (!seq)
            return problem::bad_parameter("Last-Event-ID",
                                          "Must be the id of an event of this stream.");
        out.since = *seq;
    }
    auto f = filter_object(c, filters);
    if (!f) return std::move(f).error();
    out.filter = std::move(*f);
    return out;
}

result<std::optional<std::string>> observe_param(const query_params& params) {
    std::optional<std::string> out;
    for (const auto& [name, value] : params) {
        if (name != "observe") continue;
        if (out) return problem::bad_parameter(name, "May be given only once.");
        if (value.empty())
            return problem::bad_parameter(name, "Must be the subscriber id of a WebSocket.");
        out = value;
    }
    return out;
}

result<json::object> decode_observe_query(const collection_def& c, const query_params& params) {
    query_params rest, filters;
    for (const auto& p : params) {
        if (p.first == "observe") continue;
        // The hub keeps and diffs whole records: a projection would hold for the first page only.
        if (p.first == "fields")
            return problem::bad_parameter(p.first, "Not supported on a live query.");
        rest.push_back(p);
        if (!is_reserved_param(p.first)) filters.push_back(p);
    }
    auto q = parse_query_params(c, rest);  // reserved parameters, with the list's defaults
    if (!q) return std::move(q).error();
    auto f = filter_object(c, filters);
    if (!f) return std::move(f).error();

    json::array ordering;
    for (const auto& t : q->ordering) ordering.emplace_back((t.descending ? "-" : "") + t.field);
    return json::object{{"filter", std::move(*f)},
                        {"ordering", std::move(ordering)},
                        {"limit", q->limit},
                        {"offset", q->offset}};
}

}  // namespace livebase::http_detail
