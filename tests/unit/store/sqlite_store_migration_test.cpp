// Migrations of the SQLite store: tables and indexes created once, added fields, retypes and
// drops that need allow_destructive, rebuilt indexes, and unique over duplicates refused.
#include "unit/store/sqlite_store_fixture.hpp"

#include <gtest/gtest.h>

#include <memory>
#include <string>
#include <vector>

namespace livebase {
namespace {

using test::make_field;
using test::open_or_die;
using test::temp_dir;

collection_def v1() {
    collection_def c;
    c.name = "items";
    c.fields.push_back(make_field("name", field_type::string));
    c.fields.push_back(make_field("qty", field_type::integer));
    c.fields.push_back(make_field("old", field_type::string));
    EXPECT_EQ(finalize(c), "");
    return c;
}

class migration_test : public ::testing::Test {
protected:
    void SetUp() override {
        db_ = open_or_die(dir_.file("m.db"));
        ASSERT_TRUE(db_);
    }
    void reopen() {
        db_.reset();
        db_ = open_or_die(dir_.file("m.db"));
        ASSERT_TRUE(db_);
    }
    temp_dir dir_;
    std::unique_ptr<store> db_;
};

TEST_F(migration_test, creates_tables_and_indexes_once) {
    auto c = v1();
    c.fields[0].unique = true;
    c.indexes = {{"qty", "created"}};
    auto dry = db_->migrate({&c}, false, true);
    ASSERT_TRUE(dry.has_value());
    EXPECT_EQ(dry->steps, (std::vector<std::string>{"create table items",
                                                    "create unique index u_items_name on items (name)",
                                                    "create index i_items_0 on items (qty, created)"}));
    // dry_run changed nothing.
    auto again = db_->migrate({&c}, false, true);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->steps.size(), 3u);

    auto done = db_->migrate({&c}, false, false);
    ASSERT_TRUE(done.has_value());
    EXPECT_EQ(done->steps.size(), 3u);
    reopen();
    auto noop = db_->migrate({&c}, false, false);
    ASSERT_TRUE(noop.has_value());
    EXPECT_TRUE(noop->steps.empty());
    EXPECT_TRUE(noop->destructive.empty());
}

TEST_F(migration_test, added_field_reads_null_on_old_rows) {
    auto c = v1();
    ASSERT_TRUE(db_->migrate({&c}, false, false).has_value());
    ASSERT_TRUE(insert_sync(*db_, c, car("01A", {{"name", "a"}, {"qty", 3}})).has_value());

    reopen();
    auto c2 = v1();
    c2.fields.push_back(make_field("color", field_type::string));
    auto extra = make_field("tag", field_type::string);
    extra.unique = true;
    c2.fields.push_back(extra);
    ASSERT_EQ(finalize(c2), "");
    auto plan = db_->migrate({&c2}, false, false);
    ASSERT_TRUE(plan.has_value()) << plan.error().detail;
    EXPECT_EQ(plan->steps, (std::vector<std::string>{"add field items.color (string)", "add field items.tag (string)",
                                                     "create unique index u_items_tag on items (tag)"}));
    EXPECT_TRUE(plan->destructive.empty());

    auto got = db_->get_sync(c2, "01A");
    ASSERT_TRUE(got.has_value() && got->has_value());
    EXPECT_EQ((**got).at("name"), json::value("a"));
    EXPECT_TRUE((**got).at("color").is_null());
    ASSERT_TRUE(insert_sync(*db_, c2, car("01B", {{"color", "red"}, {"tag", "t"}})).has_value());
    EXPECT_EQ(insert_sync(*db_, c2, car("01C", {{"tag", "t"}})).error().status, 409);
}

TEST_F(migration_test, retype_and_drop_need_allow_destructive) {
    auto c = v1();
    ASSERT_TRUE(db_->migrate({&c}, false, false).has_value());
    ASSERT_TRUE(insert_sync(*db_, c, car("01A", {{"name", "a"}, {"qty", 3}, {"old", "x"}})).has_value());

    auto c2 = v1();
    c2.fields[1].type = field_type::string;  // qty: integer -> string
    c2.fields[0].type = field_type::text;    // name: string -> text keeps data
    c2.fields.pop_back();                    // old: dropped
    c2.indexes = {};
    ASSERT_EQ(finalize(c2), "");

    auto refused = db_->migrate({&c2}, false, false);
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().status, 409);
    EXPECT_NE(refused.error().detail.find("retype field items.qty from integer to string"), std::string::npos);
    EXPECT_NE(refused.error().detail.find("drop field items.old"), std::string::npos);
    ASSERT_TRUE(refused.error().extra.at("destructive").is_array());
    EXPECT_EQ(refused.error().extra.at("destructive").get_array().size(), 2u);
    // Nothing was applied: the old definition still works.
    EXPECT_EQ((**db_->get_sync(c, "01A")).at("qty"), json::value(3));

    auto dry = db_->migrate({&c2}, false, true);  // a plan, not a refusal
    ASSERT_TRUE(dry.has_value());
    EXPECT_EQ(dry->destructive.size(), 2u);
    EXPECT_EQ(dry->steps, (std::vector<std::string>{"retype field items.name from string to text (data kept)"}));

    auto allowed = db_->migrate({&c2}, true, false);
    ASSERT_TRUE(allowed.has_value()) << allowed.error().detail;
    auto got = db_->get_sync(c2, "01A");
    ASSERT_TRUE(got.has_value() && got->has_value());
    EXPECT_EQ((**got).at("name"), json::value("a"));
    EXPECT_TRUE((**got).at("qty").is_null());  // retyped: data dropped
    EXPECT_FALSE((**got).contains("old"));
    ASSERT_TRUE(insert_sync(*db_, c2, car("01B", {{"qty", "three"}})).has_value());

    reopen();
    auto noop = db_->migrate({&c2}, false, false);
    ASSERT_TRUE(noop.has_value());
    EXPECT_TRUE(noop->steps.empty());
    EXPECT_TRUE(noop->destructive.empty());
}

TEST_F(migration_test, retyping_an_indexed_field_rebuilds_its_indexes) {
    auto c = v1();
    c.fields[1].unique = true;
    c.indexes = {{"qty", "name"}};
    ASSERT_EQ(finalize(c), "");
    ASSERT_TRUE(db_->migrate({&c}, false, false).has_value());
    ASSERT_TRUE(insert_sync(*db_, c, car("01A", {{"qty", 1}})).has_value());

    auto c2 = c;
    c2.fields[1].type = field_type::number;
    auto plan = db_->migrate({&c2}, true, false);
    ASSERT_TRUE(plan.has_value()) << plan.error().detail;
    ASSERT_TRUE(insert_sync(*db_, c2, car("01B", {{"qty", 1.5}})).has_value());
    EXPECT_EQ(insert_sync(*db_, c2, car("01C", {{"qty", 1.5}})).error().status, 409);  // still unique

    // Dropping the declared index is destructive too.
    auto c3 = c2;
    c3.indexes = {};
    auto refused = db_->migrate({&c3}, false, false);
    ASSERT_FALSE(refused.has_value());
    EXPECT_NE(refused.error().detail.find("drop index i_items_0"), std::string::npos);
    ASSERT_TRUE(db_->migrate({&c3}, true, false).has_value());
}

TEST_F(migration_test, making_a_field_unique_over_duplicates_is_refused) {
    auto c = v1();
    ASSERT_TRUE(db_->migrate({&c}, false, false).has_value());
    ASSERT_TRUE(insert_sync(*db_, c, car("01A", {{"name", "same"}})).has_value());
    ASSERT_TRUE(insert_sync(*db_, c, car("01B", {{"name", "same"}})).has_value());
    auto c2 = c;
    c2.fields[0].unique = true;
    auto r = db_->migrate({&c2}, false, false);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 409);
}

}  // namespace
}  // namespace livebase
