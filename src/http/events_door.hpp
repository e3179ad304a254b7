#pragma once
/// Realtime over HTTP (http.md section 4), the policy half: REST query strings -> the JSON the
/// hub takes, for SSE change streams (`GET {base}/{c}/events?...`) and REST live queries
/// (`GET {base}/{c}?...&observe=<subscriber>`). No I/O, no Beast, no hub.
#include <cstdint>
#include <livebase/ops/operation.hpp>
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>
#include <optional>
#include <string_view>

namespace livebase::http_detail {

/// What an SSE change stream subscribes to.
struct events_request {
    json::object filter;                ///< parse_filter_json's shape, values already typed
    std::optional<std::int64_t> since;  ///< resume after this seq (Last-Event-ID or ?since=)
};

/// Builds the subscription of `GET {base}/{c}/events?<params>`. Every parameter is a filter
/// with the REST list syntax (`brand=Ford`, `model__gte=2014`, `id__in=a,b`, `x__isnull=true`)
/// except `since=<seq>`, which resumes like Last-Event-ID; `last_event_id` (the header, when
/// present) wins over `since`, because a reconnecting EventSource repeats the URL it was opened
/// with and puts its progress in the header. Problems (400, naming the parameter): a filter
/// the list would refuse, the other list parameters (limit, offset, ordering, fields, observe,
/// format: a stream has no page), a filter given twice (a JSON filter has one value per key),
/// a since / Last-Event-ID that is not a non-negative integer.
result<events_request> decode_events_request(const collection_def& c, const query_params& params,
                                             std::optional<std::string_view> last_event_id);

/// The subscriber id of a list's `observe` parameter, or nullopt when the list has none.
/// An empty value or a repeated parameter -> 400 naming "observe".
result<std::optional<std::string>> observe_param(const query_params& params);

/// The live query of `GET {base}/{c}?<params>&observe=...` as parse_query_json takes it:
/// {"filter", "ordering": ["-f", ...], "limit", "offset"}, validated with the list's own rules
/// and defaults (page_size, max_page_size), so the first page is the one the same list without
/// `observe` returns. Problems as the list's, plus a repeated filter and `fields` (live queries
/// diff whole records).
result<json::object> decode_observe_query(const collection_def& c, const query_params& params);

}  // namespace livebase::http_detail
