// The WebSocket door end to end (realtime.md "Envelope", "Streams and actions"): every request
// row of the table over a real socket of a real app, request_id echo, bad frames, 1009.
#include <support/ws_client.hpp>

#include "support/test_app.hpp"

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

/// The app with the test actions and a "stats" action that echoes its method and arguments.
class ws_protocol : public app_test {
protected:
    void SetUp() override { start(""); }

    void start(const std::string& extra) {
        ASSERT_NO_FATAL_FAILURE(configure(extra, k_public_rules, log_level::warn, "ws"));
        add_test_actions();
        action_def stats;
        stats.name = "stats";
        stats.methods = {"GET"};
        stats.rule = access_rule::public_;
        ASSERT_TRUE(app_.add_action("cars", stats, [](action_call& call) -> result<outcome> {
            json::object args;
            for (const auto& [k, v] : call.op.params) args[k] = v;
            return outcome::json_body(200,
                                      json::object{{"method", call.op.method}, {"args", args}});
        }));
        start_app();
    }
};

void create_car_rest(http_client& h, const std::string& brand, int model) {
    auto r = h.post("/api/cars", json::object{{"brand", brand}, {"model", model}});
    ASSERT_EQ(r.status, 201) << r.body;
}

TEST_F(ws_protocol, hello_and_subprotocol) {
    ws_client c;
    ws_connect_options o;
    o.subprotocols = {"livebase.v1"};
    ASSERT_TRUE(c.connect(app_.port(), o));
    EXPECT_EQ(stream_of(c.hello()), "session");
    EXPECT_EQ(payload_string(c.hello(), "action"), "hello");
    EXPECT_FALSE(c.subscriber().empty());
    EXPECT_TRUE(data_of(c.hello()).at("user").is_null());
    EXPECT_EQ(c.subprotocol(), "livebase.v1");
    EXPECT_FALSE(c.response_header("X-Request-Id").empty());
    EXPECT_TRUE(c.queue_empty(50ms));  // nothing but the hello
}

TEST_F(ws_protocol, request_id_is_echoed_verbatim) {
    auto c = connect();
    const std::vector<json::value> ids{json::value("r-17"), json::value(42), json::value(-7.25),
                                       json::object{{"client", "x"}, {"n", json::array{1, 2}}},
                                       json::value(true)};
    for (const auto& id : ids) {
        ASSERT_TRUE(c->send_json(
            json::object{{"stream", "cars"},
                         {"payload", json::object{{"action", "list"}, {"request_id", id}}}}));
        auto r = c->receive(k_wait);
        ASSERT_TRUE(r);
        EXPECT_EQ(payload_of(*r, "request_id"), id) << json::serialize(*r);
        EXPECT_EQ(status_of(r), 200);
    }
    ASSERT_TRUE(c->send_json(
        json::object{{"stream", "cars"}, {"payload", json::object{{"action", "list"}}}}));
    auto absent = c->receive(k_wait);
    ASSERT_TRUE(absent);
    ASSERT_TRUE(absent->at("payload").get_object().contains("request_id"));
    EXPECT_TRUE(payload_of(*absent, "request_id").is_null());
    EXPECT_EQ(payload_string(*absent, "action"), "list");
    EXPECT_EQ(stream_of(*absent), "cars");
}

TEST_F(ws_protocol, bad_frames_get_400_on_the_error_stream_and_the_socket_stays) {
    auto c = connect();
    const std::vector<std::string> bad{"not json",
                                       "[1,2]",
                                       R"({"payload":{"action":"list","request_id":"b1"}})",
                                       R"({"stream":"cars"})",
                                       R"({"stream":"cars","payload":{"request_id":"b2"}})",
                                       R"({"stream":"cars","payload":{"action":3}})",
                                       "{}",
                                       "\"x\""};
    for (const auto& text : bad) {
        ASSERT_TRUE(c->send_text(text));
        auto r = c->receive(k_wait);
        ASSERT_TRUE(r) << text;
        EXPECT_EQ(stream_of(*r), "error") << text;
        EXPECT_EQ(status_of(r), 400) << text;
        EXPECT_TRUE(data_of(*r).is_null());
        ASSERT_FALSE(payload_of(*r, "errors").get_array().empty());
    }
    ASSERT_TRUE(c->send_binary("binary"));
    auto b = c->receive(k_wait);
    ASSERT_TRUE(b);
    EXPECT_EQ(stream_of(*b), "error");
    // Echoes what it could read.
    ASSERT_TRUE(c->send_text(R"({"payload":{"action":"list","request_id":"b3"}})"));
    auto echoed = c->receive(k_wait);
    ASSERT_TRUE(echoed);
    EXPECT_EQ(payload_of(*echoed, "request_id"), "b3");
    EXPECT_TRUE(c->is_open());
    EXPECT_EQ(status_of(c->request("cars", req("list"))), 200);
}

TEST_F(ws_protocol, records_crud_rows) {
    auto c = connect();
    auto created =
        c->request("cars", req("create", {{"data", {{"brand", "Ford"}, {"model", 2014}}}}));
    ASSERT_EQ(status_of(created), 201) << json::serialize(*created);
    auto car = obj(data_of(*created));
    const auto id = field(car, "id");
    ASSERT_FALSE(id.empty());
    EXPECT_EQ(car["brand"], "Ford");
    EXPECT_EQ(car["version"], 1);
    EXPECT_EQ(payload_of(*created, "errors"), json::array{});

    auto got = c->request("cars", req("retrieve", {{"pk", id}}));
    ASSERT_EQ(status_of(got), 200);
    EXPECT_EQ(obj(data_of(*got)), car);

    auto updated = c->request(
        "cars", req("update", {{"pk", id}, {"data", {{"brand", "Opel"}, {"model", 2015}}}}));
    ASSERT_EQ(status_of(updated), 200) << json::serialize(*updated);
    EXPECT_EQ(obj(data_of(*updated))["brand"], "Opel");
    EXPECT_EQ(obj(data_of(*updated))["version"], 2);

    auto patched = c->request("cars", req("patch", {{"pk", id}, {"data", {{"color", "Red"}}}}));
    ASSERT_EQ(status_of(patched), 200);
    EXPECT_EQ(obj(data_of(*patched))["brand"], "Opel");
    EXPECT_EQ(obj(data_of(*patched))["color"], "Red");
    EXPECT_EQ(obj(data_of(*patched))["version"], 3);

    auto stale = c->request(
        "cars", req("patch", {{"pk", id}, {"data", {{"color", "Blue"}, {"version", 1}}}}));
    EXPECT_EQ(status_of(stale), 412);
    EXPECT_TRUE(data_of(*stale).is_null());

    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(status_of(c->request(
                      "cars", req("create", {{"data", {{"brand", "B" + std::to_string(i)}}}}))),
                  201);
    auto listed = c->request("cars", req("list", {{"data",
                                                   {{"filter", {{"brand__startswith", "B"}}},
                                                    {"ordering", "-brand"},
                                                    {"limit", 2},
                                                    {"offset", 1}}}}));
    ASSERT_EQ(status_of(listed), 200) << json::serialize(*listed);
    auto page = obj(data_of(*listed));
    EXPECT_EQ(page["count"], 3);
    EXPECT_EQ(page["limit"], 2);
    EXPECT_EQ(page["offset"], 1);
    ASSERT_EQ(page["results"].get_array().size(), 2u);
    EXPECT_EQ(field(page["results"].get_array()[0], "brand"), "B1");
    EXPECT_EQ(field(page["results"].get_array()[1], "brand"), "B0");
    EXPECT_EQ(page.size(), 4u);  // exactly count, results, limit, offset

    auto deleted = c->request("cars", req("delete", {{"pk", id}}));
    EXPECT_EQ(status_of(deleted), 204);
    EXPECT_TRUE(data_of(*deleted).is_null());
    auto gone = c->request("cars", req("retrieve", {{"pk", id}}));
    EXPECT_EQ(status_of(gone), 404);
    EXPECT_TRUE(data_of(*gone).is_null());
    EXPECT_EQ(payload_of(*gone, "errors"), (json::array{json::value("Not found.")}));

    // REST sees what the socket wrote.
    auto rest = http_client(app_.port()).get("/api/cars?brand__startswith=B");
    EXPECT_EQ(obj(rest.json())["count"], 3);
}

TEST_F(ws_protocol, errors_are_strings_plus_field_errors) {
    auto c = connect();
    auto invalid = c->request("cars", req("create", {{"data", {{"model", 2014}}}}));
    ASSERT_EQ(status_of(invalid), 400);
    EXPECT_TRUE(data_of(*invalid).is_null());
    const auto& errors = payload_of(*invalid, "errors").get_array();
    ASSERT_EQ(errors.size(), 2u) << json::serialize(errors);
    EXPECT_EQ(errors[0], "Invalid input");
    ASSERT_TRUE(errors[1].is_object());
    EXPECT_TRUE(errors[1].get_object().contains("brand"));

    auto bad_filter = c->request("cars", req("list", {{"data", {{"filter", {{"nope", 1}}}}}}));
    ASSERT_EQ(status_of(bad_filter), 400);
    auto text = std::string(payload_of(*bad_filter, "errors").get_array()[0].get_string());
    EXPECT_EQ(text.rfind("filter.nope: ", 0), 0u) << text;

    auto no_pk = c->request("cars", req("retrieve"));
    EXPECT_EQ(status_of(no_pk), 400);
    auto not_object = c->request("cars", req("create", {{"data", json::array{1}}}));
    EXPECT_EQ(status_of(not_object), 400);
}

TEST_F(ws_protocol, custom_actions) {
    auto c = connect();
    auto car = obj(data_of(*c->request("cars", req("create", {{"data", {{"brand", "Ford"}}}}))));
    const auto id = field(car, "id");

    auto count = c->request("cars", req("count", {{"data", {{"x", 1}}}}));
    ASSERT_EQ(status_of(count), 200) << json::serialize(*count);
    EXPECT_EQ(obj(data_of(*count))["count"], 1);
    EXPECT_EQ(obj(data_of(*count))["input"], (json::object{{"x", 1}}));  // POST: data is the body

    auto stats = c->request("cars", req("stats", {{"data", {{"year", 2024}}}}));
    ASSERT_EQ(status_of(stats), 200) << json::serialize(*stats);
    EXPECT_EQ(obj(data_of(*stats))["method"], "GET");  // the action allows only GET
    EXPECT_EQ(obj(data_of(*stats))["args"], (json::object{{"year", "2024"}}));

    auto honk = c->request("cars", req("honk", {{"pk", id}, {"data", {{"loud", true}}}}));
    ASSERT_EQ(status_of(honk), 200) << json::serialize(*honk);
    EXPECT_EQ(obj(data_of(*honk))["honked"], "Ford");
    EXPECT_EQ(obj(data_of(*honk))["input"], (json::object{{"loud", true}}));

    EXPECT_EQ(status_of(c->request("cars", req("honk", {{"data", {{"loud", true}}}}))), 400);
    EXPECT_EQ(status_of(c->request("cars", req("honk", {{"pk", "missing"}}))), 404);
    auto fail = c->request("cars", req("honk", {{"pk", id}, {"data", {{"fail", true}}}}));
    EXPECT_EQ(status_of(fail), 409);
    EXPECT_EQ(payload_of(*fail, "errors"), (json::array{json::value("asked to fail")}));
    EXPECT_EQ(status_of(c->request("cars", req("fly"))), 404);
}

TEST_F(ws_protocol, subscription_and_live_query_rows) {
    auto c = connect();
    auto sub =
        c->request("cars", req("subscribe", {{"data", {{"actions", {"create", "update"}}}}}));
    ASSERT_EQ(status_of(sub), 201) << json::serialize(*sub);
    auto sdata = obj(data_of(*sub));
    EXPECT_FALSE(field(sdata, "subscription").empty());
    EXPECT_TRUE(sdata["seq"].is_int64());
    EXPECT_EQ(sdata.size(), 2u);

    auto un = c->request("cars",
                         req("unsubscribe", {{"data", {{"subscription", sdata["subscription"]}}}}));
    EXPECT_EQ(status_of(un), 204);
    EXPECT_TRUE(data_of(*un).is_null());
    EXPECT_EQ(
        status_of(c->request("cars", req("unsubscribe", {{"data", {{"subscription", "s-404"}}}}))),
        404);
    EXPECT_EQ(status_of(c->request("cars", req("unsubscribe"))), 400);
    EXPECT_EQ(
        status_of(c->request("cars", req("subscribe", {{"data", {{"actions", {"explode"}}}}}))),
        400);
    EXPECT_EQ(status_of(c->request("cars", req("subscribe", {{"pk", "missing"}}))), 404);

    http_client h(app_.port());
    create_car_rest(h, "Ford", 2014);
    auto obs = c->request(
        "cars",
        req("observe",
            {{"data", {{"filter", {{"brand", "Ford"}}}, {"ordering", "model"}, {"limit", 5}}}}));
    ASSERT_EQ(status_of(obs), 201) << json::serialize(*obs);
    auto odata = obj(data_of(*obs));
    EXPECT_FALSE(field(odata, "observer").empty());
    ASSERT_TRUE(odata["items"].is_array());
    EXPECT_EQ(odata["items"].get_array().size(), 1u);
    EXPECT_TRUE(odata["seq"].is_int64());
    EXPECT_EQ(odata["count"], 1);
    auto unobs =
        c->request("cars", req("unobserve", {{"data", {{"observer", odata["observer"]}}}}));
    EXPECT_EQ(status_of(unobs), 204);
    EXPECT_EQ(
        status_of(c->request("cars", req("observe", {{"data", {{"filter", {{"nope", 1}}}}}}))),
        400);
}

TEST_F(ws_protocol, unknown_streams_answer_404) {
    auto c = connect();
    for (const char* s : {"planes", "idempotency_keys", "auth_tokens"}) {
        auto r = c->request(s, req("list"));
        ASSERT_EQ(status_of(r), 404) << s;
        EXPECT_EQ(stream_of(*r), s);
        EXPECT_EQ(payload_of(*r, "errors"),
                  (json::array{json::value("Unknown stream \"" + std::string(s) + "\".")}));
    }
    // The auth stream exists (auth_ws_test.cpp); an action it does not have answers 404.
    auto a = c->request("auth", req("fly"));
    EXPECT_EQ(status_of(a), 404);
    EXPECT_EQ(payload_of(*a, "errors"), (json::array{json::value("Unknown action \"fly\".")}));
    EXPECT_TRUE(c->is_open());
}

class ws_small_messages : public ws_protocol {
protected:
    void SetUp() override { start("\n[realtime]\nmax_message = \"4KiB\"\n"); }
};

TEST_F(ws_small_messages, a_frame_over_max_message_closes_with_1009) {
    auto c = connect();
    auto ok = c->request("cars", req("create", {{"data", {{"brand", std::string(90, 'x')}}}}));
    EXPECT_EQ(status_of(ok), 201);
    json::object big{
        {"stream", "cars"},
        {"payload", req("create", {{"data", {{"brand", "x"}, {"make", std::string(5000, 'm')}}}})}};
    c->send_json(big);
    auto closed = c->wait_closed(k_wait);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 1009);
}

}  // namespace
