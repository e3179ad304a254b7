// PostgreSQL outages as an operator meets them, with the `livebase` binary: a PostgreSQL that
// accepts TCP but never answers (check and serve give up with a clear message), and a frozen
// (SIGSTOP'd) private PostgreSQL under a running server (503 with Retry-After within the
// deadline, readiness 503, and writes resume by themselves after SIGCONT).
#include "support/silent_listener.hpp"
#include "support/nodes.hpp"
#include "support/test_app.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <unistd.h>

#include <cstdio>
#include <fstream>
#include <regex>
#include <sstream>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

std::size_t count(const std::string& text, std::string_view what) {
    std::size_t n = 0;
    for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
    return n;
}

using test::silent_listener;

std::string outage_config(const std::string& url, const std::string& storage_extra) {
    node_config c;
    c.url = url;
    c.storage = storage_extra + "\n";
    c.rest = R"([collections.cars]
rules.list = "public"
rules.retrieve = "public"
rules.create = "public"
fields.brand = { type = "string", required = true }
)";
    return c.text();
}

}  // namespace

TEST(storage_outage, check_gives_up_after_connect_timeout_naming_the_server) {
    silent_listener pg;
    temp_dir d;
    auto cfg = d.path() / "app.toml";
    const std::string where = "127.0.0.1:" + std::to_string(pg.port());
    write_file(cfg, outage_config("postgresql://nobody@" + where + "/db", "connect_timeout = \"500ms\""));
    for (const char* cmd : {"check", "migrate"}) {
        child c({LIVEBASE_BINARY, cmd, "-c", cfg.string()}, d.path() / "check.err");
        EXPECT_EQ(c.wait_exit(20s), 1) << cmd << c.stderr_text();
        const auto err = c.stderr_text();
        EXPECT_NE(err.find("Cannot connect to PostgreSQL at " + where), std::string::npos) << err;
        EXPECT_NE(err.find("connect_timeout"), std::string::npos) << err;
    }
}

TEST(storage_outage, serve_retries_until_startup_wait_then_exits_with_a_clear_message) {
    silent_listener pg;
    temp_dir d;
    auto cfg = d.path() / "app.toml";
    const std::string where = "127.0.0.1:" + std::to_string(pg.port());
    write_file(cfg, outage_config("postgresql://nobody@" + where + "/db",
                                  "connect_timeout = \"300ms\"\nstartup_wait = \"1500ms\""));
    child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string()}, d.path() / "serve.err");
    EXPECT_EQ(srv.wait_exit(30s), 1) << srv.stderr_text();
    const auto err = srv.stderr_text();
    EXPECT_GE(count(err, "waiting for PostgreSQL at " + where + ": no answer within connect_timeout (300ms), retrying"), 1u)
        << err;
    EXPECT_NE(err.find("was not reachable within storage.startup_wait (1500ms)"), std::string::npos) << err;
    EXPECT_EQ(err.find("\"msg\":\"listening\""), std::string::npos) << err;
}

namespace {

/// A private PostgreSQL (scripts/pg.sh) on a free port, that the test can freeze (SIGSTOP of
/// the postmaster and every backend) and thaw.
class private_postgres {
public:
    private_postgres() {
        dir_ = std::filesystem::temp_directory_path() / ("lb-frozen-" + std::to_string(::getpid()));
        port_ = free_port();
        const std::string cmd = std::string(LIVEBASE_SOURCE_DIR) + "/scripts/pg.sh start " + dir_.string() + " " +
                                std::to_string(port_) + " 2>&1";
        if (FILE* p = ::popen(cmd.c_str(), "r")) {
            char buf[512];
            while (std::fgets(buf, sizeof buf, p)) url_ += buf;
            if (::pclose(p) != 0) url_.clear();
        }
        while (!url_.empty() && (url_.back() == '\n' || url_.back() == ' ')) url_.pop_back();
    }
    ~private_postgres() {
        thaw();
        const std::string cmd = std::string(LIVEBASE_SOURCE_DIR) + "/scripts/pg.sh stop " + dir_.string() + " >/dev/null 2>&1";
        (void)std::system(cmd.c_str());
    }
    const std::string& url() const { return url_; }

    void freeze() {
        frozen_ = processes();
        for (int pid : frozen_) ::kill(pid, SIGSTOP);
    }
    void thaw() {
        for (int pid : frozen_) ::kill(pid, SIGCONT);
        frozen_.clear();
    }

private:
    static int free_port() {
        int fd = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in a{};
        a.sin_family = AF_INET;
        a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        ::bind(fd, reinterpret_cast<sockaddr*>(&a), sizeof a);
        socklen_t n = sizeof a;
        ::getsockname(fd, reinterpret_cast<sockaddr*>(&a), &n);
        ::close(fd);
        return ntohs(a.sin_port);
    }
    /// The postmaster (postmaster.pid) and its children (/proc/<pid>/stat: ppid).
    std::vector<int> processes() const {
        std::vector<int> out;
        std::ifstream f(dir_ / "data" / "postmaster.pid");
        int master = 0;
        if (!(f >> master) || master <= 0) return out;
        out.push_back(master);
        for (const auto& e : std::filesystem::directory_iterator("/proc")) {
            const auto name = e.path().filename().string();
            if (name.find_first_not_of("0123456789") != std::string::npos) continue;
            std::ifstream stat(e.path() / "stat");
            std::string line;
            if (!std::getline(stat, line)) continue;
            auto close = line.rfind(')');
            if (close == std::string::npos) continue;
            std::istringstream rest(line.substr(close + 2));
            char state;
            int ppid = 0;
            rest >> state >> ppid;
            if (ppid == master) out.push_back(std::stoi(name));
        }
        return out;
    }

    std::filesystem::path dir_;
    int port_ = 0;
    std::string url_;
    std::vector<int> frozen_;
};

}  // namespace

TEST(storage_outage, a_frozen_postgres_answers_503_with_retry_after_and_writes_resume_after_it_thaws) {
    if (!test::on_postgres()) GTEST_SKIP() << "runs in the PostgreSQL suite (it starts its own server)";
    if (!std::filesystem::exists("/usr/lib/postgresql/15/bin/initdb")) GTEST_SKIP() << "PostgreSQL 15 is not installed";
    private_postgres pg;
    ASSERT_FALSE(pg.url().empty()) << "scripts/pg.sh could not start a server";
    temp_dir d;
    auto cfg = d.path() / "app.toml";
    write_file(cfg, outage_config(pg.url(), "connect_timeout = \"1s\"\nstatement_timeout = \"500ms\""));
    child srv({LIVEBASE_BINARY, "serve", "-c", cfg.string()}, d.path() / "serve.err");
    auto port = srv.wait_port(30s);
    ASSERT_NE(port, 0) << srv.stderr_text();
    http_client c(port, 20s);
    ASSERT_EQ(c.post("/api/cars", json::object{{"brand", "Before"}}).status, 201);
    ASSERT_EQ(c.get("/api/health/ready").status, 200);

    pg.freeze();
    // The write waits at most statement_timeout + 1 s, then answers 503 (not never).
    auto r = c.post("/api/cars", json::object{{"brand", "Frozen"}});
    EXPECT_EQ(r.status, 503) << r.body;
    EXPECT_EQ(r.header("Retry-After"), "5");
    EXPECT_NE(r.body.find("/problems/storage-unavailable"), std::string::npos) << r.body;
    // Now the store is down: reads and writes answer 503 at once, readiness says so.
    auto ready = c.get("/api/health/ready");
    EXPECT_EQ(ready.status, 503) << ready.body;
    EXPECT_EQ(ready.header("Retry-After"), "5");
    EXPECT_NE(ready.body.find("unavailable"), std::string::npos) << ready.body;
    auto live = c.get("/api/health");
    EXPECT_EQ(live.status, 200) << live.body;  // liveness: the process is fine
    auto list = c.get("/api/cars");
    EXPECT_EQ(list.status, 503) << list.body;
    EXPECT_EQ(list.header("Retry-After"), "5");

    pg.thaw();
    bool resumed = false;
    for (int i = 0; i < 400 && !resumed; ++i) {
        resumed = c.post("/api/cars", json::object{{"brand", "After"}}).status == 201;
        if (!resumed) std::this_thread::sleep_for(25ms);  // pacing a retry loop, not a sync
    }
    ASSERT_TRUE(resumed) << srv.stderr_text();
    EXPECT_EQ(c.get("/api/health/ready").status, 200);
    const auto log = srv.stderr_text();
    EXPECT_EQ(count(log, "PostgreSQL is unreachable"), 1u) << log;
    EXPECT_EQ(count(log, "PostgreSQL is reachable again"), 1u) << log;
}
