#pragma once
/// The suites that run the binaries as users do (`livebase`, the cars example): one
/// configuration builder, and a fixture of two `serve` nodes (and a worker) of the cars example
/// on one PostgreSQL database.
#include "support/child_process.hpp"
#include "support/http_client.hpp"
#include "support/json_helpers.hpp"
#include "support/ws_client.hpp"
#include "support/temp_dir.hpp"
#include "support/test_backend.hpp"
#include "support/wait.hpp"

#include <gtest/gtest.h>

#include <signal.h>

#include <chrono>
#include <cstdint>
#include <filesystem>
#include <initializer_list>
#include <utility>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace livebase::test {

/// The configuration file of a node: [server] listening on `listen` with two threads and the
/// `server` lines, [storage] at `url` with the `storage` lines, [auth] with the `auth` lines
/// (anonymous callers unthrottled), then `rest` (the other sections, verbatim).
struct node_config {
    std::string url;
    std::string rest;
    std::string listen = "127.0.0.1:0";
    std::string server = "shutdown_grace = \"2s\"\ndrain_period = \"0s\"\n";
    std::string storage;
    std::string auth = "throttle.anonymous = \"unlimited\"\n";

    std::string text() const {
        return "[server]\nlisten = \"" + listen + "\"\nthreads = 2\n" + server + "\n[storage]\nurl = \"" + url +
               "\"\n" + storage + "\n[auth]\n" + auth + "\n" + rest;
    }
};

/// Creates a car (of `brand`) and starts its build; returns {car id, task id}.
inline std::pair<std::string, std::string> start_build(testing::http_client& c, const std::string& brand = "Durable") {
    auto car = c.post("/api/cars", json::object{{"brand", brand}});
    EXPECT_EQ(car.status, 201) << car.body;
    auto car_id = str(obj(car.json())["id"]);
    auto r = c.request("POST", "/api/cars/" + car_id + ":build", "{}");
    EXPECT_EQ(r.status, 202) << r.body;
    return {car_id, str(obj(r.json())["id"])};
}

/// Polls GET /api/tasks/{id} until its state is one of `states`; the last task seen.
inline json::object wait_state(testing::http_client& c, const std::string& id,
                               std::initializer_list<std::string_view> states, std::chrono::milliseconds limit = k_wait) {
    json::object task;
    eventually(
        [&] {
            task = obj(c.get("/api/tasks/" + id).json());
            auto st = str(task["state"]);
            for (auto s : states)
                if (st == s) return true;
            return false;
        },
        limit);
    return task;
}

/// Subscribes `sock` to the changes of the cars; the subscription ("" and a failed expectation
/// when refused).
inline std::string subscribe_cars(testing::ws_client& sock) {
    auto sub = sock.request("cars", {{"action", "subscribe"}});
    EXPECT_EQ(testing::status_of(sub), 201) << dump(sub);
    return sub ? testing::field(testing::data_of(*sub), "subscription") : "";
}

/// Stops `p` with SIGTERM and expects a clean exit within 15 s.
inline void expect_clean_exit(testing::child& p) {
    kill(p.pid, SIGTERM);
    EXPECT_EQ(p.wait_exit(std::chrono::seconds(15)), 0) << p.stderr_text();
}

#ifdef LIVEBASE_CARS_BINARY
/// Two `serve` nodes of the cars example (A and B) on one PostgreSQL database, and optionally a
/// `worker`. Skipped outside the PostgreSQL pass (LIVEBASE_TEST_BACKEND=postgres). TearDown
/// stops each process with SIGTERM (after SIGCONT: a test may have paused one) and expects a
/// clean exit.
class nodes_test : public ::testing::Test {
protected:
    void SetUp() override {
        if (!on_postgres() || postgres_url().empty())
            GTEST_SKIP() << "runs in the PostgreSQL pass (LIVEBASE_TEST_BACKEND=postgres)";
    }

    void TearDown() override {
        for (auto* p : {&worker_, &a_, &b_})
            if (*p) {
                kill((*p)->pid, SIGCONT);
                expect_clean_exit(**p);
            }
    }

    /// The storage URL of the test's database `name`.
    std::string database(const std::string& name) { return storage_url((dir_.path() / (name + ".db")).string()); }

    /// Writes `config` as <name>.toml and starts nodes A and B on it with `env`.
    void start_nodes(const std::string& name, const node_config& config, const std::vector<std::string>& env = {}) {
        cfg_ = dir_.path() / (name + ".toml");
        std::ofstream(cfg_) << config.text();
        a_.emplace(std::vector<std::string>{LIVEBASE_CARS_BINARY, "serve", "-c", cfg_.string()}, dir_.path() / "a.err",
                   env);
        port_a_ = a_->wait_port();
        ASSERT_NE(port_a_, 0) << a_->stderr_text();
        b_.emplace(std::vector<std::string>{LIVEBASE_CARS_BINARY, "serve", "-c", cfg_.string()}, dir_.path() / "b.err",
                   env);
        port_b_ = b_->wait_port();
        ASSERT_NE(port_b_, 0) << b_->stderr_text();
    }

    /// (Re)starts the worker (one task at a time, 200 ms steps) and waits until it runs.
    void start_worker(const std::string& name) {
        worker_.reset();
        worker_.emplace(std::vector<std::string>{LIVEBASE_CARS_BINARY, "worker", "-c", cfg_.string()},
                        dir_.path() / (name + ".err"),
                        std::vector<std::string>{"LIVEBASE_TASKS_WORKERS=1", "CARS_STEP_MS=200"});
        static const std::regex started(R"re("msg":"worker started")re");
        ASSERT_TRUE(worker_->wait_log(started, k_wait)) << worker_->stderr_text();
    }

    /// The logs of every process, for failure messages.
    std::string logs() {
        std::string out;
        if (a_) out += "--- A\n" + a_->stderr_text();
        if (b_) out += "--- B\n" + b_->stderr_text();
        if (worker_) out += "--- worker\n" + worker_->stderr_text();
        return out;
    }

    temp_dir dir_;
    std::filesystem::path cfg_;
    std::optional<testing::child> a_, b_, worker_;
    std::uint16_t port_a_ = 0, port_b_ = 0;
};
#endif

}  // namespace livebase::test
