// The hub as one node of several on a shared store: a resume from a seq this node's hub has not
// read yet (the client saw it on another node) waits for the hub instead of answering 410; the
// log is trimmed only below what every live node has delivered; a node the log was trimmed past
// closes its subscribers to resync instead of leaving a silent gap. Another node is simulated:
// its commits reach this hub through a store whose commit notifications the test holds back,
// and its heartbeat is written into the nodes table directly.
#include "unit/realtime/hub_fixture.hpp"

#include <livebase/core/clock.hpp>

#include <atomic>

namespace livebase {
namespace {

using test::capturing_sink;
using test::car;
using test::decode;

/// A store whose commit notifications are held until release(): a hub on it lags the log the
/// way a node does whose NOTIFY has not arrived yet (or that was paused).
class held_store final : public store {
public:
    explicit held_store(store& inner) : inner_(inner) {}
    result<migration_plan> migrate(const std::vector<const collection_def*>& c, bool destructive,
                                   bool dry_run) override {
        return inner_.migrate(c, destructive, dry_run);
    }
    void read(std::function<void(read_txn&)> fn) override { inner_.read(std::move(fn)); }
    void write(write_fn fn, write_done done) override { inner_.write(std::move(fn), std::move(done)); }
    std::int64_t last_seq() override { return inner_.last_seq(); }
    void on_commit(std::function<void(std::int64_t)> fn) override {
        std::lock_guard<std::mutex> lock(mu_);
        listener_ = std::move(fn);
    }
    void close() override {}
    /// Tells the listener (the hub) that the log reaches `seq`.
    void release(std::int64_t seq) {
        std::function<void(std::int64_t)> fn;
        {
            std::lock_guard<std::mutex> lock(mu_);
            fn = listener_;
        }
        if (fn) fn(seq);
    }

private:
    store& inner_;
    std::mutex mu_;
    std::function<void(std::int64_t)> listener_;
};

/// Counts resync() calls on top of capturing frames.
class resync_sink final : public event_sink {
public:
    void deliver(std::vector<std::shared_ptr<const std::string>> frames) override { inner.deliver(std::move(frames)); }
    void resync() override { lost.fetch_add(1); }
    capturing_sink inner;
    std::atomic<int> lost{0};
};

class hub_cluster_test : public test::hub_test_base {
protected:
    void start_held(hub_options o = {}) {
        held_ = std::make_unique<held_store>(*db_);
        hub_ = std::make_unique<hub>(*held_, hooks(), o, log_);
        hub_->start();
    }

    std::int64_t floor() {
        std::promise<std::int64_t> p;
        db_->read([&](read_txn& t) {
            auto f = t.history_floor();
            p.set_value(f ? *f : -1);
        });
        return p.get_future().get();
    }

    /// Waits (bounded) until the history floor is `want`.
    bool wait_floor(std::int64_t want) {
        auto until = std::chrono::steady_clock::now() + test::k_deadline;
        std::int64_t f = -1;
        while (std::chrono::steady_clock::now() < until) {
            f = floor();
            if (f == want) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(2));
        }
        ADD_FAILURE() << "history floor " << f << ", waiting for " << want;
        return false;
    }

    /// Another node's heartbeat: it delivered up to `delivered`, `age` ago.
    void peer_heartbeat(std::int64_t node, std::int64_t delivered, std::chrono::milliseconds age = {}) {
        auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
            auto n = t.node_heartbeat(node, delivered, now_ms() - age.count(), 0);
            if (!n) return std::move(n).error();
            return json::value(n->delivered);
        });
        ASSERT_TRUE(r.has_value()) << r.error().detail;
    }

    std::unique_ptr<held_store> held_;
};

TEST_F(hub_cluster_test, a_resume_from_a_seq_the_hub_has_not_read_yet_waits_for_it_instead_of_410) {
    start_held();
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink);
    std::int64_t last = 0;
    for (int i = 0; i < 12; ++i) last = create(car("F" + std::to_string(i)));
    // The hub was told of none of these: its cursor is still 0.
    EXPECT_EQ(hub_->seq(), 0);

    subscribe_request ahead;
    ahead.since = last + 1;  // beyond the log: another database, or a client from the future
    auto r = subscribe(client, ahead);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 410);

    subscribe_request resume;
    resume.since = last - 4;  // seen on another node
    r = subscribe(client, resume);
    ASSERT_TRUE(r.has_value()) << r.error().detail;
    EXPECT_EQ(r->seq, last);
    ASSERT_TRUE(sink->wait_for(4));
    std::vector<std::int64_t> seqs;
    for (const auto& f : sink->frames()) seqs.push_back(decode(*f).seq);
    EXPECT_EQ(seqs, (std::vector<std::int64_t>{last - 3, last - 2, last - 1, last}));

    // Live from there: the next change once, after the replay.
    const auto next = create(car("F-next"));
    held_->release(next);
    ASSERT_TRUE(sink->wait_for(5));
    EXPECT_EQ(decode(*sink->frames().back()).seq, next);
    EXPECT_EQ(sink->size(), 5u);
}

TEST_F(hub_cluster_test, the_trim_keeps_what_the_slowest_live_node_has_not_delivered) {
    hub_options o;
    o.history = 5;
    o.trim_every = std::chrono::milliseconds(5);
    o.node_timeout = std::chrono::hours(1);
    start(o);
    constexpr std::int64_t peer = 424242;
    peer_heartbeat(peer, 3);
    std::int64_t last = 0;
    for (int i = 0; i < 30; ++i) last = create(car("T" + std::to_string(i)));
    ASSERT_TRUE(wait_seq(last));
    // The peer delivered up to 3: rows above it stay although history is 5.
    ASSERT_TRUE(wait_floor(3));
    peer_heartbeat(peer, 20);
    ASSERT_TRUE(wait_floor(20));
    // A peer silent for longer than node_timeout no longer holds the trim back.
    peer_heartbeat(peer, 20, std::chrono::hours(2));
    ASSERT_TRUE(wait_floor(last - 5));
}

TEST_F(hub_cluster_test, a_node_the_log_was_trimmed_past_closes_its_subscribers_to_resync) {
    start_held();
    auto sink = std::make_shared<resync_sink>();
    auto client = hub_->attach(sink, principal{}, event_encoding::websocket);
    auto observer_sink = std::make_shared<capturing_sink>();
    auto watcher = attach(observer_sink);
    ASSERT_TRUE(subscribe(client, {}).has_value());
    auto obs = observe(watcher, json::object{{"ordering", "brand"}, {"limit", 3}});
    ASSERT_TRUE(obs.has_value()) << obs.error().detail;

    std::int64_t last = 0;
    for (int i = 0; i < 20; ++i) last = create(car("L" + std::to_string(i), {{"brand", "B" + std::to_string(i)}}));
    // Another node trims while this one lags (its heartbeat timed out).
    auto trimmed = db_->write_sync([](write_txn& t) -> result<json::value> {
        auto n = t.trim_changes(5, 0);
        if (!n) return std::move(n).error();
        return json::value(*n);
    });
    ASSERT_TRUE(trimmed.has_value());
    ASSERT_EQ(floor(), last - 5);

    held_->release(last);
    ASSERT_TRUE(wait_seq(last));
    EXPECT_EQ(sink->lost.load(), 1);
    // Nothing after the gap reached the closed client: no silent hole.
    EXPECT_EQ(sink->inner.size(), 0u);
    // The live query re-listed at the new snapshot: its window is the current list.
    ASSERT_TRUE(observer_sink->wait_for(1));

    // The client resumes from what it had: below the floor, 410; it lists and subscribes again.
    subscribe_request resume;
    resume.since = 0;
    auto r = subscribe(client, resume);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 410);
    ASSERT_TRUE(subscribe(client, {}).has_value());
    const auto next = create(car("L-next"));
    held_->release(next);
    ASSERT_TRUE(sink->inner.wait_for(1));
    EXPECT_EQ(decode(*sink->inner.frames().front()).seq, next);
}

}  // namespace
}  // namespace livebase
