// The pure parts of the SQLite backend: SQL text, value mapping, error parsing, URL parsing.
#include "store/sqlite/sql.hpp"
#include "store/sqlite/txn.hpp"
#include "unit/store/store_test_support.hpp"

#include <gtest/gtest.h>

namespace livebase {
namespace {

using namespace livebase::sqlite;

TEST(sql, quotes_identifiers) {
    EXPECT_EQ(quote_ident("c_cars"), "\"c_cars\"");
    EXPECT_EQ(quote_ident("a\"b"), "\"a\"\"b\"");
}

TEST(sql, maps_fields_to_columns) {
    auto c = test::typed_cars();
    EXPECT_EQ(column_for(c, "id"), "id");
    EXPECT_EQ(column_for(c, "owner"), "owner");
    EXPECT_EQ(column_for(c, "brand"), "f_brand");
    EXPECT_EQ(column_for(c, "nope"), std::nullopt);
    EXPECT_EQ(field_for_column(c, "f_vin")->name, "vin");
    EXPECT_EQ(field_for_column(c, "version"), nullptr);
    EXPECT_EQ(sql_type(field_type::boolean), "INTEGER");
    EXPECT_EQ(sql_type(field_type::integer), "INTEGER");
    EXPECT_EQ(sql_type(field_type::number), "REAL");
    EXPECT_EQ(sql_type(field_type::json), "TEXT");
    EXPECT_EQ(sql_type(field_type::datetime), "TEXT");
}

TEST(sql, escapes_like_patterns) {
    EXPECT_EQ(escape_like("50%_a\\b"), "50\\%\\_a\\\\b");
    EXPECT_EQ(escape_like("plain"), "plain");
}

TEST(sql, builds_parameterized_where) {
    auto c = test::typed_cars();
    std::vector<filter_term> f{{"brand", lookup::exact, "Ford' OR 1=1 --"},
                               {"model", lookup::gte, std::int64_t{2014}},
                               {"electric", lookup::exact, true},
                               {"brand", lookup::icontains, "a%"},
                               {"vin", lookup::in, json::array{"x", "y"}},
                               {"notes", lookup::isnull, true},
                               {"price", lookup::ne, 3.5}};
    auto w = build_where(c, f);
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->sql,
              "\"f_brand\" = ? AND \"f_model\" >= ? AND \"f_electric\" = ? AND \"f_brand\" LIKE ? ESCAPE '\\' AND "
              "\"f_vin\" IN (?, ?) AND \"f_notes\" IS NULL AND \"f_price\" IS NOT ?");
    ASSERT_EQ(w->params.size(), 7u);
    EXPECT_EQ(w->params[0], json::value("Ford' OR 1=1 --"));
    EXPECT_EQ(w->params[2], json::value(1));  // booleans bind as 0/1
    EXPECT_EQ(w->params[3], json::value("%a\\%%"));
}

TEST(sql, empty_in_and_empty_suffix) {
    auto c = test::typed_cars();
    auto w = build_where(c, {{"vin", lookup::in, json::array{}}, {"brand", lookup::endswith, ""}});
    ASSERT_TRUE(w.has_value());
    EXPECT_EQ(w->sql, "0 AND \"f_brand\" IS NOT NULL");
    EXPECT_TRUE(w->params.empty());
}

TEST(sql, unknown_fields_are_refused) {
    auto c = test::typed_cars();
    EXPECT_FALSE(build_where(c, {{"nope", lookup::exact, "x"}}).has_value());
    EXPECT_FALSE(build_order_by(c, {{"nope", false}}).has_value());
}

TEST(sql, order_by_ends_with_id) {
    auto c = test::typed_cars();
    auto o = build_order_by(c, {{"model", true}, {"brand", false}});
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(*o, " ORDER BY \"f_model\" DESC, \"f_brand\" ASC, \"id\" ASC");
    EXPECT_EQ(*build_order_by(c, {}), " ORDER BY \"id\" ASC");
    EXPECT_EQ(*build_order_by(c, {{"id", true}, {"brand", false}}), " ORDER BY \"id\" DESC");
}

TEST(sql, normalizes_records_like_a_round_trip) {
    auto c = test::typed_cars();
    json::object rec{{"id", "a"},        {"created", "t"}, {"updated", "t"}, {"version", 1},
                     {"price", 3},       {"electric", true}, {"extra", json::object{{"k", 1}}},
                     {"unknown", "drop"}};
    auto n = normalize_record(c, rec);
    EXPECT_TRUE(n.at("price").is_double());
    EXPECT_EQ(n.at("electric"), json::value(true));
    EXPECT_TRUE(n.at("owner").is_null());
    EXPECT_TRUE(n.at("brand").is_null());
    EXPECT_EQ(n.at("extra"), (json::object{{"k", 1}}));
    EXPECT_FALSE(n.contains("unknown"));
}

TEST(sql, unique_violation_names_the_field) {
    auto c = test::typed_cars();
    EXPECT_EQ(unique_violation_field(c, "UNIQUE constraint failed: c_cars.f_vin"), "vin");
    EXPECT_EQ(unique_violation_field(c, "UNIQUE constraint failed: c_cars.id"), "id");
    EXPECT_EQ(unique_violation_field(c, "UNIQUE constraint failed: c_cars.f_brand, c_cars.f_model"), "brand");
    EXPECT_EQ(unique_violation_field(c, "something else"), "");
}

TEST(open_store, parses_urls) {
    test::temp_dir dir;
    auto a = open_store("sqlite:" + dir.file("a/b/x.db"));
    ASSERT_TRUE(a.has_value()) << a.error().detail;
    (*a)->close();
    EXPECT_TRUE(std::filesystem::exists(dir.file("a/b/x.db")));

    auto b = open_store("sqlite://" + dir.file("y.db"));  // "sqlite:///abs/y.db"
    ASSERT_TRUE(b.has_value()) << b.error().detail;
    b.value().reset();
    EXPECT_TRUE(std::filesystem::exists(dir.file("y.db")));

    auto pg = open_store("postgresql://u@localhost/db");
    ASSERT_FALSE(pg.has_value());
    EXPECT_NE(pg.error().detail.find("PostgreSQL"), std::string::npos);
    EXPECT_FALSE(open_store("postgres://u@localhost/db").has_value());

    auto my = open_store("mysql://localhost/db");
    ASSERT_FALSE(my.has_value());
    EXPECT_NE(my.error().detail.find("\"mysql\""), std::string::npos);
    EXPECT_FALSE(open_store("sqlite:").has_value());
    EXPECT_FALSE(open_store("just-a-path").has_value());

    sqlite_options mem;
    mem.path = ":memory:";
    EXPECT_FALSE(open_sqlite_store(mem).has_value());
}

}  // namespace
}  // namespace livebase
