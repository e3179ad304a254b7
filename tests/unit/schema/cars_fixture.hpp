#pragma once
/// The `cars` collection of config.md, plus one field of every other type, for schema tests.
#include <livebase/schema/collection.hpp>

#include <gtest/gtest.h>

namespace livebase::schema_test {

inline field_def make_field(std::string name, field_type type) {
    field_def f;
    f.name = std::move(name);
    f.type = type;
    return f;
}

/// Unfinalized: tests that break it call finalize() themselves.
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

inline collection_def cars() {
    auto c = cars_def();
    auto e = finalize(c);
    EXPECT_EQ(e, "");
    return c;
}

}  // namespace livebase::schema_test
