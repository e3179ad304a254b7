// Live queries end to end: the diffs the hub sends, applied to the initial items, always give
// what a fresh list returns (seeded random writes and random queries).
#include "unit/realtime/hub_fixture.hpp"

#include <livebase/schema/query.hpp>

#include <atomic>
#include <map>
#include <random>
#include <set>

namespace livebase {
namespace {

using test::capturing_sink;
using test::car;
using test::decode;

// One live query as a client would keep it.
struct tracked {
    std::size_t client = 0;
    std::string id;
    json::object spec;
    query q;
    window rows;
    std::int64_t seq = 0;
};

class hub_observe_test : public test::hub_test_base {
protected:
    // A random record for `id` (nulls included, so null ordering is exercised).
    json::object random_car(const std::string& id, std::int64_t version) {
        static const char* brands[] = {"Ford", "Kia", "Fiat", "ford", "Seat"};
        json::object f;
        if (rng_() % 6) f["brand"] = brands[rng_() % 5];
        if (rng_() % 5) f["model"] = std::int64_t{2000 + static_cast<int>(rng_() % 8)};
        if (rng_() % 4) f["price"] = static_cast<double>(rng_() % 20) * 500.0;
        f["electric"] = rng_() % 2 == 0;
        return car(id, f, version);
    }

    json::object random_query() {
        static const char* orderings[] = {"brand", "-brand", "model", "-model", "price", "-price", "electric",
                                          "-electric", "-version"};
        json::object filter;
        for (std::size_t n = rng_() % 3; n > 0; --n) {
            switch (rng_() % 6) {
                case 0: filter["brand"] = rng_() % 2 ? "Ford" : "Kia"; break;
                case 1: filter["brand__in"] = json::array{"Ford", "Fiat", "Seat"}; break;
                case 2: filter["model__gte"] = 2000 + static_cast<int>(rng_() % 8); break;
                case 3: filter["price__lt"] = static_cast<double>(rng_() % 20) * 500.0; break;
                case 4: filter["electric"] = rng_() % 2 == 0; break;
                case 5: filter["brand__istartswith"] = "f"; break;
            }
        }
        json::array ordering;
        std::set<std::string> used;  // a field is ordered once
        for (std::size_t n = rng_() % 3; n > 0; --n) {
            std::string term = orderings[rng_() % std::size(orderings)];
            if (used.insert(term[0] == '-' ? term.substr(1) : term).second) ordering.emplace_back(term);
        }
        json::object q{{"filter", filter}, {"ordering", ordering}, {"limit", 1 + static_cast<int>(rng_() % 8)}};
        if (rng_() % 4 == 0) q["offset"] = static_cast<int>(rng_() % 3);
        return q;
    }

    // One random create, update or delete over `ids`; returns its seq.
    std::int64_t random_write() {
        auto id = "K" + std::to_string(rng_() % 30);
        auto it = records_.find(id);
        if (it == records_.end()) {
            auto rec = random_car(id, 1);
            records_[id] = rec;
            return create(rec);
        }
        if (rng_() % 10 < 7) {
            auto rec = random_car(id, get_int(it->second, "version").value_or(1) + 1);
            it->second = rec;
            return update(rec);
        }
        auto rec = it->second;
        records_.erase(it);
        return remove(rec);
    }

    void add_observer(std::size_t client) {
        tracked t;
        t.client = client;
        t.spec = random_query();
        auto q = parse_query_json(cars_, t.spec);
        ASSERT_TRUE(q.has_value()) << json::serialize(t.spec) << ": " << q.error().detail;
        t.q = *q;
        auto r = observe(clients_[client], t.spec);
        ASSERT_TRUE(r.has_value()) << r.error().detail;
        t.id = r->observer;
        t.seq = r->seq;
        t.rows = test::window_from_items(r->items);
        observers_.push_back(std::move(t));
    }

    // Applies the frames that arrived since the last call to the tracked windows.
    void apply_new_frames() {
        for (std::size_t c = 0; c < sinks_.size(); ++c) {
            auto frames = sinks_[c]->frames();
            for (std::size_t i = read_[c]; i < frames.size(); ++i) {
                auto e = decode(*frames[i]);
                if (e.action != "observe") continue;
                auto* t = find(c, e.observer);
                ASSERT_TRUE(t) << *frames[i];
                ASSERT_GE(e.seq, t->seq) << *frames[i];
                t->seq = e.seq;
                ASSERT_TRUE(apply_diffs(t->rows, {test::diff_from_json(e.data.as_object())}))
                    << t->id << " " << json::serialize(t->spec) << ": " << *frames[i];
                ++diffs_[std::string(get_string(e.data.as_object(), "msg"))];
            }
            read_[c] = frames.size();
        }
    }

    tracked* find(std::size_t client, const std::string& id) {
        for (auto& t : observers_)
            if (t.client == client && t.id == id) return &t;
        return nullptr;
    }

    window fresh_list(const tracked& t) {
        auto pg = db_->list_sync(cars_, t.q);
        EXPECT_TRUE(pg.has_value());
        window w;
        if (!pg) return w;
        for (const auto& rec : pg->items)
            w.push_back(window_row{std::string(get_string(rec, "id")), present_record(cars_, rec)});
        return w;
    }

    void attach_clients(std::size_t n) {
        for (std::size_t i = 0; i < n; ++i) {
            sinks_.push_back(std::make_shared<capturing_sink>());
            clients_.push_back(attach(sinks_.back()));
            read_.push_back(0);
        }
    }

    std::mt19937 rng_{4711};
    std::map<std::string, json::object> records_;
    std::vector<std::shared_ptr<capturing_sink>> sinks_;
    std::vector<std::string> clients_;
    std::vector<std::size_t> read_;
    std::vector<tracked> observers_;
    std::map<std::string, std::size_t> diffs_;  // applied diffs by msg
};

TEST_F(hub_observe_test, diffs_reproduce_a_fresh_list_after_every_write) {
    for (int i = 0; i < 15; ++i) random_write();
    start();
    attach_clients(4);
    // Event subscriptions on the same sockets interleave with the diffs.
    ASSERT_TRUE(subscribe(clients_[0], {}).has_value());
    for (std::size_t i = 0; i < 24; ++i) add_observer(i % 4);
    ASSERT_FALSE(HasFatalFailure());

    for (int step = 0; step < 300; ++step) {
        auto seq = random_write();
        ASSERT_TRUE(wait_seq(seq));
        if (step == 150)  // late joiners start from the current state
            for (std::size_t i = 0; i < 4; ++i) add_observer(i);
        apply_new_frames();
        ASSERT_FALSE(HasFatalFailure()) << "step " << step;
        for (const auto& t : observers_) {
            ASSERT_EQ(t.rows, fresh_list(t)) << "step " << step << ", " << t.id << " of client " << t.client
                                             << ", query " << json::serialize(t.spec);
        }
    }
    // The seed exercises every kind of diff, not just a few.
    for (const char* msg : {"added", "removed", "moved", "changed"}) EXPECT_GT(diffs_[msg], 20u) << msg;
}

TEST_F(hub_observe_test, observers_registered_during_writes_converge) {
    for (int i = 0; i < 10; ++i) random_write();
    hub_options o;
    o.batch = 3;  // the hub often lags more than a batch: re-lists wait for the end of the log
    start(o);
    attach_clients(2);

    // The writer has its own generator: rng_ and records_ stay with this thread.
    std::atomic<bool> stop{false};
    std::atomic<int> written{0};
    std::thread writer([&] {
        std::mt19937 wrng(99);
        for (int i = 0; i < 200 && !stop.load(); ++i) {
            auto id = "K" + std::to_string(wrng() % 30);
            auto current = db_->get_sync(cars_, id);
            if (!current || !*current) {
                create(car(id, {{"brand", wrng() % 2 ? "Ford" : "Kia"}, {"model", std::int64_t(2000 + wrng() % 8)}}));
            } else if (wrng() % 4) {
                auto rec = **current;
                rec["model"] = std::int64_t(2000 + wrng() % 8);
                rec["brand"] = wrng() % 2 ? "Ford" : "Fiat";
                rec["version"] = get_int(rec, "version").value_or(1) + 1;
                update(rec);
            } else {
                remove(**current);
            }
            ++written;
        }
    });
    for (std::size_t i = 0; i < 12 && !HasFatalFailure(); ++i) {
        while (written.load() < static_cast<int>(i * 15) && written.load() < 200)
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        add_observer(i % 2);
    }
    writer.join();
    ASSERT_FALSE(HasFatalFailure());
    ASSERT_TRUE(wait_seq(db_->last_seq()));
    apply_new_frames();
    ASSERT_FALSE(HasFatalFailure());
    for (const auto& t : observers_)
        EXPECT_EQ(t.rows, fresh_list(t)) << t.id << " of client " << t.client << ", query " << json::serialize(t.spec);
}

// A commit of exactly one batch: the pass that reads it cannot tell it reached the end of the
// log, so the hub must read once more to re-list the live queries.
TEST_F(hub_observe_test, a_batch_ending_exactly_at_the_end_of_the_log_still_updates_live_queries) {
    hub_options o;
    o.batch = 3;
    start(o);
    attach_clients(1);
    auto r = observe(clients_[0], {{"ordering", "id"}});
    ASSERT_TRUE(r.has_value());
    auto w = test::window_from_items(r->items);
    auto last = write([&](write_txn& t) -> result<void> {
        for (const char* id : {"A", "B", "C"})
            if (auto i = t.insert(cars_, car(id)); !i) return i;
        return {};
    });
    ASSERT_EQ(last, 3);
    ASSERT_TRUE(wait_seq(last));
    for (const auto& f : sinks_[0]->frames())
        ASSERT_TRUE(apply_diffs(w, {test::diff_from_json(decode(*f).data.as_object())}));
    ASSERT_EQ(w.size(), 3u);
    EXPECT_EQ(w[2].pk, "C");
}

TEST_F(hub_observe_test, observe_validates_its_request) {
    start();
    auto sink = std::make_shared<capturing_sink>();
    auto ws = attach(sink);
    auto sse = attach(sink, {}, event_encoding::sse);
    auto r = observe(ws, {}, "boats");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 404);
    r = observe(sse, {});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 400);
    r = observe(ws, {{"ordering", "colour"}});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 400);
    r = observe("nobody", {});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 404);

    create(car("A", {{"brand", "Ford"}}));
    create(car("B", {{"brand", "Kia"}}));
    auto last = create(car("C", {{"brand", "Ford"}}));
    ASSERT_TRUE(wait_seq(last));
    r = observe(ws, {{"filter", json::object{{"brand", "Ford"}}}, {"limit", 1}, {"ordering", "-id"}});
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->observer, "o-1");
    EXPECT_EQ(r->seq, last);
    EXPECT_EQ(r->count, 2);
    ASSERT_EQ(r->items.size(), 1u);
    EXPECT_EQ(get_string(r->items[0].as_object(), "id"), "C");

    ASSERT_TRUE(unobserve(ws, "o-1").has_value());
    auto again = unobserve(ws, "o-1");
    ASSERT_FALSE(again.has_value());
    EXPECT_EQ(again.error().status, 404);
    last = create(car("D", {{"brand", "Ford"}}));
    ASSERT_TRUE(wait_seq(last));
    EXPECT_EQ(sink->size(), 0u);
}

TEST_F(hub_observe_test, rows_the_client_may_not_see_are_left_out) {
    may_see_ = [](const principal& who, const collection_def&, const json::object& rec) {
        return get_string(rec, "owner") == who.user_id;
    };
    create(car("A", {}, 1, "u1"));
    create(car("B", {}, 1, "u2"));
    start();
    auto sink = std::make_shared<capturing_sink>();
    auto client = attach(sink, principal{"u1", false});
    auto r = observe(client, {{"ordering", "id"}});
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(r->items.size(), 1u);
    EXPECT_EQ(get_string(r->items[0].as_object(), "id"), "A");
    create(car("C", {}, 1, "u2"));
    auto last = create(car("D", {}, 1, "u1"));
    ASSERT_TRUE(wait_seq(last));
    auto w = test::window_from_items(r->items);
    for (const auto& f : sink->frames()) {
        auto e = decode(*f);
        ASSERT_TRUE(apply_diffs(w, {test::diff_from_json(e.data.as_object())}));
    }
    ASSERT_EQ(w.size(), 2u);
    EXPECT_EQ(w[0].pk, "A");
    EXPECT_EQ(w[1].pk, "D");
}

}  // namespace
}  // namespace livebase
