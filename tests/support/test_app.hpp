#pragma once
/// The test-app builder of every suite that runs a real livebase app on 127.0.0.1 (ephemeral
/// port) over a fresh database: test_config() writes its configuration (the cars of the example
/// plus collections of every field type), app_test loads it, lets the test add its task kinds
/// and actions, starts the app and hands out clients.
#include "support/cars.hpp"
#include "support/json_helpers.hpp"
#include "support/temp_dir.hpp"
#include "support/test_backend.hpp"
#include "support/wait.hpp"
#include "support/ws_client.hpp"

#include <livebase/app/app.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>
#include <support/http_client.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <chrono>
#include <filesystem>
#include <memory>
#include <string>

namespace livebase::test {

using testing::header_list;
using testing::http_client;
using testing::http_response;
using testing::ws_client;
using testing::ws_connect_options;

// Users in tests: `app_.auth().create_user_sync("ann", "password-1", /*admin=*/false)` after
// start(), then `POST /api/auth/login` for a token (or `app_.auth().login(...)`). Sign-up needs
// `[auth] signup = true` in `extra` (which then replaces the default unthrottled [auth]).

/// The cars collection of the example plus a few collections that exercise every field type
/// and reference policy, all public and unthrottled unless `extra` declares its own [auth].
/// `cars_rules` replaces the cars collection's rules line (e.g.
/// `rules = { list = "owner", retrieve = "owner", create = "authenticated", update = "owner", delete = "owner" }`).
std::string test_config(const std::filesystem::path& db, std::string extra = {},
                        std::string cars_rules = k_public_rules);

/// The rules of a collection whose records only their owners see and change.
inline constexpr const char* k_owner_rules =
    R"(rules = { list = "owner", retrieve = "owner", create = "authenticated", update = "owner", delete = "owner" })";

/// Two task endpoints, POST /api/steps (kind "steps") and POST /api/hang (kind "hang"), on
/// two workers: the suites that follow a task's progress declare these kinds.
inline const std::string k_steps_and_hang = R"(
[tasks]
workers = 2
lease = "5s"

)" + endpoint_toml("steps", "POST", "steps") + R"(
)" + endpoint_toml("hang", "POST", "hang");

/// The JSON object an SSE event carries in its data (empty when it is not one).
inline json::object data_json(const testing::sse_event& e) {
    auto v = parse_json(e.data);
    return v ? obj(*v) : json::object{};
}

/// An Authorization header with a bearer token.
inline header_list bearer(const std::string& token) { return {{"Authorization", "Bearer " + token}}; }
/// `a` then `b`.
inline header_list with(header_list a, const header_list& b) {
    a.insert(a.end(), b.begin(), b.end());
    return a;
}

/// A fixture with one app. A test (or its fixture's SetUp) calls configure(), adds what it
/// needs to app_, then start_app(). TearDown sets release_ (the signal for the test's task
/// kinds that hold a worker to return) and stops the app.
class app_test : public ::testing::Test {
protected:
    void TearDown() override {
        release_ = true;
        app_.stop();
    }

    /// Loads test_config(<dir>/<name>.db, extra, cars_rules) as <name>.toml at `level`.
    void configure(const std::string& extra = {}, std::string cars_rules = k_public_rules,
                   log_level level = log_level::warn, const std::string& name = "test");
    /// Starts the app (a fatal failure when it does not start).
    void start_app();
    /// configure() with `extra` at `level`, then start_app().
    void start_with(const std::string& extra, log_level level = log_level::warn);

    /// The test actions of the cars: "count" (GET/POST: the number of cars, and the input) and
    /// "honk" (detail: the car's brand; input {"fail": ...} answers 409, {"throw": ...} throws).
    void add_test_actions();
    /// A task kind that marks `started` and holds its worker until release_ (bounded: 10 s),
    /// cancellable, then answers {"held": true}.
    void add_hold_kind(const std::string& kind, std::atomic<int>* started = nullptr);

    /// A client of the app with the fixture's timeout.
    http_client client() { return http_client(app_.port(), client_timeout_); }
    /// The task kind "hang": reports progress 1, then holds its worker until release_ or
    /// cancellation (bounded: `polls` × 20 ms), then answers {}.
    void add_hang_kind(int polls);

    /// A WebSocket connected to the app (a failed expectation when it does not connect).
    std::unique_ptr<ws_client> connect(ws_connect_options o = {});
    /// Creates a car over REST and returns its body.
    json::object create_car(http_client& c, json::object car);
    /// Logs `name` in with `password` and returns the token ("" and a failed expectation when
    /// refused).
    std::string login_token(const std::string& name, const std::string& password);

    temp_dir dir_;
    livebase::app app_;
    std::chrono::milliseconds client_timeout_{5000};
    std::atomic<bool> release_{false};
};

/// The app of most integration suites: test_config() with the test actions, started.
class server_test : public app_test {
protected:
    void SetUp() override {
        LIVEBASE_REQUIRE_BACKEND();
        configure();
        add_test_actions();
        start_app();
    }
};

}  // namespace livebase::test

namespace livebase::testing {
// The integration suites name these from livebase::testing, beside the client.
using test::app_test;
using test::server_test;
using test::temp_dir;
using test::test_config;
}  // namespace livebase::testing
