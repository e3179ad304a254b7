// Resumes replayed in pages: the pages add up to the history, in order; the replay meets the
// live stream without a gap or a duplicate; a page is read only when the sink has room; a
// history trimmed under a paused replay, or a replay left too far behind, ends in a resync.
#include "unit/realtime/hub_fixture.hpp"

#include <atomic>
#include <numeric>

namespace livebase {
namespace {

using test::capturing_sink;
using test::car;
using test::decode;

class hub_replay : public test::hub_test_base {
protected:
    static hub_options paged(std::size_t events, std::size_t bytes = 1u << 20) {
        hub_options o;
        o.replay_page_events = events;
        o.replay_page_bytes = bytes;
        return o;
    }

    // Seqs of the frames, checked to run after `since` one by one (every change matches).
    static void expect_contiguous(const std::vector<std::shared_ptr<const std::string>>& frames,
                                  std::int64_t since, std::int64_t last) {
        ASSERT_EQ(frames.size(), static_cast<std::size_t>(last - since));
        std::int64_t expect = since;
        for (const auto& f : frames) {
            const auto seq = decode(*f).seq;
            ASSERT_EQ(seq, expect + 1) << "gap or duplicate after seq " << expect;
            expect = seq;
        }
    }

    /// A client whose sink holds every page until the test hands out room, subscribed from
    /// seq 0; returns once its first page is held (a failed expectation when it is not).
    std::string held_from_start(const std::shared_ptr<capturing_sink>& sink) {
        sink->gate(true);
        auto client = attach(sink);
        subscribe_request req;
        req.since = 0;
        EXPECT_TRUE(subscribe(client, req).has_value());
        EXPECT_TRUE(sink->wait_held());
        return client;
    }

    /// Writes `cars` cars (brands `prefix` + n), starts the hub with pages of 10 and returns a
    /// client held at its first replay page (held_from_start()).
    std::string held_replay_of(int cars, const std::string& prefix, const std::shared_ptr<capturing_sink>& sink) {
        for (int i = 0; i < cars; ++i) create(car(prefix + std::to_string(i)));
        start(paged(10));
        return held_from_start(sink);
    }

    // Gives held when_ready() notices until the sink's replay is live (bounded).
    bool drain_until_live(capturing_sink& sink) {
        const auto until = std::chrono::steady_clock::now() + test::k_deadline;
        while (hub_->replays() > 0) {
            if (std::chrono::steady_clock::now() > until) return false;
            if (!sink.release()) std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return true;
    }
};

TEST_F(hub_replay, the_pages_add_up_to_the_full_history_byte_for_byte) {
    start(paged(16));
    auto live = std::make_shared<capturing_sink>();
    auto live_client = attach(live);
    ASSERT_TRUE(subscribe(live_client, {}).has_value());
    std::int64_t last = 0;
    for (int i = 0; i < 150; ++i) {
        auto c = car("C" + std::to_string(i), {{"brand", i % 3 ? "Ford" : "Kia"}, {"model", i}});
        last = create(c);
        if (i % 10 == 0) last = update(car("C" + std::to_string(i), {{"brand", "Kia"}}, 2));
    }
    ASSERT_TRUE(wait_seq(last));
    ASSERT_TRUE(live->wait_for(static_cast<std::size_t>(last)));

    // The same subscription (s-1 on a fresh client) resumed from 0 gets the same frames.
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    subscribe_request req;
    req.since = 0;
    auto sub = subscribe(client, req);
    ASSERT_TRUE(sub.has_value()) << sub.error().detail;
    EXPECT_EQ(sub->subscription, "s-1");
    ASSERT_TRUE(sink->wait_for(static_cast<std::size_t>(last)));
    ASSERT_TRUE(drain_until_live(*sink));
    auto got = sink->frames(), want = live->frames();
    ASSERT_EQ(got.size(), want.size());
    for (std::size_t i = 0; i < got.size(); ++i) ASSERT_EQ(*got[i], *want[i]) << "frame " << i;
    auto sizes = sink->delivery_sizes();
    EXPECT_GE(sizes.size(), static_cast<std::size_t>(last) / 16);
    for (auto n : sizes) EXPECT_LE(n, 16u);
    EXPECT_EQ(hub_->replayed_events(), static_cast<std::uint64_t>(last));
    EXPECT_EQ(hub_->replays(), 0u);

    // A filtered resume: the subscription's filter and actions apply to every page.
    auto fords = std::make_shared<capturing_sink>();
    auto fords_client = attach(fords);
    subscribe_request f;
    f.since = 0;
    f.filter = {{"brand", "Ford"}};
    f.actions = {"create"};
    ASSERT_TRUE(subscribe(fords_client, f).has_value());
    ASSERT_TRUE(drain_until_live(*fords));
    std::size_t expected = 0;
    for (const auto& frame : want) {
        auto e = decode(*frame);
        if (e.action == "create" && get_string(e.data.as_object(), "brand") == "Ford") ++expected;
    }
    ASSERT_TRUE(fords->wait_for(expected));
    EXPECT_EQ(fords->size(), expected);
}

TEST_F(hub_replay, a_page_stops_at_its_byte_bound) {
    const std::string big(2000, 'x');
    for (int i = 0; i < 40; ++i) create(car("B" + std::to_string(i), {{"brand", big}}));
    start(paged(1000, 5000));
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    subscribe_request req;
    req.since = 0;
    ASSERT_TRUE(subscribe(client, req).has_value());
    ASSERT_TRUE(drain_until_live(*sink));
    ASSERT_TRUE(sink->wait_for(40));
    auto frames = sink->frames();
    expect_contiguous(frames, 0, 40);
    std::size_t at = 0;
    for (auto n : sink->delivery_sizes()) {
        ASSERT_GE(n, 1u);
        std::size_t before_last = 0;  // a page ends with the frame that reached the bound
        for (std::size_t i = at; i + 1 < at + n; ++i) before_last += frames[i]->size();
        EXPECT_LT(before_last, 5000u);
        at += n;
    }
    EXPECT_GE(sink->deliveries(), 40u / 3);
}

TEST_F(hub_replay, the_replay_meets_the_live_stream_without_gap_or_duplicate_while_writes_continue) {
    for (int i = 0; i < 200; ++i) create(car("P" + std::to_string(i), {{"model", i}}));
    start(paged(8));
    const std::int64_t since = 50;

    std::atomic<int> written{0};
    std::thread writer([&] {
        for (int i = 0; i < 200; ++i) {
            create(car("W" + std::to_string(i), {{"model", 1000 + i}}));
            ++written;
        }
    });
    while (written.load() < 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    auto sink = std::make_shared<capturing_sink>();
    sink->gate(true);  // every page waits for the test to hand out room
    auto client = attach(sink);
    subscribe_request req;
    req.since = since;
    auto sub = subscribe(client, req);
    ASSERT_TRUE(sub.has_value()) << sub.error().detail;
    ASSERT_TRUE(drain_until_live(*sink));
    writer.join();
    const std::int64_t last = db_->last_seq();
    ASSERT_EQ(last, 400);
    ASSERT_TRUE(wait_seq(last));
    ASSERT_TRUE(sink->wait_for(static_cast<std::size_t>(last - since)));
    expect_contiguous(sink->frames(), since, last);
}

TEST_F(hub_replay, a_slow_consumer_gets_pages_only_as_it_drains) {
    for (int i = 0; i < 100; ++i) create(car("S" + std::to_string(i)));
    start(paged(10));
    auto other = std::make_shared<capturing_sink>();
    auto other_client = attach(other);
    ASSERT_TRUE(subscribe(other_client, {}).has_value());

    auto sink = std::make_shared<capturing_sink>();
    auto client = held_from_start(sink);
    ASSERT_FALSE(HasFailure());
    EXPECT_EQ(sink->deliveries(), 1u);
    EXPECT_EQ(sink->size(), 10u);
    EXPECT_EQ(hub_->replays(), 1u);

    // While the replay waits, the hub serves everyone else: commands are answered and another
    // client's live events arrive; the paused replay gets nothing more.
    auto missing = unsubscribe(client, "s-99");
    ASSERT_FALSE(missing.has_value());
    auto during = create(car("LIVE"));
    ASSERT_TRUE(wait_seq(during));
    ASSERT_TRUE(other->wait_for(1));
    EXPECT_EQ(decode(*other->frames()[0]).seq, during);
    EXPECT_EQ(sink->deliveries(), 1u);
    EXPECT_TRUE(sink->held());

    // Each notice of room brings exactly one more page.
    for (std::size_t page = 2; page <= 10; ++page) {
        ASSERT_TRUE(sink->release());
        ASSERT_TRUE(sink->wait_held()) << "page " << page;
        EXPECT_EQ(sink->deliveries(), page);
        EXPECT_EQ(sink->size(), page * 10);
    }
    // The last page holds the change written during the pause; then the replay is live.
    ASSERT_TRUE(drain_until_live(*sink));
    auto after = create(car("AFTER"));
    ASSERT_TRUE(wait_seq(after));
    ASSERT_TRUE(sink->wait_for(static_cast<std::size_t>(after)));
    expect_contiguous(sink->frames(), 0, after);
    EXPECT_EQ(hub_->replayed_events(), static_cast<std::uint64_t>(during));
}

TEST_F(hub_replay, a_history_trimmed_under_a_paused_replay_ends_it_with_a_resync) {
    auto sink = std::make_shared<capturing_sink>();
    auto client = held_replay_of(60, "T", sink);
    ASSERT_FALSE(HasFailure());
    ASSERT_EQ(sink->size(), 10u);

    auto trimmed = db_->write_sync([](write_txn& t) -> result<json::value> {
        auto n = t.trim_changes(5, 0);
        if (!n) return std::move(n).error();
        return json::value(*n);
    });
    ASSERT_TRUE(trimmed.has_value());
    ASSERT_TRUE(sink->release());
    ASSERT_TRUE(sink->wait_resync());
    EXPECT_EQ(hub_->replays(), 0u);
    // Nothing past the hole went out, and the subscription is gone.
    expect_contiguous(sink->frames(), 0, 10);
    auto gone = unsubscribe(client, "s-1");
    ASSERT_FALSE(gone.has_value());
    EXPECT_EQ(gone.error().status, 404);
    auto later = create(car("LATER"));
    ASSERT_TRUE(wait_seq(later));
    EXPECT_EQ(sink->size(), 10u);
}

TEST_F(hub_replay, a_replay_left_more_than_max_replay_behind_ends_with_a_resync) {
    for (int i = 0; i < 40; ++i) create(car("M" + std::to_string(i)));
    hub_options o = paged(10);
    o.max_replay = 50;
    start(o);
    auto sink = std::make_shared<capturing_sink>();
    auto client = held_from_start(sink);
    ASSERT_FALSE(HasFailure());
    std::int64_t last = 0;
    for (int i = 0; i < 60; ++i) last = create(car("N" + std::to_string(i)));
    ASSERT_TRUE(wait_seq(last));
    ASSERT_TRUE(sink->release());  // page 2 ends at seq 20, 80 behind the log
    ASSERT_TRUE(sink->wait_resync());
    EXPECT_EQ(hub_->replays(), 0u);
    expect_contiguous(sink->frames(), 0, 20);
}

TEST_F(hub_replay, each_page_is_filtered_for_the_identity_the_client_has_when_it_is_read) {
    may_see_ = [](const principal& who, const collection_def&, const json::object&) {
        return who.user_id != "blocked";
    };
    auto sink = std::make_shared<capturing_sink>();
    auto client = held_replay_of(30, "I", sink);
    ASSERT_FALSE(HasFailure());
    ASSERT_EQ(sink->size(), 10u);

    principal blocked;
    blocked.user_id = "blocked";
    hub_->set_principal(client, blocked);
    ASSERT_FALSE(unsubscribe(client, "s-99").has_value());  // the identity changed before
    ASSERT_TRUE(drain_until_live(*sink));
    EXPECT_EQ(sink->size(), 10u);  // pages 2 and 3 were read as "blocked"

    principal u1;
    u1.user_id = "u1";
    hub_->set_principal(client, u1);
    auto live = create(car("LIVE"));
    ASSERT_TRUE(sink->wait_for(11));
    EXPECT_EQ(decode(*sink->frames()[10]).seq, live);
}

TEST_F(hub_replay, detaching_or_unsubscribing_during_a_replay_ends_it) {
    for (int i = 0; i < 50; ++i) create(car("D" + std::to_string(i)));
    start(paged(10));
    auto a = std::make_shared<capturing_sink>();
    a->gate(true);
    auto ca = attach(a);
    auto b = std::make_shared<capturing_sink>();
    b->gate(true);
    auto cb = attach(b);
    subscribe_request req;
    req.since = 0;
    ASSERT_TRUE(subscribe(ca, req).has_value());
    ASSERT_TRUE(subscribe(cb, req).has_value());
    ASSERT_TRUE(a->wait_held());
    ASSERT_TRUE(b->wait_held());
    EXPECT_EQ(hub_->replays(), 2u);
    ASSERT_TRUE(unsubscribe(ca, "s-1").has_value());
    hub_->detach(cb);
    auto missing = unsubscribe(ca, "s-99");  // answered after the detach ran
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().status, 404);
    EXPECT_EQ(hub_->replays(), 0u);
    // Late notices of room find nothing to continue.
    EXPECT_TRUE(a->release());
    EXPECT_TRUE(b->release());
    auto later = create(car("LATER"));
    ASSERT_TRUE(wait_seq(later));
    EXPECT_EQ(a->size(), 10u);
    EXPECT_EQ(b->size(), 10u);
}

}  // namespace
}  // namespace livebase
