// Fuzzes schedules' timing: the input's first line as a cron expression, the second as a time
// zone name; a parsed expression's next ticks are computed in that zone (and in a zone with
// daylight saving), each strictly after the last.
#include <livebase/tasks/cron.hpp>

#include <cstdint>
#include <cstdlib>
#include <string_view>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace livebase;
    std::string_view in(reinterpret_cast<const char*>(data), size);
    auto nl = in.find('\n');
    std::string_view expr = in.substr(0, nl);
    std::string_view zone = nl == std::string_view::npos ? std::string_view("UTC") : in.substr(nl + 1);
    (void)known_time_zone(zone);
    auto e = cron_expr::parse(expr);
    if (!e) {
        if (e.error().status != 400) std::abort();
        return 0;
    }
    for (std::string_view z : {zone, std::string_view("Europe/Berlin")}) {
        std::int64_t after = 1'774'700'000'000;  // March 2026, before a daylight-saving change
        for (int i = 0; i < 4; ++i) {
            auto next = e->next_after(after, z);
            if (!next) break;
            if (*next <= after) std::abort();
            after = *next;
        }
    }
    (void)next_period_after(static_cast<std::int64_t>(size) * 7919 - 50'000, static_cast<std::int64_t>(size) + 1);
    return 0;
}
