// Fuzzes HTTP/1.1 request framing as the server reads it: Beast's request parser fed the input
// in two pieces, then, once the header is complete, the framing checks the session makes before
// reading a body (http_detail::check_framing: header size, Host, Transfer-Encoding). A request
// the checks accept must have a length Beast can determine: chunked, Content-Length, or none.
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/http/parser.hpp>
#include <boost/beast/http/string_body.hpp>
#include <cstdint>
#include <string>
#include <string_view>

#include "http/framing.hpp"

namespace bhttp = boost::beast::http;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace livebase::http_detail;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    if (in.empty()) return 0;
    // The first byte chooses where the input is split: reads arrive in pieces.
    const std::size_t cut = static_cast<unsigned char>(in.front()) % (in.size());
    in.remove_prefix(1);
    constexpr std::size_t max_header = 1024;

    bhttp::request_parser<bhttp::string_body> parser;
    parser.header_limit(max_header);
    parser.body_limit(2048);
    parser.eager(false);  // stop after the header, as async_read_header does
    std::string buffer;
    std::size_t consumed = 0;
    std::size_t header_bytes = 0;
    boost::beast::error_code ec;
    for (std::string_view piece : {in.substr(0, cut), in.substr(std::min(cut, in.size()))}) {
        buffer.append(piece);
        while (!ec && !parser.is_header_done() && consumed < buffer.size()) {
            auto n = parser.put(boost::asio::buffer(buffer.data() + consumed, buffer.size() - consumed), ec);
            if (ec == bhttp::error::need_more) {
                ec = {};
                break;
            }
            if (n == 0) break;
            consumed += n;
        }
    }
    if (ec || !parser.is_header_done()) return 0;
    header_bytes = consumed;
    if (header_bytes > buffer.size()) __builtin_trap();

    const auto& req = parser.get();
    framing_facts facts;
    facts.version = req.version();
    facts.header_bytes = header_bytes;
    facts.max_header = max_header;
    for (const auto& f : req) {
        if (f.name() == bhttp::field::transfer_encoding) facts.transfer_encoding.push_back(f.value());
        else if (f.name() == bhttp::field::host) facts.host.push_back(f.value());
    }
    auto verdict = check_framing(facts);
    if (verdict) {
        const int s = verdict->status;
        if (s != 400 && s != 431 && s != 501) __builtin_trap();
        if (verdict->detail.empty()) __builtin_trap();
        return 0;
    }
    // Accepted: a Transfer-Encoding was there only if Beast frames the body as chunked.
    if (!facts.transfer_encoding.empty() && !parser.chunked()) __builtin_trap();
    if (header_bytes > max_header) __builtin_trap();
    if (facts.version >= 11 && facts.host.size() != 1) __builtin_trap();
    return 0;
}
