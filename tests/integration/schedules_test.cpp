// Schedules over the wire (docs/tasks.md "Schedules"): the built-in collection is admin-only,
// checks what it stores and shows next_run; an enabled schedule's ticks become tasks of its
// owner that the workers run; disabling it stops them.
#include "support/test_app.hpp"
#include "support/wait.hpp"
#include "support/ws_client.hpp"

#include <livebase/core/clock.hpp>

#include <atomic>
#include <mutex>
#include <set>
#include <string>
#include <vector>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {

class schedules : public app_test {
protected:
    void SetUp() override {
        client_timeout_ = std::chrono::seconds(15);
        ASSERT_NO_FATAL_FAILURE(configure("[tasks]\nworkers = 2\n", k_public_rules, log_level::error, "schedules"));
        ASSERT_TRUE(app_.add_task_kind("report", [this](task_context& ctx) -> result<outcome> {
            std::lock_guard lock(mu_);
            ran_.push_back({ctx.id(), ctx.who().user_id, json::serialize(ctx.input())});
            return outcome::json_body(200, json::object{{"reported", true}});
        }));
        start_app();
        auto root = app_.auth().create_user_sync("root", "pw-root-secret", true);
        ASSERT_TRUE(root);
        root_id_ = std::string(get_string(*root, "id"));
        ASSERT_TRUE(app_.auth().create_user_sync("ann", "pw-ann-secret", false));
        root_ = bearer(login_token("root", "pw-root-secret"));
        ann_ = bearer(login_token("ann", "pw-ann-secret"));
    }

    http_response post(http_client& c, const std::string& path, json::object body, const header_list& who) {
        return c.request("POST", path, json::serialize(body), with({{"Content-Type", "application/json"}}, who));
    }
    http_response patch(http_client& c, const std::string& path, json::object body, const header_list& who) {
        return c.request("PATCH", path, json::serialize(body), with({{"Content-Type", "application/json"}}, who));
    }

    struct run {
        std::string task;
        std::string user;
        std::string input;
    };
    std::size_t runs() {
        std::lock_guard lock(mu_);
        return ran_.size();
    }

    std::string root_id_;
    header_list root_, ann_;
    std::mutex mu_;
    std::vector<run> ran_;
};

TEST_F(schedules, only_admins_manage_them_and_bad_ones_get_400_naming_the_field) {
    auto c = client();
    const json::object good{{"name", "nightly"}, {"kind", "report"}, {"cron", "0 3 * * *"}, {"timezone", "Europe/Berlin"}};
    EXPECT_EQ(post(c, "/api/schedules", good, {}).status, 401);
    EXPECT_EQ(post(c, "/api/schedules", good, ann_).status, 403);
    EXPECT_EQ(c.get("/api/schedules", ann_).status, 403);

    struct bad {
        json::object body;
        const char* field;
    };
    for (const auto& b : {bad{{{"kind", "report"}, {"cron", "0 25 * * *"}}, "cron"},
                          bad{{{"kind", "report"}}, "cron"},
                          bad{{{"kind", "report"}, {"every", "1s"}, {"cron", "* * * * *"}}, "every"},
                          bad{{{"kind", "report"}, {"every", "100ms"}}, "every"},
                          bad{{{"kind", "report"}, {"every", "1m"}, {"timezone", "Nowhere/Land"}}, "timezone"},
                          bad{{{"kind", "nope"}, {"every", "1m"}}, "kind"},
                          bad{{{"kind", "cars.create"}, {"every", "1m"}}, "kind"},
                          bad{{{"kind", "report"}, {"every", "1m"}, {"missed", "twice"}}, "missed"}}) {
        auto r = post(c, "/api/schedules", b.body, root_);
        EXPECT_EQ(r.status, 400) << json::serialize(b.body) << r.body;
        EXPECT_NE(r.body.find(std::string("\"") + b.field + "\""), std::string::npos) << r.body;
    }

    auto created = post(c, "/api/schedules", good, root_);
    ASSERT_EQ(created.status, 201) << created.body;
    auto s = obj(created.json());
    EXPECT_EQ(str(s["owner"]), root_id_);
    EXPECT_EQ(s["enabled"], json::value(true));
    EXPECT_EQ(str(s["missed"]), "skip");
    auto next = parse_timestamp(str(s["next_run"]));
    ASSERT_TRUE(next) << json::serialize(s);
    EXPECT_GT(*next, now_ms());
    EXPECT_TRUE(s["last_run"].is_null());
    // next_run is the scheduler's: a client's value is ignored.
    auto forged = patch(c, "/api/schedules/" + str(s["id"]),
                        {{"name", "renamed"}, {"next_run", "2000-01-01T00:00:00Z"}}, root_);
    ASSERT_EQ(forged.status, 200) << forged.body;
    EXPECT_EQ(str(obj(forged.json())["next_run"]), str(s["next_run"]));
    auto off = patch(c, "/api/schedules/" + str(s["id"]), {{"enabled", false}}, root_);
    ASSERT_EQ(off.status, 200) << off.body;
    EXPECT_TRUE(obj(off.json())["next_run"].is_null());
    EXPECT_EQ(c.request("DELETE", "/api/schedules/" + str(s["id"]), "", root_).status, 204);
}

TEST_F(schedules, an_enabled_schedule_makes_a_task_per_tick_that_the_workers_run_as_its_owner) {
    auto c = client();
    auto created = post(c, "/api/schedules",
                        {{"kind", "report"}, {"every", "1s"}, {"input", json::object{{"scope", "all"}}}}, root_);
    ASSERT_EQ(created.status, 201) << created.body;
    const auto id = str(obj(created.json())["id"]);
    ASSERT_TRUE(eventually([&] { return runs() >= 2; }, std::chrono::seconds(10))) << runs();

    // Each task names the schedule and its tick; no tick twice.
    auto list = c.get("/api/tasks?kind=report&limit=100", root_);
    ASSERT_EQ(list.status, 200) << list.body;
    std::set<std::string> ticks;
    std::size_t n = 0;
    const auto listed = obj(list.json());
    for (const auto& t : listed.at("results").as_array()) {
        auto task = t.as_object();
        EXPECT_EQ(str(task.at("schedule")), id);
        EXPECT_EQ(str(task.at("owner")), root_id_);
        ticks.insert(str(task.at("tick")));
        ++n;
    }
    EXPECT_GE(n, 2u);
    EXPECT_EQ(ticks.size(), n);
    {
        std::lock_guard lock(mu_);
        for (const auto& r : ran_) {
            EXPECT_EQ(r.user, root_id_);
            EXPECT_EQ(r.input, R"({"scope":"all"})");
        }
    }
    auto s = obj(c.get("/api/schedules/" + id, root_).json());
    EXPECT_FALSE(s["last_run"].is_null());
    EXPECT_FALSE(s["last_task"].is_null());

    // Disabled: no more ticks (a pass in progress holds the schedule until it commits, and the
    // next one sees it disabled).
    ASSERT_EQ(patch(c, "/api/schedules/" + id, {{"enabled", false}}, root_).status, 200);
    auto count = [&](const std::string& query) -> std::int64_t {
        auto r = c.get("/api/tasks?" + query + "&limit=1", root_);
        EXPECT_EQ(r.status, 200) << r.body;
        auto body = obj(r.json());
        return body["count"].is_int64() ? body["count"].as_int64() : -1;
    };
    const auto stopped_at = count("schedule=" + id);
    // A later change of another schedule makes the scheduler pass again; the disabled one stays quiet.
    auto other = post(c, "/api/schedules", {{"kind", "report"}, {"every", "1s"}}, root_);
    ASSERT_EQ(other.status, 201);
    const auto other_id = str(obj(other.json())["id"]);
    ASSERT_TRUE(eventually([&] { return count("schedule=" + other_id) >= 2; }));
    EXPECT_EQ(count("schedule=" + id), stopped_at);
}

TEST_F(schedules, the_socket_manages_them_for_admins_only) {
    ws_connect_options as_root;
    as_root.headers = {root_.front()};
    auto ws = connect(as_root);
    ASSERT_TRUE(ws);
    auto created = ws->request("schedules", req("create", {{"data", {{"kind", "report"}, {"cron", "@daily"}}}}));
    ASSERT_EQ(status_of(created), 201) << (created ? json::serialize(*created) : "no reply");
    EXPECT_FALSE(obj(data_of(*created))["next_run"].is_null()) << json::serialize(*created);
    auto bad = ws->request("schedules", req("create", {{"data", {{"kind", "report"}, {"cron", "@often"}}}}));
    EXPECT_EQ(status_of(bad), 400) << (bad ? json::serialize(*bad) : "no reply");

    auto anon = connect();
    ASSERT_TRUE(anon);
    auto refused = anon->request("schedules", req("list"));
    EXPECT_EQ(status_of(refused), 401) << (refused ? json::serialize(*refused) : "no reply");
}

}  // namespace
