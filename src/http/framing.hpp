#pragma once
/// Checks of a request's header that decide whether its byte stream can be trusted (RFC 9112
/// sections 3.2, 6.1 and 6.3), made once the header is parsed and before the body is read.
/// Policy only, no I/O and no Beast: the session copies the header's facts out of its parser.
#include <cstddef>
#include <livebase/core/problem.hpp>
#include <optional>
#include <string_view>
#include <vector>

namespace livebase::http_detail {

/// The facts of one request header that the checks read.
struct framing_facts {
    unsigned version = 11;  ///< 10 or 11
    /// Every Transfer-Encoding field value, in order (several fields form one list).
    std::vector<std::string_view> transfer_encoding;
    /// Every Host field value, in order.
    std::vector<std::string_view> host;
    std::size_t header_bytes = 0;  ///< request line + fields + the blank line
    std::size_t max_header = 0;    ///< 0: no limit
};

/// nullopt when the request may be served; otherwise the problem to answer, after which the
/// connection must be closed (the rest of the stream cannot be trusted to start at a request
/// boundary). In order:
/// - header_bytes over max_header -> 431 (Beast's own limit counts the request line and the
///   fields separately, so the whole header is checked here);
/// - HTTP/1.1 without exactly one Host, more than one Host, or a Host value with characters a
///   URI authority cannot hold -> 400;
/// - Transfer-Encoding on HTTP/1.0 -> 400 (faulty framing); an empty coding list, a final coding
///   other than `chunked`, or `chunked` applied twice -> 400 (the body length cannot be
///   determined); any coding besides `chunked` (gzip, deflate, identity, ...) -> 501, since
///   the server decodes none.
std::optional<problem> check_framing(const framing_facts& facts);

/// 501 for a transfer coding the server does not implement.
problem coding_not_implemented(std::string_view coding);

}  // namespace livebase::http_detail
