#include "http/rest_door.hpp"
#include <livebase/core/text.hpp>

#include <algorithm>
#include <boost/url/params_encoded_view.hpp>
#include <boost/url/parse.hpp>
#include <boost/url/parse_query.hpp>
#include <cctype>
#include <charconv>
#include <limits>
#include <livebase/core/json.hpp>

namespace livebase::http_detail {

namespace {

/// Media type check: "application/json; charset=UTF-8" is JSON; a charset other than UTF-8 is
/// not (the body would have to be transcoded, and JSON is UTF-8 by RFC 8259).
bool acceptable_content_type(std::string_view header, bool allow_merge_patch) noexcept {
    auto semi = header.find(';');
    auto type = trim_ows(header.substr(0, semi));
    const bool json = iequals(type, "application/json") ||
                      (allow_merge_patch && iequals(type, "application/merge-patch+json"));
    if (!json) return false;
    while (semi != std::string_view::npos) {
        header.remove_prefix(semi + 1);
        semi = header.find(';');
        auto param = trim_ows(header.substr(0, semi));
        auto eq = param.find('=');
        if (eq == std::string_view::npos) continue;
        if (!iequals(trim_ows(param.substr(0, eq)), "charset")) continue;
        auto value = trim_ows(param.substr(eq + 1));
        if (value.size() >= 2 && value.front() == '"' && value.back() == '"')
            value = value.substr(1, value.size() - 2);
        if (!iequals(value, "utf-8") && !iequals(value, "utf8")) return false;
    }
    return true;
}

/// `"v{n}"` -> n, for n >= 0 without sign or leading junk.
std::optional<std::int64_t> parse_version_tag(std::string_view tag) noexcept {
    if (tag.size() < 4 || tag.front() != '"' || tag.back() != '"' || tag[1] != 'v')
        return std::nullopt;
    auto digits = tag.substr(2, tag.size() - 3);
    std::int64_t n = 0;
    auto [ptr, ec] = std::from_chars(digits.data(), digits.data() + digits.size(), n);
    if (ec != std::errc() || ptr != digits.data() + digits.size() || n < 0) return std::nullopt;
    return n;
}

/// Names a key an object repeated, when it can be named safely.
std::string repeated_key_detail(const std::string& key) {
    std::string d = "An object repeats a key";
    if (key.size() <= 100 && valid_utf8(key)) d += " (" + to_json_text(json::value(key)) + ")";
    return d + ".";
}

}  // namespace

result<target_parts> split_target(std::string_view target) {
    auto parsed = (!target.empty() && target.front() == '/')
                      ? boost::urls::parse_origin_form(target)
                      : boost::urls::parse_absolute_uri(target);
    if (!parsed) return problem::bad_request("The request-target is not a valid URI.");
    // Names and ids come from the decoded path, and problems, task echoes and logs quote them:
    // they must be text.
    for (auto seg : parsed->encoded_segments())
        if (!valid_utf8(seg.decode()))
            return problem::bad_request("The path is not valid UTF-8 once percent-decoded.");
    target_parts t;
    t.path = std::string(parsed->encoded_path());
    if (parsed->has_query()) t.query = std::string(parsed->encoded_query());
    return t;
}

result<query_params> decode_query(std::string_view encoded_query) {
    query_params out;
    if (encoded_query.empty()) return out;
    auto params = boost::urls::parse_query(encoded_query);
    if (!params) return problem::bad_request("The query string is not validly percent-encoded.");
    boost::urls::encoding_opts opts;
    opts.space_as_plus = true;  // HTML forms and most clients encode spaces as '+'
    for (auto p : *params) {
        if (p.key.empty() && !p.has_value) continue;
        auto key = p.key.decode(opts);
        if (!valid_utf8(key))
            return problem::bad_request(
                "A query parameter name is not valid UTF-8 once percent-decoded.");
        auto value = p.has_value ? p.value.decode(opts) : std::string();
        if (!valid_utf8(value))
            return problem::bad_parameter(key, "The value is not valid UTF-8 once percent-decoded.");
        out.emplace_back(std::move(key), std::move(value));
    }
    return out;
}

result<std::optional<std::int64_t>> parse_if_match(std::string_view value) {
    value = trim_ows(value);
    if (value == "*") return std::optional<std::int64_t>{};
    if (auto v = parse_version_tag(value)) return std::optional<std::int64_t>{*v};
    return problem::bad_request(
        "If-Match must be \"*\" or one entity tag of the form \"v<version>\".");
}

std::string make_etag(std::int64_t version) { return "\"v" + std::to_string(version) + "\""; }

bool if_none_match_hits(std::string_view header, std::int64_t version) noexcept {
    while (!header.empty()) {
        auto comma = header.find(',');
        auto tag = trim_ows(header.substr(0, comma));
        if (tag == "*") return true;
        if (tag.substr(0, 2) == "W/") tag.remove_prefix(2);
        if (auto v = parse_version_tag(tag); v && *v == version) return true;
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
    return false;
}

void parse_prefer(std::string_view header, bool& respond_async, std::optional<int>& wait) {
    std::size_t start = 0;
    while (start <= header.size()) {
        auto end = header.find_first_of(",;", start);
        auto token = trim_ows(header.substr(start, end == std::string_view::npos ? end : end - start));
        auto eq = token.find('=');
        auto name = lowercase(trim_ows(token.substr(0, eq)));
        if (name == "respond-async") {
            respond_async = true;
        } else if (name == "wait" && eq != std::string_view::npos) {
            auto value = trim_ows(token.substr(eq + 1));
            if (!value.empty() && value.front() == '"' && value.size() >= 2 && value.back() == '"')
                value = value.substr(1, value.size() - 2);
            int n = 0;
            auto [ptr, ec] = std::from_chars(value.data(), value.data() + value.size(), n);
            if (ec == std::errc() && ptr == value.data() + value.size() && n >= 0)
                wait = std::min(n, 60);
        }
        if (end == std::string_view::npos) break;
        start = end + 1;
    }
}

result<void> decode_request(operation& op, const request_view& req,
                            std::string_view encoded_query) {
    op.query = std::string(encoded_query);
    if (req.prefer) parse_prefer(*req.prefer, op.prefer_async, op.prefer_wait);
    if (req.idempotency_key) {
        const auto& k = *req.idempotency_key;
        // Stored and echoed: printable ASCII only (a header may carry any octet).
        const bool printable = std::all_of(k.begin(), k.end(), [](char c) { return c >= 0x20 && c < 0x7f; });
        if (k.empty() || k.size() > 255 || !printable)
            return problem::bad_request(
                "Idempotency-Key must be 1 to 255 printable ASCII characters.");
        op.idempotency_key = std::string(*req.idempotency_key);
    }
    auto params = decode_query(encoded_query);
    if (!params) return std::move(params).error();
    op.params = std::move(*params);

    if (req.if_match) {
        auto v = parse_if_match(*req.if_match);
        if (!v) return std::move(v).error();
        op.if_match = *v;
    }

    const bool may_have_body = req.method == "POST" || req.method == "PUT" || req.method == "PATCH";
    const bool needs_object =
        op.kind == op_kind::create || op.kind == op_kind::replace || op.kind == op_kind::patch;
    op.input = nullptr;
    if (may_have_body && !req.body.empty()) {
        if (!acceptable_content_type(req.content_type, req.method == "PATCH"))
            return problem::unsupported_media_type(
                req.method == "PATCH"
                    ? "The body must be application/json or application/merge-patch+json."
                    : "The body must be application/json.");
        if (!valid_utf8(req.body)) return problem::malformed_json("The body is not valid UTF-8.");
        std::optional<std::string> duplicate;
        auto v = parse_json_input(req.body, 64, &duplicate);
        if (!v && duplicate) return problem::malformed_json(repeated_key_detail(*duplicate));
        if (!v) return problem::malformed_json();
        op.input = std::move(*v);
    }
    if (needs_object && !op.input.is_object())
        return problem::bad_request("The body must be a JSON object.");
    return {};
}

response_parts render_json(int status, const json::value& body) {
    response_parts r;
    r.status = status;
    r.content_type = "application/json";
    r.body = to_json_text(body);
    return r;
}

response_parts render_problem(const problem& p) {
    response_parts r;
    r.status = p.status;
    r.content_type = "application/problem+json";
    r.body = to_json_text(p.to_json());
    if (p.status == 401) r.headers.emplace_back("WWW-Authenticate", "Bearer");
    // A problem that says when to come back (503, 507) says it in the header too.
    if (auto it = p.extra.find("retry_after"); it != p.extra.end() && it->value().is_int64())
        r.headers.emplace_back("Retry-After", std::to_string(it->value().get_int64()));
    return r;
}

response_parts render_outcome(const outcome& o, std::optional<std::string_view> if_none_match) {
    response_parts r;
    r.status = o.status;
    if (o.version && o.status == 200 && if_none_match &&
        if_none_match_hits(*if_none_match, *o.version)) {
        r.status = 304;
        r.headers.emplace_back("ETag", make_etag(*o.version));
        return r;
    }
    const bool bodiless = o.status == 204 || o.status == 304 || (o.status >= 100 && o.status < 200);
    if (!bodiless && !o.body.is_null()) {
        r.content_type = o.is_problem ? "application/problem+json" : "application/json";
        r.body = to_json_text(o.body);
    }
    if (!o.location.empty()) r.headers.emplace_back("Location", o.location);
    if (o.version) r.headers.emplace_back("ETag", make_etag(*o.version));
    bool has_www_authenticate = false;
    for (const auto& h : o.headers) {
        if (iequals(h.first, "WWW-Authenticate")) has_www_authenticate = true;
        r.headers.push_back(h);
    }
    if (o.status == 401 && !has_www_authenticate)
        r.headers.emplace_back("WWW-Authenticate", "Bearer");
    return r;
}

problem uri_too_long() {
    return problem::make(414, "/problems/uri-too-long", "URI too long",
                         "The request-target is over the size limit.");
}

problem header_fields_too_large() {
    return problem::make(431, "/problems/header-too-large", "Request header fields too large",
                         "The request line and headers are over the size limit.");
}

}  // namespace livebase::http_detail
