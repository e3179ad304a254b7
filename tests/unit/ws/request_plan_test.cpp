// What each WebSocket request means (realtime.md "Streams and actions"), without sockets.
#include "ws/request_plan.hpp"

#include <gtest/gtest.h>

#include <livebase/tasks/task.hpp>

#include "unit/schema/cars_fixture.hpp"

using namespace livebase;
using namespace livebase::ws_detail;

namespace {

class ws_plan : public ::testing::Test {
protected:
    void SetUp() override {
        auto c = schema_test::cars_def();
        action_def count;
        count.name = "count";
        count.methods = {"GET", "POST"};
        action_def stats;
        stats.name = "stats";
        stats.methods = {"GET"};
        action_def honk;
        honk.name = "honk";
        honk.detail = true;
        c.actions = {{"count", count}, {"stats", stats}, {"honk", honk}};
        ASSERT_EQ(finalize(c), "");
        reg_.add_collection(std::move(c));
        endpoint_binding e;
        e.name = "double";
        e.method = "POST";
        e.path = "/api/double";
        e.task = "double";
        reg_.add_endpoint(e);
        endpoint_binding g;
        g.name = "report";
        g.method = "GET";
        g.path = "/api/report";
        g.task = "report";
        reg_.add_endpoint(g);
        reg_.add_submittable_kind("mail", access_rule::authenticated);
    }

    request_plan plan(const std::string& frame, bool auth = false) {
        auto f = decode_frame(frame);
        EXPECT_FALSE(f.error) << frame;
        return plan_request(f.request, reg_, "/api", auth);
    }

    static std::string param(const operation& op, const std::string& key) {
        for (const auto& [k, v] : op.params)
            if (k == key) return v;
        return "<absent>";
    }

    registry reg_;
};

TEST_F(ws_plan, list_runs_the_rest_query) {
    auto p = plan(R"({"stream":"cars","payload":{"action":"list","data":{
        "filter":{"brand":"Ford","model__gte":2014,"brand__in":["a","b"],"sold":true,
                  "price__lt":9.5,"vin__isnull":false},
        "ordering":["-model","brand"],"limit":10,"offset":20}}})");
    ASSERT_EQ(p.kind, plan_kind::execute) << p.refusal.detail;
    EXPECT_EQ(p.shape, reply_shape::list);
    EXPECT_EQ(p.op.kind, op_kind::list);
    EXPECT_EQ(p.op.collection, "cars");
    EXPECT_EQ(p.op.method, "GET");
    EXPECT_EQ(p.op.path, "/api/cars");
    EXPECT_EQ(param(p.op, "brand__exact"), "Ford");
    EXPECT_EQ(param(p.op, "model__gte"), "2014");
    EXPECT_EQ(param(p.op, "brand__in"), "a,b");
    EXPECT_EQ(param(p.op, "sold__exact"), "true");
    EXPECT_EQ(param(p.op, "vin__isnull"), "false");
    EXPECT_EQ(param(p.op, "ordering"), "-model,brand");
    EXPECT_EQ(param(p.op, "limit"), "10");
    EXPECT_EQ(param(p.op, "offset"), "20");
    EXPECT_EQ(p.limit, 10u);
    EXPECT_EQ(p.offset, 20u);
    EXPECT_FALSE(p.op.query.empty());

    auto c = reg_.find("cars");
    auto again = parse_query_params(*c, p.op.params);
    ASSERT_TRUE(again) << again.error().detail;
    auto direct = parse_query_json(*c, json::object{});
    ASSERT_TRUE(direct);
    EXPECT_EQ(again->filters.size(), 6u);
}

TEST_F(ws_plan, query_params_round_trip_every_value_type) {
    const auto* c = reg_.find("cars");
    auto data = parse_json(R"({"filter":{"brand__istartswith":"Mu","model__in":[2014,2015],
        "price__gte":0.1,"price__lte":1e300,"sold":false,"sold_at__gt":"2024-01-02T03:04:05Z",
        "notes__contains":"a b&c=d","dealer":"01J","extra__isnull":true,"id__ne":"x"},
        "fields":["brand","model"],"ordering":"-price"})");
    auto q = parse_query_json(*c, data->get_object());
    ASSERT_TRUE(q) << q.error().detail;
    auto params = to_query_params(*q);
    ASSERT_TRUE(params);
    auto back = parse_query_params(*c, *params);
    ASSERT_TRUE(back) << back.error().detail;
    ASSERT_EQ(back->filters.size(), q->filters.size());
    for (std::size_t i = 0; i < q->filters.size(); ++i) {
        EXPECT_EQ(back->filters[i].field, q->filters[i].field);
        EXPECT_EQ(back->filters[i].op, q->filters[i].op);
        EXPECT_EQ(back->filters[i].value, q->filters[i].value) << q->filters[i].field;
    }
    EXPECT_EQ(back->fields, q->fields);
    ASSERT_EQ(back->ordering.size(), 1u);
    EXPECT_TRUE(back->ordering[0].descending);
    EXPECT_EQ(back->limit, q->limit);
}

TEST_F(ws_plan, list_refusals_name_the_key) {
    auto bad_field =
        plan(R"({"stream":"cars","payload":{"action":"list","data":{"filter":{"nope":1}}}})");
    ASSERT_EQ(bad_field.kind, plan_kind::refuse);
    EXPECT_EQ(bad_field.refusal.status, 400);
    EXPECT_EQ(get_string(bad_field.refusal.extra, "parameter"), "filter.nope");

    auto bad_type =
        plan(R"({"stream":"cars","payload":{"action":"list","data":{"filter":{"model":"x"}}}})");
    ASSERT_EQ(bad_type.kind, plan_kind::refuse);
    EXPECT_EQ(get_string(bad_type.refusal.extra, "parameter"), "filter.model");

    auto comma = plan(
        R"({"stream":"cars","payload":{"action":"list","data":{"filter":{"brand__in":["a,b"]}}}})");
    ASSERT_EQ(comma.kind, plan_kind::refuse);
    EXPECT_EQ(comma.refusal.status, 400);

    auto not_object = plan(R"({"stream":"cars","payload":{"action":"list","data":[1]}})");
    ASSERT_EQ(not_object.kind, plan_kind::refuse);
    EXPECT_EQ(get_string(not_object.refusal.extra, "parameter"), "data");
}

TEST_F(ws_plan, detail_operations) {
    auto r = plan(R"({"stream":"cars","payload":{"action":"retrieve","pk":"01J"}})");
    ASSERT_EQ(r.kind, plan_kind::execute);
    EXPECT_EQ(r.op.kind, op_kind::retrieve);
    EXPECT_EQ(r.op.id, "01J");
    EXPECT_EQ(r.op.method, "GET");

    auto numeric = plan(R"({"stream":"cars","payload":{"action":"retrieve","pk":17}})");
    EXPECT_EQ(numeric.op.id, "17");

    auto u =
        plan(R"({"stream":"cars","payload":{"action":"update","pk":"a","data":{"brand":"X"}}})");
    EXPECT_EQ(u.op.kind, op_kind::replace);
    EXPECT_EQ(u.op.method, "PUT");
    EXPECT_EQ(u.op.input, (json::object{{"brand", "X"}}));

    auto pa =
        plan(R"({"stream":"cars","payload":{"action":"patch","pk":"a","data":{"brand":"X"}}})");
    EXPECT_EQ(pa.op.kind, op_kind::patch);
    EXPECT_EQ(pa.op.method, "PATCH");

    auto d = plan(R"({"stream":"cars","payload":{"action":"delete","pk":"a"}})");
    EXPECT_EQ(d.op.kind, op_kind::remove);
    EXPECT_EQ(d.op.method, "DELETE");

    auto c = plan(R"({"stream":"cars","payload":{"action":"create","data":{"brand":"X"}}})");
    EXPECT_EQ(c.op.kind, op_kind::create);
    EXPECT_EQ(c.op.method, "POST");
    EXPECT_EQ(c.op.input, (json::object{{"brand", "X"}}));

    for (const char* action : {"retrieve", "update", "patch", "delete"}) {
        auto missing =
            plan(std::string(R"({"stream":"cars","payload":{"action":")") + action + R"("}})");
        ASSERT_EQ(missing.kind, plan_kind::refuse) << action;
        EXPECT_EQ(missing.refusal.status, 400);
        EXPECT_EQ(get_string(missing.refusal.extra, "parameter"), "pk");
    }
    auto bad_pk = plan(R"({"stream":"cars","payload":{"action":"retrieve","pk":{"id":1}}})");
    ASSERT_EQ(bad_pk.kind, plan_kind::refuse);
    EXPECT_EQ(bad_pk.refusal.status, 400);
}

TEST_F(ws_plan, custom_actions) {
    auto count = plan(R"({"stream":"cars","payload":{"action":"count","data":{"x":1}}})");
    ASSERT_EQ(count.kind, plan_kind::execute);
    EXPECT_EQ(count.op.kind, op_kind::action);
    EXPECT_EQ(count.op.action, "count");
    EXPECT_EQ(count.op.method, "POST");  // POST unless the action only allows GET
    EXPECT_EQ(count.op.input, (json::object{{"x", 1}}));
    EXPECT_TRUE(count.op.id.empty());

    auto stats =
        plan(R"({"stream":"cars","payload":{"action":"stats","data":{"brand":"Ford","n":2}}})");
    ASSERT_EQ(stats.kind, plan_kind::execute);
    EXPECT_EQ(stats.op.method, "GET");
    EXPECT_TRUE(stats.op.input.is_null());
    EXPECT_EQ(param(stats.op, "brand"), "Ford");
    EXPECT_EQ(param(stats.op, "n"), "2");

    auto honk =
        plan(R"({"stream":"cars","payload":{"action":"honk","pk":"01J","data":{"loud":true}}})");
    ASSERT_EQ(honk.kind, plan_kind::execute);
    EXPECT_EQ(honk.op.id, "01J");
    EXPECT_EQ(honk.op.action, "honk");
    EXPECT_EQ(honk.op.path, "/api/cars/01J:honk");

    auto no_pk = plan(R"({"stream":"cars","payload":{"action":"honk"}})");
    ASSERT_EQ(no_pk.kind, plan_kind::refuse);
    EXPECT_EQ(no_pk.refusal.status, 400);

    auto unknown = plan(R"({"stream":"cars","payload":{"action":"fly"}})");
    ASSERT_EQ(unknown.kind, plan_kind::refuse);
    EXPECT_EQ(unknown.refusal.status, 404);
}

TEST_F(ws_plan, unknown_streams_including_auth) {
    for (const char* s : {"planes", "auth", "session", "error"}) {
        auto p = plan(std::string(R"({"stream":")") + s + R"(","payload":{"action":"list"}})");
        ASSERT_EQ(p.kind, plan_kind::refuse) << s;
        EXPECT_EQ(p.refusal.status, 404);
        EXPECT_EQ(p.refusal.detail, std::string("Unknown stream \"") + s + "\".");
    }
}

TEST_F(ws_plan, auth_stream_without_auth_is_unknown) {
    auto p = plan(R"({"stream":"auth","payload":{"action":"login","data":{"token":"t"}}})", false);
    ASSERT_EQ(p.kind, plan_kind::refuse);
    EXPECT_EQ(p.refusal.status, 404);
    EXPECT_EQ(p.refusal.detail, "Unknown stream \"auth\".");
}

TEST_F(ws_plan, login_with_a_token_resolves_it) {
    auto p = plan(R"({"stream":"auth","payload":{"action":"login","data":{"token":"abc"}}})", true);
    ASSERT_EQ(p.kind, plan_kind::login) << p.refusal.detail;
    EXPECT_EQ(p.token, "abc");
    EXPECT_TRUE(p.op.collection.empty());  // nothing runs through the api

    for (const char* bad : {R"({"token":""})", R"({"token":7})", R"({"token":{}})"}) {
        auto b = plan(std::string(R"({"stream":"auth","payload":{"action":"login","data":)") + bad + "}}", true);
        ASSERT_EQ(b.kind, plan_kind::refuse) << bad;
        EXPECT_EQ(b.refusal.status, 400);
        EXPECT_EQ(get_string(b.refusal.extra, "parameter"), "data.token") << bad;
    }
    auto not_object = plan(R"({"stream":"auth","payload":{"action":"login","data":"x"}})", true);
    ASSERT_EQ(not_object.kind, plan_kind::refuse);
    EXPECT_EQ(not_object.refusal.status, 400);
}

TEST_F(ws_plan, login_with_a_password_runs_the_api_action) {
    auto p = plan(R"({"stream":"auth","payload":{"action":"login",
        "data":{"username":"ann","password":"secret-pw"}}})", true);
    ASSERT_EQ(p.kind, plan_kind::login) << p.refusal.detail;
    EXPECT_TRUE(p.token.empty());
    EXPECT_EQ(p.op.kind, op_kind::action);
    EXPECT_EQ(p.op.collection, "auth");
    EXPECT_EQ(p.op.action, "login");
    EXPECT_EQ(p.op.method, "POST");
    EXPECT_EQ(p.op.path, "/api/auth/login");
    ASSERT_TRUE(p.op.input.is_object());
    EXPECT_EQ(get_string(p.op.input.get_object(), "username"), "ann");
    EXPECT_EQ(get_string(p.op.input.get_object(), "password"), "secret-pw");

    // Missing fields are the api's to refuse (after its throttle), exactly as over REST.
    auto empty = plan(R"({"stream":"auth","payload":{"action":"login"}})", true);
    ASSERT_EQ(empty.kind, plan_kind::login);
    EXPECT_EQ(empty.op.action, "login");
    EXPECT_TRUE(empty.op.input.is_object());
}

TEST_F(ws_plan, logout_and_me) {
    auto out = plan(R"({"stream":"auth","payload":{"action":"logout"}})", true);
    ASSERT_EQ(out.kind, plan_kind::logout) << out.refusal.detail;
    EXPECT_EQ(out.op.kind, op_kind::action);
    EXPECT_EQ(out.op.collection, "auth");
    EXPECT_EQ(out.op.action, "logout");
    EXPECT_EQ(out.op.method, "POST");

    auto me = plan(R"({"stream":"auth","payload":{"action":"me"}})", true);
    ASSERT_EQ(me.kind, plan_kind::execute) << me.refusal.detail;
    EXPECT_EQ(me.op.collection, "auth");
    EXPECT_EQ(me.op.action, "me");
    EXPECT_EQ(me.op.method, "GET");

    auto other = plan(R"({"stream":"auth","payload":{"action":"register"}})", true);
    ASSERT_EQ(other.kind, plan_kind::refuse);
    EXPECT_EQ(other.refusal.status, 404);
}

TEST_F(ws_plan, auth_does_not_change_other_streams) {
    auto p = plan(R"({"stream":"cars","payload":{"action":"retrieve","pk":"a"}})", true);
    ASSERT_EQ(p.kind, plan_kind::execute);
    EXPECT_EQ(p.op.collection, "cars");
    auto unknown = plan(R"({"stream":"session","payload":{"action":"login"}})", true);
    ASSERT_EQ(unknown.kind, plan_kind::refuse);
    EXPECT_EQ(unknown.refusal.status, 404);
}

TEST_F(ws_plan, subscriptions) {
    auto s = plan(R"({"stream":"cars","payload":{"action":"subscribe","pk":"a",
        "data":{"actions":["update","delete"],"filter":{"brand":"Ford"},"since":12}}})");
    ASSERT_EQ(s.kind, plan_kind::subscribe) << s.refusal.detail;
    EXPECT_EQ(s.sub.collection, "cars");
    EXPECT_EQ(s.sub.pk, "a");
    EXPECT_EQ(s.sub.actions, (std::vector<std::string>{"update", "delete"}));
    EXPECT_EQ(s.sub.filter, (json::object{{"brand", "Ford"}}));
    ASSERT_TRUE(s.sub.since);
    EXPECT_EQ(*s.sub.since, 12);

    // channels-api's form
    auto ch = plan(
        R"({"stream":"cars","payload":{"action":"subscribe","pk":1,"data":{"action":"update"}}})");
    ASSERT_EQ(ch.kind, plan_kind::subscribe);
    EXPECT_EQ(ch.sub.pk, "1");
    EXPECT_EQ(ch.sub.actions, (std::vector<std::string>{"update"}));

    auto all = plan(R"({"stream":"cars","payload":{"action":"subscribe"}})");
    ASSERT_EQ(all.kind, plan_kind::subscribe);
    EXPECT_TRUE(all.sub.pk.empty());
    EXPECT_TRUE(all.sub.actions.empty());
    EXPECT_FALSE(all.sub.since);

    for (const char* data : {R"({"actions":"update"})", R"({"actions":[1]})", R"({"filter":[]})",
                             R"({"since":"x"})", R"({"since":-1})", R"({"action":3})", "5"}) {
        auto bad = plan(std::string(R"({"stream":"cars","payload":{"action":"subscribe","data":)") +
                        data + "}}");
        ASSERT_EQ(bad.kind, plan_kind::refuse) << data;
        EXPECT_EQ(bad.refusal.status, 400) << data;
    }

    auto un = plan(
        R"({"stream":"cars","payload":{"action":"unsubscribe","data":{"subscription":"s-1"}}})");
    ASSERT_EQ(un.kind, plan_kind::unsubscribe);
    EXPECT_EQ(un.handle, "s-1");
    auto un_bad = plan(R"({"stream":"cars","payload":{"action":"unsubscribe"}})");
    ASSERT_EQ(un_bad.kind, plan_kind::refuse);
    EXPECT_EQ(get_string(un_bad.refusal.extra, "parameter"), "data.subscription");
}

TEST_F(ws_plan, misspelt_members_of_data_are_refused_naming_them) {
    struct refused {
        const char* frame;
        const char* parameter;
    };
    const refused cases[] = {
        {R"({"stream":"cars","payload":{"action":"list","data":{"filters":{"brand":"Ford"}}}})",
         "data.filters"},
        {R"({"stream":"cars","payload":{"action":"list","data":{"limit":1,"limt":1}}})", "data.limt"},
        {R"({"stream":"tasks","payload":{"action":"list","data":{"limt":1}}})", "data.limt"},
        {R"({"stream":"cars","payload":{"action":"subscribe","data":{"actoins":["create"]}}})",
         "data.actoins"},
        {R"({"stream":"tasks","payload":{"action":"subscribe","pk":"t","data":{"filters":{}}}})",
         "data.filters"},
        {R"({"stream":"cars","payload":{"action":"observe","data":{"filters":{"brand":"x"}}}})",
         "data.filters"},
    };
    for (const auto& c : cases) {
        auto p = plan(c.frame);
        ASSERT_EQ(p.kind, plan_kind::refuse) << c.frame;
        EXPECT_EQ(p.refusal.status, 400) << c.frame;
        EXPECT_EQ(get_string(p.refusal.extra, "parameter"), c.parameter) << c.frame;
        EXPECT_NE(p.refusal.detail.find(std::string(c.parameter).substr(5)), std::string::npos)
            << p.refusal.detail;
    }
    // Every unknown member is listed.
    auto two = plan(R"({"stream":"cars","payload":{"action":"list","data":{"limt":1,"ordring":"x"}}})");
    ASSERT_EQ(two.kind, plan_kind::refuse);
    ASSERT_TRUE(two.refusal.extra.contains("unknown"));
    EXPECT_EQ(two.refusal.extra.at("unknown").as_array().size(), 2u);
}

TEST_F(ws_plan, live_queries) {
    auto o = plan(
        R"({"stream":"cars","payload":{"action":"observe","data":{"filter":{"brand":"Ford"},"limit":5}}})");
    ASSERT_EQ(o.kind, plan_kind::observe);
    EXPECT_EQ(o.obs.collection, "cars");
    EXPECT_EQ(o.obs.query,
              (json::object{{"filter", json::object{{"brand", "Ford"}}}, {"limit", 5}}));
    auto u =
        plan(R"({"stream":"cars","payload":{"action":"unobserve","data":{"observer":"o-1"}}})");
    ASSERT_EQ(u.kind, plan_kind::unobserve);
    EXPECT_EQ(u.handle, "o-1");
}

TEST_F(ws_plan, tasks_stream) {
    auto l = plan(
        R"({"stream":"tasks","payload":{"action":"list","data":{"filter":{"state":"running"}}}})");
    ASSERT_EQ(l.kind, plan_kind::execute) << l.refusal.detail;
    EXPECT_EQ(l.op.collection, "tasks");
    EXPECT_EQ(l.op.kind, op_kind::list);
    EXPECT_EQ(param(l.op, "state__exact"), "running");

    auto r = plan(R"({"stream":"tasks","payload":{"action":"retrieve","pk":"t1"}})");
    ASSERT_EQ(r.kind, plan_kind::execute);
    EXPECT_EQ(r.shape, reply_shape::task);
    EXPECT_EQ(r.op.collection, "tasks");
    EXPECT_EQ(r.op.id, "t1");

    auto c = plan(R"({"stream":"tasks","payload":{"action":"cancel","pk":"t1"}})");
    ASSERT_EQ(c.kind, plan_kind::execute);
    EXPECT_EQ(c.op.kind, op_kind::remove);
    EXPECT_EQ(c.op.method, "DELETE");

    auto s = plan(R"({"stream":"tasks","payload":{"action":"subscribe","pk":"t1"}})");
    ASSERT_EQ(s.kind, plan_kind::subscribe);
    EXPECT_EQ(s.sub.collection, "tasks");
    EXPECT_EQ(s.sub.pk, "t1");

    auto submit = plan(
        R"({"stream":"tasks","payload":{"action":"submit","data":{"kind":"double","input":{"n":21}}}})");
    ASSERT_EQ(submit.kind, plan_kind::execute) << submit.refusal.detail;
    EXPECT_EQ(submit.op.method, "POST");
    EXPECT_EQ(submit.op.path, "/api/double");
    EXPECT_EQ(submit.op.input, (json::object{{"n", 21}}));

    auto get = plan(
        R"({"stream":"tasks","payload":{"action":"submit","data":{"kind":"report","input":{"year":2024}}}})");
    ASSERT_EQ(get.kind, plan_kind::execute);
    EXPECT_EQ(get.op.method, "GET");
    EXPECT_EQ(param(get.op, "year"), "2024");

    auto unknown =
        plan(R"({"stream":"tasks","payload":{"action":"submit","data":{"kind":"mine"}}})");
    ASSERT_EQ(unknown.kind, plan_kind::refuse);
    EXPECT_EQ(unknown.refusal.status, 400);
    // A kind submittable directly: POST /api/tasks with `data` as the body.
    auto direct = plan(
        R"({"stream":"tasks","payload":{"action":"submit","data":{"kind":"mail","input":1,"delay":5,"priority":2}}})");
    ASSERT_EQ(direct.kind, plan_kind::execute) << direct.refusal.detail;
    EXPECT_EQ(direct.op.kind, op_kind::create);
    EXPECT_EQ(direct.op.collection, "tasks");
    EXPECT_EQ(direct.op.path, "/api/tasks");
    EXPECT_EQ(direct.op.input, (json::object{{"kind", "mail"}, {"input", 1}, {"delay", 5}, {"priority", 2}}));
    // An endpoint's kind takes no schedule.
    auto timed = plan(R"({"stream":"tasks","payload":{"action":"submit","data":{"kind":"double","delay":5}}})");
    ASSERT_EQ(timed.kind, plan_kind::refuse);
    EXPECT_EQ(timed.refusal.status, 400);
    auto no_kind = plan(R"({"stream":"tasks","payload":{"action":"submit","data":{}}})");
    ASSERT_EQ(no_kind.kind, plan_kind::refuse);
    EXPECT_EQ(no_kind.refusal.status, 400);
    auto other = plan(R"({"stream":"tasks","payload":{"action":"create"}})");
    ASSERT_EQ(other.kind, plan_kind::refuse);
    EXPECT_EQ(other.refusal.status, 404);
}

TEST_F(ws_plan, replies_take_the_documented_shapes) {
    auto f = decode_frame(R"({"stream":"cars","payload":{"action":"list","request_id":5}})");
    auto p = plan_request(f.request, reg_, "/api");
    json::object page{{"count", 3},
                      {"next", "/api/cars?limit=25&offset=25"},
                      {"previous", nullptr},
                      {"results", json::array{json::object{{"id", "a"}}}}};
    auto reply = parse_json(encode_plan_reply(p, f.request, outcome::json_body(200, page)));
    ASSERT_TRUE(reply);
    const auto& data = reply->at("payload").at("data").get_object();
    EXPECT_EQ(data, (json::object{{"count", 3},
                                  {"results", json::array{json::object{{"id", "a"}}}},
                                  {"limit", 25},
                                  {"offset", 0}}));
    EXPECT_EQ(reply->at("payload").at("request_id"), 5);

    auto tf = decode_frame(R"({"stream":"tasks","payload":{"action":"retrieve","pk":"t"}})");
    auto tp = plan_request(tf.request, reg_, "/api");
    auto t = parse_json(
        encode_plan_reply(tp, tf.request, outcome::json_body(303, json::object{{"id", "t"}})));
    EXPECT_EQ(t->at("payload").at("response_status"), 200);
    EXPECT_EQ(t->at("payload").at("data"), (json::object{{"id", "t"}}));
}

}  // namespace
