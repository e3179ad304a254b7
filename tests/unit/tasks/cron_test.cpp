#include <livebase/tasks/cron.hpp>

#include <livebase/core/clock.hpp>

#include <gtest/gtest.h>

namespace livebase {
namespace {

std::int64_t at(const char* rfc3339) {
    auto t = parse_timestamp(rfc3339);
    EXPECT_TRUE(t) << rfc3339;
    return t.value_or(0);
}

std::string next(const char* expr, const char* after, const char* zone = "UTC") {
    auto e = cron_expr::parse(expr);
    EXPECT_TRUE(e) << expr;
    if (!e) return "";
    auto n = e->next_after(at(after), zone);
    return n ? format_timestamp(*n) : "never";
}

TEST(cron_test, fields_steps_ranges_lists_and_names) {
    EXPECT_EQ(next("*/15 * * * *", "2026-01-01T10:07:00Z"), "2026-01-01T10:15:00.000Z");
    EXPECT_EQ(next("*/15 * * * *", "2026-01-01T10:15:00Z"), "2026-01-01T10:30:00.000Z");  // strictly after
    EXPECT_EQ(next("0 9-17/4 * * *", "2026-01-01T10:00:00Z"), "2026-01-01T13:00:00.000Z");
    EXPECT_EQ(next("5,35 2 * * *", "2026-01-01T02:06:00Z"), "2026-01-01T02:35:00.000Z");
    EXPECT_EQ(next("0 0 1 mar *", "2026-01-01T00:00:00Z"), "2026-03-01T00:00:00.000Z");
    EXPECT_EQ(next("0 12 * * MON-fri", "2026-01-03T00:00:00Z"), "2026-01-05T12:00:00.000Z");  // Sat -> Mon
    EXPECT_EQ(next("0 0 * * 7", "2026-01-01T00:00:00Z"), "2026-01-04T00:00:00.000Z");  // 7 = Sunday
    EXPECT_EQ(next("30/10 * * * *", "2026-01-01T00:31:00Z"), "2026-01-01T00:40:00.000Z");
    EXPECT_EQ(next("@daily", "2026-01-01T00:00:00Z"), "2026-01-02T00:00:00.000Z");
    EXPECT_EQ(next("@hourly", "2026-01-01T00:59:59.999Z"), "2026-01-01T01:00:00.000Z");
    EXPECT_EQ(next("0 0 29 2 *", "2026-03-01T00:00:00Z"), "2028-02-29T00:00:00.000Z");
}

TEST(cron_test, both_day_fields_restricted_match_either) {
    // The 13th or any Friday: 2026-02-06 is a Friday, before the 13th.
    EXPECT_EQ(next("0 0 13 * 5", "2026-02-01T00:00:00Z"), "2026-02-06T00:00:00.000Z");
    EXPECT_EQ(next("0 0 13 * 5", "2026-02-12T00:00:00Z"), "2026-02-13T00:00:00.000Z");
}

TEST(cron_test, never_matching_expressions_have_no_next_tick) {
    EXPECT_EQ(next("0 0 30 2 *", "2026-01-01T00:00:00Z"), "never");
    EXPECT_EQ(next("0 0 31 4 *", "2026-01-01T00:00:00Z"), "never");
}

TEST(cron_test, bad_expressions_name_the_field) {
    struct bad {
        const char* expr;
        const char* says;
    };
    for (const auto& b : {bad{"", "five"}, bad{"* * * *", "has 4 fields"}, bad{"* * * * * *", "has 6 fields"},
                          bad{"60 * * * *", "minute"}, bad{"* 24 * * *", "hour"}, bad{"* * 0 * *", "day of month"},
                          bad{"* * * 13 *", "month"}, bad{"* * * * 8", "day of week"}, bad{"*/0 * * * *", "step"},
                          bad{"5-1 * * * *", "ends before"}, bad{"a * * * *", "not a number"},
                          bad{"1,,2 * * * *", "empty"}, bad{"* * * foo *", "month"}, bad{"@often", "@daily"},
                          bad{"*/99999999999 * * * *", "step"}, bad{"-1 * * * *", "range"}}) {
        auto e = cron_expr::parse(b.expr);
        ASSERT_FALSE(e) << b.expr;
        EXPECT_EQ(e.error().status, 400) << b.expr;
        EXPECT_NE(e.error().detail.find(b.says), std::string::npos) << b.expr << ": " << e.error().detail;
    }
}

TEST(cron_test, time_zones_shift_ticks) {
    EXPECT_EQ(next("0 9 * * *", "2026-01-01T00:00:00Z", "Europe/Berlin"), "2026-01-01T08:00:00.000Z");
    EXPECT_EQ(next("0 9 * * *", "2026-07-01T00:00:00Z", "Europe/Berlin"), "2026-07-01T07:00:00.000Z");
    EXPECT_EQ(next("0 9 * * *", "2026-01-01T00:00:00Z", "America/New_York"), "2026-01-01T14:00:00.000Z");
    EXPECT_EQ(next("0 9 * * *", "2026-01-01T00:00:00Z", "Mars/Olympus"), "never");
    EXPECT_TRUE(known_time_zone("UTC"));
    EXPECT_TRUE(known_time_zone("Europe/Berlin"));
    EXPECT_FALSE(known_time_zone("Mars/Olympus"));
    EXPECT_FALSE(known_time_zone(""));
    EXPECT_FALSE(known_time_zone("../../etc/passwd"));
}

TEST(cron_test, skipped_local_times_tick_once_at_the_change) {
    // Europe/Berlin 2026-03-29: 02:00 CET becomes 03:00 CEST (01:00 UTC). 02:30 does not exist.
    EXPECT_EQ(next("30 2 * * *", "2026-03-28T12:00:00Z", "Europe/Berlin"), "2026-03-29T01:00:00.000Z");
    // Every 15 minutes: 01:45 CET, then the change (02:00..02:45 do not exist, and 03:00 is the
    // same instant), then 03:15 CEST.
    EXPECT_EQ(next("*/15 * * * *", "2026-03-29T00:30:00Z", "Europe/Berlin"), "2026-03-29T00:45:00.000Z");
    EXPECT_EQ(next("*/15 * * * *", "2026-03-29T00:45:00Z", "Europe/Berlin"), "2026-03-29T01:00:00.000Z");
    EXPECT_EQ(next("*/15 * * * *", "2026-03-29T01:00:00Z", "Europe/Berlin"), "2026-03-29T01:15:00.000Z");
    // The day after, 02:30 exists again.
    EXPECT_EQ(next("30 2 * * *", "2026-03-29T02:00:00Z", "Europe/Berlin"), "2026-03-30T00:30:00.000Z");
}

TEST(cron_test, repeated_local_times_tick_once_at_their_first_occurrence) {
    // Europe/Berlin 2026-10-25: 03:00 CEST becomes 02:00 CET (01:00 UTC); 02:30 occurs twice,
    // at 00:30 UTC and 01:30 UTC.
    EXPECT_EQ(next("30 2 * * *", "2026-10-24T12:00:00Z", "Europe/Berlin"), "2026-10-25T00:30:00.000Z");
    EXPECT_EQ(next("30 2 * * *", "2026-10-25T00:30:00Z", "Europe/Berlin"), "2026-10-26T01:30:00.000Z");
    // Asked during the second pass through the repeated hour: the next tick is later, never
    // the first occurrence that has passed.
    EXPECT_EQ(next("*/15 * * * *", "2026-10-25T01:10:00Z", "Europe/Berlin"), "2026-10-25T02:00:00.000Z");
    EXPECT_EQ(next("*/15 * * * *", "2026-10-25T00:45:00Z", "Europe/Berlin"), "2026-10-25T02:00:00.000Z");
}

TEST(cron_test, periods_tick_at_multiples_since_the_epoch) {
    EXPECT_EQ(next_period_after(0, 1000), 1000);
    EXPECT_EQ(next_period_after(999, 1000), 1000);
    EXPECT_EQ(next_period_after(1000, 1000), 2000);
    EXPECT_EQ(next_period_after(-1, 1000), 0);
    EXPECT_EQ(next_period_after(at("2026-01-01T10:07:00Z"), 3600 * 1000), at("2026-01-01T11:00:00Z"));
}

}  // namespace
}  // namespace livebase
