// Submitting tasks directly (docs/tasks.md "Submitting a task directly"): POST /api/tasks and
// the socket's `submit` with kind, input, delay or not_before, and priority; the kind's rule
// from [tasks.kinds.<kind>] submit; delayed tasks that wait, show when they run and can be
// cancelled; a higher priority that goes ahead of the waiting tasks.
#include "support/test_app.hpp"
#include "support/wait.hpp"
#include "support/ws_client.hpp"

#include <livebase/core/clock.hpp>

#include <algorithm>
#include <atomic>
#include <mutex>
#include <string>
#include <vector>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {

class task_submit : public app_test {
protected:
    void SetUp() override {
        const std::string extra = R"(
[tasks]
workers = 2
lease = "5s"

[tasks.kinds.echo]
submit = "public"

[tasks.kinds.members]
submit = "authenticated"

[tasks.kinds.admins]
submit = "admin"

[tasks.kinds.closed]
submit = "nobody"

[tasks.kinds.hold]
submit = "public"
)";
        client_timeout_ = std::chrono::seconds(15);
        ASSERT_NO_FATAL_FAILURE(configure(extra, k_public_rules, log_level::error, "submit"));
        for (std::string kind : {"echo", "members", "admins", "closed", "hidden"}) {
            ASSERT_TRUE(app_.add_task_kind(kind, [this, kind](task_context& ctx) -> result<outcome> {
                {
                    std::lock_guard lock(mu_);
                    ran_.push_back(ctx.id());
                }
                return outcome::json_body(200, json::object{{"kind", kind}, {"input", ctx.input()}});
            }));
        }
        add_hold_kind("hold", &held_);
        start_app();
    }

    http_response submit(http_client& c, json::object body, header_list headers = {}) {
        return c.request("POST", "/api/tasks", json::serialize(body),
                         with({{"Content-Type", "application/json"}}, headers));
    }

    std::string create_user(const std::string& name, bool admin = false) {
        auto u = app_.auth().create_user_sync(name, "pw-" + name + "-secret", admin);
        EXPECT_TRUE(u) << (u ? "" : u.error().detail);
        return u ? std::string(get_string(*u, "id")) : "";
    }

    /// Long-polls the task at `location` until it is finished (bounded).
    json::object finished(http_client& c, const std::string& location) {
        json::object t;
        for (int i = 0; i < 30; ++i) {
            auto r = c.get(location, {{"Prefer", "wait=2"}});
            t = obj(r.json());
            auto state = str(t["state"]);
            if (state != "pending" && state != "running") break;
        }
        return t;
    }

    std::vector<std::string> ran() {
        std::lock_guard lock(mu_);
        return ran_;
    }

    std::atomic<int> held_{0};
    std::mutex mu_;
    std::vector<std::string> ran_;
};

TEST_F(task_submit, a_submittable_kind_runs_from_post_api_tasks) {
    auto c = client();
    auto r = submit(c, {{"kind", "echo"}, {"input", {{"n", 21}}}});
    ASSERT_EQ(r.status, 202) << r.body;
    auto task = obj(r.json());
    EXPECT_EQ(str(task["kind"]), "echo");
    EXPECT_EQ(task["priority"], 0);
    EXPECT_TRUE(task["not_before"].is_null());
    const std::string id = str(task["id"]);
    EXPECT_EQ(r.header("Location"), "/api/tasks/" + id);
    EXPECT_EQ(str(obj(task["request"])["path"]), "/api/tasks");

    auto done = finished(c, "/api/tasks/" + id);
    ASSERT_EQ(str(done["state"]), "succeeded") << json::serialize(done);
    auto result = c.get("/api/tasks/" + id + "/result");
    EXPECT_EQ(result.status, 200);
    EXPECT_EQ(obj(result.json())["input"], (json::object{{"n", 21}}));

    // Prefer: wait answers with the result when the task finishes in time.
    auto waited = submit(c, {{"kind", "echo"}, {"input", "hi"}}, {{"Prefer", "wait=10"}});
    EXPECT_EQ(waited.status, 200) << waited.body;
    EXPECT_EQ(obj(waited.json())["input"], "hi");
}

TEST_F(task_submit, bad_submissions_answer_400_naming_the_field) {
    auto c = client();
    auto field_of = [](const http_response& r) { return str(obj(r.json())["parameter"]); };
    struct bad {
        json::object body;
        std::string field;
    };
    const std::vector<bad> cases = {
        {{}, "kind"},
        {{{"kind", 7}}, "kind"},
        {{{"kind", ""}}, "kind"},
        {{{"kind", "nope"}}, "kind"},
        {{{"kind", "hidden"}}, "kind"},  // registered, but not submittable directly
        {{{"kind", "echo"}, {"queue", "x"}}, "queue"},
        {{{"kind", "echo"}, {"delay", -1}}, "delay"},
        {{{"kind", "echo"}, {"delay", "soon"}}, "delay"},
        {{{"kind", "echo"}, {"delay", 400 * 24 * 3600}}, "delay"},
        {{{"kind", "echo"}, {"delay", true}}, "delay"},
        {{{"kind", "echo"}, {"delay", 5}, {"not_before", "2030-01-01T00:00:00Z"}}, "delay"},
        {{{"kind", "echo"}, {"not_before", "tomorrow"}}, "not_before"},
        {{{"kind", "echo"}, {"not_before", 12}}, "not_before"},
        {{{"kind", "echo"}, {"not_before", "2999-01-01T00:00:00Z"}}, "not_before"},
        {{{"kind", "echo"}, {"priority", 11}}, "priority"},
        {{{"kind", "echo"}, {"priority", -11}}, "priority"},
        {{{"kind", "echo"}, {"priority", 1.5}}, "priority"},
        {{{"kind", "echo"}, {"priority", "high"}}, "priority"},
    };
    for (const auto& b : cases) {
        auto r = submit(c, b.body);
        EXPECT_EQ(r.status, 400) << json::serialize(b.body) << " -> " << r.body;
        EXPECT_EQ(field_of(r), b.field) << json::serialize(b.body) << " -> " << r.body;
    }
    auto not_object = c.request("POST", "/api/tasks", "[1]", {{"Content-Type", "application/json"}});
    EXPECT_EQ(not_object.status, 400) << not_object.body;
    // Nothing of the refused submissions was stored.
    EXPECT_EQ(obj(c.get("/api/tasks").json())["count"], 0);
}

TEST_F(task_submit, the_kinds_rule_decides_who_may_submit) {
    create_user("ann");
    create_user("root", true);
    const auto ann = bearer(login_token("ann", "pw-ann-secret"));
    const auto root = bearer(login_token("root", "pw-root-secret"));
    auto c = client();
    EXPECT_EQ(submit(c, {{"kind", "members"}}).status, 401);
    EXPECT_EQ(submit(c, {{"kind", "members"}}, ann).status, 202);
    EXPECT_EQ(submit(c, {{"kind", "admins"}}, ann).status, 403);
    EXPECT_EQ(submit(c, {{"kind", "admins"}}, root).status, 202);
    EXPECT_EQ(submit(c, {{"kind", "closed"}}, root).status, 403);
    // The task belongs to its submitter.
    auto mine = submit(c, {{"kind", "members"}, {"input", 1}}, ann);
    ASSERT_EQ(mine.status, 202);
    const std::string id = str(obj(mine.json())["id"]);
    EXPECT_EQ(c.get("/api/tasks/" + id).status, 404);  // a stranger
    EXPECT_NE(c.get("/api/tasks/" + id, ann).status, 404);
}

TEST_F(task_submit, a_delayed_task_waits_shows_when_it_runs_and_can_be_cancelled) {
    auto c = client();
    const auto before = now_ms();
    auto r = submit(c, {{"kind", "echo"}, {"delay", "1h"}});
    ASSERT_EQ(r.status, 202) << r.body;
    auto task = obj(r.json());
    EXPECT_EQ(str(task["state"]), "pending");
    ASSERT_TRUE(task["not_before"].is_string()) << r.body;
    auto at = parse_timestamp(str(task["not_before"]));
    ASSERT_TRUE(at);
    EXPECT_GE(*at, before + 3600 * 1000);
    EXPECT_LE(*at, now_ms() + 3600 * 1000);
    const std::string id = str(task["id"]);

    // An idle worker does not take it; it stays pending with its time.
    auto now_task = submit(c, {{"kind", "echo"}}, {{"Prefer", "wait=10"}});
    EXPECT_EQ(now_task.status, 200);
    auto again = obj(c.get("/api/tasks/" + id).json());
    EXPECT_EQ(str(again["state"]), "pending");
    EXPECT_EQ(again["not_before"], task["not_before"]);

    auto cancelled = c.request("DELETE", "/api/tasks/" + id);
    EXPECT_EQ(cancelled.status, 200) << cancelled.body;
    EXPECT_EQ(str(obj(cancelled.json())["state"]), "cancelled");
    EXPECT_TRUE(obj(cancelled.json())["not_before"].is_null());
    EXPECT_EQ(ran().size(), 1u);  // only the task without a delay ran
}

TEST_F(task_submit, a_delayed_task_runs_once_its_time_has_come) {
    auto c = client();
    auto r = submit(c, {{"kind", "echo"}, {"delay", 0.4}, {"input", "later"}});
    ASSERT_EQ(r.status, 202) << r.body;
    auto task = obj(r.json());
    const auto due = parse_timestamp(str(task["not_before"]));
    ASSERT_TRUE(due) << r.body;
    auto done = finished(c, "/api/tasks/" + str(task["id"]));
    ASSERT_EQ(str(done["state"]), "succeeded") << json::serialize(done);
    auto started = parse_timestamp(str(done["started"]));
    ASSERT_TRUE(started);
    EXPECT_GE(*started, *due);

    // A time already past runs at once; not_before names the time as an RFC 3339 string.
    auto past = submit(c, {{"kind", "echo"}, {"not_before", "2020-01-01T00:00:00Z"}}, {{"Prefer", "wait=10"}});
    EXPECT_EQ(past.status, 200) << past.body;
    auto at = submit(c, {{"kind", "echo"}, {"not_before", format_timestamp(now_ms() + 300)}});
    ASSERT_EQ(at.status, 202) << at.body;
    EXPECT_EQ(str(finished(c, "/api/tasks/" + str(obj(at.json())["id"]))["state"]), "succeeded");
}

TEST_F(task_submit, a_higher_priority_goes_ahead_of_the_waiting_tasks) {
    auto c = client();
    // Both workers held: what follows waits in the store.
    for (int i = 0; i < 2; ++i) ASSERT_EQ(submit(c, {{"kind", "hold"}}).status, 202);
    ASSERT_TRUE(eventually([&] { return held_.load() == 2; }));
    std::string last;
    for (int i = 0; i < 20; ++i) {
        auto r = submit(c, {{"kind", "echo"}, {"input", i}});
        ASSERT_EQ(r.status, 202) << r.body;
        last = str(obj(r.json())["id"]);
    }
    auto urgent = submit(c, {{"kind", "echo"}, {"priority", 5}, {"input", "urgent"}});
    ASSERT_EQ(urgent.status, 202) << urgent.body;
    EXPECT_EQ(obj(urgent.json())["priority"], 5);
    const std::string id = str(obj(urgent.json())["id"]);
    release_ = true;
    EXPECT_EQ(str(finished(c, "/api/tasks/" + last)["state"]), "succeeded");
    EXPECT_EQ(str(finished(c, "/api/tasks/" + id)["state"]), "succeeded");
    // The other worker may still be finishing an earlier one.
    ASSERT_TRUE(eventually([&] { return ran().size() >= 21; })) << ran().size();
    auto order = ran();
    ASSERT_EQ(order.size(), 21u);
    // Two workers take the first claim: the urgent task is in it, not behind the 20.
    auto at = std::find(order.begin(), order.end(), id) - order.begin();
    EXPECT_LT(at, 2) << "the priority 5 task ran as number " << at + 1 << " of 21";
}

TEST_F(task_submit, the_socket_submits_with_the_same_fields) {
    auto ws = connect();
    auto r = ws->request("tasks", req("submit", {{"data", {{"kind", "echo"}, {"delay", 3600}, {"priority", 3}}}}));
    ASSERT_EQ(status_of(r), 202) << (r ? json::serialize(*r) : "no reply");
    auto task = obj(data_of(*r));
    EXPECT_EQ(str(task["state"]), "pending");
    EXPECT_EQ(task["priority"], 3);
    EXPECT_TRUE(task["not_before"].is_string());
    auto cancelled = ws->request("tasks", req("cancel", {{"pk", str(task["id"])}}));
    EXPECT_EQ(status_of(cancelled), 200);
    EXPECT_EQ(status_of(ws->request("tasks", req("submit", {{"data", {{"kind", "echo"}, {"priority", 99}}}}))), 400);
    EXPECT_EQ(status_of(ws->request("tasks", req("submit", {{"data", {{"kind", "closed"}}}}))), 403);
    EXPECT_EQ(status_of(ws->request("tasks", req("submit", {{"data", {{"kind", "hidden"}}}}))), 400);
}

// A submittable kind must be runnable, and must not be a records operation's kind (its input
// is the request the worker runs: a caller would write that request itself).
class task_submit_start : public app_test {};

TEST_F(task_submit_start, a_submittable_kind_nothing_runs_fails_start_naming_it) {
    ASSERT_NO_FATAL_FAILURE(configure("[tasks.kinds.ghost]\nsubmit = \"public\"\n", k_public_rules, log_level::off));
    auto r = app_.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().detail.find("tasks.kinds.ghost.submit"), std::string::npos) << r.error().detail;
}

TEST_F(task_submit_start, a_records_operation_kind_cannot_be_made_submittable) {
    ASSERT_NO_FATAL_FAILURE(
        configure("[tasks.kinds.\"cars.create\"]\nsubmit = \"public\"\n", k_public_rules, log_level::off));
    auto r = app_.start();
    ASSERT_FALSE(r);
    EXPECT_NE(r.error().detail.find("records operation"), std::string::npos) << r.error().detail;
}

}  // namespace
