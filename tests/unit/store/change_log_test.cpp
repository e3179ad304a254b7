// The change log's realtime support: the previous record of updates (change::before), the
// snapshot seq, trimming and the history floor, and databases made before `before` existed.
#include "unit/store/store_test_support.hpp"

#include <livebase/core/clock.hpp>

#include <gtest/gtest.h>

#include <sqlite3.h>

#include <future>
#include <limits>

namespace livebase {
namespace {

using test::typed_cars;
using test::open_or_die;
using test::temp_dir;

json::object car(std::string id, std::string brand, std::int64_t version = 1) {
    return json::object{{"id", id},
                        {"created", "2026-01-01T00:00:00.000Z"},
                        {"updated", "2026-01-01T00:00:00.000Z"},
                        {"version", version},
                        {"owner", "u1"},
                        {"brand", brand}};
}

template <class T>
T read_or_die(store& s, std::function<result<T>(read_txn&)> fn) {
    std::promise<result<T>> p;
    s.read([&](read_txn& t) { p.set_value(fn(t)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().detail);
    return r ? std::move(r).value() : T{};
}

std::vector<change> changes(store& s, std::int64_t after) {
    return read_or_die<std::vector<change>>(s, [after](read_txn& t) { return t.changes_after(after, 100000); });
}
std::int64_t floor_of(store& s) {
    return read_or_die<std::int64_t>(s, [](read_txn& t) { return t.history_floor(); });
}
std::int64_t snapshot_of(store& s) {
    return read_or_die<std::int64_t>(s, [](read_txn& t) { return t.snapshot_seq(); });
}

class change_log_test : public ::testing::Test {
protected:
    void SetUp() override { open(); }
    void open() {
        db_.reset();
        db_ = open_or_die(dir_.file("data/log.db"));
        ASSERT_TRUE(db_);
        test::migrate_or_die(*db_, cars_);
    }
    void insert(const std::string& id, const std::string& brand) {
        auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
            if (auto i = t.insert(cars_, car(id, brand)); !i) return std::move(i).error();
            return json::value(nullptr);
        });
        ASSERT_TRUE(r.has_value()) << r.error().detail;
    }
    void update(const std::string& id, const std::string& brand, std::int64_t version) {
        auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
            if (auto u = t.update(cars_, car(id, brand, version)); !u) return std::move(u).error();
            return json::value(nullptr);
        });
        ASSERT_TRUE(r.has_value()) << r.error().detail;
    }
    result<std::size_t> trim(std::uint64_t keep, std::int64_t older_than,
                             std::int64_t keep_after = std::numeric_limits<std::int64_t>::max()) {
        std::size_t deleted = 0;
        auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
            auto n = t.trim_changes(keep, older_than, keep_after);
            if (!n) return std::move(n).error();
            deleted = *n;
            return json::value(nullptr);
        });
        if (!r) return std::move(r).error();
        return deleted;
    }

    temp_dir dir_;
    collection_def cars_ = typed_cars();
    std::unique_ptr<store> db_;
};

TEST_F(change_log_test, updates_log_the_previous_record) {
    insert("A", "Ford");
    update("A", "Kia", 2);
    update("A", "Fiat", 3);
    auto rm = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.remove(cars_, car("A", "Fiat", 3)); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(rm.has_value());

    auto log = changes(*db_, 0);
    ASSERT_EQ(log.size(), 4u);
    EXPECT_FALSE(log[0].before.has_value());
    ASSERT_TRUE(log[1].before.has_value());
    EXPECT_EQ(get_string(*log[1].before, "brand"), "Ford");
    EXPECT_EQ(get_int(*log[1].before, "version"), 1);
    EXPECT_EQ(get_string(log[1].record, "brand"), "Kia");
    // The previous record is the stored form, as complete as `record`.
    EXPECT_EQ(log[1].before->size(), log[1].record.size());
    ASSERT_TRUE(log[2].before.has_value());
    EXPECT_EQ(get_string(*log[2].before, "brand"), "Kia");
    EXPECT_FALSE(log[3].before.has_value());

    // A failed update (absent record) logs nothing.
    auto missing = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.update(cars_, car("nope", "x", 2)); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().status, 404);
    EXPECT_EQ(changes(*db_, 0).size(), 4u);
}

TEST_F(change_log_test, snapshot_seq_is_the_last_seq_of_the_transaction) {
    EXPECT_EQ(snapshot_of(*db_), 0);
    insert("A", "Ford");
    insert("B", "Kia");
    EXPECT_EQ(snapshot_of(*db_), 2);
    // Inside a write, SQLite's snapshot includes the write's own appends; PostgreSQL appends
    // the group's changes at commit (in commit order), so a write sees the log as it was.
    auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto i = t.insert(cars_, car("C", "Fiat")); !i) return std::move(i).error();
        auto s = t.snapshot_seq();
        if (!s) return std::move(s).error();
        return json::value(*s);
    });
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->as_int64(), test::on_postgres() ? 2 : 3);

    // A list and the snapshot seq read in one transaction agree while writes go on.
    std::atomic<bool> stop{false};
    std::thread writer([&] {
        for (int i = 0; i < 200 && !stop.load(); ++i) insert("W" + std::to_string(i), "w");
    });
    query q;
    q.limit = 1000;
    for (int round = 0; round < 50; ++round) {
        auto pair = read_or_die<std::pair<std::int64_t, std::int64_t>>(
            *db_, [&](read_txn& t) -> result<std::pair<std::int64_t, std::int64_t>> {
                auto pg = t.list(cars_, q);
                if (!pg) return std::move(pg).error();
                auto s = t.snapshot_seq();
                if (!s) return std::move(s).error();
                return std::pair<std::int64_t, std::int64_t>{pg->count, *s};
            });
        // One record per change (inserts only): count == seq in the same snapshot.
        EXPECT_EQ(pair.first, pair.second);
    }
    stop = true;
    writer.join();
}

TEST_F(change_log_test, trim_by_count_keeps_the_newest_and_raises_the_floor) {
    for (int i = 0; i < 10; ++i) insert("R" + std::to_string(i), "b");
    EXPECT_EQ(floor_of(*db_), 0);

    auto n = trim(3, 0);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 7u);
    EXPECT_EQ(floor_of(*db_), 7);
    auto log = changes(*db_, 0);
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log.front().seq, 8);
    EXPECT_EQ(log.back().seq, 10);

    // Trimming again to the same size deletes nothing; keep=0 still keeps the newest row.
    EXPECT_EQ(*trim(3, 0), 0u);
    EXPECT_EQ(*trim(0, 0), 2u);
    EXPECT_EQ(floor_of(*db_), 9);
    log = changes(*db_, 0);
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].seq, 10);
    EXPECT_EQ(*trim(0, 0), 0u);

    // The floor and the sequence survive a restart; the sequence never goes back.
    open();
    EXPECT_EQ(floor_of(*db_), 9);
    EXPECT_EQ(db_->last_seq(), 10);
    EXPECT_EQ(snapshot_of(*db_), 10);
    insert("after", "b");
    EXPECT_EQ(db_->last_seq(), 11);
    EXPECT_EQ(changes(*db_, 9).size(), 2u);
}

// A caller computes `keep` from a position (the slowest node's delivered seq); rows committed
// after it must not move the cut past that position, by count or by age.
TEST_F(change_log_test, a_trim_never_cuts_past_the_position_it_is_given) {
    for (int i = 0; i < 10; ++i) insert("R" + std::to_string(i), "b");
    auto n = trim(2, 0, 4);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 4u);
    EXPECT_EQ(floor_of(*db_), 4);
    ASSERT_EQ(changes(*db_, 0).size(), 6u);
    EXPECT_EQ(changes(*db_, 0).front().seq, 5);

    // By age as well: everything is old, yet only what lies at or below the position goes.
    n = trim(1, now_ms() + 60'000, 6);
    ASSERT_TRUE(n.has_value());
    EXPECT_EQ(*n, 2u);
    EXPECT_EQ(floor_of(*db_), 6);
    // A position at or below the floor deletes nothing.
    EXPECT_EQ(*trim(1, now_ms() + 60'000, 3), 0u);
    EXPECT_EQ(floor_of(*db_), 6);
}

TEST_F(change_log_test, trim_by_age_deletes_a_prefix_but_never_the_newest_row) {
    for (int i = 0; i < 5; ++i) insert("R" + std::to_string(i), "b");
    // Nothing is older than the epoch: no row goes.
    EXPECT_EQ(*trim(1000, 0), 0u);
    EXPECT_EQ(floor_of(*db_), 0);
    // Everything is older than the future, but the newest row stays.
    EXPECT_EQ(*trim(1000, now_ms() + 60'000), 4u);
    EXPECT_EQ(floor_of(*db_), 4);
    auto log = changes(*db_, 0);
    ASSERT_EQ(log.size(), 1u);
    EXPECT_EQ(log[0].seq, 5);
}

TEST_F(change_log_test, trimming_an_empty_or_single_row_log_does_nothing) {
    EXPECT_EQ(*trim(0, now_ms() + 60'000), 0u);
    insert("A", "b");
    EXPECT_EQ(*trim(0, now_ms() + 60'000), 0u);
    EXPECT_EQ(floor_of(*db_), 0);
    EXPECT_EQ(changes(*db_, 0).size(), 1u);
}

TEST_F(change_log_test, a_failed_write_rolls_its_trim_back) {
    for (int i = 0; i < 5; ++i) insert("R" + std::to_string(i), "b");
    auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto n = t.trim_changes(1, 0); !n) return std::move(n).error();
        return problem::conflict("changed my mind");
    });
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(floor_of(*db_), 0);
    EXPECT_EQ(changes(*db_, 0).size(), 5u);
}

// A database whose change log predates the `before` column: opening it adds the column, old
// rows read back without `before`, and new updates log it.
TEST(change_log_upgrade, an_old_change_log_gains_the_before_column) {
    LIVEBASE_SQLITE_ONLY();
    temp_dir dir;
    auto path = dir.file("old.db");
    {
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
        const char* sql =
            "PRAGMA journal_mode=WAL;"
            "CREATE TABLE _changes (seq INTEGER PRIMARY KEY AUTOINCREMENT, ts INTEGER NOT NULL,"
            " collection TEXT NOT NULL, op TEXT NOT NULL, record_id TEXT NOT NULL, record TEXT NOT NULL);"
            "CREATE TABLE _livebase_schema (collection TEXT PRIMARY KEY NOT NULL, definition TEXT NOT NULL);"
            "INSERT INTO _changes (ts, collection, op, record_id, record) VALUES"
            " (1, 'cars', 'create', 'A', '{\"id\":\"A\",\"brand\":\"Ford\"}'),"
            " (2, 'cars', 'update', 'A', '{\"id\":\"A\",\"brand\":\"Kia\"}');";
        char* err = nullptr;
        ASSERT_EQ(sqlite3_exec(raw, sql, nullptr, nullptr, &err), SQLITE_OK) << (err ? err : "");
        sqlite3_close(raw);
    }
    auto cars = typed_cars();
    auto db = open_or_die(path);
    ASSERT_TRUE(db);
    test::migrate_or_die(*db, cars);
    EXPECT_EQ(db->last_seq(), 2);
    EXPECT_EQ(floor_of(*db), 0);
    auto log = changes(*db, 0);
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[1].op, "update");
    EXPECT_FALSE(log[1].before.has_value());
    EXPECT_EQ(get_string(log[1].record, "brand"), "Kia");

    ASSERT_TRUE(db->write_sync([&](write_txn& t) -> result<json::value> {
                      if (auto r = t.insert(cars, car("B", "Fiat")); !r) return std::move(r).error();
                      if (auto r = t.update(cars, car("B", "Seat", 2)); !r) return std::move(r).error();
                      return json::value(nullptr);
                  }).has_value());
    log = changes(*db, 2);
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[1].seq, 4);
    ASSERT_TRUE(log[1].before.has_value());
    EXPECT_EQ(get_string(*log[1].before, "brand"), "Fiat");

    // Reopening does not try to add the column again.
    db.reset();
    db = open_or_die(path);
    ASSERT_TRUE(db);
    EXPECT_EQ(changes(*db, 0).size(), 4u);
}

}  // namespace
}  // namespace livebase
