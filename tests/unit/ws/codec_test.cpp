// The WebSocket envelope (realtime.md "Envelope"): decoding request frames, encoding replies.
#include "ws/codec.hpp"

#include <gtest/gtest.h>

using namespace livebase;
using namespace livebase::ws_detail;

namespace {

json::object parse_obj(const std::string& s) {
    auto v = parse_json(s);
    EXPECT_TRUE(v && v->is_object()) << s;
    return v && v->is_object() ? v->get_object() : json::object{};
}

const json::object& payload(const json::object& frame) { return frame.at("payload").get_object(); }

TEST(ws_codec, decodes_a_request) {
    auto f = decode_frame(
        R"({"stream":"cars","payload":{"action":"create","pk":null,"data":{"brand":"Ford"},"request_id":"r-17"}})");
    ASSERT_FALSE(f.error) << f.error->detail;
    EXPECT_EQ(f.request.stream, "cars");
    EXPECT_EQ(f.request.action, "create");
    EXPECT_EQ(f.request.request_id, "r-17");
    EXPECT_TRUE(f.request.pk.is_null());
    EXPECT_EQ(f.request.data, (json::object{{"brand", "Ford"}}));
}

TEST(ws_codec, request_id_is_kept_verbatim) {
    for (const char* rid : {R"("abc")", "42", "-1.5", R"({"a":[1,2]})", "[1]", "true", "null"}) {
        auto f = decode_frame(
            std::string(R"({"stream":"cars","payload":{"action":"list","request_id":)") + rid +
            "}}");
        ASSERT_FALSE(f.error) << rid;
        EXPECT_EQ(f.request.request_id, *parse_json(rid)) << rid;
    }
    auto absent = decode_frame(R"({"stream":"cars","payload":{"action":"list"}})");
    ASSERT_FALSE(absent.error);
    EXPECT_TRUE(absent.request.request_id.is_null());
    auto reply = parse_obj(
        encode_reply("cars", json::value("list"), absent.request.request_id, 200, nullptr));
    ASSERT_TRUE(payload(reply).contains("request_id"));
    EXPECT_TRUE(payload(reply).at("request_id").is_null());
}

TEST(ws_codec, bad_frames_get_400_on_the_error_stream) {
    const std::vector<std::string> bad{
        "",
        "not json",
        "{\"stream\":\"cars\"",  // truncated
        "[1,2,3]",               // not an object
        "\"cars\"",
        "42",
        "null",
        R"({"payload":{"action":"list"}})",              // no stream
        R"({"stream":5,"payload":{"action":"list"}})",   // stream not a string
        R"({"stream":"","payload":{"action":"list"}})",  // empty stream
        R"({"stream":"cars"})",                          // no payload
        R"({"stream":"cars","payload":"list"})",         // payload not an object
        R"({"stream":"cars","payload":{}})",             // no action
        R"({"stream":"cars","payload":{"action":7}})",   // action not a string
        R"({"stream":"cars","payload":{"action":""}})",  // empty action
        std::string("{\"stream\":\"c\xff\",\"payload\":{\"action\":\"list\"}}"),  // bad UTF-8
        std::string(200, '[') + std::string(200, ']'),                            // too deep
        R"({"stream":"cars","payload":{"action":"list"}} trailing)",
        R"({"stream":"cars","stream":"tasks","payload":{"action":"list"}})",  // repeated key
        R"({"stream":"cars","payload":{"action":"list","data":{"limit":1,"limit":500}}})",
    };
    for (const auto& text : bad) {
        auto f = decode_frame(text);
        ASSERT_TRUE(f.error) << text;
        EXPECT_EQ(f.error->status, 400) << text;
        auto reply = parse_obj(encode_bad_frame(f));
        EXPECT_EQ(reply.at("stream"), "error") << text;
        const auto& p = payload(reply);
        EXPECT_EQ(p.at("response_status"), 400) << text;
        EXPECT_TRUE(p.at("data").is_null()) << text;
        ASSERT_TRUE(p.at("errors").is_array()) << text;
        ASSERT_EQ(p.at("errors").get_array().size(), 1u) << text;
        EXPECT_TRUE(p.at("errors").get_array()[0].is_string()) << text;
    }
}

TEST(ws_codec, a_bad_frame_reply_echoes_what_could_be_read) {
    auto f = decode_frame(R"({"payload":{"action":"list","request_id":{"n":1}}})");
    ASSERT_TRUE(f.error);
    auto reply = parse_obj(encode_bad_frame(f));
    EXPECT_EQ(reply.at("stream"), "error");
    EXPECT_EQ(payload(reply).at("request_id"), (json::object{{"n", 1}}));
    EXPECT_EQ(payload(reply).at("action"), "list");
    EXPECT_EQ(payload(reply).at("errors").get_array()[0], "The frame has no \"stream\".");

    auto no_action = decode_frame(R"({"stream":"cars","payload":{"request_id":"x"}})");
    ASSERT_TRUE(no_action.error);
    auto r2 = parse_obj(encode_bad_frame(no_action));
    EXPECT_TRUE(payload(r2).at("action").is_null());
    EXPECT_EQ(payload(r2).at("request_id"), "x");
}

TEST(ws_codec, reply_shape) {
    auto r = parse_obj(encode_reply("cars", json::value("create"), json::value("r-17"), 201,
                                    json::object{{"id", "01J"}, {"brand", "Ford"}}));
    EXPECT_EQ(r, parse_obj(R"({"stream":"cars","payload":{"action":"create","request_id":"r-17",
        "response_status":201,"data":{"id":"01J","brand":"Ford"},"errors":[]}})"));
}

TEST(ws_codec, validation_errors_carry_the_field_object) {
    auto p = problem::validation({{"brand", {"This field is required."}}});
    auto r = parse_obj(encode_error("cars", json::value("create"), json::value(1), p));
    const auto& pl = payload(r);
    EXPECT_EQ(pl.at("response_status"), 400);
    EXPECT_TRUE(pl.at("data").is_null());
    EXPECT_EQ(pl.at("errors"),
              (json::array{
                  json::value("Invalid input"),
                  json::object{{"brand", json::array{json::value("This field is required.")}}}}));
}

TEST(ws_codec, problem_errors_are_human_strings) {
    EXPECT_EQ(problem_errors(problem::not_found().to_json()),
              (json::array{json::value("Not found.")}));
    EXPECT_EQ(
        problem_errors(problem::bad_parameter("filter.model", "Must be an integer.").to_json()),
        (json::array{json::value("filter.model: Must be an integer.")}));
    auto titled = problem::make(409, "/problems/x", "Conflict", "");
    EXPECT_EQ(problem_errors(titled.to_json()), (json::array{json::value("Conflict")}));
    EXPECT_EQ(problem_errors(json::object{{"status", 418}}),
              (json::array{json::value("Error 418.")}));
}

TEST(ws_codec, outcomes) {
    auto created = outcome::json_body(201, json::object{{"id", "a"}});
    auto r = parse_obj(encode_outcome("cars", json::value("create"), nullptr, created));
    EXPECT_EQ(payload(r).at("response_status"), 201);
    EXPECT_EQ(payload(r).at("data"), (json::object{{"id", "a"}}));
    EXPECT_EQ(payload(r).at("errors"), json::array{});

    auto deleted = outcome::json_body(204, nullptr);
    auto d = parse_obj(encode_outcome("cars", json::value("delete"), json::value("x"), deleted));
    EXPECT_EQ(payload(d).at("response_status"), 204);
    EXPECT_TRUE(payload(d).at("data").is_null());

    auto missing = outcome::from_problem(problem::not_found());
    auto m = parse_obj(encode_outcome("cars", json::value("retrieve"), json::value("x"), missing));
    EXPECT_EQ(payload(m).at("response_status"), 404);
    EXPECT_TRUE(payload(m).at("data").is_null());
    EXPECT_EQ(payload(m).at("errors"), (json::array{json::value("Not found.")}));
}

TEST(ws_codec, hello) {
    auto h = parse_obj(encode_hello("sub-1", nullptr));
    EXPECT_EQ(h, parse_obj(R"({"stream":"session","payload":{"action":"hello",
        "data":{"subscriber":"sub-1","user":null}}})"));
}

}  // namespace

TEST(ws_codec, close_codes_a_peer_may_send) {
    for (std::uint16_t ok : {0, 1000, 1001, 1002, 1003, 1007, 1008, 1009, 1010, 1011, 1012, 1013,
                             3000, 4000, 4999})
        EXPECT_TRUE(valid_close_code(ok)) << ok;
    for (std::uint16_t bad : {1, 999, 1004, 1005, 1006, 1014, 1015, 1016, 2999, 5000, 65535})
        EXPECT_FALSE(valid_close_code(bad)) << bad;
}
