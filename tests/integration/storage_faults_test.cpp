// A full storage (storage.max_size on SQLite; a full disk fails the same way): writes answer
// 507 with Retry-After and a problem that says so, reads keep working, the health check says
// "degraded", and writes resume by themselves once there is room.
#include "integration/server_fixture.hpp"

using namespace livebase;
using namespace livebase::testing;

namespace {

json::object obj(const json::value& v) { return v.is_object() ? v.get_object() : json::object{}; }
std::string str(const json::value& v) { return v.is_string() ? std::string(v.get_string()) : ""; }

class storage_full : public ::testing::Test {
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
        auto s = app_.start();
        ASSERT_TRUE(s) << s.error().detail;
    }
    void TearDown() override { app_.stop(); }

    temp_dir dir_;
    livebase::app app_;
};

TEST_F(storage_full, writes_answer_507_reads_work_and_writes_resume_when_there_is_room) {
    http_client c(app_.port(), std::chrono::seconds(15));
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

}  // namespace
