#include <livebase/core/clock.hpp>

#include <chrono>
#include <cstdio>

namespace livebase {

std::int64_t now_ms() noexcept {
    using namespace std::chrono;
    return duration_cast<milliseconds>(system_clock::now().time_since_epoch()).count();
}

namespace {
// Howard Hinnant's days_from_civil / civil_from_days.
constexpr std::int64_t days_from_civil(std::int64_t y, unsigned m, unsigned d) noexcept {
    y -= m <= 2;
    const std::int64_t era = (y >= 0 ? y : y - 399) / 400;
    const unsigned yoe = static_cast<unsigned>(y - era * 400);
    const unsigned doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    const unsigned doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    return era * 146097 + static_cast<std::int64_t>(doe) - 719468;
}
void civil_from_days(std::int64_t z, std::int64_t& y, unsigned& m, unsigned& d) noexcept {
    z += 719468;
    const std::int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    const unsigned doe = static_cast<unsigned>(z - era * 146097);
    const unsigned yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    y = static_cast<std::int64_t>(yoe) + era * 400;
    const unsigned doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    const unsigned mp = (5 * doy + 2) / 153;
    d = doy - (153 * mp + 2) / 5 + 1;
    m = mp < 10 ? mp + 3 : mp - 9;
    y += m <= 2;
}
bool is_leap(std::int64_t y) { return (y % 4 == 0 && y % 100 != 0) || y % 400 == 0; }
unsigned days_in_month(std::int64_t y, unsigned m) {
    static const unsigned k[] = {31, 28, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31};
    return m == 2 && is_leap(y) ? 29 : k[m - 1];
}
}  // namespace

std::string format_timestamp(std::int64_t ms) {
    std::int64_t days = ms >= 0 ? ms / 86400000 : -((-ms + 86399999) / 86400000);
    std::int64_t rem = ms - days * 86400000;
    std::int64_t y;
    unsigned m, d;
    civil_from_days(days, y, m, d);
    char buf[40];
    std::snprintf(buf, sizeof buf, "%04lld-%02u-%02uT%02d:%02d:%02d.%03dZ",
                  static_cast<long long>(y), m, d, static_cast<int>(rem / 3600000),
                  static_cast<int>(rem / 60000 % 60), static_cast<int>(rem / 1000 % 60),
                  static_cast<int>(rem % 1000));
    return buf;
}

std::optional<std::int64_t> parse_timestamp(std::string_view s) noexcept {
    std::size_t i = 0;
    auto digits = [&](std::size_t n, int& out) -> bool {
        if (i + n > s.size()) return false;
        int v = 0;
        for (std::size_t k = 0; k < n; ++k) {
            char c = s[i + k];
            if (c < '0' || c > '9') return false;
            v = v * 10 + (c - '0');
        }
        out = v;
        i += n;
        return true;
    };
    auto expect = [&](char c) -> bool {
        if (i < s.size() && (s[i] == c || (c == 'T' && (s[i] == 't' || s[i] == ' ')))) {
            ++i;
            return true;
        }
        return false;
    };
    int Y, M, D, h = 0, mi = 0, sec = 0, msec = 0;
    if (!digits(4, Y) || !expect('-') || !digits(2, M) || !expect('-') || !digits(2, D))
        return std::nullopt;
    if (M < 1 || M > 12 || D < 1 || D > static_cast<int>(days_in_month(Y, M))) return std::nullopt;
    std::int64_t offset_min = 0;
    if (i < s.size()) {
        if (!expect('T') || !digits(2, h) || !expect(':') || !digits(2, mi) || !expect(':') ||
            !digits(2, sec))
            return std::nullopt;
        if (h > 23 || mi > 59 || sec > 60) return std::nullopt;
        if (sec == 60) sec = 59;
        if (i < s.size() && s[i] == '.') {
            ++i;
            std::size_t start = i;
            int frac = 0, n = 0;
            while (i < s.size() && s[i] >= '0' && s[i] <= '9') {
                if (n < 3) { frac = frac * 10 + (s[i] - '0'); ++n; }
                ++i;
            }
            if (i == start) return std::nullopt;
            while (n < 3) { frac *= 10; ++n; }
            msec = frac;
        }
        if (i >= s.size()) return std::nullopt;
        if (s[i] == 'Z' || s[i] == 'z') {
            ++i;
        } else if (s[i] == '+' || s[i] == '-') {
            int sign = s[i] == '-' ? -1 : 1;
            ++i;
            int oh, om;
            if (!digits(2, oh) || !expect(':') || !digits(2, om) || oh > 23 || om > 59)
                return std::nullopt;
            offset_min = sign * (oh * 60 + om);
        } else {
            return std::nullopt;
        }
        if (i != s.size()) return std::nullopt;
    }
    std::int64_t days = days_from_civil(Y, static_cast<unsigned>(M), static_cast<unsigned>(D));
    return days * 86400000 + h * 3600000LL + mi * 60000LL + sec * 1000LL + msec -
           offset_min * 60000LL;
}

}  // namespace livebase
