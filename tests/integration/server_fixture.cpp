#include "integration/server_fixture.hpp"

namespace livebase::testing {

void server_test::add_actions() {
    action_def count;
    count.name = "count";
    count.methods = {"GET", "POST"};
    count.rule = access_rule::public_;
    ASSERT_TRUE(app_.add_action("cars", count, [](action_call& call) -> result<outcome> {
        auto page = call.db.list_sync(call.collection, query{});
        if (!page) return std::move(page).error();
        return outcome::json_body(200, json::object{{"count", page->count}});
    }));
    action_def honk;
    honk.name = "honk";
    honk.detail = true;
    honk.rule = access_rule::public_;
    ASSERT_TRUE(app_.add_action("cars", honk, [](action_call& call) -> result<outcome> {
        if (call.op.input.is_object() && call.op.input.get_object().contains("fail"))
            return problem::conflict("asked to fail");
        if (call.op.input.is_object() && call.op.input.get_object().contains("throw"))
            throw std::runtime_error("handler exploded");
        return outcome::json_body(200, json::object{{"honked", get_string(*call.record, "brand")},
                                                    {"input", call.op.input}});
    }));
}

json::object server_test::create_car(http_client& c, json::object car) {
    auto r = c.post("/api/cars", car);
    EXPECT_EQ(r.status, 201) << r.body;
    auto j = r.json();
    return j.is_object() ? j.get_object() : json::object{};
}

}  // namespace livebase::testing
