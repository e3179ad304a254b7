// Environment overrides of the configuration (LIVEBASE_*): scalars, precedence over the file,
// and unknown or bad variables.
#include "unit/app/config_test_support.hpp"

#include <gtest/gtest.h>

#include <livebase/app/config.hpp>
#include <chrono>
#include <string>
#include <vector>

namespace livebase {
namespace {

using namespace std::chrono_literals;

TEST(ConfigEnv, OverridesScalars) {
    config c;
    auto r = apply_env_overrides(
        c, {"PATH=/usr/bin", "LIVEBASE_STORAGE_URL=postgresql://x/y", "LIVEBASE_SERVER_LISTEN=:0",
            "LIVEBASE_SERVER_THREADS=3", "LIVEBASE_TASKS_WORKERS=0",
            "LIVEBASE_SERVER_MAX_BODY=2MiB", "LIVEBASE_REALTIME_SEND_QUEUE=1024",
            "LIVEBASE_SERVER_IDLE_TIMEOUT=5m", "LIVEBASE_AUTH_SIGNUP=true",
            "LIVEBASE_AUTH_THROTTLE_USER=5/s", "LIVEBASE_SERVER_CORS_ORIGINS=https://a, https://b",
            "LIVEBASE_SERVER_BASE_PATH=/x/", "LIVEBASE_TEST_PG=whatever"});
    ASSERT_TRUE(r.has_value()) << r.error().detail;
    EXPECT_EQ(c.storage.url, "postgresql://x/y");
    EXPECT_EQ(c.server.host, "");
    EXPECT_EQ(c.server.port, 0);
    EXPECT_EQ(c.server.threads, 3u);
    EXPECT_EQ(c.tasks.workers, 0u);
    EXPECT_EQ(c.server.max_body, 2u << 20);
    EXPECT_EQ(c.realtime.send_queue, 1024u);
    EXPECT_EQ(c.server.idle_timeout, 5min);
    EXPECT_TRUE(c.auth.signup);
    EXPECT_EQ(c.auth.throttle_user.count, 5u);
    EXPECT_EQ(c.auth.throttle_user.per, 1s);
    EXPECT_EQ(c.server.cors_origins, (std::vector<std::string>{"https://a", "https://b"}));
    EXPECT_EQ(c.server.base_path, "/x");
}

TEST(ConfigEnv, OverridesWinOverTheFile) {
    auto c = load_ok("[storage]\nurl = \"sqlite:a.db\"\n");
    ASSERT_TRUE(apply_env_overrides(c, {"LIVEBASE_STORAGE_URL=sqlite:b.db"}).has_value());
    EXPECT_EQ(c.storage.url, "sqlite:b.db");
}

TEST(ConfigEnv, UnknownOrBadVariablesAreProblemsAndChangeNothing) {
    config c;
    auto r = apply_env_overrides(c, {"LIVEBASE_SERVER_THREADS=2", "LIVEBASE_SERVER_THREDS=3"});
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().detail.find("LIVEBASE_SERVER_THREDS"), std::string::npos)
        << r.error().detail;
    EXPECT_EQ(c.server.threads, 0u);

    r = apply_env_overrides(c, {"LIVEBASE_TASKS_WORKERS=many"});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().detail.rfind("LIVEBASE_TASKS_WORKERS: ", 0), 0u) << r.error().detail;

    r = apply_env_overrides(c, {"LIVEBASE_SERVER_MAX_BODY=big"});
    ASSERT_FALSE(r.has_value());
    EXPECT_NE(r.error().detail.find("invalid size"), std::string::npos);

    r = apply_env_overrides(c, {"LIVEBASE_SERVER_LISTEN=nowhere"});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(c.server.port, 8080);

    r = apply_env_overrides(c, {"LIVEBASE_STORAGE_URL="});
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(c.storage.url, "sqlite:data/livebase.db");

    EXPECT_FALSE(apply_env_overrides(c, {"LIVEBASE_AUTH_SIGNUP=maybe"}).has_value());
    EXPECT_TRUE(apply_env_overrides(c, {"LIVEBASE_TEST_ANYTHING=1", "HOME=/root"}).has_value());
}

}  // namespace
}  // namespace livebase
