// Fuzzes the WebSocket door's handling of client frames: decoding the envelope (decode_frame),
// planning the request against a registry (plan_request: streams, actions, pk, list queries,
// subscribe filters/actions/since, observe queries, task submissions), and encoding the reply a
// bad frame or a refusal gets. Nothing here may crash, hang or throw.
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
