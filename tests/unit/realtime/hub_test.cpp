// The hub against a real SQLite store: subscriptions, matching, authorization, limits,
// lifecycle, resume and frame sharing.
#include "unit/realtime/hub_fixture.hpp"

#include <atomic>
#include <set>

namespace livebase {
namespace {

using test::capturing_sink;
using test::car;
using test::decode;

class hub_test : public test::hub_test_base {};

TEST_F(hub_test, events_arrive_in_commit_order_with_the_documented_frame) {
    start();
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    auto sub = subscribe(client, {});
    ASSERT_TRUE(sub.has_value()) << sub.error().detail;
    EXPECT_EQ(sub->subscription, "s-1");
    EXPECT_EQ(sub->seq, 0);

    auto a = car("A", {{"brand", "Ford"}});
    auto s1 = create(a);
    auto a2 = car("A", {{"brand", "Kia"}}, 2);
    auto s2 = update(a2);
    auto s3 = remove(a2);
    ASSERT_TRUE(sink->wait_for(3));
    ASSERT_TRUE(wait_seq(s3));

    auto frames = sink->frames();
    ASSERT_EQ(frames.size(), 3u);
    auto e1 = decode(*frames[0]), e2 = decode(*frames[1]), e3 = decode(*frames[2]);
    EXPECT_EQ(e1.action, "create");
    EXPECT_EQ(e2.action, "update");
    EXPECT_EQ(e3.action, "delete");
    EXPECT_EQ(e1.seq, s1);
    EXPECT_EQ(e2.seq, s2);
    EXPECT_EQ(e3.seq, s3);
    for (const auto& e : {e1, e2, e3}) {
        EXPECT_EQ(e.stream, "cars");
        EXPECT_EQ(e.pk, "A");
        EXPECT_EQ(e.subscription, "s-1");
    }
    EXPECT_EQ(get_string(e2.data.as_object(), "brand"), "Kia");
    EXPECT_EQ(get_string(e3.data.as_object(), "brand"), "Kia");  // the record before deletion

    // Byte for byte: the presented record is serialized once and framed by concatenation.
    std::promise<json::object> logged;
    db_->read([&](read_txn& t) {
        auto log = t.changes_after(s2 - 1, 1);
        logged.set_value(log && !log->empty() ? log->front().record : json::object{});
    });
    std::string expected = R"({"stream":"cars","payload":{"action":"update","pk":"A","data":)" +
                           json::serialize(present_record(cars_, logged.get_future().get())) + R"(,"seq":)" +
                           std::to_string(s2) + R"(,"subscription":"s-1"}})";
    EXPECT_EQ(*frames[1], expected);
    EXPECT_EQ(hub_->seq(), s3);
}

TEST_F(hub_test, overlapping_subscriptions_each_get_their_tagged_copy) {
    start();
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    ASSERT_TRUE(subscribe(client, {}).has_value());
    subscribe_request fords;
    fords.filter = {{"brand", "Ford"}};
    ASSERT_TRUE(subscribe(client, fords).has_value());

    create(car("A", {{"brand", "Kia"}}));
    auto last = create(car("B", {{"brand", "Ford"}}));
    ASSERT_TRUE(wait_seq(last));
    auto frames = sink->frames();
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(decode(*frames[0]).pk, "A");
    EXPECT_EQ(decode(*frames[0]).subscription, "s-1");
    std::set<std::string> tags{decode(*frames[1]).subscription, decode(*frames[2]).subscription};
    EXPECT_EQ(tags, (std::set<std::string>{"s-1", "s-2"}));
    EXPECT_EQ(decode(*frames[1]).pk, "B");
    EXPECT_EQ(decode(*frames[2]).pk, "B");
    // Everything of one pass arrives in one delivery per client.
    EXPECT_LE(sink->deliveries(), 2u);
}

TEST_F(hub_test, actions_select_the_events) {
    start();
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    subscribe_request req;
    req.actions = {"delete"};
    ASSERT_TRUE(subscribe(client, req).has_value());
    auto a = car("A", {{"brand", "Ford"}});
    create(a);
    auto a2 = car("A", {{"brand", "Kia"}}, 2);
    update(a2);
    auto last = remove(a2);
    ASSERT_TRUE(wait_seq(last));
    auto frames = sink->frames();
    ASSERT_EQ(frames.size(), 1u);
    EXPECT_EQ(decode(*frames[0]).action, "delete");
    EXPECT_EQ(decode(*frames[0]).seq, last);
}

TEST_F(hub_test, pk_subscriptions_see_only_their_record) {
    create(car("A", {{"brand", "Ford"}}));
    create(car("B", {{"brand", "Ford"}}));
    start();
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    subscribe_request req;
    req.pk = "A";
    ASSERT_TRUE(subscribe(client, req).has_value());
    subscribe_request missing;
    missing.pk = "nope";
    auto r = subscribe(client, missing);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 404);

    update(car("B", {{"brand", "Kia"}}, 2));
    update(car("A", {{"brand", "Kia"}}, 2));
    auto last = remove(car("B", {{"brand", "Kia"}}, 2));
    ASSERT_TRUE(wait_seq(last));
    auto frames = sink->frames();
    ASSERT_EQ(frames.size(), 1u);
    auto e = decode(*frames[0]);
    EXPECT_EQ(e.pk, "A");
    EXPECT_EQ(e.action, "update");
    EXPECT_EQ(e.subscription, "s-1");
}

TEST_F(hub_test, a_record_entering_or_leaving_the_filter_is_a_create_or_delete) {
    start();
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    subscribe_request req;
    req.filter = {{"brand", "Ford"}, {"model__gte", 2010}};
    ASSERT_TRUE(subscribe(client, req).has_value());

    create(car("A", {{"brand", "Kia"}, {"model", 2015}}));                       // no
    auto enter = update(car("A", {{"brand", "Ford"}, {"model", 2015}}, 2));      // create
    auto change = update(car("A", {{"brand", "Ford"}, {"model", 2016}}, 3));     // update
    auto leave = update(car("A", {{"brand", "Ford"}, {"model", 2001}}, 4));      // delete
    update(car("A", {{"brand", "Kia"}, {"model", 2001}}, 5));                    // no
    auto last = remove(car("A", {{"brand", "Kia"}, {"model", 2001}}, 5));        // no
    ASSERT_TRUE(wait_seq(last));
    auto frames = sink->frames();
    ASSERT_EQ(frames.size(), 3u);
    auto e1 = decode(*frames[0]), e2 = decode(*frames[1]), e3 = decode(*frames[2]);
    EXPECT_EQ(e1.action, "create");
    EXPECT_EQ(e1.seq, enter);
    EXPECT_EQ(e2.action, "update");
    EXPECT_EQ(e2.seq, change);
    EXPECT_EQ(e3.action, "delete");
    EXPECT_EQ(e3.seq, leave);
    EXPECT_EQ(get_int(e3.data.as_object(), "model"), 2001);  // the record as it is now
}

TEST_F(hub_test, may_see_is_asked_per_subscriber_per_event) {
    may_see_ = [](const principal& who, const collection_def&, const json::object& rec) {
        return who.admin || get_string(rec, "owner") == who.user_id;
    };
    create(car("U2", {{"brand", "Kia"}}, 1, "u2"));
    start();
    auto s1 = std::make_shared<capturing_sink>();
    auto s2 = std::make_shared<capturing_sink>();
    auto c1 = attach(s1, principal{"u1", false});
    auto c2 = attach(s2, principal{"u2", false});
    ASSERT_TRUE(subscribe(c1, {}).has_value());
    ASSERT_TRUE(subscribe(c2, {}).has_value());
    // A pk the caller may not see answers 404, like a missing one.
    subscribe_request hidden;
    hidden.pk = "U2";
    auto r = subscribe(c1, hidden);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 404);

    create(car("A", {{"brand", "Ford"}}, 1, "u1"));
    auto last = create(car("B", {{"brand", "Ford"}}, 1, "u2"));
    ASSERT_TRUE(wait_seq(last));
    ASSERT_EQ(s1->size(), 1u);
    EXPECT_EQ(decode(*s1->frames()[0]).pk, "A");
    ASSERT_EQ(s2->size(), 1u);
    EXPECT_EQ(decode(*s2->frames()[0]).pk, "B");

    // Rules follow the client's identity at the moment of the event.
    hub_->set_principal(c1, principal{"admin", true});
    last = create(car("C", {{"brand", "Ford"}}, 1, "u2"));
    ASSERT_TRUE(wait_seq(last));
    ASSERT_EQ(s1->size(), 2u);
    EXPECT_EQ(decode(*s1->frames()[1]).pk, "C");
}

TEST_F(hub_test, requests_are_validated) {
    hub_options o;
    o.max_subscriptions = 2;
    start(o);
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);

    subscribe_request unknown;
    unknown.collection = "boats";
    auto r = subscribe(client, unknown);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 404);

    auto nobody = subscribe("no-such-client", {});
    ASSERT_FALSE(nobody.has_value());
    EXPECT_EQ(nobody.error().status, 404);

    subscribe_request bad_filter;
    bad_filter.filter = {{"colour", "red"}};
    r = subscribe(client, bad_filter);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 400);
    EXPECT_EQ(get_string(r.error().extra, "parameter"), "filter.colour");

    subscribe_request bad_value;
    bad_value.filter = {{"model__gte", "soon"}};
    r = subscribe(client, bad_value);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 400);

    subscribe_request bad_action;
    bad_action.actions = {"create", "explode"};
    r = subscribe(client, bad_action);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 400);
    EXPECT_NE(r.error().detail.find("explode"), std::string::npos);

    // Subscriptions and live queries share the limit.
    ASSERT_TRUE(subscribe(client, {}).has_value());
    ASSERT_TRUE(observe(client, {}).has_value());
    r = subscribe(client, {});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 429);
    auto o3 = observe(client, {});
    ASSERT_FALSE(o3.has_value());
    EXPECT_EQ(o3.error().status, 429);
    // Failed attempts used no numbers: the next id follows the last granted one.
    ASSERT_TRUE(unsubscribe(client, "s-1").has_value());
    auto again = subscribe(client, {});
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->subscription, "s-2");

    auto u = unsubscribe(client, "s-1");
    ASSERT_FALSE(u.has_value());
    EXPECT_EQ(u.error().status, 404);
    auto uo = unobserve(client, "o-9");
    ASSERT_FALSE(uo.has_value());
    EXPECT_EQ(uo.error().status, 404);
}

TEST_F(hub_test, unsubscribe_and_detach_stop_delivery) {
    start();
    auto s1 = std::make_shared<capturing_sink>();
    auto s2 = std::make_shared<capturing_sink>();
    auto c1 = attach(s1);
    auto c2 = attach(s2);
    EXPECT_NE(c1, c2);
    EXPECT_EQ(c1.size(), 32u);
    EXPECT_EQ(hub_->clients(), 2u);
    ASSERT_TRUE(subscribe(c1, {}).has_value());
    ASSERT_TRUE(subscribe(c2, {}).has_value());
    auto first = create(car("A"));
    ASSERT_TRUE(wait_seq(first));
    EXPECT_EQ(s1->size(), 1u);
    EXPECT_EQ(s2->size(), 1u);

    hub_->detach(c1);
    hub_->detach(c1);  // unknown ids are ignored
    EXPECT_EQ(hub_->clients(), 1u);
    ASSERT_TRUE(unsubscribe(c2, "s-1").has_value());
    auto last = create(car("B"));
    ASSERT_TRUE(wait_seq(last));
    EXPECT_EQ(s1->size(), 1u);
    EXPECT_EQ(s2->size(), 1u);
    auto gone = subscribe(c1, {});
    ASSERT_FALSE(gone.has_value());
    EXPECT_EQ(gone.error().status, 404);
}

TEST_F(hub_test, a_client_whose_sink_is_gone_is_detached) {
    start();
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    ASSERT_TRUE(subscribe(client, {}).has_value());
    EXPECT_EQ(hub_->clients(), 1u);
    sink.reset();
    auto last = create(car("A"));
    ASSERT_TRUE(wait_seq(last));
    EXPECT_EQ(hub_->clients(), 0u);
    auto r = subscribe(client, {});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 404);
}

TEST_F(hub_test, identical_frames_are_shared_between_clients) {
    start();
    std::vector<std::shared_ptr<capturing_sink>> sinks;
    for (int i = 0; i < 3; ++i) {
        sinks.push_back(std::make_shared<capturing_sink>());
        ASSERT_TRUE(subscribe(attach(sinks.back()), {}).has_value());
    }
    auto sse = std::make_shared<capturing_sink>();
    auto sse_client = attach(sse, {}, event_encoding::sse);
    ASSERT_TRUE(subscribe(sse_client, {}).has_value());
    auto sse2 = std::make_shared<capturing_sink>();
    auto sse_client2 = attach(sse2, {}, event_encoding::sse);
    subscribe_request other;
    other.filter = {{"brand", "Ford"}};
    ASSERT_TRUE(subscribe(sse_client2, {}).has_value());
    ASSERT_TRUE(subscribe(sse_client2, other).has_value());

    auto last = create(car("A", {{"brand", "Ford"}}));
    ASSERT_TRUE(wait_seq(last));
    auto f0 = sinks[0]->frames(), f1 = sinks[1]->frames(), f2 = sinks[2]->frames();
    ASSERT_EQ(f0.size(), 1u);
    ASSERT_EQ(f1.size(), 1u);
    ASSERT_EQ(f2.size(), 1u);
    EXPECT_EQ(f0[0].get(), f1[0].get());
    EXPECT_EQ(f0[0].get(), f2[0].get());

    // SSE frames name no subscription, so every SSE subscription shares one.
    auto fs = sse->frames(), fs2 = sse2->frames();
    ASSERT_EQ(fs.size(), 1u);
    ASSERT_EQ(fs2.size(), 2u);
    EXPECT_EQ(fs[0].get(), fs2[0].get());
    EXPECT_EQ(fs2[0].get(), fs2[1].get());
    auto record = json::serialize(decode(*f0[0]).data);
    EXPECT_EQ(*fs[0], "id: " + std::to_string(last) + "\nevent: create\ndata: " + record + "\n\n");
}

TEST_F(hub_test, resume_replays_exactly_the_missed_changes_then_goes_live) {
    // 60 changes before the hub starts, more while the client resumes.
    for (int i = 0; i < 60; ++i) create(car("P" + std::to_string(i), {{"model", i}}));
    hub_options o;
    o.batch = 16;  // several pages for the replay and the passes
    start(o);
    const std::int64_t since = 25;

    std::atomic<bool> stop{false};
    std::atomic<int> written{0};
    std::thread writer([&] {
        for (int i = 0; i < 150 && !stop.load(); ++i) {
            create(car("W" + std::to_string(i), {{"model", 1000 + i}}));
            ++written;
        }
    });
    // Let some writes land before, during and after the subscribe.
    while (written.load() < 20) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    subscribe_request req;
    req.since = since;
    auto sub = subscribe(client, req);
    ASSERT_TRUE(sub.has_value()) << sub.error().detail;
    EXPECT_GE(sub->seq, 60);
    writer.join();
    const std::int64_t last = db_->last_seq();
    ASSERT_EQ(last, 210);
    ASSERT_TRUE(wait_seq(last));
    ASSERT_TRUE(sink->wait_for(static_cast<std::size_t>(last - since)));

    auto frames = sink->frames();
    ASSERT_EQ(frames.size(), static_cast<std::size_t>(last - since));
    std::int64_t expect = since;
    for (const auto& f : frames) {
        auto e = decode(*f);
        ASSERT_EQ(e.seq, expect + 1) << "gap or duplicate after seq " << expect;
        EXPECT_EQ(e.action, "create");
        expect = e.seq;
    }
}

TEST_F(hub_test, resume_applies_the_subscription_to_the_replay) {
    auto a = car("A", {{"brand", "Ford"}});
    create(a);                                              // 1
    create(car("B", {{"brand", "Kia"}}));                   // 2
    start();
    update(car("A", {{"brand", "Kia"}}, 2));                // 3: leaves
    update(car("B", {{"brand", "Ford"}}, 2));               // 4: enters
    auto last = remove(car("B", {{"brand", "Ford"}}, 2));  // 5: delete
    ASSERT_TRUE(wait_seq(last));

    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    subscribe_request req;
    req.since = 0;
    req.filter = {{"brand", "Ford"}};
    req.actions = {"create", "delete"};
    auto sub = subscribe(client, req);
    ASSERT_TRUE(sub.has_value());
    EXPECT_EQ(sub->seq, last);
    ASSERT_TRUE(sink->wait_for(4));
    auto frames = sink->frames();
    ASSERT_EQ(frames.size(), 4u);
    std::vector<std::pair<std::int64_t, std::string>> got;
    for (const auto& f : frames) got.emplace_back(decode(*f).seq, decode(*f).action);
    EXPECT_EQ(got, (std::vector<std::pair<std::int64_t, std::string>>{
                       {1, "create"}, {3, "delete"}, {4, "create"}, {5, "delete"}}));
}

TEST_F(hub_test, resume_outside_the_history_is_410) {
    for (int i = 0; i < 10; ++i) create(car("R" + std::to_string(i)));
    auto trimmed = db_->write_sync([](write_txn& t) -> result<json::value> {
        auto n = t.trim_changes(4, 0);
        if (!n) return std::move(n).error();
        return json::value(*n);
    });
    ASSERT_TRUE(trimmed.has_value());
    hub_options o;
    o.max_replay = 3;
    start(o);
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);

    subscribe_request below;
    below.since = 5;  // the floor is 6
    auto r = subscribe(client, below);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 410);
    EXPECT_NE(r.error().detail.find("seq 5"), std::string::npos);

    subscribe_request above;
    above.since = 11;
    r = subscribe(client, above);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 410);

    subscribe_request too_long;
    too_long.since = 6;  // 4 changes to replay, max_replay is 3
    r = subscribe(client, too_long);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 410);

    subscribe_request at_floor;
    at_floor.since = 7;
    r = subscribe(client, at_floor);
    ASSERT_TRUE(r.has_value()) << r.error().detail;
    ASSERT_TRUE(sink->wait_for(3));
    auto frames = sink->frames();
    ASSERT_EQ(frames.size(), 3u);
    EXPECT_EQ(decode(*frames[0]).seq, 8);
    EXPECT_EQ(decode(*frames[2]).seq, 10);
    EXPECT_EQ(r->subscription, "s-1");  // refusals used no subscription numbers

    subscribe_request at_head;
    at_head.since = 10;
    r = subscribe(client, at_head);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(sink->size(), 3u);
}

TEST_F(hub_test, the_hub_trims_the_log_but_never_past_what_it_delivered) {
    hub_options o;
    o.history = 5;
    o.trim_every = std::chrono::milliseconds(10);
    start(o);
    std::int64_t last = 0;
    for (int i = 0; i < 30; ++i) last = create(car("R" + std::to_string(i)));
    ASSERT_TRUE(wait_seq(last));
    auto until = std::chrono::steady_clock::now() + test::k_deadline;
    std::int64_t floor = 0;
    while (std::chrono::steady_clock::now() < until) {
        std::promise<std::int64_t> p;
        db_->read([&](read_txn& t) {
            auto f = t.history_floor();
            p.set_value(f ? *f : -1);
        });
        floor = p.get_future().get();
        if (floor == last - 5) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    EXPECT_EQ(floor, last - 5);
}

TEST_F(hub_test, stop_answers_pending_and_later_commands_with_503) {
    auto sink = std::make_shared<capturing_sink>();
    hub_ = std::make_unique<hub>(*db_, hooks(), hub_options{}, log_);
    auto client = hub_->attach(sink, {}, event_encoding::websocket);
    // Not started: the command waits, then stop() answers it.
    std::promise<result<subscribed>> p;
    auto f = p.get_future();
    hub_->subscribe(client, {"cars", "", {}, {}, std::nullopt}, [&p](result<subscribed> r) { p.set_value(std::move(r)); });
    hub_->stop();
    auto r = test::wait_answer(f);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 503);
    auto later = subscribe(client, {});
    ASSERT_FALSE(later.has_value());
    EXPECT_EQ(later.error().status, 503);
    hub_->stop();  // idempotent
}

TEST_F(hub_test, a_started_hub_stops_cleanly_with_clients_attached) {
    start();
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    ASSERT_TRUE(subscribe(client, {}).has_value());
    ASSERT_TRUE(observe(client, {}).has_value());
    auto last = create(car("A"));
    ASSERT_TRUE(wait_seq(last));
    hub_->stop();
    // Writes after stop() reach no listener of the stopped hub.
    create(car("B"));
    EXPECT_EQ(hub_->seq(), last);
}

}  // namespace
}  // namespace livebase

namespace livebase {
namespace {

/// A lane that records the batches the hub hands it.
class recording_lane final : public event_lane {
public:
    void deliver(std::vector<lane_delivery> batch) override {
        std::lock_guard<std::mutex> lock(mu_);
        batches_.push_back(std::move(batch));
    }
    std::vector<std::vector<lane_delivery>> batches() const {
        std::lock_guard<std::mutex> lock(mu_);
        return batches_;
    }

private:
    mutable std::mutex mu_;
    std::vector<std::vector<lane_delivery>> batches_;
};

/// A sink whose live events go through a lane; deliver() only counts (replays).
class laned_sink final : public event_sink {
public:
    explicit laned_sink(recording_lane& l) : lane_(l) {}
    void deliver(std::vector<std::shared_ptr<const std::string>>) override { ++direct_; }
    event_lane* lane() noexcept override { return &lane_; }
    std::atomic<int> direct_{0};

private:
    recording_lane& lane_;
};

TEST_F(hub_test, a_lane_gets_one_batch_per_pass_with_frames_shared_between_its_clients) {
    start();
    recording_lane lane_a, lane_b;
    std::vector<std::shared_ptr<laned_sink>> sinks;
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) {
        sinks.push_back(std::make_shared<laned_sink>(i < 3 ? lane_a : lane_b));
        ids.push_back(hub_->attach(sinks.back(), principal{}, event_encoding::websocket));
        ASSERT_TRUE(subscribe(ids.back(), {}).has_value());
    }
    // A second subscription of the last client: its frames name "s-2", a distinct shape.
    ASSERT_TRUE(subscribe(ids.back(), {}).has_value());

    auto last = create(car("A", {{"brand", "Ford"}}));
    ASSERT_TRUE(wait_seq(last));
    auto a = lane_a.batches();
    auto b = lane_b.batches();
    ASSERT_EQ(a.size(), 1u);  // one hand-off for the pass, not one per client
    ASSERT_EQ(b.size(), 1u);
    ASSERT_EQ(a[0].size(), 3u);
    ASSERT_EQ(b[0].size(), 1u);
    for (const auto& d : a[0]) ASSERT_EQ(d.frames.size(), 1u);
    ASSERT_EQ(b[0][0].frames.size(), 2u);
    // One encoding per shape: every "s-1" copy of the event is the same buffer.
    const auto* shared = a[0][0].frames[0].get();
    EXPECT_EQ(a[0][1].frames[0].get(), shared);
    EXPECT_EQ(a[0][2].frames[0].get(), shared);
    EXPECT_EQ(b[0][0].frames[0].get(), shared);
    EXPECT_NE(b[0][0].frames[1].get(), shared);
    EXPECT_EQ(decode(*b[0][0].frames[1]).subscription, "s-2");
    EXPECT_EQ(decode(*shared).pk, "A");
    for (auto& s : sinks) EXPECT_EQ(s->direct_.load(), 0);
    hub_->stop();  // before the lanes go
}

}  // namespace
}  // namespace livebase
