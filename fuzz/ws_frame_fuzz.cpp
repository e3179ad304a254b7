// Fuzzes the WebSocket door's handling of client frames: decoding the envelope (decode_frame),
// planning the request against a registry (plan_request: streams, actions, pk, list queries,
// subscribe filters/actions/since, observe queries, task submissions), and encoding the reply a
// bad frame or a refusal gets. Nothing here may crash, hang or throw. The first two bytes are
// also read as a close frame's payload (Beast's read_close) and judged by valid_close_code,
// which must be at least as strict as Beast and refuse every code from 5000 up. Refusals of a
// list, subscription or live query must name every member of `data` they do not know.
#include <algorithm>
#include <boost/beast/websocket/detail/frame.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <cstdint>
#include <livebase/api/api.hpp>
#include <string_view>

#include "fuzz_collections.hpp"
#include "ws/codec.hpp"
#include "ws/request_plan.hpp"

namespace {

using namespace livebase;

const registry& fuzz_registry() {
    static const registry reg = [] {
        registry r;
        r.add_collection(fuzz::cars());
        endpoint_binding e;
        e.name = "double";
        e.method = "GET";
        e.path = "/api/double";
        e.task = "double";
        r.add_endpoint(e);
        return r;
    }();
    return reg;
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace livebase::ws_detail;
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    if (size >= 2) {
        boost::beast::websocket::close_reason cr;
        boost::system::error_code ec;
        boost::beast::websocket::detail::read_close(
            cr, boost::asio::const_buffer(data, std::min<std::size_t>(size, 125)), ec);
        const auto code = static_cast<std::uint16_t>(data[0] << 8 | data[1]);
        if (code != 0 && valid_close_code(code) &&
            !boost::beast::websocket::detail::is_valid_close_code(code))
            __builtin_trap();
        if (code >= 5000 && valid_close_code(code)) __builtin_trap();
        if (!ec && cr.code != code) __builtin_trap();
    }
    const decoded_frame f = decode_frame(text);
    if (f.error) {
        (void)encode_bad_frame(f);
        return 0;
    }
    const request_plan plan = plan_request(f.request, fuzz_registry(), "/api");
    if (plan.kind == plan_kind::refuse)
        (void)encode_error(f.request.stream, json::value(f.request.action), f.request.request_id,
                           plan.refusal);
    if (plan.kind == plan_kind::execute) {
        outcome o = outcome::json_body(200, json::object{{"count", 0}, {"results", json::array{}}});
        (void)encode_plan_reply(plan, f.request, o);
    }
    return 0;
}
