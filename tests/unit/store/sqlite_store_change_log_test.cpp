// The SQLite store's change log: every mutation recorded in order, commit notifications, and
// last_seq across a reopen.
#include "unit/store/sqlite_store_fixture.hpp"

#include <gtest/gtest.h>

#include <cstdint>
#include <mutex>
#include <utility>
#include <vector>

namespace livebase {
namespace {

TEST_F(sqlite_store_test, change_log_records_every_mutation_in_order) {
    EXPECT_EQ(db_->last_seq(), 0);
    std::vector<std::int64_t> seen;
    std::mutex mu;
    db_->on_commit([&](std::int64_t seq) {
        std::lock_guard<std::mutex> lock(mu);
        seen.push_back(seq);
    });
    auto rec = car("01A", {{"brand", "Ford"}, {"price", 3}});
    ASSERT_TRUE(insert_sync(*db_, cars_, rec).has_value());
    auto upd = rec;
    upd["brand"] = "Kia";
    upd["version"] = 2;
    ASSERT_TRUE(db_->write_sync([&](write_txn& t) -> result<json::value> {
                       if (auto r = t.update(cars_, upd); !r) return std::move(r).error();
                       return json::value(nullptr);
                   }).has_value());
    ASSERT_TRUE(db_->write_sync([&](write_txn& t) -> result<json::value> {
                       if (auto r = t.remove(cars_, upd); !r) return std::move(r).error();
                       return json::value(nullptr);
                   }).has_value());
    // A write that changes nothing commits nothing to the log and does not notify.
    ASSERT_TRUE(db_->write_sync([](write_txn&) -> result<json::value> { return json::value(1); }).has_value());

    auto log = changes_sync(*db_, 0);
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log[0].op, "create");
    EXPECT_EQ(log[1].op, "update");
    EXPECT_EQ(log[2].op, "delete");
    for (std::size_t i = 0; i < log.size(); ++i) {
        EXPECT_EQ(log[i].seq, static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(log[i].collection, "cars");
        EXPECT_EQ(log[i].id, "01A");
        EXPECT_GT(log[i].ts, 0);
    }
    EXPECT_EQ(get_string(log[0].record, "brand"), "Ford");
    EXPECT_TRUE(log[0].record.at("price").is_double());  // the stored form
    EXPECT_EQ(log[0].record.size(), 5u + cars_.fields.size());  // every field, absent ones null
    EXPECT_EQ(get_string(log[1].record, "brand"), "Kia");
    EXPECT_EQ(get_string(log[2].record, "brand"), "Kia");
    EXPECT_EQ(db_->last_seq(), 3);
    {
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3}));
    }

    auto tail = changes_sync(*db_, 1, 1);
    ASSERT_EQ(tail.size(), 1u);
    EXPECT_EQ(tail[0].seq, 2);

    // last_seq survives a reopen.
    reopen();
    EXPECT_EQ(db_->last_seq(), 3);
    ASSERT_TRUE(insert_sync(*db_, cars_, car("01B")).has_value());
    EXPECT_EQ(db_->last_seq(), 4);
}

}  // namespace
}  // namespace livebase
