#pragma once
/// Cron expressions and periods: when a schedule ticks (docs/tasks.md "Schedules").
///
/// A cron expression has five fields, minute hour day-of-month month day-of-week, each `*`, a
/// number, a range `a-b`, a step `*/n` or `a-b/n`, or a comma list of those; months and days
/// of the week may be named (jan, mon); day-of-week 0 and 7 are Sunday. When both day fields
/// are restricted a day matches either (as in Vixie cron). `@yearly`, `@monthly`, `@weekly`,
/// `@daily` and `@hourly` stand for their usual expressions.
///
/// Ticks are wall-clock times in the schedule's time zone. Across a daylight-saving change:
/// a time that occurs twice (clocks go back) ticks once, at its first occurrence; times that
/// do not exist (clocks go forward) tick once, at the instant of the change.
#include <livebase/core/result.hpp>

#include <bitset>
#include <cstdint>
#include <optional>
#include <string>
#include <string_view>

namespace livebase {

class cron_expr {
public:
    /// Parses `text`. Problems: 400 naming the field and what is wrong with it.
    static result<cron_expr> parse(std::string_view text);

    /// The first tick strictly after `after_ms` (ms since the epoch, a whole minute) in time
    /// zone `zone` (an IANA name; see known_time_zone). nullopt when the expression never
    /// matches within five years (for example "0 0 30 2 *") or the zone is unknown.
    std::optional<std::int64_t> next_after(std::int64_t after_ms, std::string_view zone) const;

    /// Whether the fields match this local date and time (weekday 0 = Sunday).
    bool matches(int month, int day, int weekday, int hour, int minute) const;

private:
    bool day_matches(int month, int day, int weekday) const;

    std::bitset<60> minutes_;
    std::bitset<24> hours_;
    std::bitset<32> days_;    ///< 1..31
    std::bitset<13> months_;  ///< 1..12
    std::bitset<7> weekdays_; ///< 0 = Sunday
    bool any_day_ = true;     ///< day-of-month was "*"
    bool any_weekday_ = true; ///< day-of-week was "*"
};

/// Whether `zone` names a time zone of the system's time-zone database ("UTC", "Europe/Berlin").
bool known_time_zone(std::string_view zone);

/// The first multiple of `period_ms` (> 0) since the epoch strictly after `after_ms`: periods
/// tick at the same instants on every node.
std::int64_t next_period_after(std::int64_t after_ms, std::int64_t period_ms) noexcept;

}  // namespace livebase
