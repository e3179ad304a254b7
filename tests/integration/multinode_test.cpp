// Scale-out on PostgreSQL (architecture.md "Scale-out"): two `serve` processes and a `worker`
// process of the cars example on one database. A socket on node A sees changes written on
// node B, in order; a task submitted on A runs on the worker and its progress reaches a socket
// on B; a worker killed mid-task leaves the task to be re-queued after its lease and finished
// by the next worker; a logout on A closes the user's socket on B with 4401. Runs in the
// PostgreSQL pass of the suite (LIVEBASE_TEST_BACKEND=postgres), skipped otherwise.
#include "support/test_backend.hpp"
#include "support/nodes.hpp"
#include "support/test_app.hpp"

#include <livebase/core/clock.hpp>
#include <livebase/testing/ws_client.hpp>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

node_config cluster_config(const std::string& url) {
    node_config c;
    c.url = url;
    c.auth = "signup = true\nthrottle.anonymous = \"unlimited\"\nthrottle.user = \"unlimited\"\n";
    c.rest = "[tasks]\nworkers = 0\nlease = \"1s\"\n\n" + cars_toml() + k_cars_build_action;
    return c;
}

class multinode : public nodes_test {
protected:
    void SetUp() override {
        nodes_test::SetUp();
        if (IsSkipped()) return;
        ASSERT_NO_FATAL_FAILURE(start_nodes("cluster", cluster_config(database("cluster"))));
        start_worker("w1");
    }
};

TEST_F(multinode, a_socket_on_one_node_sees_writes_of_the_other_in_commit_order) {
    ws_client sock;
    ASSERT_TRUE(sock.connect(port_a_));
    const auto subscription = subscribe_cars(sock);
    ASSERT_FALSE(subscription.empty());

    http_client b(port_b_, 10s);
    std::vector<std::string> ids;
    for (int i = 0; i < 20; ++i) {
        auto r = b.post("/api/cars", json::object{{"brand", "B" + std::to_string(i)}});
        ASSERT_EQ(r.status, 201) << r.body;
        ids.push_back(str(obj(r.json())["id"]));
    }
    auto last = b.request("PATCH", "/api/cars/" + ids[3], R"({"color": "Red"})", {{"Content-Type", "application/json"}});
    ASSERT_EQ(last.status, 200) << last.body;
    std::int64_t prev_seq = 0;
    for (std::size_t i = 0; i <= ids.size(); ++i) {
        auto e = sock.receive_until([&](const json::value& f) { return is_event(f, subscription); }, k_wait);
        ASSERT_TRUE(e) << "event " << i << " never arrived\n" << logs();
        auto p = obj(obj(*e)["payload"]);
        const bool is_update = i == ids.size();
        EXPECT_EQ(str(p["action"]), is_update ? "update" : "create");
        EXPECT_EQ(str(p["pk"]), is_update ? ids[3] : ids[i]);
        ASSERT_TRUE(p["seq"].is_int64());
        EXPECT_GT(p["seq"].get_int64(), prev_seq);
        prev_seq = p["seq"].get_int64();
    }
    EXPECT_TRUE(sock.queue_empty(200ms)) << "an event arrived twice";
}

TEST_F(multinode, a_task_submitted_on_one_node_runs_on_the_worker_and_its_progress_reaches_the_other) {
    http_client a(port_a_, 10s);
    const auto task_id = start_build(a, "Built").second;
    ASSERT_FALSE(task_id.empty());

    ws_client sock;
    ASSERT_TRUE(sock.connect(port_b_));
    auto sub = sock.request("tasks", {{"action", "subscribe"}, {"pk", task_id}});
    ASSERT_EQ(status_of(sub), 201) << dump(sub);
    const auto subscription = field(data_of(*sub), "subscription");
    double last_progress = -1;
    bool saw_partial = false;
    std::string state;
    for (int i = 0; i < 1000 && state != "succeeded" && state != "failed"; ++i) {
        auto e = sock.receive_until([&](const json::value& f) { return is_event(f, subscription); }, k_wait);
        ASSERT_TRUE(e) << "the task did not finish\n" << logs();
        auto t = obj(data_of(*e));
        state = str(t["state"]);
        if (t["progress"].is_number()) {
            double p = t["progress"].to_number<double>();
            EXPECT_GE(p, last_progress);
            last_progress = p;
            if (p > 0 && p < 100) saw_partial = true;
        }
    }
    EXPECT_EQ(state, "succeeded") << logs();
    EXPECT_TRUE(saw_partial) << "no progress between 0 and 100 reached node B";
    // Neither serve node runs tasks (workers = 0): the worker process did.
}

TEST_F(multinode, a_worker_killed_mid_task_leaves_it_to_the_next_worker_after_the_lease) {
    http_client a(port_a_, 10s), b(port_b_, 10s);
    const auto task_id = start_build(a, "Requeued").second;
    ASSERT_FALSE(task_id.empty());
    auto running = wait_state(b, task_id, {"running", "succeeded", "failed"});
    ASSERT_EQ(str(running["state"]), "running") << json::serialize(running) << logs();
    worker_->kill_now();  // SIGKILL: no hand-back; the lease (1 s) must expire
    worker_.reset();
    start_worker("w2");
    auto done = wait_state(b, task_id, {"succeeded", "failed", "cancelled"});
    ASSERT_EQ(str(done["state"]), "succeeded") << json::serialize(done) << logs();
    EXPECT_EQ(done["attempt"], 2) << json::serialize(done);
}

TEST_F(multinode, a_logout_on_one_node_closes_the_user_s_socket_on_the_other) {
    http_client a(port_a_, 10s);
    auto reg = a.post("/api/auth/register", json::object{{"username", "ann"}, {"password", "correct horse 1"}});
    ASSERT_EQ(reg.status, 201) << reg.body;
    auto login = a.post("/api/auth/login", json::object{{"username", "ann"}, {"password", "correct horse 1"}});
    ASSERT_EQ(login.status, 200) << login.body;
    auto token = str(obj(login.json())["token"]);
    ASSERT_FALSE(token.empty()) << login.body;

    ws_client sock;
    ws_connect_options o;
    o.headers = {{"Authorization", "Bearer " + token}};
    ASSERT_TRUE(sock.connect(port_b_, o));
    auto me = sock.request("auth", {{"action", "me"}});
    ASSERT_EQ(status_of(me), 200) << dump(me);

    auto out = a.post("/api/auth/logout", json::object{}, {{"Authorization", "Bearer " + token}});
    ASSERT_TRUE(out.status == 200 || out.status == 204) << out.status << " " << out.body;
    auto closed = sock.wait_closed(k_wait);
    ASSERT_TRUE(closed) << "node B never closed the socket\n" << logs();
    EXPECT_EQ(closed->code, 4401) << closed->reason;
    // And the token is refused on B too.
    http_client b(port_b_, 10s);
    EXPECT_EQ(b.get("/api/auth/me", {{"Authorization", "Bearer " + token}}).status, 401);
}

}  // namespace

// Schedules without a beat process (tasks.md "Schedules"): both nodes run a scheduler; a
// schedule ticking every second makes exactly one task per tick while both run, and goes on
// without a gap when node A is killed mid-run.
TEST_F(multinode, a_schedule_makes_one_task_per_tick_across_both_nodes_and_outlives_one_killed) {
    http_client a(port_a_, 10s), b(port_b_, 10s);
    ASSERT_EQ(a.post("/api/auth/register", json::object{{"username", "root"}, {"password", "correct horse 1"}}).status, 201);
    child promote({LIVEBASE_CARS_BINARY, "users", "promote", "root", "-c", cfg_.string()}, dir_.path() / "promote.err");
    ASSERT_EQ(promote.wait_exit(k_wait), 0) << promote.stderr_text();
    auto login = a.post("/api/auth/login", json::object{{"username", "root"}, {"password", "correct horse 1"}});
    ASSERT_EQ(login.status, 200) << login.body;
    const header_list root{{"Authorization", "Bearer " + str(obj(login.json())["token"])}};

    auto created = a.post("/api/schedules", json::object{{"kind", "double"}, {"input", {{"foo", "1"}}}, {"every", "1s"}}, root);
    ASSERT_EQ(created.status, 201) << created.body;
    const auto id = str(obj(created.json())["id"]);
    auto ticks = [&](http_client& c) {
        auto r = c.get("/api/tasks?schedule=" + id + "&ordering=tick&limit=500", root);
        EXPECT_EQ(r.status, 200) << r.body;
        std::vector<std::string> out;
        auto body = obj(r.json());
        if (body["results"].is_array())
            for (const auto& t : body["results"].as_array()) out.push_back(str(t.as_object().at("tick")));
        return out;
    };
    ASSERT_TRUE(eventually([&] { return ticks(b).size() >= 3; }, k_wait)) << logs();

    a_->kill_now();  // SIGKILL, perhaps in the middle of a pass: its transaction rolls back
    a_.reset();
    const auto before = ticks(b).size();
    ASSERT_TRUE(eventually([&] { return ticks(b).size() >= before + 3; }, k_wait)) << logs();
    ASSERT_EQ(b.request("PATCH", "/api/schedules/" + id, R"({"enabled": false})",
                        {{"Content-Type", "application/json"}, root.front()}).status, 200);

    // One task per tick, each tick one second after the one before: none made twice, none lost.
    auto all = ticks(b);
    ASSERT_GE(all.size(), 6u);
    for (std::size_t i = 1; i < all.size(); ++i) {
        auto prev = parse_timestamp(all[i - 1]), cur = parse_timestamp(all[i]);
        ASSERT_TRUE(prev && cur) << all[i];
        EXPECT_EQ(*cur - *prev, 1000) << all[i - 1] << " then " << all[i] << "\n" << logs();
    }
}
