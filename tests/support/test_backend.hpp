#pragma once
// Which store the suite runs on. The test command (scripts/test.sh) runs the store, tasks,
// realtime, api, ws and integration suites twice: on SQLite, and again with
// LIVEBASE_TEST_BACKEND=postgres against a private PostgreSQL server it starts
// (LIVEBASE_TEST_PG_URL). Each test database is then its own schema of that server, named
// after the SQLite file the test would have used, so reopening "the same file" reopens the
// same schema.
#include <cstdint>
#include <cstdlib>
#include <string>
#include <string_view>

namespace livebase::test {

inline bool on_postgres() {
    const char* b = std::getenv("LIVEBASE_TEST_BACKEND");
    return b && std::string_view(b) == "postgres";
}

/// The server's URL (without schema), empty when not set.
inline std::string postgres_url() {
    const char* u = std::getenv("LIVEBASE_TEST_PG_URL");
    return u ? std::string(u) : std::string();
}

/// "t_<hex>" for a SQLite path (FNV-1a: stable across processes, unlike std::hash).
inline std::string schema_for(std::string_view sqlite_path) {
    std::uint64_t h = 1469598103934665603ull;
    for (unsigned char ch : sqlite_path) {
        h ^= ch;
        h *= 1099511628211ull;
    }
    static const char* digits = "0123456789abcdef";
    std::string out = "t_";
    for (int i = 60; i >= 0; i -= 4) out += digits[(h >> i) & 0xf];
    return out;
}

/// The storage URL for a test database: "sqlite:<path>", or the PostgreSQL server with the
/// path's schema when the suite runs on PostgreSQL.
inline std::string storage_url(const std::string& sqlite_path) {
    if (!on_postgres()) return "sqlite:" + sqlite_path;
    std::string base = postgres_url();
    return base + (base.find('?') == std::string::npos ? "?" : "&") + "schema=" + schema_for(sqlite_path);
}

}  // namespace livebase::test

/// In a test body or SetUp: skips the test when it runs on PostgreSQL without a server to
/// talk to (a developer's plain `ctest`; the test command always provides one).
#define LIVEBASE_REQUIRE_BACKEND()                                                                      \
    do {                                                                                               \
        if (::livebase::test::on_postgres() && ::livebase::test::postgres_url().empty())              \
            GTEST_SKIP() << "LIVEBASE_TEST_PG_URL is not set (scripts/test.sh starts PostgreSQL)";     \
    } while (0)

/// For tests of SQLite itself (its files, its SQL): skipped in the PostgreSQL run.
#define LIVEBASE_SQLITE_ONLY()                                                      \
    do {                                                                           \
        if (::livebase::test::on_postgres()) GTEST_SKIP() << "SQLite-specific test"; \
    } while (0)
