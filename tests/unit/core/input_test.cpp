#include <livebase/core/input.hpp>

#include <gtest/gtest.h>

using namespace livebase;

namespace {
json::value body(std::string_view text) { return *parse_json(text); }

/// The messages of field `name` in a validation problem.
std::vector<std::string> errors_of(const problem& p, const std::string& name) {
    std::vector<std::string> out;
    auto it = p.extra.find("errors");
    if (it == p.extra.end() || !it->value().is_object()) return out;
    auto f = it->value().get_object().find(name);
    if (f == it->value().get_object().end() || !f->value().is_array()) return out;
    for (const auto& m : f->value().get_array()) out.emplace_back(m.as_string());
    return out;
}
}  // namespace

TEST(input, required_members_by_type) {
    auto b = body(R"({"s": "x", "i": 3, "big": 9007199254740993, "d": 2.5, "t": true,
                      "o": {"a": 1}, "a": [1, 2], "n": null})");
    input_reader in(b);
    EXPECT_EQ(*in.require<std::string>("s"), "x");
    EXPECT_EQ(*in.require<std::int64_t>("i"), 3);
    EXPECT_EQ(*in.require<int>("i"), 3);
    EXPECT_EQ(*in.require<std::int64_t>("big"), 9007199254740993LL);
    EXPECT_EQ(*in.require<double>("d"), 2.5);
    EXPECT_EQ(*in.require<double>("i"), 3.0);  // an integer is a number
    EXPECT_TRUE(*in.require<bool>("t"));
    EXPECT_EQ(in.require<json::object>("o")->size(), 1u);
    EXPECT_EQ(in.require<json::array>("a")->size(), 2u);
    EXPECT_TRUE(in.require<json::value>("o")->is_object());
}

TEST(input, missing_null_and_wrong_types_are_400s_naming_the_field) {
    auto b = body(R"({"s": 1, "i": 2.5, "huge": 3000000000, "n": null, "t": "true"})");
    input_reader in(b);
    auto missing = in.require<std::string>("absent");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().status, 400);
    EXPECT_EQ(errors_of(missing.error(), "absent"), std::vector<std::string>{"This field is required."});
    EXPECT_EQ(errors_of(in.require<std::string>("n").error(), "n"), std::vector<std::string>{"This field is required."});
    EXPECT_EQ(errors_of(in.require<std::string>("s").error(), "s"), std::vector<std::string>{"Must be a string."});
    EXPECT_EQ(errors_of(in.require<std::int64_t>("i").error(), "i"), std::vector<std::string>{"Must be an integer."});
    EXPECT_EQ(errors_of(in.require<int>("huge").error(), "huge"),
              std::vector<std::string>{"Must be an integer that fits 32 bits."});
    EXPECT_EQ(errors_of(in.require<bool>("t").error(), "t"), std::vector<std::string>{"Must be a boolean."});
}

TEST(input, optional_members) {
    auto b = body(R"({"s": "x", "n": null, "bad": 1})");
    input_reader in(b);
    EXPECT_EQ(*in.optional<std::string>("s"), std::optional<std::string>("x"));
    EXPECT_EQ(*in.optional<std::string>("n"), std::nullopt);
    EXPECT_EQ(*in.optional<std::string>("absent"), std::nullopt);
    EXPECT_FALSE(in.optional<std::string>("bad"));
}

TEST(input, a_body_that_is_not_an_object) {
    auto arr = body("[1]");
    auto r = input_reader(arr).require<std::string>("s");
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status, 400);
    EXPECT_EQ(r.error().detail, "A JSON object body is required.");
    json::value none;  // no body at all: every member is missing
    EXPECT_EQ(errors_of(input_reader(none).require<std::string>("s").error(), "s"),
              std::vector<std::string>{"This field is required."});
    EXPECT_EQ(*input_reader(none).optional<std::string>("s"), std::nullopt);
}
