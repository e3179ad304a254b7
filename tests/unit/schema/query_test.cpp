#include <livebase/schema/query.hpp>

#include "unit/schema/cars_fixture.hpp"
#include "support/json_helpers.hpp"

#include <gtest/gtest.h>

#include <algorithm>

using namespace livebase;
using livebase::schema_test::cars;

using livebase::test::parse_obj;

namespace {


/// Parses one query string pair and returns its only filter.
filter_term one(const collection_def& c, std::string name, std::string value) {
    auto r = parse_query_params(c, {{std::move(name), std::move(value)}});
    EXPECT_TRUE(r.has_value()) << (r ? "" : json::serialize(r.error().to_json()));
    if (!r || r->filters.size() != 1) return {};
    return r->filters[0];
}

/// The (parameter, detail) of a failed parse.
std::pair<std::string, std::string> failure(const result<query>& r) {
    if (r.has_value()) return {"<ok>", ""};
    EXPECT_EQ(r.error().status, 400);
    EXPECT_EQ(r.error().type, "/problems/bad-parameter");
    return {std::string(r.error().extra.at("parameter").as_string()), r.error().detail};
}

std::pair<std::string, std::string> params_failure(const collection_def& c, query_params p) {
    return failure(parse_query_params(c, p));
}

std::pair<std::string, std::string> json_failure(const collection_def& c, std::string_view text) {
    return failure(parse_query_json(c, parse_obj(text)));
}

using failed = std::pair<std::string, std::string>;

json::object car(std::string id, std::string_view fields) {
    auto o = parse_obj(fields);
    o["id"] = id;
    return o;
}

bool match(const collection_def& c, query_params p, const json::object& record) {
    auto q = parse_query_params(c, p);
    EXPECT_TRUE(q.has_value()) << (q ? "" : json::serialize(q.error().to_json()));
    return q && matches(q->filters, record);
}

}  // namespace

TEST(query_names, lookups_round_trip) {
    for (auto n : {"exact", "iexact", "contains", "icontains", "startswith", "istartswith",
                   "endswith", "gt", "gte", "lt", "lte", "in", "isnull", "ne"}) {
        auto l = lookup_from_string(n);
        ASSERT_TRUE(l) << n;
        EXPECT_EQ(to_string(*l), n);
    }
    EXPECT_FALSE(lookup_from_string("foo"));
    EXPECT_FALSE(lookup_from_string("EXACT"));
    EXPECT_FALSE(lookup_from_string(""));
}

TEST(query_names, reserved_params) {
    for (auto n : {"limit", "offset", "ordering", "fields", "observe", "format"}) {
        EXPECT_TRUE(is_reserved_param(n));
    }
    for (auto n : {"x_limit", "brand", "order", "page", ""}) EXPECT_FALSE(is_reserved_param(n));
}

TEST(query_params, defaults) {
    auto c = cars();
    auto q = parse_query_params(c, {});
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->limit, 25u);
    EXPECT_EQ(q->offset, 0u);
    EXPECT_TRUE(q->filters.empty());
    EXPECT_TRUE(q->ordering.empty());
    EXPECT_TRUE(q->fields.empty());
}

TEST(query_params, the_http_md_example) {
    auto c = cars();
    auto q = parse_query_params(c, {{"brand", "Ford"}, {"model__gte", "2014"},
                                    {"ordering", "-model,brand"}, {"limit", "20"}, {"offset", "40"}});
    ASSERT_TRUE(q.has_value());
    ASSERT_EQ(q->filters.size(), 2u);
    EXPECT_EQ(q->filters[0].field, "brand");
    EXPECT_EQ(q->filters[0].op, lookup::exact);
    EXPECT_EQ(q->filters[0].value, "Ford");
    EXPECT_EQ(q->filters[1].field, "model");
    EXPECT_EQ(q->filters[1].op, lookup::gte);
    EXPECT_EQ(q->filters[1].value, 2014);
    ASSERT_EQ(q->ordering.size(), 2u);
    EXPECT_EQ(q->ordering[0].field, "model");
    EXPECT_TRUE(q->ordering[0].descending);
    EXPECT_EQ(q->ordering[1].field, "brand");
    EXPECT_FALSE(q->ordering[1].descending);
    EXPECT_EQ(q->limit, 20u);
    EXPECT_EQ(q->offset, 40u);
}

TEST(query_params, every_lookup_parses) {
    auto c = cars();
    for (auto op : {"exact", "iexact", "contains", "icontains", "startswith", "istartswith",
                    "endswith", "gt", "gte", "lt", "lte", "ne"}) {
        auto t = one(c, std::string("brand__") + op, "Fo");
        EXPECT_EQ(t.op, lookup_from_string(op));
        EXPECT_EQ(t.value, "Fo");
    }
    auto in = one(c, "model__in", "2014,2015");
    EXPECT_EQ(in.op, lookup::in);
    EXPECT_EQ(in.value, (json::array{2014, 2015}));
    auto isnull = one(c, "model__isnull", "true");
    EXPECT_EQ(isnull.op, lookup::isnull);
    EXPECT_EQ(isnull.value, true);
    EXPECT_EQ(one(c, "model__isnull", "false").value, false);
    EXPECT_EQ(one(c, "brand__exact", "x").op, lookup::exact);
}

TEST(query_params, unknown_fields_and_lookups) {
    auto c = cars();
    EXPECT_EQ(params_failure(c, {{"colour", "Red"}}), failed("colour", "Unknown field \"colour\"."));
    EXPECT_EQ(params_failure(c, {{"brand__foo", "x"}}), failed("brand__foo", "Unknown lookup \"foo\"."));
    EXPECT_EQ(params_failure(c, {{"brand__", "x"}}), failed("brand__", "Unknown lookup \"\"."));
    EXPECT_EQ(params_failure(c, {{"colour__foo", "x"}}),
              failed("colour__foo", "Unknown field \"colour__foo\"."));
    EXPECT_EQ(params_failure(c, {{"colour__gt", "x"}}), failed("colour__gt", "Unknown field \"colour\"."));
    EXPECT_EQ(params_failure(c, {{"brand__exact__gt", "x"}}),
              failed("brand__exact__gt", "Unknown field \"brand__exact\"."));
    EXPECT_EQ(params_failure(c, {{"", "x"}}), failed("", "Unknown field \"\"."));
    EXPECT_EQ(params_failure(c, {{"__gt", "x"}}), failed("__gt", "Unknown field \"\"."));
    EXPECT_EQ(params_failure(c, {{"secret", "x"}}), failed("secret", "Unknown field \"secret\"."));
    EXPECT_EQ(params_failure(c, {{"x_limit", "1"}}), failed("x_limit", "Unknown field \"x_limit\"."));
    EXPECT_EQ(params_failure(c, {{"Brand", "x"}}), failed("Brand", "Unknown field \"Brand\"."));
}

TEST(query_params, field_names_with_underscores) {
    auto c = cars();
    auto t = one(c, "sold_at__gt", "2026-01-01");
    EXPECT_EQ(t.field, "sold_at");
    EXPECT_EQ(t.op, lookup::gt);
    EXPECT_EQ(t.value, "2026-01-01T00:00:00.000Z");
    EXPECT_EQ(one(c, "sold_at", "2026-01-01T01:00:00+01:00").value, "2026-01-01T00:00:00.000Z");
}

TEST(query_params, managed_fields) {
    auto c = cars();
    EXPECT_EQ(one(c, "id", "01J").value, "01J");
    EXPECT_EQ(one(c, "id__startswith", "01J").op, lookup::startswith);
    EXPECT_EQ(one(c, "version__gt", "2").value, 2);
    EXPECT_EQ(one(c, "created__lt", "2026-11-24").value, "2026-11-24T00:00:00.000Z");
    EXPECT_EQ(one(c, "updated__startswith", "2026-11").value, "2026-11");  // raw text
    EXPECT_EQ(one(c, "owner", "u1").value, "u1");
    auto d = c;
    d.owned = false;
    EXPECT_EQ(params_failure(d, {{"owner", "u1"}}), failed("owner", "Unknown field \"owner\"."));
    EXPECT_EQ(params_failure(c, {{"version", "x"}}), failed("version", "Must be an integer."));
    EXPECT_EQ(params_failure(c, {{"version__contains", "1"}}),
              failed("version__contains", "Lookup \"contains\" is not allowed on field \"version\"."));
}

TEST(query_params, integer_values) {
    auto c = cars();
    EXPECT_EQ(one(c, "model", "-5").value, -5);
    EXPECT_EQ(one(c, "model", "9223372036854775807").value, INT64_MAX);
    EXPECT_EQ(one(c, "model", "-9223372036854775808").value, INT64_MIN);
    for (auto bad : {"", "2014.0", " 2014", "2014 ", "+1", "1e3", "0x10", "9223372036854775808",
                     "99999999999999999999", "-", "--1", "abc"}) {
        EXPECT_EQ(params_failure(c, {{"model", bad}}), failed("model", "Must be an integer.")) << bad;
    }
    // Filters do not apply the field's min/max: they select, they do not store.
    EXPECT_EQ(one(c, "model__lt", "3000").value, 3000);
}

TEST(query_params, number_values) {
    auto c = cars();
    EXPECT_EQ(one(c, "price", "1e3").value, 1000.0);
    EXPECT_EQ(one(c, "price", "-0.5").value, -0.5);
    EXPECT_TRUE(one(c, "price", "5").value.is_double());
    for (auto bad : {"", "inf", "nan", "-inf", "1e999", "0x10", " 1", "1 ", "+1", "1,5", "one"}) {
        EXPECT_EQ(params_failure(c, {{"price__gt", bad}}), failed("price__gt", "Must be a number."))
            << bad;
    }
}

TEST(query_params, boolean_values) {
    auto c = cars();
    EXPECT_EQ(one(c, "sold", "true").value, true);
    EXPECT_EQ(one(c, "sold", "1").value, true);
    EXPECT_EQ(one(c, "sold", "false").value, false);
    EXPECT_EQ(one(c, "sold", "0").value, false);
    for (auto bad : {"", "True", "yes", "2"}) {
        EXPECT_EQ(params_failure(c, {{"sold", bad}}), failed("sold", "Must be true or false.")) << bad;
    }
    EXPECT_EQ(params_failure(c, {{"sold__icontains", "t"}}),
              failed("sold__icontains", "Lookup \"icontains\" is not allowed on field \"sold\"."));
}

TEST(query_params, datetime_and_string_values) {
    auto c = cars();
    EXPECT_EQ(params_failure(c, {{"sold_at__gte", "2026-13-01"}}),
              failed("sold_at__gte", "Must be a valid RFC 3339 datetime."));
    EXPECT_EQ(params_failure(c, {{"brand", "\xff"}}), failed("brand", "Must be valid UTF-8."));
    EXPECT_EQ(params_failure(c, {{"brand__icontains", "\xc3"}}),
              failed("brand__icontains", "Must be valid UTF-8."));
    EXPECT_EQ(one(c, "brand", "").value, "");
    EXPECT_EQ(one(c, "dealer", "").value, "");  // refs filter as plain strings
    EXPECT_EQ(one(c, "dealer__startswith", "d").op, lookup::startswith);
    EXPECT_EQ(one(c, "notes__icontains", "caf\xc3\xa9").value, "caf\xc3\xa9");
}

TEST(query_params, text_lookups_only_on_text) {
    auto c = cars();
    for (auto op : {"iexact", "contains", "icontains", "startswith", "istartswith", "endswith"}) {
        std::string key = std::string("model__") + op;
        EXPECT_EQ(params_failure(c, {{key, "1"}}),
                  failed(key, "Lookup \"" + std::string(op) + "\" is not allowed on field \"model\"."));
        EXPECT_EQ(params_failure(c, {{std::string("price__") + op, "1"}}).first, std::string("price__") + op);
    }
}

TEST(query_params, json_fields_only_isnull) {
    auto c = cars();
    EXPECT_EQ(one(c, "extra__isnull", "true").value, true);
    EXPECT_EQ(params_failure(c, {{"extra", "{}"}}),
              failed("extra", "The json field \"extra\" can only be filtered with isnull."));
    EXPECT_EQ(params_failure(c, {{"extra__contains", "a"}}).second,
              "The json field \"extra\" can only be filtered with isnull.");
}

TEST(query_params, in_lists) {
    auto c = cars();
    EXPECT_EQ(one(c, "color__in", "Red,Blue").value, (json::array{"Red", "Blue"}));
    EXPECT_EQ(one(c, "color__in", "Red").value, (json::array{"Red"}));
    EXPECT_EQ(one(c, "brand__in", "a,,b").value, (json::array{"a", "", "b"}));
    EXPECT_EQ(one(c, "sold_at__in", "2026-01-01").value, (json::array{"2026-01-01T00:00:00.000Z"}));
    EXPECT_EQ(params_failure(c, {{"model__in", ""}}),
              failed("model__in", "Must be a non-empty comma-separated list."));
    EXPECT_EQ(params_failure(c, {{"model__in", "2014,x"}}), failed("model__in", "\"x\": Must be an integer."));
    EXPECT_EQ(params_failure(c, {{"model__in", "2014,"}}), failed("model__in", "\"\": Must be an integer."));
    std::string hundred, hundred_one;
    for (int i = 0; i < 100; ++i) hundred += (i ? "," : "") + std::to_string(i);
    hundred_one = hundred + ",100";
    EXPECT_EQ(one(c, "model__in", hundred).value.as_array().size(), 100u);
    EXPECT_EQ(params_failure(c, {{"model__in", hundred_one}}),
              failed("model__in", "At most 100 values are allowed."));
    std::string many(100000, ',');
    EXPECT_EQ(params_failure(c, {{"brand__in", many}}).second, "At most 100 values are allowed.");
}

TEST(query_params, isnull_values) {
    auto c = cars();
    for (auto bad : {"1", "0", "True", "", "yes"}) {
        EXPECT_EQ(params_failure(c, {{"brand__isnull", bad}}), failed("brand__isnull", "Must be true or false."));
    }
}

TEST(query_params, ordering) {
    auto c = cars();
    auto q = parse_query_params(c, {{"ordering", "created,-id,owner"}});
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->ordering.size(), 3u);
    q = parse_query_params(c, {{"ordering", ""}});
    ASSERT_TRUE(q.has_value());
    EXPECT_TRUE(q->ordering.empty());
    EXPECT_EQ(params_failure(c, {{"ordering", "colour"}}), failed("ordering", "Unknown field \"colour\"."));
    EXPECT_EQ(params_failure(c, {{"ordering", "-secret"}}), failed("ordering", "Unknown field \"secret\"."));
    EXPECT_EQ(params_failure(c, {{"ordering", "brand,"}}), failed("ordering", "Empty ordering term."));
    EXPECT_EQ(params_failure(c, {{"ordering", "-"}}), failed("ordering", "Empty ordering term."));
    EXPECT_EQ(params_failure(c, {{"ordering", "--brand"}}), failed("ordering", "Unknown field \"-brand\"."));
    EXPECT_EQ(params_failure(c, {{"ordering", "brand,-brand"}}),
              failed("ordering", "Field \"brand\" is ordered twice."));
    EXPECT_EQ(params_failure(c, {{"ordering", "extra"}}),
              failed("ordering", "Cannot order by the json field \"extra\"."));
    EXPECT_EQ(params_failure(c, {{"ordering", "a,b,c,d,e,f,g,h,i"}}),
              failed("ordering", "At most 8 ordering terms are allowed."));
    EXPECT_EQ(params_failure(c, {{"ordering", std::string(100000, ',')}}).second,
              "At most 8 ordering terms are allowed.");
    EXPECT_TRUE(parse_query_params(
        c, {{"ordering", "brand,make,model,color,vin,price,notes,sold"}}).has_value());
}

TEST(query_params, limit_and_offset) {
    auto c = cars();
    auto limit = [&](std::string v) {
        auto q = parse_query_params(c, {{"limit", std::move(v)}});
        return q ? q->limit : 0;
    };
    EXPECT_EQ(limit("1"), 1u);
    EXPECT_EQ(limit("500"), 500u);
    EXPECT_EQ(limit("501"), 500u);
    EXPECT_EQ(limit("99999999999999999999999"), 500u);
    EXPECT_EQ(params_failure(c, {{"limit", "0"}}), failed("limit", "Must be at least 1."));
    EXPECT_EQ(params_failure(c, {{"limit", "-0"}}), failed("limit", "Must be at least 1."));
    EXPECT_EQ(params_failure(c, {{"limit", "-1"}}), failed("limit", "Must be at least 1."));
    for (auto bad : {"", "x", "1.5", " 1", "+1", "-", "1e2"}) {
        EXPECT_EQ(params_failure(c, {{"limit", bad}}), failed("limit", "Must be an integer.")) << bad;
        EXPECT_EQ(params_failure(c, {{"offset", bad}}), failed("offset", "Must be an integer.")) << bad;
    }
    auto q = parse_query_params(c, {{"offset", "1000000000"}});
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->offset, 1000000000u);
    EXPECT_EQ(params_failure(c, {{"offset", "1000000001"}}), failed("offset", "Must be at most 1000000000."));
    EXPECT_EQ(params_failure(c, {{"offset", "99999999999999999999999"}}).second, "Must be at most 1000000000.");
    EXPECT_EQ(params_failure(c, {{"offset", "-1"}}), failed("offset", "Must not be negative."));
    q = parse_query_params(c, {{"offset", "0"}});
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->offset, 0u);
}

TEST(query_params, page_size_comes_from_the_collection) {
    auto c = cars();
    c.page_size = 10;
    c.max_page_size = 20;
    auto q = parse_query_params(c, {});
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->limit, 10u);
    q = parse_query_params(c, {{"limit", "50"}});
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->limit, 20u);
}

TEST(query_params, fields_projection) {
    auto c = cars();
    auto q = parse_query_params(c, {{"fields", "brand,model,brand,id,extra,owner"}});
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->fields, (std::vector<std::string>{"brand", "model", "id", "extra", "owner"}));
    q = parse_query_params(c, {{"fields", ""}});
    ASSERT_TRUE(q.has_value());
    EXPECT_TRUE(q->fields.empty());
    EXPECT_EQ(params_failure(c, {{"fields", "brand,secret"}}), failed("fields", "Unknown field \"secret\"."));
    EXPECT_EQ(params_failure(c, {{"fields", "brand,"}}), failed("fields", "Unknown field \"\"."));
    EXPECT_EQ(params_failure(c, {{"fields", std::string(100000, ',')}}), failed("fields", "Too many fields."));
}

TEST(query_params, repeated_reserved_and_repeated_filters) {
    auto c = cars();
    for (auto n : {"limit", "offset", "ordering", "fields", "observe", "format"}) {
        std::string v = (n == std::string("ordering") || n == std::string("fields")) ? "brand" : "1";
        EXPECT_EQ(params_failure(c, {{n, v}, {n, v}}), failed(n, "May be given only once.")) << n;
        EXPECT_EQ(params_failure(c, {{n, v}, {"brand", "x"}, {n, "2"}}).first, n);
    }
    auto q = parse_query_params(c, {{"model__gte", "2000"}, {"model__gte", "2010"}, {"observe", "1"},
                                    {"format", "json"}});
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->filters.size(), 2u);
}

TEST(query_params, at_most_64_filters) {
    auto c = cars();
    query_params p(64, {"brand", "x"});
    EXPECT_TRUE(parse_query_params(c, p).has_value());
    p.emplace_back("model", "2000");
    EXPECT_EQ(params_failure(c, p), failed("model", "At most 64 filters are allowed."));
}

TEST(query_json, typed_filters) {
    auto c = cars();
    auto q = parse_query_json(c, parse_obj(R"({"filter": {"brand": "Ford", "model__gte": 2014,
        "price__lt": 5, "sold": true, "color__in": ["Red", "Blue"], "vin__isnull": false,
        "sold_at__gt": "2026-01-01", "created__startswith": "2026"},
        "ordering": "-model,brand", "limit": 10, "offset": 5, "fields": ["brand"]})"));
    ASSERT_TRUE(q.has_value()) << json::serialize(q.error().to_json());
    ASSERT_EQ(q->filters.size(), 8u);
    EXPECT_EQ(q->filters[1].value, 2014);
    EXPECT_TRUE(q->filters[2].value.is_double());
    EXPECT_EQ(q->filters[4].value, (json::array{"Red", "Blue"}));
    EXPECT_EQ(q->filters[6].value, "2026-01-01T00:00:00.000Z");
    EXPECT_EQ(q->filters[7].value, "2026");
    EXPECT_EQ(q->ordering.size(), 2u);
    EXPECT_EQ(q->limit, 10u);
    EXPECT_EQ(q->offset, 5u);
    EXPECT_EQ(q->fields, std::vector<std::string>{"brand"});
}

TEST(query_json, defaults_and_nulls) {
    auto c = cars();
    auto q = parse_query_json(c, parse_obj(R"({"limit": null, "filter": null})"));
    ASSERT_TRUE(q.has_value());
    EXPECT_EQ(q->limit, 25u);
    EXPECT_TRUE(q->filters.empty());
}

TEST(query_json, unknown_members_are_refused) {
    auto c = cars();
    // A misspelt member would otherwise run the query unfiltered or unlimited.
    EXPECT_EQ(json_failure(c, R"({"filters": {"brand": "Ford"}})").first, "filters");
    EXPECT_EQ(json_failure(c, R"({"limit": 2, "limt": 1})").first, "limt");
    auto q = parse_query_json(c, parse_obj(R"({"type": "subscribe"})"));
    ASSERT_FALSE(q.has_value());
    EXPECT_EQ(q.error().status, 400);
    EXPECT_NE(q.error().detail.find("\"type\""), std::string::npos) << q.error().detail;
}

TEST(query_json, type_errors_name_the_key) {
    auto c = cars();
    EXPECT_EQ(json_failure(c, R"({"filter": {"model": "2014"}})"), failed("filter.model", "Must be an integer."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"model": 2014.0}})"), failed("filter.model", "Must be an integer."));
    // Out-of-range literals parse as infinite doubles, which no numeric field accepts.
    EXPECT_EQ(json_failure(c, R"({"filter": {"model": 1e400}})"), failed("filter.model", "Must be an integer."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"price": -1e400}})"), failed("filter.price", "Must be a number."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"model": 18446744073709551615}})"),
              failed("filter.model", "Must be an integer."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"price": "5"}})"), failed("filter.price", "Must be a number."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"sold": 1}})"), failed("filter.sold", "Must be a boolean."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"brand": 5}})"), failed("filter.brand", "Must be a string."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"brand": null}})"),
              failed("filter.brand", "May not be null; use the isnull lookup."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"sold_at": "soon"}})"),
              failed("filter.sold_at", "Must be a valid RFC 3339 datetime."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"brand__icontains": 5}})"),
              failed("filter.brand__icontains", "Must be a string."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"brand__isnull": "true"}})"),
              failed("filter.brand__isnull", "Must be a boolean."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"model__in": 2014}})"),
              failed("filter.model__in", "Must be a non-empty array."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"model__in": []}})"),
              failed("filter.model__in", "Must be a non-empty array."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"model__in": [2014, "x"]}})"),
              failed("filter.model__in", "Item \"x\": Must be an integer."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"model__in": [null]}})"),
              failed("filter.model__in", "Item null: May not be null; use the isnull lookup."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"colour": 1}})"), failed("filter.colour", "Unknown field \"colour\"."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"brand__foo": 1}})"), failed("filter.brand__foo", "Unknown lookup \"foo\"."));
    EXPECT_EQ(json_failure(c, R"({"filter": {"extra": {}}})").second,
              "The json field \"extra\" can only be filtered with isnull.");
    EXPECT_EQ(json_failure(c, R"({"filter": [1]})"), failed("filter", "Must be an object."));
}

TEST(query_json, in_array_bounds) {
    auto c = cars();
    json::array items;
    for (int i = 0; i < 101; ++i) items.push_back(i);
    json::object data{{"filter", json::object{{"model__in", items}}}};
    EXPECT_EQ(failure(parse_query_json(c, data)), failed("filter.model__in", "At most 100 values are allowed."));
    items.pop_back();
    data = {{"filter", json::object{{"model__in", items}}}};
    EXPECT_TRUE(parse_query_json(c, data).has_value());
}

TEST(query_json, ordering_limit_offset_errors) {
    auto c = cars();
    auto q = parse_query_json(c, parse_obj(R"({"ordering": ["-model", "brand"]})"));
    ASSERT_TRUE(q.has_value());
    EXPECT_TRUE(q->ordering[0].descending);
    EXPECT_EQ(json_failure(c, R"({"ordering": 5})"), failed("ordering", "Must be a string or an array of strings."));
    EXPECT_EQ(json_failure(c, R"({"ordering": ["brand", 5]})"),
              failed("ordering", "Must be a string or an array of strings."));
    EXPECT_EQ(json_failure(c, R"({"ordering": ["a,b"]})"), failed("ordering", "Unknown field \"a,b\"."));
    EXPECT_EQ(json_failure(c, R"({"ordering": ["a","b","c","d","e","f","g","h","i","j"]})"),
              failed("ordering", "At most 8 ordering terms are allowed."));
    EXPECT_EQ(json_failure(c, R"({"limit": 0})"), failed("limit", "Must be at least 1."));
    EXPECT_EQ(json_failure(c, R"({"limit": -9223372036854775808})"), failed("limit", "Must be at least 1."));
    EXPECT_EQ(json_failure(c, R"({"limit": 2.0})"), failed("limit", "Must be an integer."));
    EXPECT_EQ(json_failure(c, R"({"limit": "10"})"), failed("limit", "Must be an integer."));
    EXPECT_EQ(parse_query_json(c, parse_obj(R"({"limit": 18446744073709551615})"))->limit, 500u);
    EXPECT_EQ(json_failure(c, R"({"offset": -1})"), failed("offset", "Must not be negative."));
    EXPECT_EQ(json_failure(c, R"({"offset": 1000000001})"), failed("offset", "Must be at most 1000000000."));
    EXPECT_EQ(json_failure(c, R"({"offset": true})"), failed("offset", "Must be an integer."));
    EXPECT_EQ(json_failure(c, R"({"fields": 1})"), failed("fields", "Must be a string or an array of strings."));
    EXPECT_EQ(json_failure(c, R"({"fields": "brand,nope"})"), failed("fields", "Unknown field \"nope\"."));
}

TEST(query_json, parse_filter_json_alone) {
    auto c = cars();
    auto f = parse_filter_json(c, parse_obj(R"({"brand": "Ford", "model__lt": 2000})"));
    ASSERT_TRUE(f.has_value());
    EXPECT_EQ(f->size(), 2u);
    json::object many;
    for (int i = 0; i < 65; ++i) many["brand__" + std::string(i % 2 ? "ne" : "exact") + std::to_string(i)] = "x";
    auto r = parse_filter_json(c, many);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().extra.at("parameter"), "filter");
    EXPECT_EQ(r.error().detail, "At most 64 filters are allowed.");
}

TEST(matches, exact_and_ne_follow_sql) {
    auto c = cars();
    auto ford = car("a", R"({"brand": "Ford", "model": 2014, "price": 2.0, "sold": true, "color": null})");
    EXPECT_TRUE(match(c, {{"brand", "Ford"}}, ford));
    EXPECT_FALSE(match(c, {{"brand", "ford"}}, ford));
    EXPECT_FALSE(match(c, {{"brand", "Ford "}}, ford));
    EXPECT_TRUE(match(c, {{"model", "2014"}}, ford));
    EXPECT_TRUE(match(c, {{"price", "2"}}, ford));
    EXPECT_TRUE(match(c, {{"sold", "1"}}, ford));
    EXPECT_FALSE(match(c, {{"sold", "false"}}, ford));
    EXPECT_FALSE(match(c, {{"color", "Red"}}, ford));    // null never equals
    EXPECT_FALSE(match(c, {{"vin", "x"}}, ford));        // absent = null
    EXPECT_TRUE(match(c, {{"color__ne", "Red"}}, ford));  // NULL IS NOT 'Red'
    EXPECT_TRUE(match(c, {{"brand__ne", "Fiat"}}, ford));
    EXPECT_FALSE(match(c, {{"brand__ne", "Ford"}}, ford));
    EXPECT_TRUE(match(c, {{"id", "a"}}, ford));
    // Hand-built terms: null values mean SQL NULL.
    EXPECT_FALSE(matches({{"color", lookup::exact, nullptr}}, ford));
    EXPECT_FALSE(matches({{"color", lookup::ne, nullptr}}, ford));  // NULL IS NOT NULL
    EXPECT_TRUE(matches({{"brand", lookup::ne, nullptr}}, ford));
    EXPECT_FALSE(matches({{"brand", lookup::exact, 5}}, ford));     // different kinds
    EXPECT_TRUE(matches({{"brand", lookup::ne, 5}}, ford));
    EXPECT_TRUE(matches({}, ford));
}

TEST(matches, text_lookups) {
    auto c = cars();
    auto r = car("a", R"({"brand": "Ford Focus", "notes": "CAF\u00c9 cr\u00e8me"})");
    EXPECT_TRUE(match(c, {{"brand__iexact", "FORD focus"}}, r));
    EXPECT_FALSE(match(c, {{"brand__iexact", "FORD"}}, r));
    EXPECT_TRUE(match(c, {{"brand__contains", "d F"}}, r));
    EXPECT_FALSE(match(c, {{"brand__contains", "d f"}}, r));
    EXPECT_TRUE(match(c, {{"brand__icontains", "D F"}}, r));
    EXPECT_TRUE(match(c, {{"brand__contains", ""}}, r));
    EXPECT_TRUE(match(c, {{"brand__startswith", "Ford"}}, r));
    EXPECT_FALSE(match(c, {{"brand__startswith", "ford"}}, r));
    EXPECT_TRUE(match(c, {{"brand__istartswith", "fORD"}}, r));
    EXPECT_FALSE(match(c, {{"brand__istartswith", "Ford Focus!"}}, r));
    EXPECT_TRUE(match(c, {{"brand__endswith", "cus"}}, r));
    EXPECT_FALSE(match(c, {{"brand__endswith", "CUS"}}, r));
    EXPECT_FALSE(match(c, {{"brand__endswith", "xFord Focus"}}, r));
    // ASCII-only case folding, as SQLite's LIKE/lower() without ICU.
    EXPECT_TRUE(match(c, {{"notes__icontains", "caf\xc3\x89"}}, r));
    EXPECT_FALSE(match(c, {{"notes__icontains", "caf\xc3\xa9"}}, r));
    EXPECT_FALSE(match(c, {{"vin__contains", ""}}, r));  // null never matches
    auto dated = car("b", R"({"created": "2026-11-24T06:37:21.123Z"})");
    EXPECT_TRUE(match(c, {{"created__startswith", "2026-11"}}, dated));
}

TEST(matches, comparisons) {
    auto c = cars();
    auto r = car("a", R"({"brand": "Ford", "model": 2014, "price": 2.5, "sold": false,
                          "sold_at": "2026-01-01T00:00:00.000Z"})");
    EXPECT_TRUE(match(c, {{"model__gt", "2013"}}, r));
    EXPECT_FALSE(match(c, {{"model__gt", "2014"}}, r));
    EXPECT_TRUE(match(c, {{"model__gte", "2014"}}, r));
    EXPECT_TRUE(match(c, {{"model__lt", "2015"}}, r));
    EXPECT_TRUE(match(c, {{"model__lte", "2014"}}, r));
    EXPECT_FALSE(match(c, {{"model__lte", "-2014"}}, r));
    EXPECT_TRUE(match(c, {{"price__gt", "2.4999"}}, r));
    EXPECT_FALSE(match(c, {{"price__gt", "2.5"}}, r));
    EXPECT_TRUE(match(c, {{"brand__gt", "Fiat"}}, r));
    EXPECT_TRUE(match(c, {{"brand__lt", "ford"}}, r));  // bytewise: 'F' < 'f'
    EXPECT_TRUE(match(c, {{"sold__lt", "true"}}, r));   // false = 0 < 1
    EXPECT_TRUE(match(c, {{"sold_at__gte", "2025-12-31T23:00:00-01:00"}}, r));
    EXPECT_FALSE(match(c, {{"sold_at__gt", "2026-01-01"}}, r));
    EXPECT_FALSE(match(c, {{"vin__gt", ""}}, r));
    EXPECT_FALSE(match(c, {{"color__lt", "z"}}, r));
    // Mixed integer and real values compare exactly.
    json::object big{{"id", "x"}, {"n", INT64_MAX}};
    EXPECT_TRUE(matches({{"n", lookup::lt, 9223372036854775808.0}}, big));
    EXPECT_FALSE(matches({{"n", lookup::gte, 9223372036854775808.0}}, big));
    EXPECT_TRUE(matches({{"n", lookup::gt, 9223372036854775806}}, big));
    EXPECT_FALSE(matches({{"n", lookup::gt, "a"}}, big));  // different kinds never compare
}

TEST(matches, in_and_isnull) {
    auto c = cars();
    auto r = car("a", R"({"color": "Red", "model": 2014, "vin": null, "extra": {"a": 1}})");
    EXPECT_TRUE(match(c, {{"color__in", "Blue,Red"}}, r));
    EXPECT_FALSE(match(c, {{"color__in", "Blue,red"}}, r));
    EXPECT_TRUE(match(c, {{"model__in", "1,2014"}}, r));
    EXPECT_FALSE(match(c, {{"vin__in", "a,b"}}, r));
    EXPECT_TRUE(match(c, {{"vin__isnull", "true"}}, r));
    EXPECT_TRUE(match(c, {{"notes__isnull", "true"}}, r));  // absent
    EXPECT_FALSE(match(c, {{"color__isnull", "true"}}, r));
    EXPECT_TRUE(match(c, {{"color__isnull", "false"}}, r));
    EXPECT_TRUE(match(c, {{"extra__isnull", "false"}}, r));
    EXPECT_TRUE(match(c, {{"color", "Red"}, {"model__gt", "2000"}}, r));
    EXPECT_FALSE(match(c, {{"color", "Red"}, {"model__gt", "2014"}}, r));
}

TEST(record_less, orders_like_sqlite) {
    std::vector<json::object> rows{
        car("e", R"({"n": 2, "s": "b"})"),     car("b", R"({"n": null, "s": "a"})"),
        car("d", R"({"n": 1.5, "s": "B"})"),   car("a", R"({"n": 2, "s": "a"})"),
        car("c", R"({"s": "a"})"),             car("f", R"({"n": -7, "s": null})"),
        car("g", R"({"n": 1, "s": "\u00e9"})"),
    };
    auto ids = [&](std::vector<order_term> ordering) {
        auto copy = rows;
        std::sort(copy.begin(), copy.end(), [&](const json::object& x, const json::object& y) {
            return record_less(ordering, x, y);
        });
        std::string out;
        for (const auto& r : copy) out += std::string(get_string(r, "id"));
        return out;
    };
    EXPECT_EQ(ids({}), "abcdefg");
    EXPECT_EQ(ids({{"n", false}}), "bcfgdae");   // nulls first, then numerically, ties by id
    EXPECT_EQ(ids({{"n", true}}), "aedgfbc");    // nulls last descending, ties still by id
    EXPECT_EQ(ids({{"s", false}}), "fdabceg");   // bytewise: "B" < "a" < "b" < "é"
    EXPECT_EQ(ids({{"s", false}, {"n", true}}), "fdabceg");
    EXPECT_EQ(ids({{"s", true}, {"n", false}}), "gebcadf");  // "a" ties: nulls first, by id
    EXPECT_FALSE(record_less({}, rows[0], rows[0]));
}

TEST(record_less, mixed_kinds_rank_like_sqlite) {
    json::object null_v{{"id", "1"}, {"v", nullptr}}, num{{"id", "2"}, {"v", 5}},
        boolean{{"id", "3"}, {"v", true}}, text{{"id", "4"}, {"v", "5"}}, object{{"id", "5"}, {"v", json::object{}}};
    std::vector<order_term> asc{{"v", false}};
    EXPECT_TRUE(record_less(asc, null_v, num));
    EXPECT_TRUE(record_less(asc, boolean, num));
    EXPECT_TRUE(record_less(asc, num, text));
    EXPECT_TRUE(record_less(asc, text, object));
    EXPECT_FALSE(record_less(asc, text, num));
}

TEST(roundtrip, parsed_queries_select_the_right_records) {
    auto c = cars();
    std::vector<json::object> rows{
        car("1", R"({"brand": "Ford", "model": 2014, "color": "Red"})"),
        car("2", R"({"brand": "Ford", "model": 2010, "color": "Blue"})"),
        car("3", R"({"brand": "Fiat", "model": 2020, "color": null})"),
    };
    auto q = parse_query_params(c, {{"brand__istartswith", "f"}, {"color__ne", "Blue"},
                                    {"ordering", "-model"}});
    ASSERT_TRUE(q.has_value());
    std::vector<json::object> hits;
    for (const auto& r : rows) {
        if (matches(q->filters, r)) hits.push_back(r);
    }
    std::sort(hits.begin(), hits.end(),
              [&](const auto& a, const auto& b) { return record_less(q->ordering, a, b); });
    ASSERT_EQ(hits.size(), 2u);
    EXPECT_EQ(get_string(hits[0], "id"), "3");
    EXPECT_EQ(get_string(hits[1], "id"), "1");
}

TEST(query_encoding, percent_encodes_all_but_unreserved) {
    EXPECT_EQ(percent_encode("aZ09-._~"), "aZ09-._~");
    EXPECT_EQ(percent_encode("a b&c=d/é"), "a%20b%26c%3Dd%2F%C3%A9");
    EXPECT_EQ(percent_encode(std::string("\0\xff", 2)), "%00%FF");
    EXPECT_EQ(encode_query({}), "");
    EXPECT_EQ(encode_query({{"brand", "Ford & Co"}, {"model__gte", "2014"}}),
              "brand=Ford%20%26%20Co&model__gte=2014");
}
