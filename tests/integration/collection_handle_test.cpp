// The app's collection handles: C++ permissions, actions and task kinds attached to a
// collection declared in the TOML file, typed input, and start() failing on what cannot be
// attached.
#include "support/test_app.hpp"

using namespace livebase;
using namespace livebase::test;

namespace {

// Nobody scraps a car before 1950 but an admin, and nobody lists while "closed" is true.
std::atomic<bool> g_closed{false};

verdict keep_classics(const principal& who, std::string_view action, const json::object* car) {
    if (action != "delete" || !car || who.admin) return verdict::allow();
    auto model = get_int(*car, "model");
    if (model && *model < 1950) return verdict::deny("A classic is scrapped only by an admin.");
    return verdict::allow();
}

class collection_handles : public app_test {
protected:
    void SetUp() override {
        LIVEBASE_REQUIRE_BACKEND();
        g_closed = false;
        configure();
        auto cars = app_.collection("cars");  // declared in the TOML file, loaded above
        cars.permission(keep_classics)
            .permission([](const principal&, std::string_view action, const json::object*) {
                if (action == "list" && g_closed) return verdict::deny("The showroom is closed.");
                return verdict::allow();
            })
            .action({.name = "paint", .detail = true, .rule = access_rule::public_},
                    [](action_call& call) -> result<outcome> {
                        auto color = call.input().require<std::string>("color");
                        if (!color) return std::move(color).error();
                        auto coats = call.input().optional<std::int64_t>("coats");
                        if (!coats) return std::move(coats).error();
                        return outcome::json_body(
                            200, json::object{{"color", *color}, {"coats", coats->value_or(1)},
                                              {"brand", get_string(*call.record, "brand")}});
                    });
        start_app();
    }
};

}  // namespace

TEST_F(collection_handles, a_permission_attached_to_a_toml_collection_refuses_with_its_reason) {
    auto c = client();
    auto classic = create_car(c, {{"brand", "Ford"}, {"model", 1932}});
    auto modern = create_car(c, {{"brand", "Ford"}, {"model", 2020}});
    auto r = c.request("DELETE", "/api/cars/" + std::string(get_string(classic, "id")));
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(get_string(parse_obj(r.body), "detail"), "A classic is scrapped only by an admin.");
    EXPECT_EQ(c.get("/api/cars/" + std::string(get_string(classic, "id"))).status, 200);  // still there
    EXPECT_EQ(c.request("DELETE", "/api/cars/" + std::string(get_string(modern, "id"))).status, 204);
}

TEST_F(collection_handles, every_attached_permission_must_allow) {
    auto c = client();
    EXPECT_EQ(c.get("/api/cars").status, 200);
    g_closed = true;
    auto r = c.get("/api/cars");
    EXPECT_EQ(r.status, 403) << r.body;
    EXPECT_EQ(get_string(parse_obj(r.body), "detail"), "The showroom is closed.");
}

TEST_F(collection_handles, an_action_reads_typed_input_and_bad_input_is_a_400_naming_the_field) {
    auto c = client();
    auto car = create_car(c, {{"brand", "Saab"}});
    const std::string path = "/api/cars/" + std::string(get_string(car, "id")) + ":paint";
    auto ok = c.post(path, json::object{{"color", "Red"}, {"coats", 2}});
    ASSERT_EQ(ok.status, 200) << ok.body;
    auto body = parse_obj(ok.body);
    EXPECT_EQ(get_string(body, "color"), "Red");
    EXPECT_EQ(body.at("coats").as_int64(), 2);
    EXPECT_EQ(get_string(body, "brand"), "Saab");

    auto missing = c.post(path, json::object{{"coats", 2}});
    EXPECT_EQ(missing.status, 400) << missing.body;
    EXPECT_NE(missing.body.find("\"color\":[\"This field is required.\"]"), std::string::npos) << missing.body;
    auto wrong = c.post(path, json::object{{"color", 7}});
    EXPECT_EQ(wrong.status, 400) << wrong.body;
    EXPECT_NE(wrong.body.find("\"color\":[\"Must be a string.\"]"), std::string::npos) << wrong.body;
    auto fraction = c.post(path, json::object{{"color", "Red"}, {"coats", 1.5}});
    EXPECT_EQ(fraction.status, 400) << fraction.body;
    EXPECT_NE(fraction.body.find("\"coats\":[\"Must be an integer.\"]"), std::string::npos) << fraction.body;
}

TEST(collection_handle_start, attaching_to_a_collection_nobody_declares_fails_start_naming_it) {
    LIVEBASE_REQUIRE_BACKEND();
    temp_dir dir;
    livebase::app a;
    ASSERT_TRUE(a.load_config_string(test_config(dir.path() / "t.db")));
    a.collection("trucks").permission([](const principal&, std::string_view, const json::object*) {
        return verdict::allow();
    });
    auto r = a.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().detail.find("\"trucks\""), std::string::npos) << r.error().detail;
    a.stop();
}

TEST(collection_handle_start, a_bad_action_on_a_handle_fails_start_with_its_reason) {
    LIVEBASE_REQUIRE_BACKEND();
    temp_dir dir;
    livebase::app a;
    ASSERT_TRUE(a.load_config_string(test_config(dir.path() / "t.db")));
    a.collection("cars").action({.name = "honk", .methods = {"DELETE"}},
                                [](action_call&) -> result<outcome> { return outcome::json_body(200, nullptr); });
    auto r = a.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().detail.find("methods may be GET and POST"), std::string::npos) << r.error().detail;
    a.stop();
}
