// Task durability across processes (architecture.md "Delivery guarantees"): a task whose
// process is killed is re-queued after its lease and runs again; a `worker` process runs tasks
// submitted to a `serve` process on the same database; a graceful shutdown hands running tasks
// back so the next start runs them at once. Drives the cars example binary (C++ task kinds
// `build_car` and `double`).
#include "support/test_backend.hpp"
#include "support/nodes.hpp"
#include "support/test_app.hpp"

#include <chrono>
#include <fstream>
#include <optional>
#include <atomic>
#include <mutex>
#include <regex>
#include <thread>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

/// The cars collection, its build action and the double endpoint of examples/cars/cars.toml,
/// on a given database with given [server]/[tasks] settings.
std::string cars_config(const std::filesystem::path& db, const std::string& server_extra,
                        const std::string& tasks) {
    node_config c;
    c.url = storage_url(db.string());
    c.server = "drain_period = \"0s\"\n" + server_extra + "\n";
    c.rest = "[tasks]\n" + tasks + "\n\n" + cars_toml() + k_cars_build_action + k_double_endpoint;
    return c.text();
}

/// Writes cars_config() on d/x.db as d/cars.toml; its path.
std::filesystem::path write_cars_config(const temp_dir& d, const std::string& server_extra, const std::string& tasks) {
    auto cfg = d.path() / "cars.toml";
    write_file(cfg, cars_config(d.path() / "x.db", server_extra, tasks));
    return cfg;
}

/// `cars serve -c cfg` with stderr in d/<name>.err and `env`.
child serve(const temp_dir& d, const std::filesystem::path& cfg, const std::string& name,
            const std::vector<std::string>& env = {}) {
    return child({LIVEBASE_CARS_BINARY, "serve", "-c", cfg.string()}, d.path() / (name + ".err"), env);
}

/// Waits for `srv` to listen, creates a car, starts its build and waits until the task runs.
void start_running_build(child& srv, std::string& car_id, std::string& task_id) {
    auto port = srv.wait_port();
    ASSERT_NE(port, 0) << srv.stderr_text();
    http_client c(port, 10s);
    std::tie(car_id, task_id) = start_build(c);
    ASSERT_FALSE(task_id.empty());
    auto task = wait_state(c, task_id, {"running", "succeeded", "failed", "cancelled"}, 10s);
    ASSERT_EQ(str(task["state"]), "running") << json::serialize(task);
}

}  // namespace

// A worker killed with SIGKILL mid-task: after restart the task is re-queued once its lease
// expires and runs to completion as attempt 2.
TEST(task_durability, killed_worker_task_is_requeued_after_the_lease_and_finishes) {
    temp_dir d;
    auto cfg = write_cars_config(d, "", "lease = \"1s\"\nworkers = 2");
    std::vector<std::string> env{"CARS_STEP_MS=300"};
    std::string car_id, task_id;
    {
        auto srv = serve(d, cfg, "serve1", env);
        start_running_build(srv, car_id, task_id);
        if (::testing::Test::HasFatalFailure()) return;
        srv.kill_now();  // SIGKILL: no hand-back, the lease is left to expire
    }
    auto srv = serve(d, cfg, "serve2", env);
    auto port = srv.wait_port();
    ASSERT_NE(port, 0) << srv.stderr_text();
    http_client c(port, 10s);
    auto task = wait_state(c, task_id, {"succeeded", "failed", "cancelled"}, 15s);
    ASSERT_EQ(str(task["state"]), "succeeded") << json::serialize(task) << "\n" << srv.stderr_text();
    EXPECT_EQ(task["attempt"], 2) << json::serialize(task);
    EXPECT_EQ(task["result"], (json::value(json::object{{"car", car_id.c_str()}, {"state", "ready"}})))
        << json::serialize(task);
    auto result = c.get("/api/tasks/" + task_id + "/result");
    EXPECT_EQ(result.status, 200) << result.body;
    EXPECT_EQ(obj(result.json())["state"], "ready");
    c.close();
    expect_clean_exit(srv);
}

// `serve` with no workers answers HTTP; a separate `worker` process on the same SQLite file
// runs the task; the serve process notices completion through the store and answers the
// `Prefer: wait` request synchronously.
TEST(task_durability, worker_process_runs_tasks_submitted_to_serve) {
    temp_dir d;
    auto cfg = write_cars_config(d, "", "workers = 0\nlease = \"5s\"");
    child srv({LIVEBASE_CARS_BINARY, "serve", "-c", cfg.string()}, d.path() / "serve.err");
    auto port = srv.wait_port();
    ASSERT_NE(port, 0) << srv.stderr_text();
    // Started after serve migrated the database.
    child wrk({LIVEBASE_CARS_BINARY, "worker", "-c", cfg.string()}, d.path() / "worker.err",
              {"LIVEBASE_TASKS_WORKERS=2"});
    static const std::regex started(R"re("msg":"worker started".*"workers":2)re");
    ASSERT_TRUE(wrk.wait_log(started, 15s)) << wrk.stderr_text();

    http_client c(port, 15s);
    auto t0 = steady::now();
    auto r = c.get("/api/double?foo=4", {{"Prefer", "wait=10"}});
    EXPECT_EQ(r.status, 200) << r.body << "\n" << wrk.stderr_text();
    EXPECT_EQ(obj(r.json())["result"], 8) << r.body;
    EXPECT_LT(steady::now() - t0, 5s);
    // A second one, to see the worker keeps claiming.
    auto r2 = c.get("/api/double?foo=21", {{"Prefer", "wait=10"}});
    EXPECT_EQ(r2.status, 200) << r2.body;
    EXPECT_EQ(obj(r2.json())["result"], 42) << r2.body;
    c.close();

    kill(wrk.pid, SIGTERM);
    kill(srv.pid, SIGTERM);
    EXPECT_EQ(wrk.wait_exit(15s), 0) << wrk.stderr_text();
    EXPECT_EQ(srv.wait_exit(15s), 0) << srv.stderr_text();
}

// SIGTERM while a task runs: the process exits 0 within the grace, handing the task back
// (pending, the interrupted attempt not counted); the next start runs it at once rather than
// after the (long) lease.
TEST(task_durability, graceful_shutdown_hands_running_tasks_back) {
    temp_dir d;
    auto cfg = write_cars_config(d, "shutdown_grace = \"1s\"", "lease = \"60s\"\nworkers = 2");
    std::vector<std::string> env{"CARS_STEP_MS=1000"};
    std::string car_id, task_id;
    {
        auto srv = serve(d, cfg, "serve1", env);
        start_running_build(srv, car_id, task_id);
        if (::testing::Test::HasFatalFailure()) return;
        auto t0 = steady::now();
        kill(srv.pid, SIGTERM);
        EXPECT_EQ(srv.wait_exit(8s), 0) << srv.stderr_text();
        EXPECT_LT(steady::now() - t0, 5s);  // 1 s of grace, well before the 3 s build ends
    }
    auto srv = serve(d, cfg, "serve2", env);
    auto port = srv.wait_port();
    ASSERT_NE(port, 0) << srv.stderr_text();
    http_client c(port, 10s);
    auto first = obj(c.get("/api/tasks/" + task_id).json());
    EXPECT_NE(str(first["state"]), "failed") << json::serialize(first);
    // With a 60 s lease, finishing within 12 s proves the task was handed back, not reaped.
    auto task = wait_state(c, task_id, {"succeeded", "failed", "cancelled"}, 12s);
    ASSERT_EQ(str(task["state"]), "succeeded") << json::serialize(task) << "\n" << srv.stderr_text();
    EXPECT_EQ(task["attempt"], 1) << json::serialize(task);
    EXPECT_EQ(task["result"], (json::value(json::object{{"car", car_id.c_str()}, {"state", "ready"}})))
        << json::serialize(task);
    c.close();
    expect_clean_exit(srv);
}

// Async creates under load, the server killed (SIGKILL) three times while submissions, batched
// claims and completions are in flight, then restarted: every acknowledged create ran exactly
// once. A create task commits its record and its own success in one transaction, so after a
// crash it is either pending with no effect (and runs again) or finished with it. Before that,
// a kill between the two commits made the next attempt fail with 409 on the unique vin although
// the first attempt had created the car.
TEST(task_durability, kills_under_async_creates_leave_every_effect_exactly_once) {
    temp_dir d;
    auto cfg = write_cars_config(d, "", "lease = \"1s\"\nworkers = 4");
    struct acked {
        std::string task, vin;
    };
    std::mutex mu;
    std::vector<acked> acks;
    for (int cycle = 0; cycle < 3; ++cycle) {
        child srv({LIVEBASE_CARS_BINARY, "serve", "-c", cfg.string()},
                  d.path() / ("serve" + std::to_string(cycle) + ".err"));
        auto port = srv.wait_port();
        ASSERT_NE(port, 0) << srv.stderr_text();
        const std::size_t before = [&] {
            std::lock_guard lock(mu);
            return acks.size();
        }();
        std::vector<std::thread> submitters;
        for (int t = 0; t < 3; ++t) {
            submitters.emplace_back([&, t] {
                http_client c(port, 5s);
                try {
                    for (int i = 0; i < 200; ++i) {
                        auto vin = "V" + std::to_string(cycle) + "-" + std::to_string(t) + "-" + std::to_string(i);
                        auto r = c.post("/api/cars", json::object{{"brand", "Kill"}, {"vin", vin}},
                                        {{"Prefer", "respond-async"}});
                        if (r.status != 202) return;
                        std::lock_guard lock(mu);
                        acks.push_back({str(obj(r.json())["id"]), vin});
                    }
                } catch (const std::exception&) {
                    // the server was killed under this request
                }
            });
        }
        // Kill once a good part of this cycle's submissions were acknowledged (bounded wait).
        auto deadline = steady::now() + 20s;
        for (;;) {
            {
                std::lock_guard lock(mu);
                if (acks.size() >= before + 250) break;
            }
            if (steady::now() > deadline) break;
            std::this_thread::sleep_for(2ms);
        }
        srv.kill_now();
        for (auto& th : submitters) th.join();
    }
    ASSERT_GT(acks.size(), 600u);

    child srv({LIVEBASE_CARS_BINARY, "serve", "-c", cfg.string()}, d.path() / "final.err");
    auto port = srv.wait_port();
    ASSERT_NE(port, 0) << srv.stderr_text();
    http_client c(port, 10s);
    for (const auto& a : acks) {
        // Leases of the killed runs expire after 1 s; then every task runs to its end.
        auto task = wait_state(c, a.task, {"succeeded", "failed", "cancelled"}, 30s);
        ASSERT_EQ(str(task["state"]), "succeeded") << json::serialize(task) << "\n" << srv.stderr_text();
        auto location = str(task["location"]);
        ASSERT_FALSE(location.empty()) << json::serialize(task);
        auto car = c.get(location);
        ASSERT_EQ(car.status, 200) << location;
        EXPECT_EQ(str(obj(car.json())["vin"]), a.vin);
    }
    c.close();
    expect_clean_exit(srv);
}

// The example's hook: a car created with "build": true has its build enqueued in the car's own
// transaction. A create that fails after the hook ran (a duplicate vin, refused at the insert)
// leaves no task behind.
TEST(task_durability, a_build_requested_with_the_create_commits_with_the_car_or_not_at_all) {
    temp_dir d;
    node_config c;
    c.url = storage_url((d.path() / "x.db").string());
    c.rest = "[tasks]\nworkers = 2\n\n" +
             cars_toml(k_public_rules, "fields.build = { type = \"boolean\", default = false, write_only = true }\n") +
             k_cars_build_action;
    auto cfg = d.path() / "cars.toml";
    write_file(cfg, c.text());
    auto srv = serve(d, cfg, "serve", {"CARS_STEP_MS=30"});
    auto port = srv.wait_port();
    ASSERT_NE(port, 0) << srv.stderr_text();
    http_client h(port, 10s);

    auto builds = [&] {
        std::vector<json::object> out;
        auto page = obj(h.get("/api/tasks?limit=100").json());
        if (page.contains("results") && page.at("results").is_array())
            for (const auto& t : page.at("results").get_array())
                if (str(obj(t)["kind"]) == "build_car") out.push_back(obj(t));
        return out;
    };
    auto car = h.post("/api/cars", json::object{{"brand", " Ford "}, {"vin", "V1"}, {"build", true}});
    ASSERT_EQ(car.status, 201) << car.body;
    const auto id = str(obj(car.json())["id"]);
    EXPECT_EQ(str(obj(car.json())["brand"]), "Ford");  // the example's other hook tidies it
    EXPECT_FALSE(obj(car.json()).contains("build"));   // write-only
    auto found = builds();
    ASSERT_EQ(found.size(), 1u) << h.get("/api/tasks").body;
    auto task = wait_state(h, str(found[0]["id"]), {"succeeded", "failed", "cancelled"}, 15s);
    EXPECT_EQ(str(task["state"]), "succeeded") << json::serialize(task);
    EXPECT_EQ(task["result"], (json::value(json::object{{"car", id.c_str()}, {"state", "ready"}})))
        << json::serialize(task);

    // The same vin again: the hook enqueues, then the insert fails; the task goes with it.
    auto dup = h.post("/api/cars", json::object{{"brand", "Kia"}, {"vin", "V1"}, {"build", true}});
    EXPECT_EQ(dup.status, 409) << dup.body;
    EXPECT_EQ(builds().size(), 1u);
    // Without "build": no task.
    ASSERT_EQ(h.post("/api/cars", json::object{{"brand", "Fiat"}}).status, 201);
    EXPECT_EQ(builds().size(), 1u);
    h.close();
    expect_clean_exit(srv);
}
