#pragma once
// Shared by the configuration tests (config_*test.cpp): loading TOML text as "t.toml", the test
// data folder, and EXPECT_CONFIG_ERROR (a load fails with a detail that contains a text).
#include <gtest/gtest.h>

#include <livebase/app/config.hpp>
#include <string>
#include <string_view>
#include <utility>

namespace livebase {

inline const std::string k_data_dir = std::string(LIVEBASE_SOURCE_DIR) + "/tests/unit/app/data/";

inline config load_ok(std::string_view text) {
    auto r = load_config_string(text, "t.toml");
    EXPECT_TRUE(r.has_value()) << (r ? std::string() : r.error().detail);
    if (!r) return {};
    return std::move(r).value();
}

/// Loads `text` as "t.toml" and returns the problem's detail ("" when it loaded).
inline std::string load_error(std::string_view text) {
    auto r = load_config_string(text, "t.toml");
    if (r) return {};
    return r.error().detail;
}

#define EXPECT_CONFIG_ERROR(text, expected)                         \
    do {                                                            \
        auto detail_ = load_error(text);                            \
        EXPECT_NE(detail_.find(expected), std::string::npos)        \
            << "expected \"" << (expected) << "\" in: " << detail_; \
    } while (false)

}  // namespace livebase
