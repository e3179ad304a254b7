// The `livebase` binary as users run it: CLI, config errors, SIGTERM drain and restart.
#include "support/child_process.hpp"
#include "support/test_app.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <sstream>
#include <thread>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {

/// test_config() on d/<db>.db written as d/<name>.toml; its path.
std::filesystem::path write_test_config(const temp_dir& d, const std::string& name, const std::string& db) {
    auto cfg = d.path() / (name + ".toml");
    write_file(cfg, test_config(d.path() / (db + ".db")));
    return cfg;
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
    auto cfg = write_test_config(d, "ok", "ok");
    child c({LIVEBASE_BINARY, "check", "-c", cfg.string()}, d.path() / "check.err");
    EXPECT_EQ(c.wait_exit(std::chrono::seconds(10)), 0) << c.stderr_text();
    EXPECT_NE(c.stdout_text().find("cars"), std::string::npos) << c.stdout_text();
}

TEST(process, sigterm_drains_exits_zero_and_keeps_writes) {
    temp_dir d;
    auto cfg = write_test_config(d, "app", "app");
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

// SIGTERM with a drain period: the server keeps accepting, so a load balancer sees 503
// draining (not refused connections); a keep-alive client's request sent after the drain began
// is answered with Connection: close rather than reset.
TEST(process, sigterm_keeps_accepting_for_the_drain_period_and_answers_keep_alive_requests) {
    temp_dir d;
    auto cfg = d.path() / "app.toml";
    auto text = test_config(d.path() / "app.db");
    const std::string no_drain = "drain_period = \"0s\"";
    text.replace(text.find(no_drain), no_drain.size(), "drain_period = \"3s\"");
    write_file(cfg, text);
    child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string()}, d.path() / "drain.err");
    auto port = srv.wait_port(std::chrono::seconds(20));
    ASSERT_NE(port, 0) << srv.stderr_text();
    http_client kept(port);
    ASSERT_EQ(kept.get("/api/health/ready").status, 200);  // an idle keep-alive connection now

    kill(srv.pid, SIGTERM);
    // New connections are still accepted: readiness turns 503 draining.
    http_response ready;
    for (int i = 0; i < 500; ++i) {
        http_client probe(port);
        ready = probe.get("/api/health/ready");
        if (ready.status == 503) break;
    }
    ASSERT_EQ(ready.status, 503) << ready.body;
    EXPECT_EQ(ready.body, R"({"status":"draining"})");
    EXPECT_EQ(ready.header("Retry-After"), "1");
    EXPECT_EQ(ready.header("Connection"), "close");
    {
        http_client late(port);
        auto r = late.get("/api/cars");
        EXPECT_EQ(r.status, 503) << r.body;
        EXPECT_EQ(r.header("Retry-After"), "1");
        EXPECT_EQ(r.header("Connection"), "close");
    }
    // The kept-alive connection was not reset: its next request is served, and told to close.
    auto r = kept.get("/api/cars");
    EXPECT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("Connection"), "close");
    EXPECT_EQ(srv.wait_exit(std::chrono::seconds(20)), 0) << srv.stderr_text();
    EXPECT_NE(srv.stderr_text().find("\"drain_ms\":3000"), std::string::npos) << srv.stderr_text();
}

TEST(process, env_overrides_the_file) {
    temp_dir d;
    auto cfg = write_test_config(d, "app", "file");
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

// A fresh database says so in one line; the console's address is printed, or where it was
// looked for and how to build it.
TEST(process, startup_says_one_migration_line_and_where_the_console_is) {
    temp_dir d;
    auto cfg = write_test_config(d, "app", "unused");
    const auto db = d.path() / "fresh.db";
    const auto console = d.path() / "console";
    std::filesystem::create_directories(console);
    const std::vector<std::string> env{"LIVEBASE_STORAGE_URL=sqlite:" + db.string(),
                                       "LIVEBASE_SERVER_CONSOLE_DIR=" + console.string()};
    {
        child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string()}, d.path() / "first.err", env);
        auto port = srv.wait_port(std::chrono::seconds(20));
        ASSERT_NE(port, 0) << srv.stderr_text();
        ASSERT_TRUE(srv.wait_log(std::regex("console not built"), std::chrono::seconds(10))) << srv.stderr_text();
        kill(srv.pid, SIGTERM);
        EXPECT_EQ(srv.wait_exit(std::chrono::seconds(20)), 0);
        auto log = srv.stderr_text();
        std::size_t migrated = 0;
        std::istringstream in(log);
        for (std::string line; std::getline(in, line);)
            if (line.find("migrated") != std::string::npos) {
                ++migrated;
                EXPECT_NE(line.find(R"("msg":"database migrated")"), std::string::npos) << line;
                EXPECT_NE(line.find("create table: "), std::string::npos) << line;
            }
        EXPECT_EQ(migrated, 1u) << log;
        EXPECT_NE(log.find(R"("looked_in":")" + console.string() + "\""), std::string::npos) << log;
        EXPECT_NE(log.find("npm run build"), std::string::npos) << log;
        EXPECT_NE(log.find(R"("storage":"sqlite:)" + db.string() + "\""), std::string::npos) << log;
        EXPECT_NE(log.find(R"("config":")" + cfg.string() + "\""), std::string::npos) << log;
    }
    write_file(console / "index.html", "<!doctype html><title>console</title>");
    {
        child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string()}, d.path() / "second.err", env);
        auto port = srv.wait_port(std::chrono::seconds(20));
        ASSERT_NE(port, 0) << srv.stderr_text();
        auto url = srv.wait_log(std::regex(R"re("msg":"console","url":"([^"]+)")re"), std::chrono::seconds(10));
        ASSERT_TRUE(url) << srv.stderr_text();
        EXPECT_EQ(*url, "http://127.0.0.1:" + std::to_string(port) + "/_/");
        kill(srv.pid, SIGTERM);
        EXPECT_EQ(srv.wait_exit(std::chrono::seconds(20)), 0);
        EXPECT_EQ(srv.stderr_text().find("migrated"), std::string::npos) << "nothing to migrate the second time";
    }
}

// A port in use fails at once, before the database is touched, and says how to pick another.
TEST(process, a_busy_port_fails_before_migrations_naming_the_variable) {
    temp_dir d;
    auto cfg = write_test_config(d, "app", "unused");
    const auto db = d.path() / "never" / "made.db";
    int holder = socket(AF_INET, SOCK_STREAM, 0);
    ASSERT_GE(holder, 0);
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    ASSERT_EQ(bind(holder, reinterpret_cast<sockaddr*>(&addr), sizeof addr), 0);
    ASSERT_EQ(listen(holder, 1), 0);
    socklen_t len = sizeof addr;
    ASSERT_EQ(getsockname(holder, reinterpret_cast<sockaddr*>(&addr), &len), 0);
    const auto port = std::to_string(ntohs(addr.sin_port));
    child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string()}, d.path() / "busy.err",
              {"LIVEBASE_STORAGE_URL=sqlite:" + db.string(), "LIVEBASE_SERVER_LISTEN=127.0.0.1:" + port});
    EXPECT_EQ(srv.wait_exit(std::chrono::seconds(20)), 1);
    close(holder);
    auto err = srv.stderr_text();
    EXPECT_NE(err.find("Cannot listen on 127.0.0.1:" + port), std::string::npos) << err;
    EXPECT_NE(err.find("LIVEBASE_SERVER_LISTEN"), std::string::npos) << err;
    EXPECT_NE(err.find("server.listen"), std::string::npos) << err;
    EXPECT_EQ(err.find("migrated"), std::string::npos) << err;
    EXPECT_FALSE(std::filesystem::exists(db.parent_path())) << "the database was opened";
}

// `check` plans against a database that does not exist without making it (nor its directory).
TEST(process, check_creates_no_database) {
    temp_dir d;
    auto cfg = write_test_config(d, "app", "unused");
    const auto db = d.path() / "data" / "app.db";
    child c({LIVEBASE_BINARY, "check", "-c", cfg.string()}, d.path() / "check.err",
            {"LIVEBASE_STORAGE_URL=sqlite:" + db.string()});
    EXPECT_EQ(c.wait_exit(std::chrono::seconds(20)), 0) << c.stderr_text();
    auto out = c.stdout_text();
    EXPECT_NE(out.find("does not exist yet"), std::string::npos) << out;
    EXPECT_NE(out.find("create table cars"), std::string::npos) << out;
    EXPECT_FALSE(std::filesystem::exists(db.parent_path())) << out;
    // Once migrated, check reads the real file and has nothing to do.
    child m({LIVEBASE_BINARY, "migrate", "-c", cfg.string()}, d.path() / "migrate.err",
            {"LIVEBASE_STORAGE_URL=sqlite:" + db.string()});
    ASSERT_EQ(m.wait_exit(std::chrono::seconds(20)), 0) << m.stderr_text();
    ASSERT_TRUE(std::filesystem::exists(db));
    child again({LIVEBASE_BINARY, "check", "-c", cfg.string()}, d.path() / "again.err",
                {"LIVEBASE_STORAGE_URL=sqlite:" + db.string()});
    EXPECT_EQ(again.wait_exit(std::chrono::seconds(20)), 0) << again.stderr_text();
    EXPECT_NE(again.stdout_text().find("nothing to do"), std::string::npos) << again.stdout_text();
}

// Without -c, the default file is looked for in the working directory; its absence is named.
TEST(process, no_config_file_names_the_file_it_looked_for) {
    temp_dir d;
    ASSERT_FALSE(std::filesystem::exists("livebase.toml")) << "the test needs a directory without one";
    child c({LIVEBASE_BINARY, "serve"}, d.path() / "none.err");
    EXPECT_EQ(c.wait_exit(std::chrono::seconds(10)), 1);
    auto err = c.stderr_text();
    EXPECT_NE(err.find("looked for " + (std::filesystem::current_path() / "livebase.toml").string()), std::string::npos)
        << err;
    EXPECT_NE(err.find("-c FILE"), std::string::npos) << err;
    EXPECT_EQ(err.find("listening"), std::string::npos) << err;
    child named({LIVEBASE_BINARY, "check", "-c", (d.path() / "missing.toml").string()}, d.path() / "named.err");
    EXPECT_EQ(named.wait_exit(std::chrono::seconds(10)), 1);
    EXPECT_NE(named.stderr_text().find("looked for " + (d.path() / "missing.toml").string()), std::string::npos)
        << named.stderr_text();
}
