#pragma once
// Shared by the SQLite store tests (sqlite_store_*test.cpp): a store on a temporary file with the
// typed cars migrated (sqlite_store_test), the stored form of a car, synchronous writes and reads.
#include "unit/store/store_test_support.hpp"

#include <gtest/gtest.h>

#include <cstddef>
#include <cstdint>
#include <future>
#include <memory>
#include <string>
#include <utility>
#include <vector>

namespace livebase {

inline json::object car(std::string id, json::object fields = {}) {
    json::object rec{{"id", id},
                     {"created", "2026-01-01T00:00:00.000Z"},
                     {"updated", "2026-01-01T00:00:00.000Z"},
                     {"version", 1},
                     {"owner", "u1"}};
    for (auto& kv : fields) rec[kv.key()] = kv.value();
    return rec;
}

inline result<json::value> insert_sync(store& s, const collection_def& c, json::object rec) {
    return s.write_sync([&c, rec](write_txn& t) -> result<json::value> {
        if (auto r = t.insert(c, rec); !r) return std::move(r).error();
        return json::value(rec);
    });
}

inline std::vector<change> changes_sync(store& s, std::int64_t after, std::size_t limit = 100000) {
    std::promise<result<std::vector<change>>> p;
    s.read([&](read_txn& t) { p.set_value(t.changes_after(after, limit)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.has_value());
    return r ? std::move(r).value() : std::vector<change>{};
}

inline std::vector<std::string> ids_of(const std::vector<json::object>& items) {
    std::vector<std::string> out;
    for (const auto& r : items) out.emplace_back(get_string(r, "id"));
    return out;
}

class sqlite_store_test : public ::testing::Test {
protected:
    void SetUp() override {
        db_ = test::open_or_die(dir_.file("data/test.db"));
        ASSERT_TRUE(db_);
        test::migrate_or_die(*db_, cars_);
    }
    void reopen(std::size_t max_batch = 256) {
        db_.reset();
        db_ = test::open_or_die(dir_.file("data/test.db"), max_batch);
        ASSERT_TRUE(db_);
    }

    test::temp_dir dir_;
    collection_def cars_ = test::typed_cars();
    std::unique_ptr<store> db_;
};

}  // namespace livebase
