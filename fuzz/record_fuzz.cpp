// Fuzzes record validation: the input as a JSON body, validated in create, replace and patch
// modes against a collection with every field type and option, then presented back. Also the
// JSON text rules every client input and output follows: parse_json_input refuses exactly the
// texts with a repeated key among those parse_json takes, and to_json_text always writes valid
// UTF-8 that parses back, even from strings holding any bytes.
#include <cstdint>
#include <optional>
#include <string>
#include <livebase/schema/validate.hpp>
#include <string_view>

#include "fuzz_collections.hpp"

namespace {

using namespace livebase;

const json::object& stored_record() {
    static const json::object r =
        parse_json(R"({"id":"01J0000000000000000000000A","brand":"Ford","make":"","model":2014,
            "color":"Blue","vin":null,"price":12000.5,"sold":false,
            "built":"2014-03-01T10:00:00.000Z","notes":"ok","meta":{"a":[1,2]},"dealer":null,
            "secret":"s","serial":7,"grade":2,"when":null,"created":"2024-01-01T00:00:00.000Z",
            "updated":"2024-01-02T00:00:00.000Z","version":1,"owner":"u1"})")
            ->as_object();
    return r;
}

void present(const collection_def& c, const result<json::object>& r) {
    if (!r) return;
    json::object stored = *r;
    stored["id"] = "01J0000000000000000000000Z";
    (void)present_record(c, stored);
    (void)present_record(c, stored, {"brand", "secret", "nope"});
}

}  // namespace

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    const std::string_view text(reinterpret_cast<const char*>(data), size);
    const collection_def& c = fuzz::cars();
    {
        // Any bytes in a string (and a key) are written as valid JSON.
        json::object raw{{std::string(text.substr(0, 64)), std::string(text)}};
        auto out = to_json_text(raw);
        if (!valid_utf8(out) || !parse_json(out)) __builtin_trap();
    }
    auto v = parse_json(text);
    std::optional<std::string> duplicate;
    auto strict = parse_json_input(text, 64, &duplicate);
    if (strict && !v) __builtin_trap();               // stricter, never looser
    if (v && !strict && !duplicate) __builtin_trap();  // refused only for a repeated key
    if (strict && to_json_text(*strict) != to_json_text(*v)) __builtin_trap();
    if (!v) return 0;

    if (v->is_object()) {
        const auto& body = v->as_object();
        present(c, validate_write(c, body, write_mode::create));
        present(c, validate_write(c, body, write_mode::replace));
        present(c, validate_write(c, body, write_mode::patch, &stored_record()));
        // The stored record may have any shape (older schema, manual edits).
        present(c, validate_write(c, stored_record(), write_mode::patch, &body));
        (void)present_record(c, body);
    }
    for (const auto& f : c.fields) {
        std::vector<std::string> errors;
        (void)validate_field_value(f, *v, errors);
    }
    return 0;
}
