// The SQLite store's database file: damage found at runtime stops every write, and the WAL is
// checkpointed off the writer.
#include "unit/store/sqlite_store_fixture.hpp"

#include <livebase/schema/query.hpp>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <string>
#include <thread>
#include <utility>
#include <vector>

namespace livebase {
namespace {

// A malformed page found while serving (the file was damaged after the open-time check, or the
// check is off) answers 503 storage-damaged, and stops every write of the store, also writes
// that would not touch the damaged table: nothing more is committed into a malformed file.
TEST_F(sqlite_store_test, damage_found_at_runtime_stops_every_write) {
    if (test::on_postgres()) GTEST_SKIP() << "SQLite files only";
    for (int i = 0; i < 300; ++i) {  // enough rows for the table to span several pages
        auto id = "01D" + std::to_string(1000 + i);
        ASSERT_TRUE(insert_sync(*db_, cars_, car(id, {{"vin", id}, {"notes", std::string(200, 'n')}})));
    }
    EXPECT_EQ(db_->condition(), "ok");
    const auto path = dir_.file("data/test.db");
    db_.reset();

    // The cars table's root page, overwritten with junk (the header and the schema stay intact).
    std::int64_t root = 0, page_size = 0;
    {
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
        sqlite3_stmt* st = nullptr;
        ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT rootpage FROM sqlite_schema WHERE name = 'c_cars'", -1, &st, nullptr),
                  SQLITE_OK);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        root = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA page_size", -1, &st, nullptr), SQLITE_OK);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        page_size = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        ASSERT_EQ(sqlite3_exec(raw, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(raw);
    }
    ASSERT_GT(root, 1);
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp((root - 1) * page_size);
        const std::string junk(static_cast<std::size_t>(page_size), '\xA5');
        f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    reopen();  // the open-time check is off by default

    auto listed = db_->list_sync(cars_, query{});
    ASSERT_FALSE(listed.has_value());
    EXPECT_EQ(listed.error().status, 503);
    EXPECT_EQ(listed.error().type, "/problems/storage-damaged");
    EXPECT_EQ(db_->condition(), "damaged");

    // A write that touches no table at all is refused too, and commits nothing.
    std::atomic<bool> ran{false};
    auto w = db_->write_sync([&](write_txn&) -> result<json::value> {
        ran = true;
        return json::value(true);
    });
    ASSERT_FALSE(w.has_value());
    EXPECT_EQ(w.error().status, 503);
    EXPECT_EQ(w.error().type, "/problems/storage-damaged");
    EXPECT_FALSE(ran.load());
}

// A store past storage.max_size stays "full" through transactions that change nothing (an idle
// worker's claim, a reap that found nothing: they commit on a full disk too) until a write that
// changes rows commits again.
TEST_F(sqlite_store_test, full_ends_with_a_write_that_changes_rows_not_with_an_empty_commit) {
    if (test::on_postgres()) GTEST_SKIP() << "SQLite files only";
    db_.reset();
    sqlite_options o;
    o.path = dir_.file("data/full.db");
    o.max_size = 256 * 1024;
    auto opened = open_sqlite_store(o);
    ASSERT_TRUE(opened) << opened.error().detail;
    auto db = std::move(opened).value();
    test::migrate_or_die(*db, cars_);
    const std::string notes(20000, 'n');
    std::vector<json::object> stored;
    result<json::value> refused = json::value(nullptr);
    for (int i = 0; i < 40 && refused; ++i) {  // 256 KiB hold fewer than 13 of these
        auto id = "01F" + std::to_string(1000 + i);
        auto rec = car(id, {{"vin", id}, {"notes", notes}});
        refused = insert_sync(*db, cars_, rec);
        if (refused) stored.push_back(std::move(rec));
    }
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().status, 507);
    ASSERT_FALSE(stored.empty());
    EXPECT_EQ(db->condition(), "full");

    auto empty = db->write_sync([](write_txn&) -> result<json::value> { return json::value(true); });
    ASSERT_TRUE(empty) << empty.error().detail;
    EXPECT_EQ(db->condition(), "full") << "a commit that changed nothing ended the episode";

    auto removed = db->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.remove(cars_, stored.front()); !r) return std::move(r).error();
        return json::value(true);
    });
    ASSERT_TRUE(removed) << removed.error().detail;
    EXPECT_EQ(db->condition(), "ok");
}

// The writer never checkpoints the WAL itself (below 20,000 pages): the checkpointer thread
// copies it into the database file once it passes 1,000 pages, so the file grows while the
// store is open, not only when it closes.
TEST_F(sqlite_store_test, the_wal_is_checkpointed_off_the_writer) {
    if (test::on_postgres()) GTEST_SKIP() << "SQLite files only";
    const auto path = dir_.file("data/test.db");
    const auto before = std::filesystem::file_size(path);
    const std::string notes(2000, 'n');
    for (int batch = 0; batch < 30; ++batch) {  // ~3,000 rows of 2 KB, plus their change-log rows
        std::vector<json::object> rows;
        auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
            for (int i = 0; i < 100; ++i) {
                auto id = "01W" + std::to_string(100000 + batch * 100 + i);
                if (auto w = t.insert(cars_, car(id, {{"vin", id}, {"notes", notes}})); !w) return std::move(w).error();
            }
            return json::value(true);
        });
        ASSERT_TRUE(r) << r.error().detail;
    }
    // Checkpoints are asynchronous: wait for the file to take the rows (bounded).
    std::uintmax_t size = before;
    for (int i = 0; i < 500 && size < before + 4 * 1024 * 1024; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        size = std::filesystem::file_size(path);
    }
    EXPECT_GE(size, before + 4 * 1024 * 1024) << "the database file did not take the WAL's pages";
}

}  // namespace
}  // namespace livebase
