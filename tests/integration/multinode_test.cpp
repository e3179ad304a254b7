// Scale-out on PostgreSQL (architecture.md "Scale-out"): two `serve` processes and a `worker`
// process of the cars example on one database. A socket on node A sees changes written on
// node B, in order; a task submitted on A runs on the worker and its progress reaches a socket
// on B; a worker killed mid-task leaves the task to be re-queued after its lease and finished
// by the next worker; a logout on A closes the user's socket on B with 4401. Runs in the
// PostgreSQL pass of the suite (LIVEBASE_TEST_BACKEND=postgres), skipped otherwise.
#include "support/test_backend.hpp"
#include "integration/child_process.hpp"
#include "integration/server_fixture.hpp"

#include <livebase/testing/ws_client.hpp>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

using namespace livebase;
using namespace livebase::testing;
using namespace std::chrono_literals;

namespace {

using steady = std::chrono::steady_clock;
constexpr auto k_wait = 30s;

json::object obj(const json::value& v) { return v.is_object() ? v.get_object() : json::object{}; }
std::string str(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : ""; }
json::object payload_of(const json::value& f) { return obj(obj(f).contains("payload") ? obj(f)["payload"] : json::value()); }
int status_of(const std::optional<json::value>& f) {
    if (!f) return 0;
    auto p = payload_of(*f);
    return p.contains("response_status") && p["response_status"].is_int64()
               ? static_cast<int>(p["response_status"].get_int64())
               : 0;
}
json::object data_of(const json::value& f) { return obj(payload_of(f)["data"]); }
bool event_of(const json::value& f, const std::string& subscription) {
    auto p = payload_of(f);
    return str(p["subscription"]) == subscription && !p.contains("response_status");
}

std::string cluster_config(const std::string& url) {
    return R"([server]
listen = "127.0.0.1:0"
threads = 2
shutdown_grace = "2s"
drain_period = "0s"

[storage]
url = ")" + url + R"("

[auth]
signup = true
throttle.anonymous = "unlimited"
throttle.user = "unlimited"

[tasks]
workers = 0
lease = "1s"

[collections.cars]
owned = true
rules = { list = "public", retrieve = "public", create = "public", update = "public", delete = "public" }
fields.brand = { type = "string", required = true, max_length = 100 }
fields.make  = { type = "string", default = "" }
fields.model = { type = "integer", min = 1886, max = 2100 }
fields.color = { type = "string", choices = ["Blue", "Red", "Black"] }
fields.vin   = { type = "string", unique = true }

[collections.cars.actions.build]
detail = true
task = "build_car"
rule = "public"
)";
}

json::object wait_state(http_client& c, const std::string& id, std::initializer_list<std::string_view> states) {
    auto deadline = steady::now() + k_wait;
    json::object task;
    while (steady::now() < deadline) {
        task = obj(c.get("/api/tasks/" + id).json());
        for (auto s : states)
            if (str(task["state"]) == s) return task;
        std::this_thread::sleep_for(20ms);
    }
    return task;
}

class multinode : public ::testing::Test {
protected:
    void SetUp() override {
        if (!test::on_postgres() || test::postgres_url().empty())
            GTEST_SKIP() << "runs in the PostgreSQL pass (LIVEBASE_TEST_BACKEND=postgres)";
        cfg_ = dir_.path() / "cluster.toml";
        std::ofstream(cfg_) << cluster_config(test::storage_url((dir_.path() / "cluster.db").string()));
        a_.emplace(std::vector<std::string>{LIVEBASE_CARS_BINARY, "serve", "-c", cfg_.string()}, dir_.path() / "a.err");
        port_a_ = a_->wait_port();
        ASSERT_NE(port_a_, 0) << a_->stderr_text();
        b_.emplace(std::vector<std::string>{LIVEBASE_CARS_BINARY, "serve", "-c", cfg_.string()}, dir_.path() / "b.err");
        port_b_ = b_->wait_port();
        ASSERT_NE(port_b_, 0) << b_->stderr_text();
        start_worker("w1");
    }

    void start_worker(const std::string& name) {
        worker_.reset();
        worker_.emplace(std::vector<std::string>{LIVEBASE_CARS_BINARY, "worker", "-c", cfg_.string()},
                        dir_.path() / (name + ".err"),
                        std::vector<std::string>{"LIVEBASE_TASKS_WORKERS=1", "CARS_STEP_MS=200"});
        static const std::regex started(R"re("msg":"worker started")re");
        ASSERT_TRUE(worker_->wait_log(started, k_wait)) << worker_->stderr_text();
    }

    void TearDown() override {
        for (auto* p : {&worker_, &a_, &b_})
            if (*p) {
                kill((*p)->pid, SIGTERM);
                EXPECT_EQ((*p)->wait_exit(15s), 0) << (*p)->stderr_text();
            }
    }

    std::string logs() {
        std::string out;
        if (a_) out += "--- A\n" + a_->stderr_text();
        if (b_) out += "--- B\n" + b_->stderr_text();
        if (worker_) out += "--- worker\n" + worker_->stderr_text();
        return out;
    }

    temp_dir dir_;
    std::filesystem::path cfg_;
    std::optional<child> a_, b_, worker_;
    std::uint16_t port_a_ = 0, port_b_ = 0;
};

TEST_F(multinode, a_socket_on_one_node_sees_writes_of_the_other_in_commit_order) {
    ws_client sock;
    ASSERT_TRUE(sock.connect(port_a_));
    auto sub = sock.request("cars", {{"action", "subscribe"}});
    ASSERT_EQ(status_of(sub), 201) << (sub ? json::serialize(*sub) : "no reply");
    const auto subscription = str(data_of(*sub)["subscription"]);

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
        auto e = sock.receive_until([&](const json::value& f) { return event_of(f, subscription); }, k_wait);
        ASSERT_TRUE(e) << "event " << i << " never arrived\n" << logs();
        auto p = payload_of(*e);
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
    auto car = a.post("/api/cars", json::object{{"brand", "Built"}});
    ASSERT_EQ(car.status, 201) << car.body;
    auto car_id = str(obj(car.json())["id"]);
    auto submitted = a.request("POST", "/api/cars/" + car_id + ":build", "{}", {{"Content-Type", "application/json"}});
    ASSERT_EQ(submitted.status, 202) << submitted.body;
    auto task_id = str(obj(submitted.json())["id"]);

    ws_client sock;
    ASSERT_TRUE(sock.connect(port_b_));
    auto sub = sock.request("tasks", {{"action", "subscribe"}, {"pk", task_id}});
    ASSERT_EQ(status_of(sub), 201) << (sub ? json::serialize(*sub) : "no reply");
    const auto subscription = str(data_of(*sub)["subscription"]);
    double last_progress = -1;
    bool saw_partial = false;
    std::string state;
    for (int i = 0; i < 1000 && state != "succeeded" && state != "failed"; ++i) {
        auto e = sock.receive_until([&](const json::value& f) { return event_of(f, subscription); }, k_wait);
        ASSERT_TRUE(e) << "the task did not finish\n" << logs();
        auto t = data_of(*e);
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
    auto car = a.post("/api/cars", json::object{{"brand", "Requeued"}});
    ASSERT_EQ(car.status, 201) << car.body;
    auto car_id = str(obj(car.json())["id"]);
    auto submitted = a.request("POST", "/api/cars/" + car_id + ":build", "{}", {{"Content-Type", "application/json"}});
    ASSERT_EQ(submitted.status, 202) << submitted.body;
    auto task_id = str(obj(submitted.json())["id"]);
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
    ASSERT_EQ(status_of(me), 200) << (me ? json::serialize(*me) : "no reply");

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
