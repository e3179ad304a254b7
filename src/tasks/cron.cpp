#include <livebase/tasks/cron.hpp>

#include <livebase/core/text.hpp>

#include <date/date.h>
#include <date/tz.h>

#include <array>
#include <charconv>
#include <chrono>
#include <exception>
#include <vector>

namespace livebase {

namespace {

struct field_spec {
    const char* name;
    int lo;
    int hi;  ///< inclusive; day-of-week allows 7 (Sunday) and folds it to 0
    const std::array<const char*, 12>* names;  ///< names[i] stands for lo + i
    std::size_t name_count;
};

constexpr std::array<const char*, 12> kMonthNames{"jan", "feb", "mar", "apr", "may", "jun",
                                                   "jul", "aug", "sep", "oct", "nov", "dec"};
constexpr std::array<const char*, 12> kDayNames{"sun", "mon", "tue", "wed", "thu", "fri", "sat", "", "", "", "", ""};

const field_spec kFields[5] = {
    {"minute", 0, 59, nullptr, 0},
    {"hour", 0, 23, nullptr, 0},
    {"day of month", 1, 31, nullptr, 0},
    {"month", 1, 12, &kMonthNames, 12},
    {"day of week", 0, 7, &kDayNames, 7},
};

problem field_problem(const field_spec& f, std::string_view part, std::string_view why) {
    return problem::bad_request("The cron expression's " + std::string(f.name) + " field \"" + std::string(part) +
                                "\" " + std::string(why) + ".");
}

/// A number or a name of field `f`; nullopt when neither.
std::optional<int> value_of(const field_spec& f, std::string_view s) {
    if (s.empty() || s.size() > 3) return std::nullopt;
    int v = 0;
    auto [p, ec] = std::from_chars(s.data(), s.data() + s.size(), v);
    if (ec == std::errc() && p == s.data() + s.size()) return v;
    if (!f.names) return std::nullopt;
    for (std::size_t i = 0; i < f.name_count; ++i)
        if (iequals(s, (*f.names)[i])) return f.lo + static_cast<int>(i);
    return std::nullopt;
}

/// Parses one field into `bits` (bit v set for each value v). `any`: the field was "*".
template <std::size_t N>
result<void> parse_field(const field_spec& f, std::string_view text, std::bitset<N>& bits, bool& any) {
    any = text == "*";
    std::size_t start = 0;
    while (start <= text.size()) {
        std::size_t comma = text.find(',', start);
        if (comma == std::string_view::npos) comma = text.size();
        std::string_view part = text.substr(start, comma - start);
        if (part.empty()) return field_problem(f, text, "has an empty list item");
        int step = 1;
        std::string_view range = part;
        if (auto slash = part.find('/'); slash != std::string_view::npos) {
            std::string_view st = part.substr(slash + 1);
            int v = 0;
            auto [p, ec] = std::from_chars(st.data(), st.data() + st.size(), v);
            if (st.empty() || st.size() > 3 || ec != std::errc() || p != st.data() + st.size() || v < 1 ||
                v > f.hi - f.lo + 1)
                return field_problem(f, part, "has a step that is not a number from 1 to " +
                                                  std::to_string(f.hi - f.lo + 1));
            step = v;
            range = part.substr(0, slash);
        }
        int lo = f.lo, hi = f.hi;
        if (range == "*") {
            if (f.lo == 0 && f.hi == 7) hi = 6;  // "*" of day-of-week is Sunday..Saturday once
        } else if (auto dash = range.find('-'); dash != std::string_view::npos) {
            auto a = value_of(f, range.substr(0, dash));
            auto b = value_of(f, range.substr(dash + 1));
            if (!a || !b) return field_problem(f, part, "is not a range of two values");
            lo = *a;
            hi = *b;
            if (lo > hi) return field_problem(f, part, "has a range that ends before it starts");
        } else {
            auto a = value_of(f, range);
            if (!a) return field_problem(f, part, "is not a number" + std::string(f.names ? " or a name" : ""));
            lo = hi = *a;
            if (step != 1) hi = f.hi;  // "5/15": from 5 to the end, every 15
        }
        if (lo < f.lo || hi > f.hi)
            return field_problem(f, part,
                                 "is out of range (" + std::to_string(f.lo) + " to " + std::to_string(f.hi) + ")");
        for (int v = lo; v <= hi; v += step) bits.set(static_cast<std::size_t>(f.hi == 7 && v == 7 ? 0 : v));
        start = comma + 1;
        if (comma == text.size()) break;
    }
    return {};
}

const date::time_zone* find_zone(std::string_view zone) {
    if (zone.empty() || zone.size() > 64) return nullptr;
    try {
        return date::locate_zone(std::string(zone));
    } catch (const std::exception&) {
        return nullptr;
    }
}

}  // namespace

result<cron_expr> cron_expr::parse(std::string_view text) {
    text = trim_space(text);
    if (text.size() > 256) return problem::bad_request("The cron expression is longer than 256 characters.");
    if (!text.empty() && text.front() == '@') {
        static constexpr std::pair<const char*, const char*> kMacros[] = {
            {"@yearly", "0 0 1 1 *"}, {"@annually", "0 0 1 1 *"}, {"@monthly", "0 0 1 * *"},
            {"@weekly", "0 0 * * 0"}, {"@daily", "0 0 * * *"},    {"@midnight", "0 0 * * *"},
            {"@hourly", "0 * * * *"},
        };
        for (const auto& [name, expr] : kMacros)
            if (iequals(text, name)) return parse(expr);
        return problem::bad_request("The cron expression \"" + std::string(text) +
                                    "\" is not one of @yearly, @monthly, @weekly, @daily, @hourly.");
    }
    std::vector<std::string_view> parts;
    std::size_t i = 0;
    while (i < text.size()) {
        while (i < text.size() && (text[i] == ' ' || text[i] == '\t')) ++i;
        std::size_t j = i;
        while (j < text.size() && text[j] != ' ' && text[j] != '\t') ++j;
        if (j > i) parts.push_back(text.substr(i, j - i));
        i = j;
    }
    if (parts.size() != 5)
        return problem::bad_request("The cron expression has " + std::to_string(parts.size()) +
                                    " fields; it needs five: minute hour day-of-month month day-of-week.");
    cron_expr e;
    bool any = false;
    if (auto r = parse_field(kFields[0], parts[0], e.minutes_, any); !r) return std::move(r).error();
    if (auto r = parse_field(kFields[1], parts[1], e.hours_, any); !r) return std::move(r).error();
    if (auto r = parse_field(kFields[2], parts[2], e.days_, e.any_day_); !r) return std::move(r).error();
    if (auto r = parse_field(kFields[3], parts[3], e.months_, any); !r) return std::move(r).error();
    std::bitset<8> dow;
    if (auto r = parse_field(kFields[4], parts[4], dow, e.any_weekday_); !r) return std::move(r).error();
    for (std::size_t d = 0; d < 7; ++d) e.weekdays_[d] = dow[d];
    return e;
}

bool cron_expr::day_matches(int month, int day, int weekday) const {
    if (!months_[static_cast<std::size_t>(month)]) return false;
    const bool dom = days_[static_cast<std::size_t>(day)];
    const bool dow = weekdays_[static_cast<std::size_t>(weekday)];
    if (any_day_ && any_weekday_) return true;
    if (any_day_) return dow;
    if (any_weekday_) return dom;
    return dom || dow;
}

bool cron_expr::matches(int month, int day, int weekday, int hour, int minute) const {
    return day_matches(month, day, weekday) && hours_[static_cast<std::size_t>(hour)] &&
           minutes_[static_cast<std::size_t>(minute)];
}

std::optional<std::int64_t> cron_expr::next_after(std::int64_t after_ms, std::string_view zone) const {
    using namespace std::chrono;
    const date::time_zone* tz = find_zone(zone);
    if (!tz) return std::nullopt;
    const sys_seconds after{duration_cast<seconds>(milliseconds(after_ms))};
    // The wall-clock minute after `after`; search the local calendar from there. A candidate
    // that maps to an instant at or before `after` (the second pass through a repeated hour)
    // is passed over.
    auto local = date::floor<minutes>(tz->to_local(after)) + minutes(1);
    const auto limit = local + date::days(5 * 366 + 1);
    while (local < limit) {
        const auto day = date::floor<date::days>(local);
        const date::year_month_day ymd{day};
        const int month = static_cast<int>(static_cast<unsigned>(ymd.month()));
        const int mday = static_cast<int>(static_cast<unsigned>(ymd.day()));
        const int wday = static_cast<int>(date::weekday{day}.c_encoding());
        if (!day_matches(month, mday, wday)) {
            local = day + date::days(1);
            continue;
        }
        const date::hh_mm_ss tod{local - day};
        int hour = static_cast<int>(tod.hours().count());
        int minute = static_cast<int>(tod.minutes().count());
        for (; hour < 24; ++hour, minute = 0) {
            if (!hours_[static_cast<std::size_t>(hour)]) continue;
            for (; minute < 60; ++minute) {
                if (!minutes_[static_cast<std::size_t>(minute)]) continue;
                const auto candidate = day + hours(hour) + minutes(minute);
                // Earliest: a repeated time's first occurrence; a skipped time maps to the
                // instant of the change.
                const auto at = tz->to_sys(candidate, date::choose::earliest);
                if (at > after) return duration_cast<milliseconds>(at.time_since_epoch()).count();
            }
        }
        local = day + date::days(1);
    }
    return std::nullopt;
}

bool known_time_zone(std::string_view zone) { return find_zone(zone) != nullptr; }

std::int64_t next_period_after(std::int64_t after_ms, std::int64_t period_ms) noexcept {
    std::int64_t q = after_ms / period_ms;
    if (after_ms < 0 && after_ms % period_ms != 0) --q;  // floor for times before the epoch
    return (q + 1) * period_ms;
}

}  // namespace livebase
