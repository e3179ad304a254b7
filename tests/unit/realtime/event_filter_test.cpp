// event_filter: which event a change is for a subscription, and frame encoding.
#include "realtime/frames.hpp"
#include "unit/store/store_test_support.hpp"

#include <livebase/realtime/event_filter.hpp>

#include <gtest/gtest.h>

namespace livebase {
namespace {

change make_change(std::string op, json::object record, std::optional<json::object> before = std::nullopt) {
    change ch;
    ch.seq = 7;
    ch.collection = "cars";
    ch.op = std::move(op);
    ch.id = std::string(get_string(record, "id"));
    ch.record = std::move(record);
    ch.before = std::move(before);
    return ch;
}

json::object rec(const char* id, const char* brand) { return {{"id", id}, {"brand", brand}}; }

class event_filter_test : public ::testing::Test {
protected:
    event_filter make(std::string pk, std::vector<std::string> actions, json::object filter) {
        auto f = event_filter::make(cars_, std::move(pk), actions, filter);
        EXPECT_TRUE(f.has_value());
        return f ? std::move(f).value() : event_filter{};
    }
    collection_def cars_ = test::typed_cars();
};

TEST_F(event_filter_test, every_record_and_every_action_by_default) {
    auto f = make("", {}, {});
    EXPECT_EQ(f.classify(make_change("create", rec("a", "Ford"))), event_action::create);
    EXPECT_EQ(f.classify(make_change("update", rec("a", "Kia"), rec("a", "Ford"))), event_action::update);
    EXPECT_EQ(f.classify(make_change("delete", rec("a", "Kia"))), event_action::remove);
}

TEST_F(event_filter_test, pk_and_actions_narrow_it) {
    auto f = make("a", {"update", "delete"}, {});
    EXPECT_FALSE(f.classify(make_change("create", rec("a", "Ford"))));
    EXPECT_FALSE(f.classify(make_change("update", rec("b", "Ford"))));
    EXPECT_EQ(f.classify(make_change("update", rec("a", "Ford"))), event_action::update);
    EXPECT_EQ(f.classify(make_change("delete", rec("a", "Ford"))), event_action::remove);
}

TEST_F(event_filter_test, updates_across_the_filter_enter_or_leave) {
    auto f = make("", {}, {{"brand", "Ford"}});
    EXPECT_EQ(f.classify(make_change("update", rec("a", "Ford"), rec("a", "Kia"))), event_action::create);
    EXPECT_EQ(f.classify(make_change("update", rec("a", "Kia"), rec("a", "Ford"))), event_action::remove);
    EXPECT_EQ(f.classify(make_change("update", rec("a", "Ford"), rec("a", "Ford"))), event_action::update);
    EXPECT_FALSE(f.classify(make_change("update", rec("a", "Kia"), rec("a", "Seat"))));
    EXPECT_FALSE(f.classify(make_change("create", rec("a", "Kia"))));
    EXPECT_FALSE(f.classify(make_change("delete", rec("a", "Kia"))));
    // An update logged before the log kept `before` counts as matched before iff it matches now.
    EXPECT_EQ(f.classify(make_change("update", rec("a", "Ford"))), event_action::update);
    EXPECT_FALSE(f.classify(make_change("update", rec("a", "Kia"))));
    // Leaving is a delete: a subscription without deletes does not see it.
    auto no_deletes = make("", {"create", "update"}, {{"brand", "Ford"}});
    EXPECT_FALSE(no_deletes.classify(make_change("update", rec("a", "Kia"), rec("a", "Ford"))));
}

TEST_F(event_filter_test, bad_requests_name_the_parameter) {
    auto bad_action = event_filter::make(cars_, "", {"upsert"}, {});
    ASSERT_FALSE(bad_action.has_value());
    EXPECT_EQ(bad_action.error().status, 400);
    EXPECT_EQ(get_string(bad_action.error().extra, "parameter"), "actions");
    auto bad_key = event_filter::make(cars_, "", {}, {{"brand__near", "x"}});
    ASSERT_FALSE(bad_key.has_value());
    EXPECT_EQ(get_string(bad_key.error().extra, "parameter"), "filter.brand__near");
    EXPECT_EQ(to_string(event_action::remove), "delete");
    EXPECT_EQ(event_action_from_string("delete"), event_action::remove);
    EXPECT_FALSE(event_action_from_string("remove"));
}

TEST(frames, encodings_are_exact_and_escaped) {
    realtime_detail::change_text t;
    t.stream = realtime_detail::json_string("cars");
    t.pk = realtime_detail::json_string("a\"b");
    t.data = R"({"id":"a\"b","note":"x\ny"})";
    t.seq = 4711;
    EXPECT_EQ(realtime_detail::websocket_event(t, event_action::remove, "s-3"),
              R"({"stream":"cars","payload":{"action":"delete","pk":"a\"b","data":{"id":"a\"b","note":"x\ny"},"seq":4711,"subscription":"s-3"}})");
    // One data line: serialized JSON carries newlines escaped.
    EXPECT_EQ(realtime_detail::sse_event(t, event_action::update),
              "id: 4711\nevent: update\ndata: {\"id\":\"a\\\"b\",\"note\":\"x\\ny\"}\n\n");
    EXPECT_EQ(realtime_detail::websocket_observe(t.stream, "o-2", 9, {{"msg", "removed"}, {"order", 1}, {"pk", "a"}}),
              R"({"stream":"cars","payload":{"action":"observe","observer":"o-2","seq":9,"data":{"msg":"removed","order":1,"pk":"a"}}})");
}

}  // namespace
}  // namespace livebase
