#include "http/rest_door.hpp"

#include <gtest/gtest.h>

#include <livebase/core/ulid.hpp>

#include "http/request_id.hpp"
#include "http/response_queue.hpp"

using namespace livebase;
using namespace livebase::http_detail;

TEST(rest_door, split_target) {
    auto t = split_target("/api/cars/a%20b?brand=Ford&x");
    ASSERT_TRUE(t);
    EXPECT_EQ(t->path, "/api/cars/a%20b");
    EXPECT_EQ(t->query, "brand=Ford&x");

    auto abs = split_target("http://example.com:8080/api/cars?limit=1");
    ASSERT_TRUE(abs);
    EXPECT_EQ(abs->path, "/api/cars");
    EXPECT_EQ(abs->query, "limit=1");

    auto slashes = split_target("//api/cars");  // origin-form, not a network-path reference
    ASSERT_TRUE(slashes);
    EXPECT_EQ(slashes->path, "//api/cars");

    EXPECT_FALSE(split_target("*"));
    EXPECT_FALSE(split_target("/a b"));
    EXPECT_EQ(split_target("/a%zz").error().status, 400);
    // Segments that are not UTF-8 once decoded never reach a name, an id or a stored echo.
    for (const char* t : {"/api/cars/%FF", "/api/%C3%28/x", "/api/cars/a%ED%A0%80", "/%C0%AF"}) {
        auto r = split_target(t);
        ASSERT_FALSE(r) << t;
        EXPECT_EQ(r.error().status, 400) << t;
        EXPECT_TRUE(valid_utf8(to_json_text(r.error().to_json()))) << t;
    }
    EXPECT_TRUE(split_target("/api/cars/%C3%A9t%C3%A9"));
}

TEST(rest_door, decode_query) {
    auto q = decode_query(
        "brand=Ford+Focus&model__gte=2014&name=%C3%A9t%C3%A9&flag&&empty=&a%2Bb=c%26d");
    ASSERT_TRUE(q);
    query_params expected{{"brand", "Ford Focus"},
                          {"model__gte", "2014"},
                          {"name", "\xC3\xA9t\xC3\xA9"},
                          {"flag", ""},
                          {"empty", ""},
                          {"a+b", "c&d"}};
    EXPECT_EQ(*q, expected);
    EXPECT_TRUE(decode_query("")->empty());
    auto bad = decode_query("a=%G1");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().status, 400);

    auto bad_name = decode_query("ok=1&%FF%FE=1");
    ASSERT_FALSE(bad_name);
    EXPECT_EQ(bad_name.error().status, 400);
    EXPECT_TRUE(valid_utf8(to_json_text(bad_name.error().to_json())));
    auto bad_value = decode_query("brand=%C3%28");
    ASSERT_FALSE(bad_value);
    EXPECT_EQ(bad_value.error().status, 400);
    EXPECT_EQ(get_string(bad_value.error().extra, "parameter"), "brand");
}

TEST(rest_door, if_match) {
    auto v = parse_if_match("\"v3\"");
    ASSERT_TRUE(v);
    EXPECT_EQ(*v, std::optional<std::int64_t>(3));
    auto any = parse_if_match(" * ");
    ASSERT_TRUE(any);
    EXPECT_FALSE(any->has_value());
    for (const char* bad :
         {"v3", "\"3\"", "W/\"v3\"", "\"v-1\"", "\"v\"", "\"v1\", \"v2\"", "\"v1x\"", ""}) {
        auto r = parse_if_match(bad);
        ASSERT_FALSE(r) << bad;
        EXPECT_EQ(r.error().status, 400) << bad;
    }
    EXPECT_EQ(make_etag(12), "\"v12\"");
}

TEST(rest_door, if_none_match) {
    EXPECT_TRUE(if_none_match_hits("\"v3\"", 3));
    EXPECT_TRUE(if_none_match_hits("W/\"v3\"", 3));
    EXPECT_TRUE(if_none_match_hits("\"v1\", \"v3\"", 3));
    EXPECT_TRUE(if_none_match_hits("*", 9));
    EXPECT_FALSE(if_none_match_hits("\"v4\"", 3));
    EXPECT_FALSE(if_none_match_hits("", 3));
    EXPECT_FALSE(if_none_match_hits("v3", 3));
}

namespace {

operation op_of(op_kind k, std::string method) {
    operation op;
    op.kind = k;
    op.collection = "cars";
    op.method = std::move(method);
    return op;
}

request_view view(std::string_view method, std::string_view content_type, std::string_view body) {
    request_view v;
    v.method = method;
    v.content_type = content_type;
    v.body = body;
    return v;
}

}  // namespace

TEST(rest_door, decode_json_bodies) {
    auto op = op_of(op_kind::create, "POST");
    ASSERT_TRUE(decode_request(op, view("POST", "application/json", R"({"brand":"Ford"})"), "a=1"));
    EXPECT_EQ(json::serialize(op.input), R"({"brand":"Ford"})");
    EXPECT_EQ(op.params, (query_params{{"a", "1"}}));

    for (const char* ct : {"application/json; charset=utf-8", "Application/JSON;charset=\"UTF-8\"",
                           "application/json ; foo=bar"}) {
        auto o = op_of(op_kind::replace, "PUT");
        EXPECT_TRUE(decode_request(o, view("PUT", ct, "{}"), "")) << ct;
    }
    auto patch = op_of(op_kind::patch, "PATCH");
    EXPECT_TRUE(
        decode_request(patch, view("PATCH", "application/merge-patch+json", "{\"a\":null}"), ""));
}

TEST(rest_door, unsupported_media_types) {
    for (auto [method, ct] : {std::pair{"POST", ""}, std::pair{"POST", "text/plain"},
                              std::pair{"POST", "application/merge-patch+json"},
                              std::pair{"PUT", "application/json; charset=latin1"},
                              std::pair{"PATCH", "application/xml"}}) {
        auto op = op_of(op_kind::create, method);
        auto r = decode_request(op, view(method, ct, "{}"), "");
        ASSERT_FALSE(r) << method << " " << ct;
        EXPECT_EQ(r.error().status, 415) << method << " " << ct;
    }
}

TEST(rest_door, malformed_bodies) {
    auto op = op_of(op_kind::create, "POST");
    auto bad_json = decode_request(op, view("POST", "application/json", "{\"a\":"), "");
    ASSERT_FALSE(bad_json);
    EXPECT_EQ(bad_json.error().status, 400);
    EXPECT_EQ(bad_json.error().type, "/problems/malformed-json");

    auto bad_utf8 =
        decode_request(op, view("POST", "application/json", "{\"a\":\"\xC3\x28\"}"), "");
    ASSERT_FALSE(bad_utf8);
    EXPECT_EQ(bad_utf8.error().type, "/problems/malformed-json");

    for (const char* body : {"[1,2]", "\"x\"", "3", "null"}) {
        auto o = op_of(op_kind::patch, "PATCH");
        auto r = decode_request(o, view("PATCH", "application/json", body), "");
        ASSERT_FALSE(r) << body;
        EXPECT_EQ(r.error().status, 400) << body;
    }
    auto empty = op_of(op_kind::create, "POST");
    EXPECT_FALSE(decode_request(empty, view("POST", "", ""), ""));

    // A repeated key: which value would win is up to the parser, so neither does.
    for (const char* body : {R"({"brand":"a","brand":"b"})", R"({"x":{"k":1,"k":2}})",
                             R"([{"a":1},{"a":1,"b":2,"\u0061":3}])"}) {
        auto o = op_of(op_kind::create, "POST");
        auto r = decode_request(o, view("POST", "application/json", body), "");
        ASSERT_FALSE(r) << body;
        EXPECT_EQ(r.error().type, "/problems/malformed-json") << body;
    }
    auto distinct = op_of(op_kind::create, "POST");
    EXPECT_TRUE(decode_request(distinct,
                               view("POST", "application/json", R"({"a":{"a":1},"b":[{"a":2},{"a":3}]})"),
                               ""));
}

TEST(rest_door, idempotency_keys_are_printable_ascii) {
    for (std::string key : {std::string(""), std::string(256, 'k'), std::string("k\xff"),
                            std::string("a\x01b")}) {
        auto op = op_of(op_kind::create, "POST");
        auto v = view("POST", "application/json", "{}");
        v.idempotency_key = key;
        EXPECT_FALSE(decode_request(op, v, "")) << key;
    }
    auto op = op_of(op_kind::create, "POST");
    auto v = view("POST", "application/json", "{}");
    v.idempotency_key = "order 42-a";
    ASSERT_TRUE(decode_request(op, v, ""));
    EXPECT_EQ(op.idempotency_key, "order 42-a");
}

TEST(rest_door, bodies_that_are_not_read) {
    auto get = op_of(op_kind::list, "GET");
    ASSERT_TRUE(decode_request(get, view("GET", "text/plain", "not json"), "limit=2"));
    EXPECT_TRUE(get.input.is_null());

    auto del = op_of(op_kind::remove, "DELETE");
    EXPECT_TRUE(decode_request(del, view("DELETE", "", "junk"), ""));

    auto action = op_of(op_kind::action, "POST");
    ASSERT_TRUE(decode_request(action, view("POST", "", ""), ""));  // no body: fine for actions
    EXPECT_TRUE(action.input.is_null());
    auto action_array = op_of(op_kind::action, "POST");
    ASSERT_TRUE(decode_request(action_array, view("POST", "application/json", "[1]"), ""));
    EXPECT_TRUE(action_array.input.is_array());
}

TEST(rest_door, if_match_reaches_the_operation) {
    auto op = op_of(op_kind::remove, "DELETE");
    auto v = view("DELETE", "", "");
    v.if_match = "\"v7\"";
    ASSERT_TRUE(decode_request(op, v, ""));
    EXPECT_EQ(op.if_match, std::optional<std::int64_t>(7));
    auto bad = op_of(op_kind::remove, "DELETE");
    v.if_match = "garbage";
    EXPECT_EQ(decode_request(bad, v, "").error().status, 400);
}

TEST(rest_door, render_outcomes) {
    outcome created;
    created.status = 201;
    created.body = json::object{{"id", "1"}};
    created.location = "/api/cars/1";
    created.version = 1;
    auto r = render_outcome(created);
    EXPECT_EQ(r.status, 201);
    EXPECT_EQ(r.content_type, "application/json");
    EXPECT_EQ(r.body, R"({"id":"1"})");
    EXPECT_EQ(r.headers, (std::vector<std::pair<std::string, std::string>>{
                             {"Location", "/api/cars/1"}, {"ETag", "\"v1\""}}));

    outcome deleted;
    deleted.status = 204;
    deleted.body = json::object{{"ignored", true}};
    auto d = render_outcome(deleted);
    EXPECT_TRUE(d.body.empty());
    EXPECT_TRUE(d.content_type.empty());

    outcome unauthorized;
    unauthorized.status = 401;
    unauthorized.is_problem = true;
    unauthorized.body = problem::unauthorized().to_json();
    auto u = render_outcome(unauthorized);
    EXPECT_EQ(u.content_type, "application/problem+json");
    EXPECT_EQ(u.headers,
              (std::vector<std::pair<std::string, std::string>>{{"WWW-Authenticate", "Bearer"}}));

    outcome with_allow;
    with_allow.status = 405;
    with_allow.headers.emplace_back("Allow", "POST");
    EXPECT_EQ(render_outcome(with_allow).headers.size(), 1u);
}

TEST(rest_door, not_modified) {
    outcome rec;
    rec.status = 200;
    rec.body = json::object{{"id", "1"}};
    rec.version = 4;
    auto hit = render_outcome(rec, std::string_view("\"v4\""));
    EXPECT_EQ(hit.status, 304);
    EXPECT_TRUE(hit.body.empty());
    EXPECT_EQ(hit.headers, (std::vector<std::pair<std::string, std::string>>{{"ETag", "\"v4\""}}));
    auto miss = render_outcome(rec, std::string_view("\"v3\""));
    EXPECT_EQ(miss.status, 200);
    EXPECT_FALSE(miss.body.empty());
}

TEST(rest_door, render_problem) {
    auto r = render_problem(problem::not_found());
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.content_type, "application/problem+json");
    auto v = parse_json(r.body);
    ASSERT_TRUE(v);
    EXPECT_EQ(v->at("status").as_int64(), 404);
    EXPECT_EQ(render_problem(uri_too_long()).status, 414);
    EXPECT_EQ(render_problem(header_fields_too_large()).status, 431);
}

TEST(request_id, accepts_or_generates) {
    EXPECT_EQ(accept_request_id("abc-DEF_1.2"), "abc-DEF_1.2");
    EXPECT_EQ(accept_request_id(std::string(200, 'a')), std::string(200, 'a'));
    for (std::string bad : {std::string(), std::string(201, 'a'), std::string("a b"),
                            std::string("x\r\ny"), std::string("é")}) {
        auto id = accept_request_id(bad);
        EXPECT_NE(id, bad);
        EXPECT_TRUE(is_ulid(id)) << id;
    }
}

TEST(response_queue, ordered_and_bounded) {
    response_queue<std::string> q(3);
    EXPECT_TRUE(q.empty());
    auto a = q.push("a");
    auto b = q.push("b");
    auto c = q.push("c");
    EXPECT_TRUE(q.full());
    EXPECT_EQ(q.ready_front(), nullptr);
    EXPECT_TRUE(q.set_ready(c));  // completes out of order
    EXPECT_TRUE(q.set_ready(b));
    EXPECT_EQ(q.ready_front(), nullptr);  // 'a' still pending holds the line
    EXPECT_TRUE(q.set_ready(a));
    std::string order;
    while (auto* s = q.ready_front()) {
        order += *s;
        q.pop();
    }
    EXPECT_EQ(order, "abc");
    EXPECT_TRUE(q.empty());
    EXPECT_FALSE(q.set_ready(a));  // popped slots are gone; ids are not reused
    EXPECT_EQ(q.find(b), nullptr);
    auto d = q.push("d");
    EXPECT_GT(d, c);
    ASSERT_NE(q.find(d), nullptr);
    EXPECT_EQ(*q.find(d), "d");
}

TEST(response_queue, zero_limit_means_one) {
    response_queue<int> q(0);
    EXPECT_EQ(q.limit(), 1u);
    q.push(1);
    EXPECT_TRUE(q.full());
}
