// The SQLite store's records: CRUD of every field type, a write seeing its own changes, and
// unique violations (409).
#include "unit/store/sqlite_store_fixture.hpp"

#include <livebase/schema/query.hpp>

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace livebase {
namespace {

TEST_F(sqlite_store_test, crud_round_trips_every_field_type) {
    auto full = car("01A", {{"brand", "Ford"},
                            {"vin", "V1"},
                            {"model", std::int64_t{2014}},
                            {"price", 12345.5},
                            {"electric", true},
                            {"notes", "long text \xC3\xA9"},
                            {"built", "2014-05-06T07:08:09.000Z"},
                            {"extra", json::object{{"a", json::array{1, 2.5, "x", nullptr, false}}}},
                            {"maker", "M1"}});
    ASSERT_TRUE(insert_sync(*db_, cars_, full).has_value());

    auto got = db_->get_sync(cars_, "01A");
    ASSERT_TRUE(got.has_value());
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ(**got, full) << json::serialize(**got);

    // Absent and null fields read back as null; json null is SQL NULL.
    auto sparse = car("01B", {{"brand", "Kia"}, {"extra", nullptr}, {"electric", false}});
    sparse["owner"] = nullptr;
    ASSERT_TRUE(insert_sync(*db_, cars_, sparse).has_value());
    auto got_sparse = db_->get_sync(cars_, "01B");
    ASSERT_TRUE(got_sparse.has_value() && got_sparse->has_value());
    const auto& s = **got_sparse;
    EXPECT_EQ(s.at("electric"), json::value(false));
    EXPECT_TRUE(s.at("model").is_null());
    EXPECT_TRUE(s.at("extra").is_null());
    EXPECT_TRUE(s.at("owner").is_null());
    EXPECT_EQ(s.size(), 5u + cars_.fields.size());

    // Integers stored in a number field read back as doubles.
    auto n = car("01C", {{"price", 7}});
    ASSERT_TRUE(insert_sync(*db_, cars_, n).has_value());
    EXPECT_TRUE((*db_->get_sync(cars_, "01C"))->at("price").is_double());

    // Update replaces the record; remove deletes it.
    auto updated = full;
    updated["brand"] = "Ford Motor";
    updated["electric"] = false;
    updated["version"] = 2;
    updated["extra"] = json::array{"changed"};
    auto u = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.update(cars_, updated); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(**db_->get_sync(cars_, "01A"), updated);

    auto d = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.remove(cars_, updated); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(d.has_value());
    auto gone = db_->get_sync(cars_, "01A");
    ASSERT_TRUE(gone.has_value());
    EXPECT_FALSE(gone->has_value());

    // Absent records: 404 for update and remove.
    auto u404 = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.update(cars_, car("nope")); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_FALSE(u404.has_value());
    EXPECT_EQ(u404.error().status, 404);
    auto d404 = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.remove(cars_, car("nope")); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_FALSE(d404.has_value());
    EXPECT_EQ(d404.error().status, 404);
}

TEST_F(sqlite_store_test, a_write_sees_its_own_changes_and_readers_see_commits) {
    auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto i = t.insert(cars_, car("01A", {{"brand", "Ford"}})); !i) return std::move(i).error();
        auto got = t.get(cars_, "01A");
        if (!got || !got.value()) return problem::internal("not visible");
        query q;
        auto pg = t.list(cars_, q);
        if (!pg || pg->count != 1) return problem::internal("not listed");
        return json::value(nullptr);
    });
    ASSERT_TRUE(r.has_value()) << r.error().detail;
    auto pg = db_->list_sync(cars_, query{});
    ASSERT_TRUE(pg.has_value());
    EXPECT_EQ(pg->count, 1);
}

TEST_F(sqlite_store_test, unique_violation_is_a_409_naming_the_field) {
    ASSERT_TRUE(insert_sync(*db_, cars_, car("01A", {{"vin", "V1"}})).has_value());
    auto dup = insert_sync(*db_, cars_, car("01B", {{"vin", "V1"}}));
    ASSERT_FALSE(dup.has_value());
    EXPECT_EQ(dup.error().status, 409);
    EXPECT_EQ(dup.error().detail, "A record with this vin already exists.");
    EXPECT_EQ(dup.error().extra.at("errors"),
              (json::object{{"vin", json::array{"A record with this vin already exists."}}}));

    auto dup_id = insert_sync(*db_, cars_, car("01A", {{"vin", "V2"}}));
    ASSERT_FALSE(dup_id.has_value());
    EXPECT_EQ(dup_id.error().status, 409);
    EXPECT_EQ(dup_id.error().detail, "A record with this id already exists.");

    // Updates conflict the same way; nulls never conflict.
    ASSERT_TRUE(insert_sync(*db_, cars_, car("01C", {{"vin", "V3"}})).has_value());
    auto u = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.update(cars_, car("01C", {{"vin", "V1"}})); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_FALSE(u.has_value());
    EXPECT_EQ(u.error().status, 409);
    EXPECT_TRUE(insert_sync(*db_, cars_, car("01D")).has_value());
    EXPECT_TRUE(insert_sync(*db_, cars_, car("01E")).has_value());
}

}  // namespace
}  // namespace livebase
