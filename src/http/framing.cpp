#include "http/framing.hpp"
#include <livebase/core/text.hpp>

#include <algorithm>
#include <cctype>
#include <string>

namespace livebase::http_detail {

namespace {

/// RFC 9110 tchar.
bool is_tchar(char c) {
    const auto u = static_cast<unsigned char>(c);
    if (std::isalnum(u)) return true;
    return std::string_view("!#$%&'*+-.^_`|~").find(c) != std::string_view::npos;
}

bool is_token(std::string_view s) {
    return !s.empty() && std::all_of(s.begin(), s.end(), is_tchar);
}

/// uri-host [ ":" port ]: unreserved, pct-encoded, sub-delims, ':' and the brackets of an IP
/// literal. Empty is allowed (RFC 9112 3.2: a target without authority).
bool valid_host(std::string_view h) {
    return std::all_of(h.begin(), h.end(), [](char c) {
        const auto u = static_cast<unsigned char>(c);
        return std::isalnum(u) ||
               std::string_view("-._~%!$&'()*+,;=:[]").find(c) != std::string_view::npos;
    });
}

}  // namespace

problem coding_not_implemented(std::string_view coding) {
    // Only a token is named: the detail must stay valid JSON whatever the client sent.
    std::string detail = "The transfer coding";
    if (is_token(coding) && coding.size() <= 64) detail += " '" + std::string(coding) + "'";
    detail += " is not supported; only 'chunked' is.";
    return problem::make(501, "/problems/not-implemented", "Not implemented", std::move(detail));
}

std::optional<problem> check_framing(const framing_facts& f) {
    if (f.max_header != 0 && f.header_bytes > f.max_header)
        return problem::make(431, "/problems/header-too-large", "Request header fields too large",
                             "The request line and headers are over the size limit.");

    if (f.host.size() > 1)
        return problem::bad_request("A request carries at most one Host header.");
    if (f.version >= 11 && f.host.empty())
        return problem::bad_request("An HTTP/1.1 request needs a Host header.");
    if (!f.host.empty() && !valid_host(trim_ows(f.host.front())))
        return problem::bad_request("The Host header is not a valid host.");

    if (f.transfer_encoding.empty()) return std::nullopt;
    if (f.version < 11)
        return problem::bad_request("Transfer-Encoding is not allowed in an HTTP/1.0 request.");
    // The codings, in the order they were applied; empty list elements are allowed (RFC 9110 5.6.1).
    std::vector<std::string_view> codings;
    for (auto value : f.transfer_encoding) {
        while (true) {
            const auto comma = value.find(',');
            auto item = trim_ows(value.substr(0, comma));
            if (!item.empty()) codings.push_back(item);
            if (comma == std::string_view::npos) break;
            value.remove_prefix(comma + 1);
        }
    }
    if (codings.empty()) return problem::bad_request("Transfer-Encoding lists no coding.");
    if (!iequals(codings.back(), "chunked"))
        return problem::bad_request(
            "The final transfer coding must be 'chunked': the body length cannot be determined.");
    for (std::size_t i = 0; i + 1 < codings.size(); ++i)
        if (iequals(codings[i], "chunked"))
            return problem::bad_request("The 'chunked' transfer coding is applied more than once.");
    if (codings.size() > 1)  // a coding before 'chunked': none is decoded here
        return coding_not_implemented(trim_ows(codings.front().substr(0, codings.front().find(';'))));
    return std::nullopt;
}

}  // namespace livebase::http_detail
