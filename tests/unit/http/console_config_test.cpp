// server.console_dir: the TOML key and its LIVEBASE_SERVER_CONSOLE_DIR override.
#include <livebase/app/config.hpp>

#include <gtest/gtest.h>

namespace livebase {
namespace {

TEST(console_config, default_is_empty_meaning_console_dist) {
    auto cfg = load_config_string("", "t.toml");
    ASSERT_TRUE(cfg) << cfg.error().detail;
    EXPECT_EQ(cfg->server.console_dir, "");
}

TEST(console_config, file_key_and_environment) {
    auto cfg = load_config_string("[server]\nconsole_dir = \"/srv/console\"\n", "t.toml");
    ASSERT_TRUE(cfg) << cfg.error().detail;
    EXPECT_EQ(cfg->server.console_dir, "/srv/console");
    auto r = apply_env_overrides(*cfg, {"LIVEBASE_SERVER_CONSOLE_DIR=/opt/lb/dist"});
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_EQ(cfg->server.console_dir, "/opt/lb/dist");
}

TEST(console_config, bad_values_name_the_key) {
    auto wrong_type = load_config_string("[server]\nconsole_dir = 3\n", "t.toml");
    ASSERT_FALSE(wrong_type);
    EXPECT_NE(wrong_type.error().detail.find("console_dir"), std::string::npos) << wrong_type.error().detail;
    auto empty = load_config_string("[server]\nconsole_dir = \"\"\n", "t.toml");
    ASSERT_FALSE(empty);
    EXPECT_NE(empty.error().detail.find("console_dir"), std::string::npos) << empty.error().detail;
}

}  // namespace
}  // namespace livebase
