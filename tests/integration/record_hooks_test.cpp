// Record hooks attached through a collection handle: before-hooks change or refuse a write
// inside its transaction (and what they write commits with it, or not at all), after-hooks see
// committed writes, and a hook's bug is a logged 500 that writes nothing.
#include "support/test_app.hpp"

#include <algorithm>
#include <mutex>
#include <stdexcept>
#include <vector>

using namespace livebase;
using namespace livebase::test;

namespace {

// A log of the cars' events, written by the hooks in the write's own transaction.
const std::string k_events = std::string(R"(
[collections.car_events]
)") + k_public_rules + R"(
fields.car  = { type = "string", required = true }
fields.what = { type = "string", required = true }
)";

class hooked_cars : public app_test {
protected:
    void SetUp() override {
        LIVEBASE_REQUIRE_BACKEND();
        configure(k_events);
        auto log = [](record_write& w, std::string what) -> result<void> {
            const auto& rec = w.record ? *w.record : *w.stored;
            auto e = w.create("car_events", json::object{{"car", get_string(rec, "id")}, {"what", std::move(what)}});
            if (!e) return std::move(e).error();
            return {};
        };
        app_.collection("cars")
            .before_create([](record_write& w) -> result<void> {
                // A computed field: make defaults to the brand's maker.
                if (get_string(*w.record, "make").empty())
                    (*w.record)["make"] = std::string(get_string(*w.record, "brand")) + " Motor Co.";
                return {};
            })
            .before_create([](record_write& w) -> result<void> {
                // A painted car's paint job is a task enqueued with it: both or neither.
                auto color = get_string(*w.record, "color");
                if (!color.empty()) {
                    auto t = w.enqueue("paint_job", json::object{{"car", get_string(*w.record, "id")}, {"color", color}});
                    if (!t) return std::move(t).error();
                    (*w.record)["make"] = "task " + std::string(get_string(*t, "id"));
                }
                if (get_string(*w.record, "brand") == "Ghost") {
                    auto t = w.enqueue("no_such_kind", nullptr);
                    if (!t) return std::move(t).error();
                }
                return {};
            })
            .before_create([log](record_write& w) { return log(w, "created"); })
            .before_create([](record_write& w) -> result<void> {
                // After the event was written: a refusal takes it back with the car.
                if (get_string(*w.record, "brand") == "Trabant")
                    return problem::unprocessable("We do not build Trabants.");
                if (get_string(*w.record, "brand") == "Throw") throw std::runtime_error("hook bug");
                if (get_string(*w.record, "brand") == "Bad") (*w.record)["model"] = 1500;  // out of range
                if (get_string(*w.record, "brand") == "Extra") (*w.record)["wheels"] = 4;  // not declared
                if (get_string(*w.record, "brand") == "Id") (*w.record)["id"] = "mine";    // managed: kept
                return {};
            })
            .before_update([](record_write& w) -> result<void> {
                auto model = get_int(*w.stored, "model");
                if (model && *model < 1950 && get_string(*w.record, "brand") != get_string(*w.stored, "brand"))
                    return problem::conflict("A classic keeps its brand.");
                return {};
            })
            .before_update([log](record_write& w) { return log(w, std::string(w.action)); })
            .before_delete([log](record_write& w) { return log(w, "deleted"); })
            .after_create([this](const record_write& w) { seen("created", w); })
            .after_update([this](const record_write& w) { seen(std::string(w.action), w); })
            .after_delete([this](const record_write& w) { seen("deleted", w); })
            .task_kind("paint_job", [](task_context& ctx) -> result<outcome> {
                return outcome::json_body(200, json::object{{"painted", ctx.input().as_object().at("color")}});
            });
        start_app();
    }

    void seen(std::string what, const record_write& w) {
        std::lock_guard<std::mutex> lock(mu_);
        after_.push_back(std::move(what) + " " + std::string(get_string(w.record ? *w.record : *w.stored, "brand")) +
                         (w.stored && w.record ? " was " + std::string(get_string(*w.stored, "brand")) : "") +
                         (w.txn == nullptr && !w.create ? "" : " (with a transaction)"));
    }
    std::vector<std::string> after() {
        std::lock_guard<std::mutex> lock(mu_);
        return after_;
    }
    std::vector<std::string> events(http_client& c) {
        auto r = c.get("/api/car_events");
        EXPECT_EQ(r.status, 200) << r.body;
        std::vector<std::string> out;
        const auto page = obj(r.json());
        if (!page.contains("results") || !page.at("results").is_array()) return {};
        for (const auto& e : page.at("results").get_array())
            out.push_back(str(obj(e)["what"]) + " " + str(obj(e)["car"]));
        std::sort(out.begin(), out.end());  // several may share a millisecond
        return out;
    }
    std::size_t car_count(http_client& c) {
        auto r = c.get("/api/cars");
        return static_cast<std::size_t>(obj(r.json())["count"].as_int64());
    }

    // The paint jobs in the store, whoever owns them.
    std::size_t paint_jobs() {
        query q;
        q.limit = 100;
        auto page = app_.store().list_sync(tasks_collection(), q);
        EXPECT_TRUE(page.has_value());
        std::size_t n = 0;
        if (page)
            for (const auto& t : page->items) n += get_string(t, "kind") == "paint_job";
        return n;
    }

    std::mutex mu_;
    std::vector<std::string> after_;
};

}  // namespace

TEST_F(hooked_cars, a_before_hook_changes_the_record_and_writes_in_the_same_transaction) {
    auto c = client();
    auto car = create_car(c, {{"brand", "Saab"}, {"model", 1990}});
    const std::string id(get_string(car, "id"));
    EXPECT_EQ(get_string(car, "make"), "Saab Motor Co.");
    EXPECT_EQ(get_string(obj(c.get("/api/cars/" + id).json()), "make"), "Saab Motor Co.");
    EXPECT_EQ(events(c), std::vector<std::string>{"created " + id});
    // A client's own value stays.
    EXPECT_EQ(get_string(create_car(c, {{"brand", "Kia"}, {"make", "KMC"}}), "make"), "KMC");
}

TEST_F(hooked_cars, a_refusal_answers_its_problem_and_takes_back_what_earlier_hooks_wrote) {
    auto c = client();
    auto r = c.post("/api/cars", json::object{{"brand", "Trabant"}});
    EXPECT_EQ(r.status, 422) << r.body;
    EXPECT_EQ(get_string(obj(r.json()), "detail"), "We do not build Trabants.");
    EXPECT_EQ(car_count(c), 0u);
    EXPECT_TRUE(events(c).empty());  // the event the second hook wrote went with the car
}

TEST_F(hooked_cars, a_hook_that_throws_or_leaves_a_bad_record_is_a_500_that_writes_nothing) {
    auto c = client();
    for (const char* brand : {"Throw", "Bad", "Extra"}) {
        auto r = c.post("/api/cars", json::object{{"brand", brand}});
        EXPECT_EQ(r.status, 500) << brand << ": " << r.body;
        EXPECT_EQ(get_string(obj(r.json()), "detail"), "Internal server error.") << r.body;
    }
    EXPECT_EQ(car_count(c), 0u);
    EXPECT_TRUE(events(c).empty());
    // Managed fields keep the server's values whatever a hook sets.
    auto car = create_car(c, {{"brand", "Id"}});
    EXPECT_NE(get_string(car, "id"), "mine");
    EXPECT_EQ(c.get("/api/cars/" + std::string(get_string(car, "id"))).status, 200);
}

TEST_F(hooked_cars, update_and_delete_hooks_see_the_stored_record) {
    auto c = client();
    auto classic = create_car(c, {{"brand", "Ford"}, {"model", 1932}});
    const std::string id(get_string(classic, "id"));
    auto refused = c.request("PATCH", "/api/cars/" + id, R"({"brand":"Kia"})");
    EXPECT_EQ(refused.status, 409) << refused.body;
    EXPECT_EQ(get_string(obj(refused.json()), "detail"), "A classic keeps its brand.");
    EXPECT_EQ(get_string(obj(c.get("/api/cars/" + id).json()), "brand"), "Ford");

    auto patched = c.request("PATCH", "/api/cars/" + id, R"({"model":1960})");
    ASSERT_EQ(patched.status, 200) << patched.body;
    auto replaced = c.request("PUT", "/api/cars/" + id, R"({"brand":"Kia","model":1961})");
    ASSERT_EQ(replaced.status, 200) << replaced.body;
    EXPECT_EQ(c.request("DELETE", "/api/cars/" + id).status, 204);
    EXPECT_EQ(events(c), (std::vector<std::string>{"created " + id, "deleted " + id, "patch " + id, "update " + id}));

    // After-hooks run once each write committed (on other threads: wait for them), never for
    // the refused patch, and without a transaction.
    ASSERT_TRUE(eventually([&] { return after().size() >= 4; })) << after().size();
    auto got = after();
    std::sort(got.begin(), got.end());  // they may run out of order
    EXPECT_EQ(got, (std::vector<std::string>{"created Ford", "deleted Kia", "patch Ford was Ford",
                                             "update Kia was Ford"}));
}

TEST_F(hooked_cars, a_task_enqueued_by_a_hook_commits_with_the_write_or_not_at_all) {
    auto c = client();
    auto car = create_car(c, {{"brand", "Saab"}, {"color", "Red"}});
    const std::string make(get_string(car, "make"));
    ASSERT_EQ(make.rfind("task ", 0), 0u) << make;
    const std::string task = make.substr(5);
    // It runs like any task; its owner (this anonymous client) reaches it by id.
    std::string state;
    ASSERT_TRUE(eventually([&] {
        state = str(obj(c.get("/api/tasks/" + task).json())["state"]);
        return state == "succeeded";
    })) << state;
    auto result = c.get("/api/tasks/" + task + "/result");
    EXPECT_NE(result.body.find("\"painted\":\"Red\""), std::string::npos) << result.body;
    EXPECT_EQ(paint_jobs(), 1u);

    // A later hook's refusal takes the task back with the car.
    auto refused = c.post("/api/cars", json::object{{"brand", "Trabant"}, {"color", "Blue"}});
    EXPECT_EQ(refused.status, 422) << refused.body;
    EXPECT_EQ(paint_jobs(), 1u);
    // A kind the app does not register is the app's bug: 500, nothing written.
    auto ghost = c.post("/api/cars", json::object{{"brand", "Ghost"}});
    EXPECT_EQ(ghost.status, 500) << ghost.body;
    EXPECT_EQ(car_count(c), 1u);
}

TEST_F(hooked_cars, websocket_writes_run_the_same_hooks) {
    ws_client ws;
    ASSERT_TRUE(ws.connect(app_.port(), ws_connect_options{}));
    auto created = ws.request("cars", req("create", {{"data", {{"brand", "Volvo"}}}}));
    ASSERT_TRUE(created) << "no reply";
    EXPECT_EQ(get_string(obj(livebase::testing::data_of(*created)), "make"), "Volvo Motor Co.") << dump(created);
    auto refused = ws.request("cars", req("create", {{"data", {{"brand", "Trabant"}}}}));
    ASSERT_TRUE(refused) << "no reply";
    EXPECT_NE(json::serialize(*refused).find("We do not build Trabants."), std::string::npos) << dump(refused);
    auto c = client();
    EXPECT_EQ(car_count(c), 1u);
    EXPECT_EQ(events(c).size(), 1u);
}

TEST(record_hooks_setup, attaching_after_start_changes_nothing_and_says_so) {
    LIVEBASE_REQUIRE_BACKEND();
    temp_dir dir;
    livebase::app a;
    ASSERT_TRUE(a.load_config_string(test_config(dir.path() / "t.db")));
    ASSERT_TRUE(a.start());
    std::atomic<int> calls{0};
    a.collection("cars").before_create([&](record_write&) -> result<void> {
        ++calls;
        return problem::forbidden("too late");
    });
    http_client c(a.port());
    EXPECT_EQ(c.post("/api/cars", json::object{{"brand", "Fiat"}}).status, 201);
    EXPECT_EQ(calls.load(), 0);
    a.stop();
}
