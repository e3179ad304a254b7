#pragma once
// Starts a real livebase app on 127.0.0.1 (ephemeral port) with a fresh SQLite file.
#include "support/test_backend.hpp"
#include <livebase/app/app.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>
#include <support/http_client.hpp>

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <random>
#include <string>

namespace livebase::testing {

/// A unique, empty temporary directory removed on destruction.
class temp_dir {
public:
    temp_dir() {
        std::random_device rd;
        path_ = std::filesystem::temp_directory_path() /
                ("livebase-test-" + std::to_string(rd()) + "-" + std::to_string(counter_++));
        std::filesystem::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    const std::filesystem::path& path() const { return path_; }

private:
    static inline std::atomic<int> counter_{0};
    std::filesystem::path path_;
};

// Users in tests: `app_.auth().create_user_sync("ann", "password-1", /*admin=*/false)` after
// start(), then `POST /api/auth/login` for a token (or `app_.auth().login(...)`). Sign-up needs
// `[auth] signup = true` in `extra` (which then replaces the default unthrottled [auth]).

/// Every action of a collection open to everyone: the suites that are not about permissions
/// write anonymously (auth_*_test.cpp declare their own rules).
inline constexpr const char* k_public_rules =
    R"(rules = { list = "public", retrieve = "public", create = "public", update = "public", delete = "public" })";

/// The cars collection of the example plus a few collections that exercise every field type
/// and reference policy, all public and unthrottled unless `extra` declares its own [auth].
/// `cars_rules` replaces the cars collection's rules line (e.g.
/// `rules = { list = "owner", retrieve = "owner", create = "authenticated", update = "owner", delete = "owner" }`).
inline std::string test_config(const std::filesystem::path& db, std::string extra = {},
                               std::string cars_rules = k_public_rules) {
    const std::string pub = std::string(k_public_rules) + "\n";
    const std::string auth = extra.find("[auth]") == std::string::npos
                                 ? "[auth]\nthrottle.anonymous = \"unlimited\"\nthrottle.user = \"unlimited\"\n\n"
                                 : "";
    return R"([server]
listen = "127.0.0.1:0"
threads = 2
max_body = "64KiB"
shutdown_grace = "2s"
drain_period = "0s"

[storage]
url = ")" + test::storage_url(db.string()) + R"("

)" + auth + R"(
[collections.cars]
)" + cars_rules + "\n" + R"(owned = true
fields.brand = { type = "string", required = true, max_length = 100 }
fields.make  = { type = "string", default = "" }
fields.model = { type = "integer", min = 1886, max = 2100 }
fields.color = { type = "string", choices = ["Blue", "Red", "Black"] }
fields.vin   = { type = "string", unique = true }
indexes = [["brand", "model"]]
page_size = 25
max_page_size = 100

[collections.things]
)" + pub + R"(fields.title   = { type = "string", required = true, pattern = "^[A-Z]" }
fields.body    = { type = "text" }
fields.count   = { type = "integer" }
fields.price   = { type = "number", min = 0 }
fields.active  = { type = "boolean", default = true }
fields.when    = { type = "datetime" }
fields.meta    = { type = "json" }
fields.secret  = { type = "string", write_only = true }
fields.stamp   = { type = "string", read_only = true }

[collections.owners]
)" + pub + R"(fields.name = { type = "string", required = true }

[collections.pets]
)" + pub + R"(fields.name  = { type = "string", required = true }
fields.owner_ref = { type = "ref", to = "owners", on_delete = "cascade" }
fields.vet   = { type = "ref", to = "vets", on_delete = "null" }

[collections.vets]
)" + pub + R"(fields.name = { type = "string", required = true }

[collections.visits]
)" + pub + R"(fields.pet = { type = "ref", to = "pets" }
)" + extra;
}

class server_test : public ::testing::Test {
protected:
    void SetUp() override {
        LIVEBASE_REQUIRE_BACKEND();
        auto r = app_.load_config_string(test_config(dir_.path() / "test.db"), "test.toml");
        ASSERT_TRUE(r) << r.error().detail;
        app_.log().set_level(log_level::warn);
        add_actions();
        auto s = app_.start();
        ASSERT_TRUE(s) << s.error().detail;
    }
    void TearDown() override { app_.stop(); }

    /// Registers the test actions (a list action allowing GET, a detail action).
    void add_actions();

    http_client client() { return http_client(app_.port()); }
    /// Creates a car and returns its body.
    json::object create_car(http_client& c, json::object car);

    temp_dir dir_;
    livebase::app app_;
};

}  // namespace livebase::testing
