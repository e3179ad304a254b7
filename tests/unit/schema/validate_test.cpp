#include <livebase/schema/validate.hpp>

#include "unit/schema/cars_fixture.hpp"
#include "support/json_helpers.hpp"

#include <gtest/gtest.h>

using namespace livebase;
using livebase::schema_test::cars;
using livebase::schema_test::make_field;

using livebase::test::parse_obj;

namespace {


/// The messages for `field` in a failed validation, or an empty array.
json::array errors_of(const result<json::object>& r, std::string_view field) {
    if (r.has_value()) return {};
    const auto& e = r.error().extra.at("errors").as_object();
    auto it = e.find(field);
    return it == e.end() ? json::array{} : it->value().as_array();
}

json::array msgs(std::initializer_list<std::string_view> m) {
    json::array a;
    for (auto s : m) a.emplace_back(s);
    return a;
}

/// The only error of validating {"<field>": <value>} on top of a valid create body.
json::array create_errors(const collection_def& c, std::string_view field, json::value v) {
    auto body = parse_obj(R"({"brand": "Ford"})");
    body[field] = std::move(v);
    return errors_of(validate_write(c, body, write_mode::create), field);
}

json::value create_value(const collection_def& c, std::string_view field, json::value v) {
    auto body = parse_obj(R"({"brand": "Ford"})");
    body[field] = std::move(v);
    auto r = validate_write(c, body, write_mode::create);
    EXPECT_TRUE(r.has_value()) << (r ? "" : json::serialize(r.error().to_json()));
    return r ? r->at(field) : json::value();
}

const json::object k_stored = [] {
    json::object o;
    o["id"] = "01J0000000000000000000000A";
    o["created"] = "2026-11-24T06:37:21.123Z";
    o["updated"] = "2026-11-24T06:37:22.000Z";
    o["version"] = 3;
    o["owner"] = "u1";
    o["brand"] = "Ford";
    o["make"] = "Focus";
    o["model"] = 2014;
    o["color"] = "Blue";
    o["vin"] = nullptr;
    o["price"] = 9999.5;
    o["notes"] = nullptr;
    o["sold"] = false;
    o["sold_at"] = nullptr;
    o["extra"] = json::object{{"a", 1}, {"b", json::object{{"c", 2}, {"d", 3}}}};
    o["dealer"] = "d1";
    o["secret"] = "hunter2";
    o["rating"] = 5;
    return o;
}();

}  // namespace

TEST(validate_create, fills_defaults_and_nulls) {
    auto c = cars();
    auto r = validate_write(c, parse_obj(R"({"brand": "Ford", "model": 2014})"), write_mode::create);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->size(), c.fields.size());
    EXPECT_EQ(r->at("brand"), "Ford");
    EXPECT_EQ(r->at("make"), "");
    EXPECT_EQ(r->at("model"), 2014);
    EXPECT_TRUE(r->at("color").is_null());
    EXPECT_TRUE(r->at("extra").is_null());
    EXPECT_EQ(r->at("rating"), 0);  // read_only: default
    EXPECT_FALSE(r->contains("id"));
}

TEST(validate_create, required_and_null) {
    auto c = cars();
    auto r = validate_write(c, parse_obj("{}"), write_mode::create);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 400);
    EXPECT_EQ(r.error().type, "/problems/validation");
    EXPECT_EQ(errors_of(r, "brand"), msgs({"This field is required."}));
    EXPECT_EQ(create_errors(c, "brand", nullptr), msgs({"This field may not be null."}));
    EXPECT_TRUE(create_value(c, "make", nullptr).is_null());  // explicit null beats the default
    EXPECT_TRUE(create_value(c, "model", nullptr).is_null());
}

TEST(validate_create, required_with_default_may_be_absent) {
    auto c = schema_test::cars_def();
    c.fields[0].default_value = json::value("Generic");
    ASSERT_EQ(finalize(c), "");
    auto r = validate_write(c, parse_obj("{}"), write_mode::create);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->at("brand"), "Generic");
}

TEST(validate_create, unknown_managed_and_read_only_keys) {
    auto c = cars();
    auto r = validate_write(
        c, parse_obj(R"({"brand": "Ford", "colour": "Red", "id": "x", "created": 1, "updated": [],
                   "version": 7, "owner": "me", "rating": 99, "Brand": 1})"),
        write_mode::create);
    ASSERT_FALSE(r.has_value());
    const auto& e = r.error().extra.at("errors").as_object();
    EXPECT_EQ(e.size(), 2u);
    EXPECT_EQ(errors_of(r, "colour"), msgs({"Unknown field."}));
    EXPECT_EQ(errors_of(r, "Brand"), msgs({"Unknown field."}));
    EXPECT_EQ(r.error().detail, "2 fields are invalid");

    auto ok = validate_write(c, parse_obj(R"({"brand": "Ford", "id": "x", "version": 7, "rating": 99})"),
                             write_mode::create);
    ASSERT_TRUE(ok.has_value());
    EXPECT_EQ(ok->at("rating"), 0);
    EXPECT_FALSE(ok->contains("version"));
}

TEST(validate_create, unknown_field_reports_are_capped) {
    auto c = cars();
    json::object body{{"brand", "Ford"}};
    for (int i = 0; i < 1000; ++i) body["x" + std::to_string(i)] = i;
    auto r = validate_write(c, body, write_mode::create);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().extra.at("errors").as_object().size(), 100u);
}

TEST(validate_types, integer) {
    auto c = cars();
    EXPECT_EQ(create_value(c, "model", 2000), 2000);
    EXPECT_TRUE(create_value(c, "model", 2000.0).is_int64());
    EXPECT_EQ(create_value(c, "model", 2000.0), 2000);
    EXPECT_EQ(create_value(c, "model", std::uint64_t{2000}), 2000);
    auto must = msgs({"Must be an integer."});
    EXPECT_EQ(create_errors(c, "model", 2000.5), must);
    EXPECT_EQ(create_errors(c, "model", "2000"), must);
    EXPECT_EQ(create_errors(c, "model", true), must);
    EXPECT_EQ(create_errors(c, "model", json::array{2000}), must);
    EXPECT_EQ(create_errors(c, "model", json::object{}), must);
    EXPECT_EQ(create_errors(c, "model", 1e300), must);
    EXPECT_EQ(create_errors(c, "model", 9223372036854775808.0), must);
    EXPECT_EQ(create_errors(c, "model", std::uint64_t{18446744073709551615u}), must);
    // Huge numbers parsed from text become doubles.
    auto big = validate_write(c, parse_obj(R"({"brand": "a", "model": 123456789012345678901234567890})"),
                              write_mode::create);
    EXPECT_EQ(errors_of(big, "model"), must);
}

TEST(validate_types, integer_extremes_without_bounds) {
    collection_def c;
    c.name = "t";
    c.fields.push_back(make_field("n", field_type::integer));
    ASSERT_EQ(finalize(c), "");
    auto r = validate_write(c, parse_obj(R"({"n": 9223372036854775807})"), write_mode::create);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->at("n"), INT64_MAX);
    r = validate_write(c, parse_obj(R"({"n": -9223372036854775808})"), write_mode::create);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->at("n"), INT64_MIN);
    r = validate_write(c, parse_obj(R"({"n": 9223372036854775808})"), write_mode::create);
    EXPECT_EQ(errors_of(r, "n"), msgs({"Must be an integer."}));
    r = validate_write(c, parse_obj(R"({"n": -9223372036854775809})"), write_mode::create);
    EXPECT_EQ(errors_of(r, "n"), msgs({"Must be an integer."}));
    r = validate_write(c, parse_obj(R"({"n": 9007199254740992.0})"), write_mode::create);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->at("n"), 9007199254740992);
    r = validate_write(c, parse_obj(R"({"n": 1e17})"), write_mode::create);
    EXPECT_EQ(errors_of(r, "n"), msgs({"Must be an integer."}));
}

TEST(validate_types, number) {
    auto c = cars();
    EXPECT_TRUE(create_value(c, "price", 5).is_double());
    EXPECT_EQ(create_value(c, "price", 5), 5.0);
    EXPECT_EQ(create_value(c, "price", 1e300), 1e300);
    EXPECT_EQ(create_value(c, "price", std::uint64_t{18446744073709551615u}), 18446744073709551615.0);
    EXPECT_EQ(create_errors(c, "price", "5"), msgs({"Must be a number."}));
    EXPECT_EQ(create_errors(c, "price", false), msgs({"Must be a number."}));
    auto inf = validate_write(c, parse_obj(R"({"brand": "a", "price": 1e400})"), write_mode::create);
    EXPECT_EQ(errors_of(inf, "price"), msgs({"Must be a number."}));
}

TEST(validate_types, strings_and_utf8) {
    auto c = cars();
    EXPECT_EQ(create_errors(c, "make", 5), msgs({"Must be a string."}));
    EXPECT_EQ(create_errors(c, "notes", json::array{}), msgs({"Must be a string."}));
    EXPECT_EQ(create_errors(c, "make", json::string("\xff\xfe")), msgs({"Must be valid UTF-8."}));
    EXPECT_EQ(create_errors(c, "make", json::string("\xc0\xaf")), msgs({"Must be valid UTF-8."}));
    EXPECT_EQ(create_errors(c, "make", json::string("\xed\xa0\x80")), msgs({"Must be valid UTF-8."}));
    EXPECT_EQ(create_value(c, "make", "caf\xc3\xa9 \xf0\x9f\x9a\x97"), "caf\xc3\xa9 \xf0\x9f\x9a\x97");
    EXPECT_EQ(create_value(c, "make", ""), "");
    EXPECT_EQ(create_value(c, "make", json::string("a\0b", 3)), json::string("a\0b", 3));
}

TEST(validate_types, lengths_count_code_points) {
    auto c = cars();
    std::string hundred_e;
    for (int i = 0; i < 100; ++i) hundred_e += "\xc3\xa9";  // 200 bytes, 100 code points
    EXPECT_EQ(create_value(c, "brand", json::string(hundred_e)), json::string(hundred_e));
    EXPECT_EQ(create_errors(c, "brand", json::string(hundred_e + "x")),
              msgs({"Ensure this field has no more than 100 characters."}));
    auto d = schema_test::cars_def();
    d.fields[0].min_length = 3;
    ASSERT_EQ(finalize(d), "");
    EXPECT_EQ(create_errors(d, "brand", "ab"), msgs({"Ensure this field has at least 3 characters."}));
    EXPECT_EQ(create_value(d, "brand", "\xc3\xa9\xc3\xa9\xc3\xa9"), "\xc3\xa9\xc3\xa9\xc3\xa9");
    EXPECT_EQ(create_errors(d, "brand", "\xc3\xa9\xc3\xa9"),
              msgs({"Ensure this field has at least 3 characters."}));
}

TEST(validate_types, pattern) {
    auto d = schema_test::cars_def();
    for (auto& f : d.fields) {
        if (f.name == "vin") f.pattern = "^[A-Z0-9]{3,5}$";
        if (f.name == "notes") f.pattern = "ok";  // search, not full match
    }
    ASSERT_EQ(finalize(d), "");
    EXPECT_EQ(create_value(d, "vin", "AB12"), "AB12");
    EXPECT_EQ(create_errors(d, "vin", "ab12"), msgs({"This value does not match the required pattern."}));
    EXPECT_EQ(create_errors(d, "vin", "AB12345"), msgs({"This value does not match the required pattern."}));
    EXPECT_EQ(create_value(d, "notes", "it is ok really"), "it is ok really");
    EXPECT_TRUE(create_value(d, "vin", nullptr).is_null());  // null skips the pattern
    // Very long values are refused rather than fed to the recursive regex engine.
    auto long_errors = create_errors(d, "notes", json::string(std::string(100000, 'o') + "k"));
    ASSERT_EQ(long_errors.size(), 1u);
    EXPECT_EQ(long_errors[0], "Ensure this field has no more than 4096 bytes (the limit for pattern checks).");
    EXPECT_EQ(create_value(d, "notes", json::string(std::string(4000, 'o') + "k")).as_string().size(), 4001u);
}

TEST(validate_types, backtracking_pattern_at_the_input_limit) {
    auto d = schema_test::cars_def();
    d.fields[4].pattern = "^(a*)*$";  // vin: exponential and deep for a backtracking engine
    ASSERT_EQ(finalize(d), "");
    EXPECT_EQ(create_value(d, "vin", json::string(std::string(4096, 'a'))).as_string().size(), 4096u);
    EXPECT_EQ(create_errors(d, "vin", json::string(std::string(4095, 'a') + "b")),
              msgs({"This value does not match the required pattern."}));
}

TEST(validate_types, boolean) {
    auto c = cars();
    EXPECT_EQ(create_value(c, "sold", true), true);
    for (json::value v : {json::value(1), json::value("true"), json::value(0.0)}) {
        EXPECT_EQ(create_errors(c, "sold", v), msgs({"Must be a boolean."}));
    }
}

TEST(validate_types, datetime_is_normalized) {
    auto c = cars();
    EXPECT_EQ(create_value(c, "sold_at", "2026-11-24T08:37:21.1234+02:00"), "2026-11-24T06:37:21.123Z");
    EXPECT_EQ(create_value(c, "sold_at", "2026-11-24"), "2026-11-24T00:00:00.000Z");
    for (json::value v : {json::value("2026-02-30"), json::value("yesterday"), json::value(""),
                          json::value(1795502241123), json::value("2026-11-24T06:37:21")}) {
        EXPECT_EQ(create_errors(c, "sold_at", v), msgs({"Must be a valid RFC 3339 datetime."}));
    }
}

TEST(validate_types, json_takes_anything_but_bounded_depth) {
    auto c = cars();
    for (auto text : {"1", "\"s\"", "[1,{\"a\":null}]", "{\"k\":[true,false]}", "false"}) {
        auto v = *parse_json(text);
        EXPECT_EQ(create_value(c, "extra", v), v) << text;
    }
    json::value deep = json::array{};
    for (int i = 0; i < 70; ++i) deep = json::array{deep};
    EXPECT_EQ(create_errors(c, "extra", deep), msgs({"Nesting is deeper than 64 levels."}));
    json::value ok = json::object{};
    for (int i = 0; i < 60; ++i) ok = json::object{{"a", ok}};
    EXPECT_EQ(create_value(c, "extra", ok), ok);
}

TEST(validate_types, ref) {
    auto c = cars();
    EXPECT_EQ(create_value(c, "dealer", "01J0000000000000000000000A"), "01J0000000000000000000000A");
    EXPECT_EQ(create_errors(c, "dealer", ""), msgs({"This field may not be blank."}));
    EXPECT_EQ(create_errors(c, "dealer", 5), msgs({"Must be a string."}));
}

TEST(validate_constraints, choices) {
    auto c = cars();
    EXPECT_EQ(create_value(c, "color", "Red"), "Red");
    EXPECT_EQ(create_errors(c, "color", "red"), msgs({"\"red\" is not a valid choice."}));
    EXPECT_EQ(create_errors(c, "color", 5), msgs({"Must be a string."}));
    auto d = schema_test::cars_def();
    d.fields[2].choices = {json::value(2000), json::value(2001)};
    ASSERT_EQ(finalize(d), "");
    EXPECT_EQ(create_value(d, "model", 2001.0), 2001);
    EXPECT_EQ(create_errors(d, "model", 1999), msgs({"\"1999\" is not a valid choice."}));
}

TEST(validate_constraints, min_max) {
    auto c = cars();
    EXPECT_EQ(create_value(c, "model", 1886), 1886);
    EXPECT_EQ(create_value(c, "model", 2100), 2100);
    EXPECT_EQ(create_errors(c, "model", 1885), msgs({"Ensure this value is greater than or equal to 1886."}));
    EXPECT_EQ(create_errors(c, "model", 2101), msgs({"Ensure this value is less than or equal to 2100."}));
    EXPECT_EQ(create_errors(c, "model", INT64_MIN), msgs({"Ensure this value is greater than or equal to 1886."}));
    auto d = schema_test::cars_def();
    d.fields[5].min = 0.5;
    d.fields[5].max = 1e20;
    ASSERT_EQ(finalize(d), "");
    EXPECT_EQ(create_errors(d, "price", 0.25), msgs({"Ensure this value is greater than or equal to 0.5."}));
    EXPECT_EQ(create_errors(d, "price", 2e20), msgs({"Ensure this value is less than or equal to 1e+20."}));
    EXPECT_EQ(create_value(d, "price", 0.5), 0.5);
}

TEST(validate_constraints, several_fields_reported_together) {
    auto c = cars();
    auto r = validate_write(c, parse_obj(R"({"model": "x", "color": "Green", "sold": 1})"), write_mode::create);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().detail, "4 fields are invalid");
    EXPECT_EQ(errors_of(r, "brand"), msgs({"This field is required."}));
    EXPECT_EQ(errors_of(r, "model"), msgs({"Must be an integer."}));
    EXPECT_EQ(errors_of(r, "color"), msgs({"\"Green\" is not a valid choice."}));
    EXPECT_EQ(errors_of(r, "sold"), msgs({"Must be a boolean."}));
    auto body = r.error().to_json();
    EXPECT_EQ(body.at("status"), 400);
    EXPECT_EQ(body.at("title"), "Invalid input");
}

TEST(validate_replace, replaces_all_declared_fields_keeps_read_only) {
    auto c = cars();
    auto r = validate_write(c, parse_obj(R"({"brand": "Fiat", "rating": 1})"), write_mode::replace, &k_stored);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->at("brand"), "Fiat");
    EXPECT_EQ(r->at("make"), "");  // back to the default
    EXPECT_TRUE(r->at("model").is_null());
    EXPECT_TRUE(r->at("secret").is_null());
    EXPECT_EQ(r->at("rating"), 5);  // read_only: kept
    EXPECT_FALSE(r->contains("id"));
    auto bad = validate_write(c, parse_obj(R"({"make": "x"})"), write_mode::replace, &k_stored);
    EXPECT_EQ(errors_of(bad, "brand"), msgs({"This field is required."}));
    auto no_existing = validate_write(c, parse_obj(R"({"brand": "Fiat"})"), write_mode::replace);
    ASSERT_TRUE(no_existing.has_value());
    EXPECT_EQ(no_existing->at("rating"), 0);
}

TEST(validate_patch, merges_over_existing) {
    auto c = cars();
    auto r = validate_write(c, parse_obj(R"({"model": 2015, "color": null, "version": 1, "rating": 9})"),
                            write_mode::patch, &k_stored);
    ASSERT_TRUE(r.has_value()) << json::serialize(r.error().to_json());
    EXPECT_EQ(r->size(), c.fields.size());
    EXPECT_EQ(r->at("brand"), "Ford");
    EXPECT_EQ(r->at("make"), "Focus");
    EXPECT_EQ(r->at("model"), 2015);
    EXPECT_TRUE(r->at("color").is_null());
    EXPECT_EQ(r->at("secret"), "hunter2");
    EXPECT_EQ(r->at("rating"), 5);
    EXPECT_EQ(r->at("price"), 9999.5);
}

TEST(validate_patch, empty_patch_returns_existing_fields) {
    auto c = cars();
    auto r = validate_write(c, parse_obj("{}"), write_mode::patch, &k_stored);
    ASSERT_TRUE(r.has_value());
    for (const auto& f : c.fields) EXPECT_EQ(r->at(f.name), k_stored.at(f.name)) << f.name;
}

TEST(validate_patch, json_fields_merge_per_rfc7396) {
    auto c = cars();
    auto r = validate_write(c, parse_obj(R"({"extra": {"b": {"c": null, "e": 4}, "f": [1]}})"),
                            write_mode::patch, &k_stored);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->at("extra"), *parse_json(R"({"a": 1, "b": {"d": 3, "e": 4}, "f": [1]})"));
    r = validate_write(c, parse_obj(R"({"extra": [1, 2]})"), write_mode::patch, &k_stored);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->at("extra"), *parse_json("[1, 2]"));
    r = validate_write(c, parse_obj(R"({"extra": null})"), write_mode::patch, &k_stored);
    ASSERT_TRUE(r.has_value());
    EXPECT_TRUE(r->at("extra").is_null());
    // Patching an object into a non-object value starts from {} and drops nulls.
    auto existing = k_stored;
    existing["extra"] = 7;
    r = validate_write(c, parse_obj(R"({"extra": {"x": null, "y": 1}})"), write_mode::patch, &existing);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->at("extra"), *parse_json(R"({"y": 1})"));
}

TEST(validate_patch, deep_json_patch_is_refused) {
    auto c = cars();
    json::value deep = json::object{};
    for (int i = 0; i < 100; ++i) deep = json::object{{"a", deep}};
    json::object body{{"extra", deep}};
    auto r = validate_write(c, body, write_mode::patch, &k_stored);
    EXPECT_EQ(errors_of(r, "extra"), msgs({"Nesting is deeper than 64 levels."}));
}

TEST(validate_patch, errors) {
    auto c = cars();
    auto r = validate_write(c, parse_obj(R"({"brand": null, "wheels": 4, "model": 1})"), write_mode::patch,
                            &k_stored);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(errors_of(r, "brand"), msgs({"This field may not be null."}));
    EXPECT_EQ(errors_of(r, "wheels"), msgs({"Unknown field."}));
    EXPECT_EQ(errors_of(r, "model"), msgs({"Ensure this value is greater than or equal to 1886."}));
}

TEST(validate_patch, existing_of_any_shape) {
    auto c = cars();
    json::object sparse{{"id", "x"}, {"brand", "Ford"}};  // e.g. stored before fields were added
    auto r = validate_write(c, parse_obj(R"({"model": 2000})"), write_mode::patch, &sparse);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->at("make"), "");
    EXPECT_EQ(r->at("rating"), 0);
    json::object missing_required{{"id", "x"}};
    r = validate_write(c, parse_obj(R"({"model": 2000})"), write_mode::patch, &missing_required);
    EXPECT_EQ(errors_of(r, "brand"), msgs({"This field is required."}));
}

TEST(present_record, order_and_write_only) {
    auto c = cars();
    auto p = present_record(c, k_stored);
    std::vector<std::string> keys;
    for (const auto& kv : p) keys.emplace_back(kv.key());
    std::vector<std::string> want{"id", "brand", "make", "model", "color", "vin", "price", "notes",
                                  "sold", "sold_at", "extra", "dealer", "rating", "created",
                                  "updated", "version", "owner"};
    EXPECT_EQ(keys, want);
    EXPECT_FALSE(p.contains("secret"));
}

TEST(present_record, projection_and_missing_values) {
    auto c = cars();
    auto p = present_record(c, k_stored, {"model", "secret", "version", "nope"});
    EXPECT_EQ(p, *parse_json(R"({"id": "01J0000000000000000000000A", "model": 2014, "version": 3})"));
    json::object sparse{{"id", "x"}, {"brand", "B"}};
    auto q = present_record(c, sparse, {"brand", "make", "owner", "created"});
    EXPECT_EQ(q, *parse_json(R"({"id": "x", "brand": "B", "make": null, "owner": null})"));
    auto d = c;
    d.owned = false;
    EXPECT_FALSE(present_record(d, k_stored).contains("owner"));
}

TEST(validate_field_value, direct_use) {
    auto c = cars();
    std::vector<std::string> errors;
    EXPECT_EQ(validate_field_value(*c.find_field("model"), json::value(2000), errors), json::value(2000));
    EXPECT_TRUE(errors.empty());
    EXPECT_FALSE(validate_field_value(*c.find_field("model"), json::value(1), errors));
    EXPECT_EQ(errors, std::vector<std::string>{"Ensure this value is greater than or equal to 1886."});
}
