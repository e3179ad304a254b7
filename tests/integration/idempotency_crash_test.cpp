// Idempotency-Keys across kill -9 (docs/tasks.md "Idempotency keys"): the cars example is
// killed (SIGKILL) several times while keyed creates and keyed task submissions are in flight,
// then restarted on the same address; every key is retried. A key answers the replay of its
// first response (an acknowledged one always) or a fresh success, never a 409, and no key made
// two records.
#include "support/test_backend.hpp"
#include "support/nodes.hpp"
#include "support/test_app.hpp"

#include <netinet/in.h>
#include <sys/socket.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <fstream>
#include <map>
#include <mutex>
#include <set>
#include <thread>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

std::string crash_config(const std::filesystem::path& db, std::uint16_t port) {
    node_config c;
    c.url = storage_url(db.string());
    c.listen = "127.0.0.1:" + std::to_string(port);
    c.server = "";
    c.rest = "[tasks]\nlease = \"1s\"\nworkers = 2\n\n" + cars_toml(k_public_rules, "max_page_size = 1000\n") +
             k_double_endpoint;
    return c.text();
}

/// One keyed request: a create ("create"), an async create ("async": 202 and a task that
/// creates) or a task submission ("double").
struct keyed {
    std::string key, kind;
    int n = 0;
    std::string first_id;  // the id of an acknowledged first response, "" when none came
};

http_response send(http_client& c, const keyed& k) {
    header_list h{{"Idempotency-Key", k.key}};
    if (k.kind == "create")
        return c.post("/api/cars", json::object{{"brand", "Keyed"}, {"make", k.key}}, h);
    h.emplace_back("Prefer", "respond-async");
    if (k.kind == "async")
        return c.post("/api/cars", json::object{{"brand", "Keyed"}, {"make", k.key}}, h);
    return c.get("/api/double?foo=" + std::to_string(k.n), h);
}

int expected_status(const keyed& k) { return k.kind == "create" ? 201 : 202; }

json::object wait_finished(http_client& c, const std::string& id) {
    json::object task;
    auto deadline = steady::now() + 60s;
    while (steady::now() < deadline) {
        task = obj(c.get("/api/tasks/" + id, {{"Prefer", "wait=5"}}).json());
        auto st = str(task["state"]);
        if (st == "succeeded" || st == "failed" || st == "cancelled") break;
    }
    return task;
}

}  // namespace

TEST(idempotency_crash, keys_in_flight_at_kill_9_replay_or_run_fresh_never_409_never_twice) {
    temp_dir d;
    auto port = free_port();
    ASSERT_NE(port, 0);
    auto cfg = d.path() / "cars.toml";
    std::ofstream(cfg) << crash_config(d.path() / "x.db", port);
    std::mutex mu;
    std::vector<keyed> sent;  // every key sent, acknowledged or not
    const char* kinds[] = {"create", "async", "double"};
    for (int cycle = 0; cycle < 3; ++cycle) {
        child srv({LIVEBASE_CARS_BINARY, "serve", "-c", cfg.string()},
                  d.path() / ("serve" + std::to_string(cycle) + ".err"));
        ASSERT_EQ(srv.wait_port(), port) << srv.stderr_text();
        std::atomic<int> acked{0};
        std::vector<std::thread> clients;
        for (int t = 0; t < 3; ++t) {
            clients.emplace_back([&, t] {
                http_client c(port, 5s);
                for (int i = 0; i < 150; ++i) {
                    keyed k{"k" + std::to_string(cycle) + "-" + std::to_string(t) + "-" + std::to_string(i),
                            kinds[(t + i) % 3], i, ""};
                    std::size_t at;
                    {
                        std::lock_guard lock(mu);
                        at = sent.size();
                        sent.push_back(k);
                    }
                    try {
                        auto r = send(c, k);
                        if (r.status != expected_status(k)) return;
                        std::lock_guard lock(mu);
                        sent[at].first_id = str(obj(r.json())["id"]);
                        ++acked;
                    } catch (const std::exception&) {
                        return;  // killed under this request
                    }
                }
            });
        }
        // Kill once part of this cycle's requests were answered (bounded wait): others are in
        // flight, between their key's claim and their effect's commit.
        auto deadline = steady::now() + 20s;
        while (acked.load() < 120 && steady::now() < deadline) std::this_thread::sleep_for(1ms);
        srv.kill_now();
        for (auto& th : clients) th.join();
    }

    child srv({LIVEBASE_CARS_BINARY, "serve", "-c", cfg.string()}, d.path() / "final.err");
    ASSERT_EQ(srv.wait_port(), port) << srv.stderr_text();
    http_client c(port, 30s);
    std::set<std::string> create_keys;
    std::map<std::string, std::string> task_of;  // key -> task id
    std::size_t replays = 0, fresh = 0;
    for (const auto& k : sent) {
        auto r = send(c, k);
        ASSERT_NE(r.status, 409) << k.key << " " << r.body;
        ASSERT_EQ(r.status, expected_status(k)) << k.key << " " << r.body;
        auto id = str(obj(r.json())["id"]);
        bool replayed = r.header("Idempotent-Replayed") == "true";
        if (!k.first_id.empty()) {
            // An acknowledged key was stored with its effect: always the replay.
            EXPECT_TRUE(replayed) << k.key;
            EXPECT_EQ(id, k.first_id) << k.key;
        }
        (replayed ? replays : fresh)++;
        // A second retry is a replay of whatever the first retry got.
        auto again = send(c, k);
        EXPECT_EQ(again.header("Idempotent-Replayed"), "true") << k.key << " " << again.body;
        EXPECT_EQ(str(obj(again.json())["id"]), id) << k.key;
        if (k.kind == "create") create_keys.insert(k.key);
        else task_of[k.key] = id;
    }
    EXPECT_GT(replays, 300u);
    // Every async create ran to its end (a killed run's lease expires after 1 s).
    std::set<std::string> async_keys;
    for (const auto& [key, task_id] : task_of) {
        auto task = wait_finished(c, task_id);
        ASSERT_EQ(str(task["state"]), "succeeded") << key << " " << json::serialize(task);
        if (key.size() && std::find_if(sent.begin(), sent.end(), [&](const keyed& k) {
                              return k.key == key && k.kind == "async";
                          }) != sent.end())
            async_keys.insert(key);
    }
    // Exactly one car per create key (sync or async): none lost, none twice.
    std::map<std::string, int> cars_per_key;
    for (std::size_t offset = 0;; offset += 1000) {
        auto page = obj(c.get("/api/cars?brand=Keyed&limit=1000&offset=" + std::to_string(offset)).json());
        auto results = page["results"].is_array() ? page["results"].get_array() : json::array{};
        for (const auto& car : results) ++cars_per_key[str(obj(car)["make"])];
        if (results.size() < 1000) break;
    }
    for (const auto& [key, n] : cars_per_key) EXPECT_EQ(n, 1) << key;
    EXPECT_EQ(cars_per_key.size(), create_keys.size() + async_keys.size());
    // One task per task key: the tasks of the double endpoint are as many as its keys.
    std::set<std::string> double_tasks;
    for (const auto& k : sent)
        if (k.kind == "double") double_tasks.insert(task_of[k.key]);
    std::size_t double_keys = 0;
    for (const auto& k : sent) double_keys += k.kind == "double";
    EXPECT_EQ(double_tasks.size(), double_keys);
    auto listed = obj(c.get("/api/tasks?kind=double&limit=1").json());
    ASSERT_TRUE(listed["count"].is_int64()) << json::serialize(listed);
    EXPECT_EQ(static_cast<std::size_t>(listed["count"].get_int64()), double_keys);
    std::cerr << "keys " << sent.size() << ", replays " << replays << ", fresh runs " << fresh << "\n";
    c.close();
    kill(srv.pid, SIGTERM);
    EXPECT_EQ(srv.wait_exit(15s), 0) << srv.stderr_text();
}
