// Fuzzes the WebSocket wire format the session parses itself (ws/wire.hpp): client frames fed
// to frame_parser in pieces (masking, lengths, fragments, control frames, limits), inflating
// permessage-deflate payloads under a size bound, and judging Sec-WebSocket-Extensions offers.
// Nothing here may crash, hang, throw, or return more than its limits allow.
#include <cstdint>
#include <cstdlib>
#include <string_view>

#include "ws/wire.hpp"

using namespace livebase::ws_detail;

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    if (size == 0) return 0;
    const std::string_view all(reinterpret_cast<const char*>(data), size);
    // The first byte picks the split of the input into reads, the limit and deflate.
    const unsigned ctl = data[0];
    const std::string_view bytes = all.substr(1);
    const std::uint64_t max_message = 16u + (ctl & 0x3f) * 97u;
    const bool deflate = ctl & 0x40;

    frame_parser p(max_message, deflate);
    const std::size_t step = 1 + (ctl >> 4);
    bool failed = false;
    for (std::size_t at = 0; at < bytes.size(); at += step) {
        p.feed(bytes.substr(at, step));
        while (auto e = p.next()) {
            using kind = frame_parser::kind;
            if (e->what == kind::error) {
                if (e->code != 1002 && e->code != 1009) std::abort();
                failed = true;
                break;
            }
            if ((e->what == kind::text || e->what == kind::binary) && e->payload.size() > max_message)
                std::abort();
            if ((e->what == kind::ping || e->what == kind::pong) && e->payload.size() > k_max_control)
                std::abort();
            if (e->compressed) {
                bool too_big = false;
                auto out = inflate_message(e->payload, max_message * 4, &too_big);
                if (out && out->size() > max_message * 4) std::abort();
            }
        }
        if (failed) break;
    }
    if (failed != p.failed()) std::abort();

    bool too_big = false;
    if (auto out = inflate_message(bytes, 4096, &too_big); out && out->size() > 4096) std::abort();
    if (auto a = negotiate_deflate(bytes, 6)) {
        if (a->params.window_bits < 9 || a->params.window_bits > 15) std::abort();
        // What was agreed compresses and inflates back.
        const auto z = deflate_message(bytes, a->params);
        auto back = inflate_message(z, bytes.size() + 1);
        if (!back || *back != bytes) std::abort();
    }
    return 0;
}
