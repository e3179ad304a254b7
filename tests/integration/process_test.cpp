// The `livebase` binary as users run it: CLI, config errors, SIGTERM drain and restart.
#include "integration/server_fixture.hpp"

#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <regex>
#include <thread>

extern char** environ;

using namespace livebase;
using namespace livebase::testing;

namespace {

/// A child process with its stderr captured to a file.
struct child {
    pid_t pid = -1;
    std::filesystem::path err;

    child(const std::vector<std::string>& args, const std::filesystem::path& err_file) : err(err_file) {
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 1, (err.string() + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), environ) != 0) pid = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    ~child() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
        }
    }
    /// Exit status, or -1 on timeout / signal.
    int wait_exit(std::chrono::seconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            int st = 0;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                pid = -1;
                return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
    }
    std::string stderr_text() const {
        std::ifstream f(err);
        return {std::istreambuf_iterator<char>(f), {}};
    }
    std::string stdout_text() const {
        std::ifstream f(err.string() + ".out");
        return {std::istreambuf_iterator<char>(f), {}};
    }
    /// Waits for the "listening" log line and returns its port (0 on timeout).
    std::uint16_t wait_port(std::chrono::seconds limit) {
        std::regex re(R"re("msg":"listening".*"port":(\d+))re");
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            std::smatch m;
            auto text = stderr_text();
            if (std::regex_search(text, m, re)) return static_cast<std::uint16_t>(std::stoi(m[1]));
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return 0;
    }
};

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
    setenv("LIVEBASE_STORAGE_URL", url.c_str(), 1);
    child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string()}, d.path() / "env.err");
    unsetenv("LIVEBASE_STORAGE_URL");
    auto port = srv.wait_port(std::chrono::seconds(20));
    ASSERT_NE(port, 0) << srv.stderr_text();
    kill(srv.pid, SIGTERM);
    EXPECT_EQ(srv.wait_exit(std::chrono::seconds(20)), 0);
    EXPECT_TRUE(std::filesystem::exists(d.path() / "env.db"));
    EXPECT_FALSE(std::filesystem::exists(d.path() / "file.db"));
}
