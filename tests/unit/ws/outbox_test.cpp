// The WebSocket send queue's limits (style.md: every queue is bounded).
#include "ws/outbox.hpp"

#include <gtest/gtest.h>

using livebase::ws_detail::frame_ptr;
using livebase::ws_detail::outbox;

namespace {

frame_ptr frame(std::size_t n, char c = 'x') { return std::make_shared<const std::string>(n, c); }

std::vector<frame_ptr> delivery(std::size_t frames, std::size_t each) {
    std::vector<frame_ptr> d;
    for (std::size_t i = 0; i < frames; ++i) d.push_back(frame(each));
    return d;
}

TEST(outbox, an_empty_outbox_takes_a_delivery_of_any_size) {
    outbox o({/*max_bytes=*/10, /*max_messages=*/2});
    EXPECT_TRUE(o.admits());
    ASSERT_TRUE(o.push(delivery(5, 100)));  // a replay: 5 frames, 500 bytes
    EXPECT_EQ(o.size(), 5u);
    EXPECT_EQ(o.bytes(), 500u);
    EXPECT_FALSE(o.admits());
    auto next = delivery(1, 1);
    EXPECT_FALSE(o.push(std::move(next)));
    EXPECT_EQ(next.size(), 1u);  // refused: nothing moved
    EXPECT_EQ(o.size(), 5u);
}

TEST(outbox, the_byte_limit_refuses_once_exceeded) {
    outbox o({10, 100});
    ASSERT_TRUE(o.push(frame(4)));
    ASSERT_TRUE(o.push(frame(6)));  // exactly at the limit: still within
    EXPECT_TRUE(o.admits());
    ASSERT_TRUE(o.push(frame(5)));  // within when it came: taken whole, now over
    EXPECT_EQ(o.bytes(), 15u);
    EXPECT_FALSE(o.push(frame(1)));
    EXPECT_EQ(o.size(), 3u);
    EXPECT_EQ(o.bytes(), 15u);
    o.pop();  // 11 bytes: still over
    EXPECT_FALSE(o.admits());
    o.pop();  // 5 bytes
    EXPECT_TRUE(o.admits());
    EXPECT_TRUE(o.push(frame(4)));
}

TEST(outbox, the_message_limit) {
    outbox o({1u << 20, 3});
    for (int i = 0; i < 4; ++i) ASSERT_TRUE(o.push(frame(1))) << i;  // 3 is within, the 4th tips it
    EXPECT_FALSE(o.push(frame(1)));
    EXPECT_FALSE(o.admits());
    EXPECT_EQ(o.size(), 4u);
}

TEST(outbox, the_shared_rule) {
    outbox::limits l{100, 10};
    EXPECT_TRUE(l.admit(0, 0));
    EXPECT_TRUE(l.admit(100, 10));
    EXPECT_FALSE(l.admit(101, 1));
    EXPECT_FALSE(l.admit(1, 11));
}

TEST(outbox, fifo_order_and_clear) {
    outbox o({1000, 1000});
    ASSERT_TRUE(o.push(frame(1, 'a')));
    std::vector<frame_ptr> bc{frame(2, 'b'), frame(3, 'c')};
    ASSERT_TRUE(o.push(std::move(bc)));
    EXPECT_EQ(*o.front(), "a");
    o.pop();
    EXPECT_EQ(*o.front(), "bb");
    o.pop();
    EXPECT_EQ(*o.front(), "ccc");
    o.clear();
    EXPECT_TRUE(o.empty());
    EXPECT_EQ(o.bytes(), 0u);
    EXPECT_EQ(o.size(), 0u);
    EXPECT_TRUE(o.push(frame(2000)));  // empty again: any size
}

TEST(outbox, a_long_stream_keeps_counts_and_order) {
    // Interleaved pushes and pops across many compactions.
    outbox o({1u << 20, 200});
    std::size_t pushed = 0, popped = 0;
    for (int round = 0; round < 2000; ++round) {
        for (int k = 0; k < 3; ++k) {
            ASSERT_TRUE(o.push(std::make_shared<const std::string>(std::to_string(pushed))));
            ++pushed;
        }
        for (int k = 0; k < 2 + 2 * (round % 2); ++k) {
            ASSERT_FALSE(o.empty());
            EXPECT_EQ(*o.front(), std::to_string(popped));
            o.pop();
            ++popped;
        }
    }
    EXPECT_EQ(o.size(), pushed - popped);
    while (!o.empty()) {
        EXPECT_EQ(*o.front(), std::to_string(popped++));
        o.pop();
    }
    EXPECT_EQ(o.bytes(), 0u);
    EXPECT_EQ(popped, pushed);
}

}  // namespace
