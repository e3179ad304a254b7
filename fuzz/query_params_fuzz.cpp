// Fuzzes query parsing: the input as a URL query string (parse_query_params) and as JSON
// (parse_query_json / parse_filter_json), then evaluates any parsed query in memory.
#include <algorithm>
#include <cstdint>
#include <livebase/schema/query.hpp>
#include <string>
#include <string_view>

#include "fuzz_collections.hpp"

namespace {

using namespace livebase;

int hex(char ch) {
    if (ch >= '0' && ch <= '9') return ch - '0';
    if (ch >= 'a' && ch <= 'f') return ch - 'a' + 10;
    if (ch >= 'A' && ch <= 'F') return ch - 'A' + 10;
    return -1;
}

/// application/x-www-form-urlencoded decoding, lenient: a bad escape stays literal.
std::string decode(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (std::size_t i = 0; i < s.size(); ++i) {
        if (s[i] == '+') {
            out += ' ';
        } else if (s[i] == '%' && i + 2 < s.size() && hex(s[i + 1]) >= 0 && hex(s[i + 2]) >= 0) {
            out += static_cast<char>(hex(s[i + 1]) * 16 + hex(s[i + 2]));
            i += 2;
        } else {
            out += s[i];
        }
    }
    return out;
}

query_params split_query(std::string_view q) {
    query_params params;
    while (!q.empty()) {
        auto amp = q.find('&');
        auto pair = q.substr(0, amp);
        if (!pair.empty()) {
            auto eq = pair.find('=');
            if (eq == std::string_view::npos)
                params.emplace_back(decode(pair), std::string());
            else
                params.emplace_back(decode(pair.substr(0, eq)), decode(pair.substr(eq + 1)));
        }
        if (amp == std::string_view::npos) break;
        q.remove_prefix(amp + 1);
    }
    return params;
}

const std::vector<json::object>& sample_records() {
    static const std::vector<json::object> records = [] {
        std::vector<json::object> out;
        const char* texts[] = {
            R"({"id":"01J0000000000000000000000A","brand":"Ford","make":"","model":2014,"color":"Blue","vin":null,"price":12000.5,"sold":false,"built":"2014-03-01T10:00:00.000Z","notes":"ok","meta":{"a":[1,2]},"dealer":null,"serial":7,"grade":2,"when":null,"created":"2024-01-01T00:00:00.000Z","updated":"2024-01-02T00:00:00.000Z","version":1,"owner":"u1"})",
            R"({"id":"01J0000000000000000000000B","brand":"ford","model":1999,"color":null,"price":0,"sold":true,"built":null,"meta":null,"grade":1.5,"created":"2024-01-03T00:00:00.000Z","updated":"2024-01-03T00:00:00.000Z","version":3,"owner":null})",
            R"({"id":"01J0000000000000000000000C"})",
        };
        for (const char* t : texts) out.push_back(parse_json(t)->as_object());
        return out;
    }();
    return records;
}

void evaluate(const query& q) {
    const auto& recs = sample_records();
    for (const auto& r : recs) (void)matches(q.filters, r);
    for (const auto& a : recs) {
        for (const auto& b : recs) (void)record_less(q.ordering, a, b);
    }
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const collection_def& c = fuzz::cars();

    auto q = parse_query_params(c, split_query(text));
    if (q) evaluate(*q);

    if (auto v = parse_json(text); v && v->is_object()) {
        const auto& obj = v->as_object();
        auto qj = parse_query_json(c, obj);
        if (qj) evaluate(*qj);
        auto f = parse_filter_json(c, obj);
        if (f) {
            for (const auto& r : sample_records()) (void)matches(*f, r);
        }
    }
    return 0;
}
