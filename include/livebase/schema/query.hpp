#pragma once
/// The query AST (filters, ordering, limit/offset, fields), its parsers from a URL query string
/// and from JSON, and in-memory evaluation (for realtime matching and tests).
#include <initializer_list>
#include <livebase/core/result.hpp>
#include <optional>
#include <string_view>
#include <livebase/schema/collection.hpp>

#include <string>
#include <utility>
#include <vector>

namespace livebase {

enum class lookup {
    exact, iexact, contains, icontains, startswith, istartswith, endswith,
    gt, gte, lt, lte, in, isnull, ne
};
std::optional<lookup> lookup_from_string(std::string_view s) noexcept;
std::string_view to_string(lookup l) noexcept;

/// One condition. `value` is already typed for the field: integer fields hold int64, number
/// fields double, boolean fields bool, datetime fields the normalized string, others strings;
/// `in` holds a json::array of such values; `isnull` holds a bool.
/// Text lookups (contains, icontains, startswith, istartswith, endswith, iexact) hold a string.
struct filter_term {
    std::string field;
    lookup op = lookup::exact;
    json::value value;
};

struct order_term {
    std::string field;
    bool descending = false;
};

struct query {
    std::vector<filter_term> filters;   ///< all must hold (AND)
    std::vector<order_term> ordering;   ///< ties are always broken by id ascending
    std::size_t limit = 25;
    std::size_t offset = 0;
    std::vector<std::string> fields;    ///< projection; empty = all
    /// false: the store skips counting the matches (page::count is then the number of items
    /// returned). For internal lookups that need no total, where counting would cost a scan.
    bool with_count = true;
};

/// Decoded query-string pairs, in order.
using query_params = std::vector<std::pair<std::string, std::string>>;

/// RFC 3986 percent-encoding of everything but unreserved characters (ALPHA DIGIT - . _ ~).
std::string percent_encode(std::string_view s);
/// "k=v&k2=v2" with keys and values percent-encoded; "" for no params.
std::string encode_query(const query_params& params);

/// Names the parser treats as not-a-filter (limit, offset, ordering, fields, observe, format).
bool is_reserved_param(std::string_view name) noexcept;

/// Builds a query from query-string parameters: `field=v` (exact), `field__lookup=v`,
/// `ordering=-a,b`, `limit`, `offset`, `fields=a,b`. `limit` defaults to c.page_size and is
/// capped at c.max_page_size. Unknown fields, unknown lookups, wrong value types, negative or
/// non-numeric limit/offset, repeated reserved params -> problem::bad_parameter naming the param.
/// Unknown parameter names ending in a known reserved name are not special.
result<query> parse_query_params(const collection_def& c, const query_params& params);

/// Builds a query from JSON (WebSocket): `{"filter": {...}, "ordering": "-a,b" | ["-a","b"],
/// "limit": n, "offset": n, "fields": [...]}`; any other member -> 400 (unknown_members). Filter keys use the same `field__lookup` syntax; values are JSON
/// (in: array; isnull: bool). Errors as above, naming "filter.<key>" etc.
result<query> parse_query_json(const collection_def& c, const json::object& data);

/// A JSON request object whose members must all be known (a misspelt member must not silently
/// widen a query): nullopt when every member of `data` is in `known`; otherwise 400 naming the
/// first unknown member (`prefix` + name, e.g. "data.filters") with every unknown one and the
/// known ones in the detail.
std::optional<problem> unknown_members(const json::object& data,
                                       std::initializer_list<std::string_view> known,
                                       std::string_view prefix = {});

/// Only the filter part of parse_query_json (for subscriptions): `{"brand": "Ford", ...}`.
result<std::vector<filter_term>> parse_filter_json(const collection_def& c, const json::object& filter);

/// True when the stored record satisfies every term (same semantics as the SQL backends:
/// i* lookups compare ASCII case-insensitively; null never matches comparisons).
bool matches(const std::vector<filter_term>& filters, const json::object& record) noexcept;

/// Strict weak order of two records under `ordering`, then id ascending. Nulls sort first
/// ascending (last descending), as SQLite does.
bool record_less(const std::vector<order_term>& ordering, const json::object& a,
                 const json::object& b) noexcept;

}  // namespace livebase
