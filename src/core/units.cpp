#include <livebase/core/units.hpp>
#include <livebase/core/text.hpp>

#include <cctype>
#include <charconv>
#include <string>

namespace livebase {

namespace {
// Splits "12.5 MiB" into number and unit; false if no leading number.
bool split_number(std::string_view s, double& num, std::string_view& unit) {
    s = trim_space(s);
    std::size_t i = 0;
    while (i < s.size() && (std::isdigit(static_cast<unsigned char>(s[i])) || s[i] == '.')) ++i;
    if (i == 0) return false;
    std::string n(s.substr(0, i));
    char* end = nullptr;
    num = std::strtod(n.c_str(), &end);
    if (end != n.c_str() + n.size()) return false;
    unit = trim_space(s.substr(i));
    return true;
}
}  // namespace

result<std::chrono::milliseconds> parse_duration(std::string_view text) {
    double n;
    std::string_view unit;
    auto bad = [&] {
        return problem::bad_request("invalid duration \"" + std::string(text) +
                                    "\" (use e.g. \"500ms\", \"60s\", \"10m\", \"24h\", \"7d\")");
    };
    if (!split_number(text, n, unit)) return bad();
    double factor;
    if (unit.empty() || unit == "s") factor = 1000;
    else if (unit == "ms") factor = 1;
    else if (unit == "m" || unit == "min") factor = 60000;
    else if (unit == "h") factor = 3600000;
    else if (unit == "d") factor = 86400000;
    else return bad();
    double v = n * factor;
    if (v > 1e15) return bad();
    return std::chrono::milliseconds(static_cast<std::int64_t>(v));
}

result<std::uint64_t> parse_size(std::string_view text) {
    double n;
    std::string_view unit;
    auto bad = [&] {
        return problem::bad_request("invalid size \"" + std::string(text) +
                                    "\" (use e.g. \"512KiB\", \"1MiB\", \"10MB\")");
    };
    if (!split_number(text, n, unit)) return bad();
    double factor;
    if (unit.empty() || unit == "B") factor = 1;
    else if (unit == "KiB") factor = 1024.0;
    else if (unit == "MiB") factor = 1024.0 * 1024;
    else if (unit == "GiB") factor = 1024.0 * 1024 * 1024;
    else if (unit == "KB" || unit == "kB") factor = 1e3;
    else if (unit == "MB") factor = 1e6;
    else if (unit == "GB") factor = 1e9;
    else return bad();
    double v = n * factor;
    if (v > 1e18) return bad();
    return static_cast<std::uint64_t>(v);
}

result<rate> parse_rate(std::string_view text) {
    auto bad = [&] {
        return problem::bad_request("invalid rate \"" + std::string(text) +
                                    "\" (use e.g. \"120/min\", \"10/s\", \"2000/h\", \"50000/day\", or \"unlimited\")");
    };
    // "unlimited" turns a limit off (count 0); "0/min" is refused as the mistake it likely is.
    if (trim_space(text) == "unlimited") return rate{0, std::chrono::seconds(1)};
    auto slash = text.find('/');
    if (slash == std::string_view::npos) return bad();
    auto num = trim_space(text.substr(0, slash));
    auto per = trim_space(text.substr(slash + 1));
    rate r;
    auto [p, ec] = std::from_chars(num.data(), num.data() + num.size(), r.count);
    if (ec != std::errc() || p != num.data() + num.size() || r.count == 0) return bad();
    if (per == "s" || per == "sec" || per == "second") r.per = std::chrono::seconds(1);
    else if (per == "m" || per == "min" || per == "minute") r.per = std::chrono::minutes(1);
    else if (per == "h" || per == "hour") r.per = std::chrono::hours(1);
    else if (per == "d" || per == "day") r.per = std::chrono::hours(24);
    else return bad();
    return r;
}

}  // namespace livebase
