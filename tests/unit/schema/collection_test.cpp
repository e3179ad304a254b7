#include <livebase/schema/collection.hpp>

#include "unit/schema/cars_fixture.hpp"

#include <gtest/gtest.h>

#include <functional>

using namespace livebase;
using livebase::schema_test::cars;
using livebase::schema_test::cars_def;
using livebase::schema_test::make_field;

namespace {

/// finalize() on cars_def() after `edit`.
std::string finalize_with(const std::function<void(collection_def&)>& edit) {
    auto c = cars_def();
    edit(c);
    return finalize(c);
}

field_def& field(collection_def& c, std::string_view name) {
    for (auto& f : c.fields) {
        if (f.name == name) return f;
    }
    throw std::logic_error("no such field");
}

}  // namespace

TEST(collection_enums, field_types_round_trip) {
    for (auto t : {field_type::string, field_type::text, field_type::integer, field_type::number,
                   field_type::boolean, field_type::datetime, field_type::json, field_type::ref}) {
        EXPECT_EQ(field_type_from_string(to_string(t)), t);
    }
    EXPECT_EQ(to_string(field_type::datetime), "datetime");
    EXPECT_FALSE(field_type_from_string("int"));
    EXPECT_FALSE(field_type_from_string(""));
    EXPECT_FALSE(field_type_from_string("String"));
}

TEST(collection_enums, access_rules_round_trip) {
    EXPECT_EQ(access_rule_from_string("public"), access_rule::public_);
    EXPECT_EQ(to_string(access_rule::public_), "public");
    for (auto r : {access_rule::public_, access_rule::authenticated, access_rule::owner,
                   access_rule::admin, access_rule::nobody}) {
        EXPECT_EQ(access_rule_from_string(to_string(r)), r);
    }
    EXPECT_FALSE(access_rule_from_string("public_"));
    EXPECT_FALSE(access_rule_from_string("everyone"));
}

TEST(collection_enums, async_modes) {
    EXPECT_EQ(async_mode_from_string("allowed"), async_mode::allowed);
    EXPECT_EQ(async_mode_from_string("always"), async_mode::always);
    EXPECT_EQ(async_mode_from_string("never"), async_mode::never);
    EXPECT_FALSE(async_mode_from_string("sometimes"));
}

TEST(collection_def, rule_for_defaults_and_overrides) {
    collection_def c;
    EXPECT_EQ(c.rule_for("list"), access_rule::public_);
    EXPECT_EQ(c.rule_for("retrieve"), access_rule::public_);
    EXPECT_EQ(c.rule_for("create"), access_rule::authenticated);
    EXPECT_EQ(c.rule_for("update"), access_rule::authenticated);
    EXPECT_EQ(c.rule_for("delete"), access_rule::authenticated);
    EXPECT_EQ(c.rule_for("build"), access_rule::authenticated);
    c.rules["list"] = access_rule::nobody;
    c.rules["update"] = access_rule::owner;
    EXPECT_EQ(c.rule_for("list"), access_rule::nobody);
    EXPECT_EQ(c.rule_for("update"), access_rule::owner);
}

TEST(collection_def, async_for_defaults_to_allowed) {
    collection_def c;
    EXPECT_EQ(c.async_for("create"), async_mode::allowed);
    c.async["create"] = async_mode::always;
    EXPECT_EQ(c.async_for("create"), async_mode::always);
    EXPECT_EQ(c.async_for("delete"), async_mode::allowed);
}

TEST(collection_def, find_field) {
    auto c = cars();
    ASSERT_NE(c.find_field("brand"), nullptr);
    EXPECT_EQ(c.find_field("brand")->type, field_type::string);
    EXPECT_EQ(c.find_field("id"), nullptr);
    EXPECT_EQ(c.find_field(""), nullptr);
}

TEST(collection_def, managed_fields) {
    for (auto n : {"id", "created", "updated", "version", "owner"}) EXPECT_TRUE(is_managed_field(n));
    for (auto n : {"brand", "ID", "_id", "owners", ""}) EXPECT_FALSE(is_managed_field(n));
}

TEST(finalize, accepts_the_config_example_and_compiles_patterns) {
    auto c = cars_def();
    field(c, "vin").pattern = "^[A-HJ-NPR-Z0-9]{17}$";
    ASSERT_EQ(finalize(c), "");
    ASSERT_TRUE(c.find_field("vin")->pattern_re);
    EXPECT_FALSE(c.find_field("brand")->pattern_re);
    // finalize() is idempotent
    EXPECT_EQ(finalize(c), "");
}

TEST(finalize, normalizes_choices_and_defaults) {
    auto c = cars_def();
    field(c, "sold_at").choices = {json::value("2026-01-01"), json::value("2026-01-02T01:00:00+01:00")};
    field(c, "sold_at").default_value = json::value("2026-01-01T00:00:00Z");
    field(c, "price").choices = {json::value(1), json::value(2.5)};
    ASSERT_EQ(finalize(c), "");
    const auto* f = c.find_field("sold_at");
    EXPECT_EQ(f->choices[0], json::value("2026-01-01T00:00:00.000Z"));
    EXPECT_EQ(f->choices[1], json::value("2026-01-02T00:00:00.000Z"));
    EXPECT_EQ(*f->default_value, json::value("2026-01-01T00:00:00.000Z"));
    EXPECT_TRUE(c.find_field("price")->choices[0].is_double());
}

TEST(finalize, collection_names) {
    auto bad = [](std::string name) {
        auto c = cars_def();
        c.name = std::move(name);
        return finalize(c);
    };
    EXPECT_EQ(bad(""), "name: a collection name must match [A-Za-z_][A-Za-z0-9_]{0,62}, got \"\"");
    EXPECT_NE(bad("1cars"), "");
    EXPECT_NE(bad("my-cars"), "");
    EXPECT_NE(bad("cars/x"), "");
    EXPECT_NE(bad(std::string(64, 'a')), "");
    EXPECT_EQ(bad(std::string(63, 'a')), "");
    EXPECT_EQ(bad("_users"), "name: collection names starting with '_' are reserved");
    EXPECT_EQ(bad("Cars_2"), "");
}

TEST(finalize, field_names) {
    auto named = [](std::string name) {
        return finalize_with([&](collection_def& c) { field(c, "notes").name = name; });
    };
    EXPECT_EQ(named("9lives"), "fields.9lives: a field name must match [A-Za-z_][A-Za-z0-9_]{0,62}");
    EXPECT_NE(named(""), "");
    EXPECT_NE(named("a b"), "");
    EXPECT_NE(named("caf\xc3\xa9"), "");
    EXPECT_NE(named(std::string(64, 'x')), "");
    EXPECT_EQ(named(std::string(63, 'x')), "");
    for (auto n : {"id", "created", "updated", "version", "owner"}) {
        EXPECT_EQ(named(n), "fields." + std::string(n) + ": \"" + n + "\" is a server-managed field");
    }
    EXPECT_EQ(named("_secret"), "fields._secret: names starting with '_' are reserved");
    EXPECT_EQ(named("price__gt"), "fields.price__gt: a field name may not contain \"__\"");
    EXPECT_EQ(named("brand"), "fields.brand: declared twice");
    EXPECT_EQ(named("sold_at_2"), "");
}

TEST(finalize, min_max_only_on_numbers) {
    EXPECT_EQ(finalize_with([](collection_def& c) {
                  auto& f = field(c, "model");
                  f.type = field_type::string;
              }),
              "fields.model.min: only integer and number fields take min/max");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "brand").max = 3; }),
              "fields.brand.max: only integer and number fields take min/max");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "model").min = 1.5; }),
              "fields.model.min: must be an integer for an integer field");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "model").max = 1e300; }),
              "fields.model.max: must be an integer for an integer field");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "model").min = 3000; }),
              "fields.model.min: must not exceed max");
    EXPECT_EQ(finalize_with([](collection_def& c) {
                  field(c, "price").min = 0.5;
                  field(c, "price").max = 0.5;
              }),
              "");
}

TEST(finalize, lengths_and_patterns_only_on_text) {
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "model").min_length = 1; }),
              "fields.model.min_length: only string and text fields take min_length/max_length");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "extra").max_length = 1; }),
              "fields.extra.max_length: only string and text fields take min_length/max_length");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "brand").min_length = 101; }),
              "fields.brand.min_length: must not exceed max_length");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "dealer").pattern = "x"; }),
              "fields.dealer.pattern: only string and text fields take a pattern");
    auto bad = finalize_with([](collection_def& c) { field(c, "vin").pattern = "([a-z"; });
    EXPECT_EQ(bad.rfind("fields.vin.pattern: does not compile: ", 0), 0u) << bad;
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "notes").pattern = "^\\w+$"; }), "");
    // Back-references would need the backtracking executor, which pattern checks avoid.
    auto backref = finalize_with([](collection_def& c) { field(c, "vin").pattern = "(a)\\1"; });
    EXPECT_EQ(backref.rfind("fields.vin.pattern: does not compile: ", 0), 0u) << backref;
}

TEST(finalize, refs_unique_and_visibility) {
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "dealer").ref_to.clear(); }),
              "fields.dealer.to: a ref field needs `to`");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "brand").ref_to = "x"; }),
              "fields.brand.to: only ref fields take `to`");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "extra").unique = true; }),
              "fields.extra.unique: json and text fields cannot be unique");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "notes").unique = true; }),
              "fields.notes.unique: json and text fields cannot be unique");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "secret").read_only = true; }),
              "fields.secret: read_only and write_only exclude each other");
    EXPECT_EQ(finalize_with([](collection_def& c) {
                  field(c, "rating").required = true;
                  field(c, "rating").default_value.reset();
              }),
              "fields.rating: a required read_only field needs a default (clients cannot set it)");
}

TEST(finalize, defaults_must_be_valid) {
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "model").default_value = json::value("x"); }),
              "fields.model.default: Must be an integer.");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "model").default_value = json::value(1800); }),
              "fields.model.default: Ensure this value is greater than or equal to 1886.");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "color").default_value = json::value("Green"); }),
              "fields.color.default: \"Green\" is not a valid choice.");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "brand").default_value = json::value(); }),
              "fields.brand.default: This field may not be null.");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "color").default_value = json::value("Red"); }),
              "");
    EXPECT_EQ(finalize_with([](collection_def& c) {
                  field(c, "vin").pattern = "^[0-9]+$";
                  field(c, "vin").default_value = json::value("abc");
              }),
              "fields.vin.default: This value does not match the required pattern.");
}

TEST(finalize, choices_must_be_valid) {
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "color").choices.push_back(json::value(3)); }),
              "fields.color.choices[3]: Must be a string.");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "model").choices = {json::value(2000), json::value(1)}; }),
              "fields.model.choices[1]: Ensure this value is greater than or equal to 1886.");
    EXPECT_EQ(finalize_with([](collection_def& c) { field(c, "color").choices.push_back(json::value()); }),
              "fields.color.choices[3]: This field may not be null.");
}

TEST(finalize, indexes_name_known_fields) {
    EXPECT_EQ(finalize_with([](collection_def& c) { c.indexes.push_back({"brand", "colour"}); }),
              "indexes[1]: unknown field \"colour\"");
    EXPECT_EQ(finalize_with([](collection_def& c) { c.indexes.push_back({}); }),
              "indexes[1]: an index needs at least one field");
    EXPECT_EQ(finalize_with([](collection_def& c) { c.indexes.push_back({"brand", "brand"}); }),
              "indexes[1]: field \"brand\" repeated");
    EXPECT_EQ(finalize_with([](collection_def& c) { c.indexes.push_back({"owner", "created"}); }), "");
    EXPECT_EQ(finalize_with([](collection_def& c) {
                  c.owned = false;
                  c.indexes.push_back({"owner"});
              }),
              "indexes[1]: unknown field \"owner\"");
}

TEST(finalize, page_sizes) {
    EXPECT_EQ(finalize_with([](collection_def& c) { c.page_size = 0; }), "page_size: must be at least 1");
    EXPECT_EQ(finalize_with([](collection_def& c) { c.max_page_size = 10; }),
              "max_page_size: must be at least page_size");
    EXPECT_EQ(finalize_with([](collection_def& c) { c.max_page_size = 25; }), "");
}

TEST(finalize, actions) {
    EXPECT_EQ(finalize_with([](collection_def& c) { action_def a;
        a.name = "build";
        a.detail = true;
        c.actions["build"] = a; }), "");
    EXPECT_EQ(finalize_with([](collection_def& c) { c.actions["build-it"] = action_def{}; }),
              "actions.build-it: an action name must match [A-Za-z_][A-Za-z0-9_]{0,62}");
    EXPECT_EQ(finalize_with([](collection_def& c) {
                  action_def a;
                  a.methods = {"DELETE"};
                  c.actions["build"] = a;
              }),
              "actions.build.methods: only GET and POST are allowed");
    EXPECT_EQ(finalize_with([](collection_def& c) { action_def a;
        a.name = "other";
        c.actions["build"] = a; }),
              "actions.build.name: differs from the action's key");
}

TEST(finalize, empty_collection_is_fine) {
    collection_def c;
    c.name = "things";
    EXPECT_EQ(finalize(c), "");
    auto f = make_field("x", field_type::json);
    f.default_value = json::value(json::object{{"a", 1}});
    c.fields.push_back(f);
    EXPECT_EQ(finalize(c), "");
}

TEST(finalize, owner_rules_need_an_owned_collection) {
    // Owned: fine.
    EXPECT_EQ(finalize_with([](collection_def& c) {
                  c.rules["update"] = access_rule::owner;
                  action_def a;
                  a.rule = access_rule::owner;
                  c.actions["build"] = a;
              }),
              "");
    EXPECT_EQ(finalize_with([](collection_def& c) {
                  c.owned = false;
                  c.rules["delete"] = access_rule::owner;
              }),
              "rules.delete: the \"owner\" rule needs an owned collection (owned = true)");
    EXPECT_EQ(finalize_with([](collection_def& c) {
                  c.owned = false;
                  action_def a;
                  a.rule = access_rule::owner;
                  c.actions["build"] = a;
              }),
              "actions.build.rule: the \"owner\" rule needs an owned collection (owned = true)");
    // Other rules need no owner.
    EXPECT_EQ(finalize_with([](collection_def& c) {
                  c.owned = false;
                  for (auto a : {"list", "retrieve", "create", "update", "delete"}) c.rules[a] = access_rule::admin;
              }),
              "");
}

TEST(collection_names, built_in_names_are_reserved) {
    for (auto n : {"tasks", "auth", "health", "schema", "idempotency_keys", "users", "auth_tokens"})
        EXPECT_TRUE(is_reserved_collection_name(n)) << n;
    for (auto n : {"cars", "user", "tokens", "usersx"}) EXPECT_FALSE(is_reserved_collection_name(n)) << n;
}
