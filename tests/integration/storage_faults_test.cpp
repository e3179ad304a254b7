// A full storage (storage.max_size on SQLite; a full disk fails the same way): writes answer
// 507 with Retry-After and a problem that says so, reads keep working, the health check says
// "degraded", and writes resume by themselves once there is room.
#include "support/test_app.hpp"

#include <sched.h>
#include <sys/mount.h>

#include <cerrno>
#include <cstring>
#include <fstream>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {

class storage_full : public app_test {
protected:
    void SetUp() override {
        LIVEBASE_SQLITE_ONLY();
        auto cfg = test_config(dir_.path() / "test.db");
        // [storage] is the config's second table: add the size limit to it.
        auto at = cfg.find("[storage]\n");
        ASSERT_NE(at, std::string::npos);
        cfg.insert(at + 10, "max_size = \"320KiB\"\n");
        auto r = app_.load_config_string(cfg, "test.toml");
        ASSERT_TRUE(r) << r.error().detail;
        app_.log().set_level(log_level::off);
        start_app();
    }
};

TEST_F(storage_full, writes_answer_507_reads_work_and_writes_resume_when_there_is_room) {
    client_timeout_ = std::chrono::seconds(15);
    auto c = client();
    const std::string big(40000, 'x');
    http_response refused;
    int created = 0;
    for (int i = 0; i < 40; ++i) {  // 320 KiB hold a few of these
        refused = c.post("/api/things", json::object{{"title", "Big"}, {"body", big}});
        if (refused.status != 201) break;
        ++created;
    }
    ASSERT_EQ(refused.status, 507) << refused.body;
    ASSERT_GT(created, 0);
    auto p = obj(refused.json());
    EXPECT_EQ(str(p["type"]), "/problems/storage-full");
    EXPECT_EQ(refused.header("Retry-After"), "30");
    // Every write fails alike; nothing half-written shows.
    EXPECT_EQ(c.post("/api/things", json::object{{"title", "Big"}, {"body", big}}).status, 507);
    auto list = c.get("/api/things?limit=1");
    EXPECT_EQ(list.status, 200);
    EXPECT_EQ(obj(list.json())["count"], created);
    auto health = c.get("/api/health");
    EXPECT_EQ(health.status, 200);
    EXPECT_EQ(str(obj(health.json())["status"]), "degraded");
    EXPECT_EQ(str(obj(health.json())["storage"]), "full");
    // An async submission is refused the same way, not accepted and lost.
    auto async = c.request("POST", "/api/things", R"({"title": "Big", "body": ")" + big + R"("})",
                           {{"Content-Type", "application/json"}, {"Prefer", "respond-async"}});
    EXPECT_EQ(async.status, 507) << async.body;

    // Room returns (here: the records are deleted; then a small write fits): writes resume.
    auto items = obj(c.get("/api/things?limit=100").json())["results"].as_array();
    http_response small;
    for (const auto& item : items) {
        c.request("DELETE", "/api/things/" + str(obj(item)["id"]));
        small = c.post("/api/things", json::object{{"title", "Small"}});
        if (small.status == 201) break;
    }
    EXPECT_EQ(small.status, 201) << small.body;
    EXPECT_EQ(str(obj(c.get("/api/health").json())["status"]), "ok");
}

// A real full disk: the database lives on a 1 MiB tmpfs mounted in the test's own mount
// namespace (needs root, as CI runs; skipped otherwise). A ballast file takes part of it; once
// the disk is full, removing the ballast frees space and writes resume by themselves.
class disk_full : public app_test {
protected:
    void SetUp() override {
        LIVEBASE_SQLITE_ONLY();
        if (::unshare(CLONE_NEWNS) != 0)
            GTEST_SKIP() << "no mount namespace (needs root): " << std::strerror(errno);
        ASSERT_EQ(::mount(nullptr, "/", nullptr, MS_REC | MS_PRIVATE, nullptr), 0) << std::strerror(errno);
        mnt_ = dir_.path() / "disk";
        std::filesystem::create_directories(mnt_);
        ASSERT_EQ(::mount("tmpfs", mnt_.c_str(), "tmpfs", 0, "size=1m"), 0) << std::strerror(errno);
        mounted_ = true;
        {
            std::ofstream ballast(mnt_ / "ballast", std::ios::binary);
            const std::string kb(1024, 'b');
            for (int i = 0; i < 256; ++i) ballast.write(kb.data(), static_cast<std::streamsize>(kb.size()));
            ASSERT_TRUE(ballast.good());
        }
        auto r = app_.load_config_string(test_config(mnt_ / "test.db"), "test.toml");
        ASSERT_TRUE(r) << r.error().detail;
        app_.log().set_level(log_level::off);
        ASSERT_NO_FATAL_FAILURE(start_app());
        started_ = true;
    }
    void TearDown() override {
        if (started_) app_.stop();
        if (mounted_) ::umount2(mnt_.c_str(), MNT_DETACH);
    }

    std::filesystem::path mnt_;
    bool mounted_ = false;
    bool started_ = false;
};

TEST_F(disk_full, writes_answer_507_until_space_is_freed_then_resume) {
    http_client c(app_.port(), std::chrono::seconds(15));
    const std::string big(30000, 'x');
    http_response refused;
    int created = 0;
    for (int i = 0; i < 60; ++i) {  // 1 MiB less the ballast holds far fewer than 60
        refused = c.post("/api/things", json::object{{"title", "Big"}, {"body", big}});
        if (refused.status != 201) break;
        ++created;
    }
    ASSERT_EQ(refused.status, 507) << refused.body;
    ASSERT_GT(created, 0);
    EXPECT_EQ(str(obj(refused.json())["type"]), "/problems/storage-full");
    EXPECT_EQ(refused.header("Retry-After"), "30");
    auto list = c.get("/api/things?limit=1");
    EXPECT_EQ(list.status, 200);
    EXPECT_EQ(obj(list.json())["count"], created);
    EXPECT_EQ(str(obj(c.get("/api/health").json())["storage"]), "full");

    // The operator frees space: the next write fits without a restart.
    std::filesystem::remove(mnt_ / "ballast");
    auto small = c.post("/api/things", json::object{{"title", "Small"}});
    EXPECT_EQ(small.status, 201) << small.body;
    EXPECT_EQ(str(obj(c.get("/api/health").json())["status"]), "ok");
    EXPECT_EQ(obj(c.get("/api/things?limit=1").json())["count"], created + 1);
}

}  // namespace
