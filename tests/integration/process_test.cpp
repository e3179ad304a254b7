// The `livebase` binary as users run it: CLI, config errors, SIGTERM drain and restart.
#include "integration/child_process.hpp"
#include "integration/server_fixture.hpp"


#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

using namespace livebase;
using namespace livebase::testing;

namespace {

void write_file(const std::filesystem::path& p, const std::string& text) {
    std::ofstream(p) << text;
}

}  // namespace

TEST(process, version_and_help) {
    temp_dir d;
    {
        child c({LIVEBASE_BINARY, "--version"}, d.path() / "v.err");
        EXPECT_EQ(c.wait_exit(std::chrono::seconds(10)), 0);
        EXPECT_NE(c.stdout_text().find("0.1.0"), std::string::npos);
    }
    {
        child c({LIVEBASE_BINARY, "--help"}, d.path() / "h.err");
        EXPECT_EQ(c.wait_exit(std::chrono::seconds(10)), 0);
        EXPECT_NE(c.stdout_text().find("serve"), std::string::npos);
    }
}

TEST(process, invalid_config_fails_before_listening_naming_file_line_and_key) {
    temp_dir d;
    auto cfg = d.path() / "bad.toml";
    write_file(cfg, "[server]\nlisten = \"127.0.0.1:0\"\n\n[collections.cars]\nfields.model = { type = \"integer\", min = \"low\" }\n");
    for (const char* cmd : {"serve", "check"}) {
        child c({LIVEBASE_BINARY, cmd, "-c", cfg.string()}, d.path() / "bad.err");
        EXPECT_EQ(c.wait_exit(std::chrono::seconds(10)), 1) << cmd;
        auto err = c.stderr_text();
        EXPECT_NE(err.find("bad.toml:5"), std::string::npos) << err;
        EXPECT_NE(err.find("min"), std::string::npos) << err;
        EXPECT_EQ(err.find("listening"), std::string::npos) << err;
    }
}

TEST(process, check_prints_the_plan) {
    temp_dir d;
    auto cfg = d.path() / "ok.toml";
    write_file(cfg, test_config(d.path() / "ok.db"));
    child c({LIVEBASE_BINARY, "check", "-c", cfg.string()}, d.path() / "check.err");
    EXPECT_EQ(c.wait_exit(std::chrono::seconds(10)), 0) << c.stderr_text();
    EXPECT_NE(c.stdout_text().find("cars"), std::string::npos) << c.stdout_text();
}

TEST(process, sigterm_drains_exits_zero_and_keeps_writes) {
    temp_dir d;
    auto cfg = d.path() / "app.toml";
    write_file(cfg, test_config(d.path() / "app.db"));
    std::string id;
    {
        child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string()}, d.path() / "serve1.err");
        auto port = srv.wait_port(std::chrono::seconds(20));
        ASSERT_NE(port, 0) << srv.stderr_text();
        http_client c(port);
        auto r = c.post("/api/cars", json::object{{"brand", "Kept"}});
        ASSERT_EQ(r.status, 201) << r.body;
        id = std::string(r.json().at("id").get_string());
        c.close();
        kill(srv.pid, SIGTERM);
        EXPECT_EQ(srv.wait_exit(std::chrono::seconds(20)), 0) << srv.stderr_text();
        auto log = srv.stderr_text();
        EXPECT_NE(log.find("\"msg\":\"request\""), std::string::npos) << log;  // JSON access log
        EXPECT_NE(log.find("\"msg\":\"stopped\""), std::string::npos) << log;
    }
    {
        child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string()}, d.path() / "serve2.err");
        auto port = srv.wait_port(std::chrono::seconds(20));
        ASSERT_NE(port, 0) << srv.stderr_text();
        http_client c(port);
        EXPECT_EQ(c.get("/api/cars/" + id).status, 200);
        c.close();
        kill(srv.pid, SIGINT);
        EXPECT_EQ(srv.wait_exit(std::chrono::seconds(20)), 0);
    }
}

TEST(process, env_overrides_the_file) {
    temp_dir d;
    auto cfg = d.path() / "app.toml";
    write_file(cfg, test_config(d.path() / "file.db"));
    auto url = "sqlite:" + (d.path() / "env.db").string();
    child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string()}, d.path() / "env.err",
              {"LIVEBASE_STORAGE_URL=" + url});
    auto port = srv.wait_port(std::chrono::seconds(20));
    ASSERT_NE(port, 0) << srv.stderr_text();
    kill(srv.pid, SIGTERM);
    EXPECT_EQ(srv.wait_exit(std::chrono::seconds(20)), 0);
    EXPECT_TRUE(std::filesystem::exists(d.path() / "env.db"));
    EXPECT_FALSE(std::filesystem::exists(d.path() / "file.db"));
}

// Tokens and passwords never reach the log, at any level, whatever the requests carry (http.md
// section 5): logins, Bearer and cookie requests, a failed login, a bad token, a logout.
TEST(process, tokens_and_passwords_never_reach_the_log) {
    temp_dir d;
    auto cfg = d.path() / "app.toml";
    write_file(cfg, test_config(d.path() / "app.db", "[auth]\nsignup = true\nthrottle.anonymous = \"unlimited\"\n"));
    child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string(), "--log-level", "debug"}, d.path() / "log.err");
    auto port = srv.wait_port(std::chrono::seconds(20));
    ASSERT_NE(port, 0) << srv.stderr_text();
    http_client c(port);
    const std::string password = "Pa55word-never-logged";
    ASSERT_EQ(c.post("/api/auth/register", json::object{{"username", "ann"}, {"password", password}}).status, 201);
    auto r = c.post("/api/auth/login", json::object{{"username", "ann"}, {"password", password}});
    ASSERT_EQ(r.status, 200) << r.body;
    const std::string token(r.json().at("token").get_string());
    EXPECT_EQ(c.post("/api/auth/login", json::object{{"username", "ann"}, {"password", password + "x"}}).status, 401);
    EXPECT_EQ(c.get("/api/auth/me", {{"Authorization", "Bearer " + token}}).status, 200);
    EXPECT_EQ(c.get("/api/auth/me", {{"Cookie", "livebase_session=" + token}}).status, 200);
    EXPECT_EQ(c.get("/api/auth/me", {{"Authorization", "Bearer " + token + "x"}}).status, 401);
    EXPECT_EQ(c.post("/api/cars", json::object{{"brand", token}}, {{"Authorization", "Bearer " + token}}).status, 201);
    EXPECT_EQ(c.request("POST", "/api/auth/logout", {}, {{"Authorization", "Bearer " + token}}).status, 204);
    c.close();
    kill(srv.pid, SIGTERM);
    EXPECT_EQ(srv.wait_exit(std::chrono::seconds(20)), 0);
    auto log = srv.stderr_text();
    EXPECT_NE(log.find("\"msg\":\"request\""), std::string::npos) << log;  // it did log requests
    // Not in the access log, the auth messages, nor (the car's brand) a debug line about a body.
    EXPECT_EQ(log.find(token), std::string::npos) << log;
    EXPECT_EQ(log.find(password), std::string::npos) << log;
}
