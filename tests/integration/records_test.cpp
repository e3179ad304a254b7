// Records over REST, end to end against the real server (http.md sections 1 and 2).
#include "support/test_app.hpp"

#include <set>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {
}  // namespace

using records = server_test;

TEST_F(records, create_returns_201_location_etag_and_managed_fields) {
    auto c = client();
    auto r = c.post("/api/cars", json::object{{"brand", "Ford"}, {"model", 2014}, {"color", "Blue"}});
    ASSERT_EQ(r.status, 201) << r.body;
    auto car = obj(r.json());
    auto id = str(car["id"]);
    EXPECT_TRUE(is_ulid(id));
    EXPECT_EQ(r.header("Location"), "/api/cars/" + id);
    EXPECT_EQ(r.header("ETag"), "\"v1\"");
    EXPECT_EQ(r.header("Content-Type").rfind("application/json", 0), 0u);
    EXPECT_FALSE(r.header("X-Request-Id").empty());
    EXPECT_EQ(car["brand"], "Ford");
    EXPECT_EQ(car["make"], "");  // default
    EXPECT_EQ(car["model"], 2014);
    EXPECT_TRUE(car["vin"].is_null());
    EXPECT_EQ(car["version"], 1);
    EXPECT_TRUE(car.contains("owner"));  // owned collection; anonymous creator -> null
    EXPECT_TRUE(parse_timestamp(str(car["created"])));
    EXPECT_EQ(car["created"], car["updated"]);
}

TEST_F(records, retrieve_with_etag_and_if_none_match) {
    auto c = client();
    auto car = create_car(c, {{"brand", "Fiat"}});
    auto path = "/api/cars/" + str(car["id"]);
    auto r = c.get(path);
    EXPECT_EQ(r.status, 200);
    EXPECT_EQ(r.header("ETag"), "\"v1\"");
    EXPECT_EQ(obj(r.json())["brand"], "Fiat");
    auto nm = c.get(path, {{"If-None-Match", "\"v1\""}});
    EXPECT_EQ(nm.status, 304);
    EXPECT_TRUE(nm.body.empty());
    EXPECT_EQ(c.get(path, {{"If-None-Match", "\"v2\""}}).status, 200);
    EXPECT_EQ(c.get(path + "/").status, 200);  // trailing slash means the same
    EXPECT_EQ(c.get("/api/cars/01ARZ3NDEKTSV4RRFFQ69G5FAV").status, 404);
}

TEST_F(records, put_replaces_declared_fields_and_patch_merges) {
    auto c = client();
    auto car = create_car(c, {{"brand", "Ford"}, {"model", 2014}, {"color", "Blue"}, {"make", "Focus"}});
    auto path = "/api/cars/" + str(car["id"]);

    auto p = c.request("PATCH", path, R"({"color": "Red"})");
    ASSERT_EQ(p.status, 200) << p.body;
    auto patched = obj(p.json());
    EXPECT_EQ(patched["color"], "Red");
    EXPECT_EQ(patched["model"], 2014);
    EXPECT_EQ(patched["version"], 2);
    EXPECT_EQ(p.header("ETag"), "\"v2\"");

    auto put = c.request("PUT", path, R"({"brand": "Ford"})");
    ASSERT_EQ(put.status, 200) << put.body;
    auto replaced = obj(put.json());
    EXPECT_TRUE(replaced["model"].is_null());  // full replace: absent = null / default
    EXPECT_EQ(replaced["make"], "");
    EXPECT_EQ(replaced["version"], 3);
    EXPECT_EQ(replaced["created"], car["created"]);

    auto bad_put = c.request("PUT", path, R"({"model": 2000})");
    EXPECT_EQ(bad_put.status, 400);
    EXPECT_EQ(obj(bad_put.json())["errors"].at("brand").at(0), "This field is required.");

    auto merge = c.request("PATCH", path, R"({"make": null})",
                           {{"Content-Type", "application/merge-patch+json"}});
    EXPECT_EQ(merge.status, 200) << merge.body;
    EXPECT_TRUE(obj(merge.json())["make"].is_null());
}

TEST_F(records, if_match_and_body_version_guard_writes) {
    auto c = client();
    auto car = create_car(c, {{"brand", "Ford"}});
    auto path = "/api/cars/" + str(car["id"]);
    EXPECT_EQ(c.request("PATCH", path, R"({"color": "Red"})", {{"If-Match", "\"v7\""}}).status, 412);
    EXPECT_EQ(c.request("PATCH", path, R"({"color": "Red", "version": 9})").status, 412);
    EXPECT_EQ(c.request("PATCH", path, R"({"color": "Red", "version": 1})").status, 200);
    EXPECT_EQ(c.request("PUT", path, R"({"brand": "Ford"})", {{"If-Match", "\"v2\""}}).status, 200);
    EXPECT_EQ(c.request("DELETE", path, {}, {{"If-Match", "\"v1\""}}).status, 412);
    EXPECT_EQ(c.request("PATCH", path, R"({"color": "Red"})", {{"If-Match", "v3"}}).status, 400);
    auto d = c.request("DELETE", path, {}, {{"If-Match", "\"v3\""}});
    EXPECT_EQ(d.status, 204);
    EXPECT_TRUE(d.body.empty());
    EXPECT_EQ(c.get(path).status, 404);
    EXPECT_EQ(c.request("DELETE", path).status, 404);
    EXPECT_EQ(c.request("PATCH", path, R"({"color": "Red"})").status, 404);
}

TEST_F(records, server_managed_fields_in_body_are_ignored) {
    auto c = client();
    auto r = c.post("/api/cars", json::object{{"brand", "Ford"}, {"id", "mine"}, {"created", "x"},
                                              {"owner", "someone"}, {"updated", 5}});
    ASSERT_EQ(r.status, 201) << r.body;
    auto car = obj(r.json());
    EXPECT_NE(car["id"], "mine");
    EXPECT_TRUE(car["owner"].is_null());
}

TEST_F(records, validation_errors_name_every_field) {
    auto c = client();
    auto r = c.post("/api/cars", json::object{{"model", "old"}, {"colour", "Red"}, {"color", "Pink"}});
    ASSERT_EQ(r.status, 400);
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    auto p = obj(r.json());
    EXPECT_EQ(p["type"], "/problems/validation");
    EXPECT_EQ(p["status"], 400);
    auto errors = obj(p["errors"]);
    EXPECT_EQ(errors["brand"].at(0), "This field is required.");
    EXPECT_EQ(errors["model"].at(0), "Must be an integer.");
    EXPECT_EQ(errors["colour"].at(0), "Unknown field.");
    EXPECT_TRUE(errors.contains("color"));
    EXPECT_EQ(c.post("/api/cars", json::object{{"brand", std::string(101, 'x')}}).status, 400);
    EXPECT_EQ(c.post("/api/cars", json::object{{"brand", "F"}, {"model", 1800}}).status, 400);
    EXPECT_EQ(c.post("/api/cars", json::object{{"brand", nullptr}}).status, 400);
}

TEST_F(records, malformed_bodies_fail_with_clear_problems) {
    auto c = client();
    EXPECT_EQ(c.request("POST", "/api/cars", "{\"brand\": ").status, 400);
    EXPECT_EQ(c.request("POST", "/api/cars", "[1, 2]").status, 400);
    EXPECT_EQ(c.request("POST", "/api/cars", "").status, 400);
    EXPECT_EQ(c.request("POST", "/api/cars", "{\"brand\": \"\xff\"}").status, 400);
    EXPECT_EQ(c.request("POST", "/api/cars", "brand=Ford", {{"Content-Type", "text/plain"}}).status, 415);
    auto r = c.request("POST", "/api/cars", "{\"brand\": 1,}");
    EXPECT_EQ(r.status, 400);
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    // the connection is still usable after every error
    EXPECT_EQ(c.get("/api/cars").status, 200);
}

TEST_F(records, unique_fields_conflict_with_409) {
    auto c = client();
    create_car(c, {{"brand", "Ford"}, {"vin", "V1"}});
    auto r = c.post("/api/cars", json::object{{"brand", "Opel"}, {"vin", "V1"}});
    EXPECT_EQ(r.status, 409);
    EXPECT_TRUE(obj(obj(r.json())["errors"]).contains("vin")) << r.body;
    auto other = create_car(c, {{"brand", "Opel"}, {"vin", "V2"}});
    auto p = c.request("PATCH", "/api/cars/" + str(other["id"]), R"({"vin": "V1"})");
    EXPECT_EQ(p.status, 409);
    EXPECT_EQ(obj(c.get("/api/cars").json())["count"], 2);
}

TEST_F(records, unknown_collection_and_paths_are_404_problems) {
    auto c = client();
    auto r = c.get("/api/nope");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    EXPECT_EQ(c.get("/api/cars/x/y").status, 404);
    EXPECT_EQ(c.get("/elsewhere").status, 404);
    EXPECT_EQ(c.post("/api/nope", json::object{{"a", 1}}).status, 404);
}

TEST_F(records, method_not_allowed_carries_allow) {
    auto c = client();
    auto r = c.request("DELETE", "/api/cars");
    EXPECT_EQ(r.status, 405);
    EXPECT_NE(r.header("Allow").find("GET"), std::string::npos);
    EXPECT_NE(r.header("Allow").find("POST"), std::string::npos);
}

class listing : public server_test {
protected:
    void SetUp() override {
        server_test::SetUp();
        auto c = client();
        const char* brands[] = {"Ford", "Opel", "ford", "Fiat", "Tesla"};
        for (int i = 0; i < 30; ++i) {
            json::object car{{"brand", brands[i % 5]}, {"model", 2000 + i % 10}};
            if (i % 3 == 0) car["color"] = "Red";
            if (i % 3 == 1) car["color"] = "Blue";
            car["make"] = "m" + std::to_string(i);
            ids_.push_back(str(create_car(c, car)["id"]));
        }
    }
    json::object list(const std::string& q) {
        auto c = client();
        auto r = c.get("/api/cars" + q);
        EXPECT_EQ(r.status, 200) << q << " " << r.body;
        return obj(r.json());
    }
    std::int64_t count(const std::string& q) { return list(q)["count"].as_int64(); }
    std::vector<std::string> ids_;
};

TEST_F(listing, every_lookup_filters) {
    EXPECT_EQ(count(""), 30);
    EXPECT_EQ(count("?brand=Ford"), 6);
    EXPECT_EQ(count("?brand__exact=Ford"), 6);
    EXPECT_EQ(count("?brand__iexact=FORD"), 12);
    EXPECT_EQ(count("?brand__contains=or"), 12);
    EXPECT_EQ(count("?brand__icontains=OR"), 12);
    EXPECT_EQ(count("?brand__startswith=F"), 12);
    EXPECT_EQ(count("?brand__istartswith=f"), 18);
    EXPECT_EQ(count("?brand__endswith=la"), 6);
    EXPECT_EQ(count("?model__gt=2007"), 6);
    EXPECT_EQ(count("?model__gte=2007"), 9);
    EXPECT_EQ(count("?model__lt=2002"), 6);
    EXPECT_EQ(count("?model__lte=2002"), 9);
    EXPECT_EQ(count("?brand__in=Ford,Opel"), 12);
    EXPECT_EQ(count("?color__isnull=true"), 10);
    EXPECT_EQ(count("?color__isnull=false"), 20);
    EXPECT_EQ(count("?color__ne=Red"), 20);  // IS NOT: nulls included
    EXPECT_EQ(count("?brand=Ford&model__gte=2005"), 3);
    EXPECT_EQ(count("?id=" + ids_[3]), 1);
    EXPECT_EQ(count("?brand=F%6Frd"), 6);   // percent-decoded
    EXPECT_EQ(count("?make=m1+"), 0);       // '+' is a space
}

TEST_F(listing, ordering_with_id_tie_break_and_stable_pages) {
    auto page1 = list("?ordering=-model,brand&limit=10");
    auto page2 = list("?ordering=-model,brand&limit=10&offset=10");
    auto page3 = list("?ordering=-model,brand&limit=10&offset=20");
    std::vector<json::object> all;
    for (auto* p : {&page1, &page2, &page3})
        for (auto& r : (*p)["results"].as_array()) all.push_back(r.as_object());
    ASSERT_EQ(all.size(), 30u);
    std::set<std::string> seen;
    for (std::size_t i = 0; i < all.size(); ++i) {
        seen.insert(str(all[i]["id"]));
        if (i == 0) continue;
        auto& a = all[i - 1];
        auto& b = all[i];
        auto ma = a["model"].as_int64(), mb = b["model"].as_int64();
        EXPECT_GE(ma, mb);
        if (ma == mb) {
            EXPECT_LE(str(a["brand"]), str(b["brand"]));
            if (a["brand"] == b["brand"]) {
                EXPECT_LT(str(a["id"]), str(b["id"]));
            }
        }
    }
    EXPECT_EQ(seen.size(), 30u);
}

TEST_F(listing, page_shape_and_links) {
    auto p = list("?brand=Ford&limit=2&offset=2");
    EXPECT_EQ(p["count"], 6);
    EXPECT_EQ(p["results"].as_array().size(), 2u);
    EXPECT_EQ(p["next"], "/api/cars?brand=Ford&limit=2&offset=4");
    EXPECT_EQ(p["previous"], "/api/cars?brand=Ford&limit=2");
    auto first = list("?limit=25");
    EXPECT_TRUE(first["previous"].is_null());
    EXPECT_EQ(first["next"], "/api/cars?limit=25&offset=25");
    auto last = list("?limit=25&offset=25");
    EXPECT_TRUE(last["next"].is_null());
    EXPECT_EQ(last["results"].as_array().size(), 5u);
    EXPECT_EQ(list("")["results"].as_array().size(), 25u);             // page_size
    EXPECT_EQ(list("?limit=1000")["results"].as_array().size(), 30u);  // capped at max (100)
}

TEST_F(listing, fields_projection_keeps_id) {
    auto p = list("?fields=brand&limit=1");
    auto row = p["results"].as_array().at(0).as_object();
    EXPECT_EQ(row.size(), 2u);
    EXPECT_TRUE(row.contains("id"));
    EXPECT_TRUE(row.contains("brand"));
    auto c = client();
    auto one = c.get("/api/cars/" + ids_[0] + "?fields=model");
    EXPECT_EQ(obj(one.json()).size(), 2u);
}

TEST_F(listing, bad_parameters_name_the_parameter) {
    auto c = client();
    auto expect_bad = [&](const std::string& q, const std::string& param) {
        auto r = c.get("/api/cars" + q);
        EXPECT_EQ(r.status, 400) << q;
        EXPECT_EQ(str(obj(r.json())["parameter"]), param) << q << " " << r.body;
    };
    expect_bad("?colour=Red", "colour");
    expect_bad("?brand__like=F", "brand__like");
    expect_bad("?model=abc", "model");
    expect_bad("?model__gte=12.5", "model__gte");
    expect_bad("?color__isnull=maybe", "color__isnull");
    expect_bad("?ordering=speed", "ordering");
    expect_bad("?limit=-1", "limit");
    expect_bad("?limit=x", "limit");
    expect_bad("?offset=-5", "offset");
    expect_bad("?fields=nope", "fields");
}

TEST_F(records, write_only_and_read_only_fields) {
    auto c = client();
    auto r = c.post("/api/things", json::object{{"title", "Alpha"}, {"secret", "s3cret"}, {"stamp", "x"},
                                                {"when", "2026-01-02T03:04:05+01:00"},
                                                {"meta", json::object{{"a", json::array{1, 2}}}},
                                                {"price", 2.5}, {"count", 3}});
    ASSERT_EQ(r.status, 201) << r.body;
    auto t = obj(r.json());
    EXPECT_FALSE(t.contains("secret"));
    EXPECT_TRUE(t["stamp"].is_null());
    EXPECT_EQ(t["active"], true);
    EXPECT_EQ(t["when"], "2026-01-02T02:04:05.000Z");
    EXPECT_EQ(t["meta"].at("a").at(1), 2);
    EXPECT_EQ(c.get("/api/things?secret=s3cret").status, 400);  // not filterable
    EXPECT_EQ(c.post("/api/things", json::object{{"title", "lower"}}).status, 400);  // pattern
    EXPECT_EQ(obj(c.get("/api/things?when__gte=2026-01-02T02:00:00Z").json())["count"], 1);
    EXPECT_EQ(obj(c.get("/api/things?active=true&price__lt=3").json())["count"], 1);
    auto p = c.request("PATCH", "/api/things/" + str(t["id"]),
                       R"({"meta": {"a": null, "b": true}})");
    ASSERT_EQ(p.status, 200) << p.body;
    EXPECT_EQ(json::serialize(obj(p.json())["meta"]), R"({"b":true})");
}

TEST_F(records, references_restrict_cascade_and_nullify) {
    auto c = client();
    auto owner = obj(c.post("/api/owners", json::object{{"name", "Ann"}}).json());
    auto vet = obj(c.post("/api/vets", json::object{{"name", "Dr V"}}).json());
    auto bad = c.post("/api/pets", json::object{{"name", "Rex"}, {"owner_ref", "missing"}});
    EXPECT_EQ(bad.status, 400);
    auto pet = c.post("/api/pets", json::object{{"name", "Rex"}, {"owner_ref", owner["id"]}, {"vet", vet["id"]}});
    ASSERT_EQ(pet.status, 201) << pet.body;
    auto pet_id = str(obj(pet.json())["id"]);
    auto visit = c.post("/api/visits", json::object{{"pet", pet_id}});
    ASSERT_EQ(visit.status, 201);

    // vet deletion nulls the pet's vet field
    EXPECT_EQ(c.request("DELETE", "/api/vets/" + str(vet["id"])).status, 204);
    EXPECT_TRUE(obj(c.get("/api/pets/" + pet_id).json())["vet"].is_null());
    // owner deletion cascades to pets, but a visit refers to the pet (restrict): refused whole
    EXPECT_EQ(c.request("DELETE", "/api/owners/" + str(owner["id"])).status, 409);
    EXPECT_EQ(c.get("/api/pets/" + pet_id).status, 200);
    EXPECT_EQ(c.request("DELETE", "/api/visits/" + str(obj(visit.json())["id"])).status, 204);
    EXPECT_EQ(c.request("DELETE", "/api/owners/" + str(owner["id"])).status, 204);
    EXPECT_EQ(c.get("/api/pets/" + pet_id).status, 404);
}

TEST_F(records, custom_actions_route_to_cpp_handlers) {
    auto c = client();
    auto car = create_car(c, {{"brand", "Ford"}});
    auto id = str(car["id"]);
    auto count = c.get("/api/cars:count");
    EXPECT_EQ(count.status, 200) << count.body;
    EXPECT_EQ(obj(count.json())["count"], 1);
    EXPECT_EQ(c.post("/api/cars:count", json::object{}).status, 200);
    auto honk = c.post("/api/cars/" + id + ":honk", json::object{{"loud", true}});
    EXPECT_EQ(honk.status, 200) << honk.body;
    EXPECT_EQ(obj(honk.json())["honked"], "Ford");
    auto wrong = c.get("/api/cars/" + id + ":honk");
    EXPECT_EQ(wrong.status, 405);
    EXPECT_EQ(wrong.header("Allow"), "POST");
    EXPECT_EQ(c.post("/api/cars/01ARZ3NDEKTSV4RRFFQ69G5FAV:honk", json::object{}).status, 404);
    EXPECT_EQ(c.post("/api/cars:nope", json::object{}).status, 404);
    EXPECT_EQ(c.post("/api/cars:honk", json::object{}).status, 404);  // detail action on the list
    EXPECT_EQ(c.post("/api/cars/" + id + ":honk", json::object{{"fail", 1}}).status, 409);
    auto boom = c.post("/api/cars/" + id + ":honk", json::object{{"throw", 1}});
    EXPECT_EQ(boom.status, 500);
    EXPECT_EQ(boom.body.find("exploded"), std::string::npos);  // no internals in the body
}

TEST_F(records, request_id_is_echoed_or_generated) {
    auto c = client();
    EXPECT_EQ(c.get("/api/cars", {{"X-Request-Id", "abc-123"}}).header("X-Request-Id"), "abc-123");
    auto a = c.get("/api/cars").header("X-Request-Id");
    auto b = c.get("/api/cars").header("X-Request-Id");
    EXPECT_FALSE(a.empty());
    EXPECT_NE(a, b);
}
