#pragma once
// The fixed collections the fuzz targets run against: every field type and option.
#include <cstdlib>
#include <livebase/schema/collection.hpp>

namespace livebase::fuzz {

using livebase::make_field;

/// cars: the contract's example, plus one field of every remaining type.
inline const collection_def& cars() {
    static const collection_def c = [] {
        collection_def c;
        c.name = "cars";
        c.owned = true;
        auto brand = make_field("brand", field_type::string);
        brand.required = true;
        brand.max_length = 100;
        c.fields.push_back(brand);
        auto make = make_field("make", field_type::string);
        make.default_value = json::value("");
        c.fields.push_back(make);
        auto model = make_field("model", field_type::integer);
        model.min = 1886;
        model.max = 2100;
        c.fields.push_back(model);
        auto color = make_field("color", field_type::string);
        color.choices = {json::value("Blue"), json::value("Red"), json::value("Black")};
        c.fields.push_back(color);
        auto vin = make_field("vin", field_type::string);
        vin.unique = true;
        vin.pattern = "^[A-HJ-NPR-Z0-9]{17}$";
        c.fields.push_back(vin);
        auto price = make_field("price", field_type::number);
        price.min = 0;
        price.max = 1e9;
        c.fields.push_back(price);
        auto sold = make_field("sold", field_type::boolean);
        sold.default_value = json::value(false);
        c.fields.push_back(sold);
        auto built = make_field("built", field_type::datetime);
        c.fields.push_back(built);
        auto notes = make_field("notes", field_type::text);
        notes.min_length = 0;
        notes.max_length = 2000;
        c.fields.push_back(notes);
        auto meta = make_field("meta", field_type::json);
        c.fields.push_back(meta);
        auto dealer = make_field("dealer", field_type::ref);
        dealer.ref_to = "dealers";
        dealer.on_delete = on_delete_policy::set_null;
        c.fields.push_back(dealer);
        auto secret = make_field("secret", field_type::string);
        secret.write_only = true;
        c.fields.push_back(secret);
        auto serial = make_field("serial", field_type::integer);
        serial.read_only = true;
        serial.default_value = json::value(7);
        c.fields.push_back(serial);
        auto grade = make_field("grade", field_type::number);
        grade.choices = {json::value(1.5), json::value(2), json::value(3)};
        grade.required = true;
        grade.default_value = json::value(2);
        c.fields.push_back(grade);
        auto when = make_field("when", field_type::datetime);
        when.choices = {json::value("2024-01-01T00:00:00Z")};
        c.fields.push_back(when);
        c.indexes = {{"brand", "model"}};
        c.page_size = 25;
        c.max_page_size = 500;
        if (!finalize(c).empty()) std::abort();
        return c;
    }();
    return c;
}

}  // namespace livebase::fuzz
