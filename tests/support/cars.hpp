#pragma once
/// The cars collection of the example (examples/cars/cars.toml, config.md), declared once for
/// every suite: in C++ for the tests below the app, in TOML for the tests that configure a
/// server.
#include <livebase/schema/collection.hpp>

#include <gtest/gtest.h>

#include <string>
#include <utility>

namespace livebase::test {

using livebase::make_field;

/// Every action of `c` open to everyone (for the suites that are not about permissions).
inline void open_to_everyone(collection_def& c) {
    for (const char* a : {"list", "retrieve", "create", "update", "delete"}) c.rules[a] = access_rule::public_;
}

/// The small cars: brand (a required string) and model (an integer), with no rules set.
/// Unfinalized: callers add fields or rules first.
inline collection_def small_cars() {
    collection_def c;
    c.name = "cars";
    auto brand = make_field("brand", field_type::string);
    brand.required = true;
    c.fields = {brand, make_field("model", field_type::integer)};
    return c;
}

/// The cars collection of config.md plus one field of every other type. Unfinalized: tests
/// that break it call finalize() themselves.
inline collection_def cars_def() {
    collection_def c;
    c.name = "cars";
    c.owned = true;
    auto brand = make_field("brand", field_type::string);
    brand.required = true;
    brand.max_length = 100;
    auto make = make_field("make", field_type::string);
    make.default_value = json::value("");
    auto model = make_field("model", field_type::integer);
    model.min = 1886;
    model.max = 2100;
    auto color = make_field("color", field_type::string);
    color.choices = {json::value("Blue"), json::value("Red"), json::value("Black")};
    auto vin = make_field("vin", field_type::string);
    vin.unique = true;
    auto price = make_field("price", field_type::number);
    auto notes = make_field("notes", field_type::text);
    auto sold = make_field("sold", field_type::boolean);
    auto sold_at = make_field("sold_at", field_type::datetime);
    auto extra = make_field("extra", field_type::json);
    auto dealer = make_field("dealer", field_type::ref);
    dealer.ref_to = "dealers";
    auto secret = make_field("secret", field_type::string);
    secret.write_only = true;
    auto rating = make_field("rating", field_type::integer);
    rating.read_only = true;
    rating.default_value = json::value(0);
    c.fields = {brand, make, model, color, vin, price, notes, sold, sold_at, extra, dealer, secret,
                rating};
    c.indexes = {{"brand", "model"}};
    return c;
}

/// cars_def(), finalized.
inline collection_def cars() {
    auto c = cars_def();
    auto e = finalize(c);
    EXPECT_EQ(e, "");
    return c;
}

/// Every action of a collection open to everyone, as a TOML line.
inline constexpr const char* k_public_rules =
    R"(rules = { list = "public", retrieve = "public", create = "public", update = "public", delete = "public" })";

/// `[collections.cars]` of examples/cars/cars.toml: owned, the five fields of the example,
/// `rules` (a TOML line), then `more` (further lines of the section, or further sections).
inline std::string cars_toml(const std::string& rules = k_public_rules, const std::string& more = "") {
    return "[collections.cars]\nowned = true\n" + rules + R"(
fields.brand = { type = "string", required = true, max_length = 100 }
fields.make  = { type = "string", default = "" }
fields.model = { type = "integer", min = 1886, max = 2100 }
fields.color = { type = "string", choices = ["Blue", "Red", "Black"] }
fields.vin   = { type = "string", unique = true }
)" + more;
}

/// A detail action of the cars run as task `task`, under `rule`, as a TOML section.
inline std::string action_toml(const std::string& name, const std::string& task, const std::string& rule) {
    return "[collections.cars.actions." + name + "]\ndetail = true\ntask = \"" + task + "\"\nrule = \"" + rule +
           "\"\n";
}

/// An endpoint /api/<name> run as task `task` (under `rule` when not empty), as a TOML section.
inline std::string endpoint_toml(const std::string& name, const std::string& method, const std::string& task,
                                 const std::string& rule = "") {
    return "[endpoints." + name + "]\npath = \"/api/" + name + "\"\nmethod = \"" + method + "\"\ntask = \"" + task +
           "\"\n" + (rule.empty() ? "" : "rule = \"" + rule + "\"\n");
}

/// The build action of the cars example (its C++ task kind "build_car"), open to everyone.
inline const std::string k_cars_build_action = "\n" + action_toml("build", "build_car", "public");

/// The double endpoint of the cars example (its C++ task kind "double"), open to everyone.
inline const std::string k_double_endpoint = "\n" + endpoint_toml("double", "GET", "double", "public");

}  // namespace livebase::test
