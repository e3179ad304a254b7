// diff_window / apply_diffs: hand-picked cases and seeded random windows.
#include <livebase/realtime/live_query.hpp>

#include <gtest/gtest.h>

#include <algorithm>
#include <random>
#include <set>

namespace livebase {
namespace {

window make(std::initializer_list<const char*> pks, int version = 0) {
    window w;
    for (const char* pk : pks) w.push_back(window_row{pk, json::object{{"id", pk}, {"v", version}}});
    return w;
}

std::size_t count(const std::vector<window_diff>& d, window_diff::kind k) {
    return static_cast<std::size_t>(
        std::count_if(d.begin(), d.end(), [k](const window_diff& x) { return x.msg == k; }));
}

void expect_turns_into(const window& from, const window& to) {
    auto diffs = diff_window(from, to);
    window w = from;
    ASSERT_TRUE(apply_diffs(w, diffs));
    EXPECT_EQ(w, to);
}

TEST(live_query, equal_windows_need_no_diff) {
    auto w = make({"a", "b", "c"});
    EXPECT_TRUE(diff_window(w, w).empty());
    EXPECT_TRUE(diff_window({}, {}).empty());
}

TEST(live_query, additions_removals_and_changes) {
    auto from = make({"a", "b", "c"});
    auto to = make({"x", "a", "c", "y"});
    to[1].item["v"] = 7;  // a changed
    auto diffs = diff_window(from, to);
    EXPECT_EQ(count(diffs, window_diff::kind::removed), 1u);
    EXPECT_EQ(count(diffs, window_diff::kind::added), 2u);
    EXPECT_EQ(count(diffs, window_diff::kind::changed), 1u);
    EXPECT_EQ(count(diffs, window_diff::kind::moved), 0u);
    expect_turns_into(from, to);
    expect_turns_into(from, {});
    expect_turns_into({}, to);
}

TEST(live_query, a_row_that_moves_is_one_move) {
    // Rotating by one moves one row, not every row.
    auto diffs = diff_window(make({"a", "b", "c", "d", "e"}), make({"b", "c", "d", "e", "a"}));
    ASSERT_EQ(diffs.size(), 1u);
    EXPECT_EQ(diffs[0].msg, window_diff::kind::moved);
    EXPECT_EQ(diffs[0].pk, "a");
    EXPECT_EQ(diffs[0].from, 0u);
    EXPECT_EQ(diffs[0].order, 4u);
    diffs = diff_window(make({"a", "b", "c", "d", "e"}), make({"e", "a", "b", "c", "d"}));
    ASSERT_EQ(diffs.size(), 1u);
    EXPECT_EQ(diffs[0].from, 4u);
    EXPECT_EQ(diffs[0].order, 0u);
    // Reversal keeps one row and moves the rest.
    auto rev = diff_window(make({"a", "b", "c", "d"}), make({"d", "c", "b", "a"}));
    EXPECT_EQ(count(rev, window_diff::kind::moved), 3u);
    expect_turns_into(make({"a", "b", "c", "d"}), make({"d", "c", "b", "a"}));
}

TEST(live_query, json_form) {
    window_diff d;
    d.msg = window_diff::kind::moved;
    d.from = 5;
    d.order = 3;
    d.pk = "p";
    EXPECT_EQ(json::serialize(to_json(d)), R"({"msg":"moved","order":3,"from":5,"pk":"p"})");
    d.msg = window_diff::kind::added;
    d.item = {{"id", "p"}};
    EXPECT_EQ(json::serialize(to_json(d)), R"({"msg":"added","order":3,"pk":"p","item":{"id":"p"}})");
    d.msg = window_diff::kind::removed;
    EXPECT_EQ(json::serialize(to_json(d)), R"({"msg":"removed","order":3,"pk":"p"})");
}

TEST(live_query, apply_refuses_steps_that_do_not_fit) {
    auto w = make({"a", "b"});
    window_diff d;
    d.msg = window_diff::kind::removed;
    d.order = 2;
    d.pk = "a";
    EXPECT_FALSE(apply_diffs(w, {d}));
    d.order = 1;  // "b" is there, not "a"
    w = make({"a", "b"});
    EXPECT_FALSE(apply_diffs(w, {d}));
    d.msg = window_diff::kind::added;
    d.order = 3;
    w = make({"a", "b"});
    EXPECT_FALSE(apply_diffs(w, {d}));
    d.msg = window_diff::kind::moved;
    d.from = 0;
    d.order = 2;
    w = make({"a", "b"});
    EXPECT_FALSE(apply_diffs(w, {d}));
}

// Random windows over a small id space, so rows are often shared, moved and changed.
TEST(live_query, random_windows_round_trip) {
    std::mt19937 rng(20261124);
    for (int round = 0; round < 3000; ++round) {
        std::vector<std::string> ids;
        for (int i = 0; i < 16; ++i) ids.push_back("r" + std::to_string(i));
        auto pick = [&](int version_base) {
            std::shuffle(ids.begin(), ids.end(), rng);
            window w;
            std::size_t n = rng() % (ids.size() + 1);
            for (std::size_t i = 0; i < n; ++i)
                w.push_back(window_row{ids[i], json::object{{"id", ids[i]}, {"v", version_base + static_cast<int>(rng() % 2)}}});
            return w;
        };
        window from = pick(0), to = pick(0);
        auto diffs = diff_window(from, to);
        window w = from;
        ASSERT_TRUE(apply_diffs(w, diffs)) << "round " << round;
        ASSERT_EQ(w, to) << "round " << round;

        // Each row moves at most once, and only rows present in both windows move or change.
        std::set<std::string> in_from, in_to, moved;
        for (const auto& r : from) in_from.insert(r.pk);
        for (const auto& r : to) in_to.insert(r.pk);
        for (const auto& d : diffs) {
            if (d.msg == window_diff::kind::moved) {
                EXPECT_TRUE(moved.insert(d.pk).second) << d.pk << " moved twice";
                EXPECT_TRUE(in_from.count(d.pk) && in_to.count(d.pk));
            }
            if (d.msg == window_diff::kind::added) {
                EXPECT_FALSE(in_from.count(d.pk));
            }
            if (d.msg == window_diff::kind::removed) {
                EXPECT_FALSE(in_to.count(d.pk));
            }
        }
        // Rows in both windows and already in order do not move: the moves are at most
        // (shared rows - longest common order); check the simpler bound of shared - 1.
        std::size_t shared = 0;
        for (const auto& pk : in_from) shared += in_to.count(pk);
        EXPECT_LE(moved.size(), shared > 0 ? shared - 1 : 0);
    }
}

}  // namespace
}  // namespace livebase
