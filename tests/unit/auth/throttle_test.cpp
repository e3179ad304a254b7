#include <livebase/auth/auth.hpp>

#include <gtest/gtest.h>

namespace livebase {
namespace {

using namespace std::chrono_literals;
using steady = std::chrono::steady_clock;

TEST(Throttle, BurstThenRefused) {
    throttle t;
    rate r{3, 1s};
    auto now = steady::now();
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(t.take("ip:1", r, now).has_value()) << i;
    auto wait = t.take("ip:1", r, now);
    ASSERT_TRUE(wait.has_value());
    EXPECT_GT(wait->count(), 0);
    EXPECT_EQ(wait->count() % 1000, 0) << "Retry-After is whole seconds";
    EXPECT_LE(*wait, 1s);
}

TEST(Throttle, RefillsWithTime) {
    throttle t;
    rate r{3, 3s};  // one token per second
    auto now = steady::now();
    for (int i = 0; i < 3; ++i) ASSERT_FALSE(t.take("k", r, now));
    ASSERT_TRUE(t.take("k", r, now));
    EXPECT_TRUE(t.take("k", r, now + 500ms)) << "half a token is not enough";
    EXPECT_FALSE(t.take("k", r, now + 1100ms));
    EXPECT_TRUE(t.take("k", r, now + 1200ms));
    // A long pause refills to `count`, never beyond.
    auto later = now + 1h;
    for (int i = 0; i < 3; ++i) EXPECT_FALSE(t.take("k", r, later)) << i;
    EXPECT_TRUE(t.take("k", r, later));
}

TEST(Throttle, SlowRateWaitsLong) {
    throttle t;
    rate r{1, std::chrono::minutes(1)};
    auto now = steady::now();
    ASSERT_FALSE(t.take("k", r, now));
    auto wait = t.take("k", r, now);
    ASSERT_TRUE(wait);
    EXPECT_EQ(*wait, 60s);
    wait = t.take("k", r, now + 30s);
    ASSERT_TRUE(wait);
    EXPECT_EQ(*wait, 30s);
}

TEST(Throttle, KeysAreIndependent) {
    throttle t;
    rate r{1, 1s};
    auto now = steady::now();
    EXPECT_FALSE(t.take("a", r, now));
    EXPECT_TRUE(t.take("a", r, now));
    EXPECT_FALSE(t.take("b", r, now));
    EXPECT_EQ(t.size(), 2u);
}

TEST(Throttle, ZeroCountIsUnlimited) {
    throttle t;
    rate r{0, 1s};
    auto now = steady::now();
    for (int i = 0; i < 10000; ++i) ASSERT_FALSE(t.take("k", r, now));
    EXPECT_EQ(t.size(), 0u);
}

TEST(Throttle, MemoryIsBounded) {
    throttle t(160);
    rate r{5, std::chrono::minutes(1)};
    auto now = steady::now();
    for (int i = 0; i < 20000; ++i) ASSERT_FALSE(t.take("ip:" + std::to_string(i), r, now));
    EXPECT_LE(t.size(), 160u);
    EXPECT_GT(t.size(), 0u);
}

TEST(Throttle, FullBucketsAreDroppedFirst) {
    // 4 buckets per shard. A drained bucket with a slow rate survives a flood of keys that each
    // took one token and were full again by the next sweep.
    throttle t(16 * 4);
    rate slow{2, std::chrono::hours(1)};
    rate fast{2, 1s};
    auto now = steady::now();
    ASSERT_FALSE(t.take("busy", slow, now));
    ASSERT_FALSE(t.take("busy", slow, now));
    ASSERT_TRUE(t.take("busy", slow, now));
    for (int i = 1; i <= 1000; ++i)
        ASSERT_FALSE(t.take("k" + std::to_string(i), fast, now + std::chrono::seconds(i)));
    EXPECT_LE(t.size(), 64u);
    // Were the drained bucket dropped, "busy" would start full again.
    EXPECT_TRUE(t.take("busy", slow, now + 1001s));
}

TEST(Throttle, LeastRecentlyUsedDroppedWhenNoneIsFull) {
    throttle t(16);  // one bucket per shard
    rate r{2, std::chrono::hours(1)};
    auto now = steady::now();
    for (int i = 0; i < 100; ++i) ASSERT_FALSE(t.take("k" + std::to_string(i), r, now + std::chrono::milliseconds(i)));
    EXPECT_LE(t.size(), 16u);
}

TEST(Throttle, Key) {
    principal anon;
    EXPECT_EQ(throttle_key(anon, "10.0.0.1"), "ip:10.0.0.1");
    principal who;
    who.user_id = "01U";
    EXPECT_EQ(throttle_key(who, "10.0.0.1"), "u:01U");
}

}  // namespace
}  // namespace livebase
