#include "http/router.hpp"
#include "http/static_files.hpp"

#include <gtest/gtest.h>

#include <atomic>
#include <filesystem>
#include <fstream>
#include <random>

namespace livebase::http_detail {
namespace {

namespace fs = std::filesystem;

std::string header(const response_parts& r, std::string_view name) {
    for (const auto& [k, v] : r.headers)
        if (k == name) return v;
    return {};
}

void write_file(const fs::path& p, std::string_view text) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << text;
}

class static_files_test : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device rd;
        base_ = fs::temp_directory_path() / ("livebase-static-" + std::to_string(rd()) + "-" +
                                             std::to_string(counter_++));
        root_ = base_ / "dist";
        write_file(root_ / "index.html", "<!doctype html><title>console</title>");
        write_file(root_ / "assets" / "app-1a2b3c.js", "console.log(1)");
        write_file(root_ / "assets" / "app-1a2b3c.css", "body{}");
        write_file(root_ / "favicon.ico", "ico");
        write_file(root_ / "logo.svg", "<svg/>");
        write_file(root_ / "robots.txt", "User-agent: *");
        write_file(root_ / ".env", "SECRET=1");
        write_file(base_ / "secret.txt", "outside the root");
    }
    void TearDown() override {
        std::error_code ec;
        fs::remove_all(base_, ec);
    }
    static_files files(std::uint64_t max_file = 8u << 20) {
        static_files::options o;
        o.root = root_;
        o.max_file = max_file;
        return static_files(o);
    }

    static inline std::atomic<int> counter_{0};
    fs::path base_, root_;
};

TEST_F(static_files_test, index_for_the_mount_point) {
    auto f = files();
    for (std::string_view rel : {"", "/"}) {
        auto r = f.serve(rel, std::nullopt);
        EXPECT_EQ(r.status, 200) << rel;
        EXPECT_EQ(r.body, "<!doctype html><title>console</title>");
        EXPECT_EQ(r.content_type, "text/html; charset=utf-8");
        EXPECT_EQ(header(r, "Cache-Control"), "no-cache");
        EXPECT_FALSE(header(r, "ETag").empty());
        EXPECT_EQ(header(r, "X-Content-Type-Options"), "nosniff");
        EXPECT_NE(header(r, "Content-Security-Policy").find("connect-src 'self' ws: wss:"), std::string::npos);
    }
}

TEST_F(static_files_test, assets_are_immutable_other_files_revalidate) {
    auto f = files();
    auto js = f.serve("/assets/app-1a2b3c.js", std::nullopt);
    EXPECT_EQ(js.status, 200);
    EXPECT_EQ(js.body, "console.log(1)");
    EXPECT_EQ(js.content_type, "text/javascript; charset=utf-8");
    EXPECT_EQ(header(js, "Cache-Control"), "public, max-age=31536000, immutable");
    auto ico = f.serve("/favicon.ico", std::nullopt);
    EXPECT_EQ(ico.status, 200);
    EXPECT_EQ(ico.content_type, "image/x-icon");
    EXPECT_EQ(header(ico, "Cache-Control"), "no-cache");
    EXPECT_FALSE(header(ico, "ETag").empty());
}

TEST_F(static_files_test, content_types_by_extension) {
    EXPECT_EQ(static_files::content_type_for("a.html"), "text/html; charset=utf-8");
    EXPECT_EQ(static_files::content_type_for("a.js"), "text/javascript; charset=utf-8");
    EXPECT_EQ(static_files::content_type_for("a.mjs"), "text/javascript; charset=utf-8");
    EXPECT_EQ(static_files::content_type_for("a.css"), "text/css; charset=utf-8");
    EXPECT_EQ(static_files::content_type_for("a.svg"), "image/svg+xml");
    EXPECT_EQ(static_files::content_type_for("a.png"), "image/png");
    EXPECT_EQ(static_files::content_type_for("a.ico"), "image/x-icon");
    EXPECT_EQ(static_files::content_type_for("a.json"), "application/json");
    EXPECT_EQ(static_files::content_type_for("a.js.map"), "application/json");
    EXPECT_EQ(static_files::content_type_for("a.woff2"), "font/woff2");
    EXPECT_EQ(static_files::content_type_for("a.txt"), "text/plain; charset=utf-8");
    EXPECT_EQ(static_files::content_type_for("A.PNG"), "image/png");
    EXPECT_EQ(static_files::content_type_for("a.exe"), "application/octet-stream");
    EXPECT_EQ(static_files::content_type_for("noext"), "application/octet-stream");
}

TEST_F(static_files_test, etag_revalidation) {
    auto f = files();
    auto first = f.serve("/logo.svg", std::nullopt);
    const auto etag = header(first, "ETag");
    ASSERT_FALSE(etag.empty());
    auto again = f.serve("/logo.svg", std::string_view(etag));
    EXPECT_EQ(again.status, 304);
    EXPECT_TRUE(again.body.empty());
    EXPECT_EQ(header(again, "ETag"), etag);
    EXPECT_EQ(f.serve("/logo.svg", std::string_view("W/" + etag)).status, 304);
    EXPECT_EQ(f.serve("/logo.svg", std::string_view("\"other\", " + etag)).status, 304);
    EXPECT_EQ(f.serve("/logo.svg", std::string_view("*")).status, 304);
    EXPECT_EQ(f.serve("/logo.svg", std::string_view("\"other\"")).status, 200);

    // A changed file gets a new tag (size differs, so the cache notices even within one mtime tick).
    write_file(root_ / "logo.svg", "<svg></svg>");
    auto changed = f.serve("/logo.svg", std::string_view(etag));
    EXPECT_EQ(changed.status, 200);
    EXPECT_EQ(changed.body, "<svg></svg>");
    EXPECT_NE(header(changed, "ETag"), etag);
}

TEST_F(static_files_test, spa_routes_fall_back_to_index) {
    auto f = files();
    for (std::string_view rel : {"/collections", "/collections/cars", "/tasks/01JD2/", "/x%20y"}) {
        auto r = f.serve(rel, std::nullopt);
        EXPECT_EQ(r.status, 200) << rel;
        EXPECT_EQ(r.content_type, "text/html; charset=utf-8") << rel;
        EXPECT_EQ(header(r, "Cache-Control"), "no-cache") << rel;
    }
    // Missing files with an extension, and anything missing under assets/, are 404.
    EXPECT_EQ(f.serve("/missing.js", std::nullopt).status, 404);
    EXPECT_EQ(f.serve("/assets/missing", std::nullopt).status, 404);
    EXPECT_EQ(f.serve("/assets/missing.css", std::nullopt).status, 404);
}

TEST_F(static_files_test, traversal_is_refused) {
    auto f = files();
    for (std::string_view rel :
         {"/../secret.txt", "/..%2fsecret.txt", "/%2e%2e/secret.txt", "/%2E%2E/secret.txt",
          "/assets/../../secret.txt", "/..\\secret.txt", "/%2e%2e%5csecret.txt", "/..%5csecret.txt",
          "/robots.txt%00.html", "/%00", "/./robots.txt", "/.env", "/%2eenv", "//robots.txt",
          "/assets//app-1a2b3c.js", "/%zz", "/assets/%2e%2e/%2e%2e/secret.txt"}) {
        auto r = f.serve(rel, std::nullopt);
        EXPECT_EQ(r.status, 404) << rel;
        EXPECT_EQ(r.body.find("outside the root"), std::string::npos) << rel;
        EXPECT_EQ(r.body.find("SECRET"), std::string::npos) << rel;
    }
}

TEST_F(static_files_test, symlinks_leaving_the_root_are_refused) {
    std::error_code ec;
    fs::create_symlink(base_ / "secret.txt", root_ / "leak.txt", ec);
    if (ec) GTEST_SKIP() << "symlinks unavailable: " << ec.message();
    fs::create_directory_symlink(base_, root_ / "up", ec);
    ASSERT_FALSE(ec);
    fs::create_symlink(root_ / "robots.txt", root_ / "inside.txt", ec);
    ASSERT_FALSE(ec);
    auto f = files();
    EXPECT_EQ(f.serve("/leak.txt", std::nullopt).status, 404);
    EXPECT_EQ(f.serve("/up/secret.txt", std::nullopt).status, 404);
    EXPECT_EQ(f.serve("/inside.txt", std::nullopt).status, 200);  // stays inside: served
}

TEST_F(static_files_test, missing_directory_explains) {
    static_files::options o;
    o.root = base_ / "not-built";
    static_files f(o);
    auto r = f.serve("/", std::nullopt);
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.content_type, "application/problem+json");
    EXPECT_NE(r.body.find("console-not-built"), std::string::npos);
    EXPECT_NE(r.body.find("server.console_dir"), std::string::npos);
    EXPECT_EQ(f.serve("/assets/app.js", std::nullopt).status, 404);

    // The directory appearing later is served without a restart.
    write_file(base_ / "not-built" / "index.html", "late");
    EXPECT_EQ(f.serve("/", std::nullopt).body, "late");
}

TEST_F(static_files_test, large_files_are_not_read) {
    write_file(root_ / "big.json", std::string(2048, 'x'));
    auto f = files(/*max_file=*/1024);
    auto r = f.serve("/big.json", std::nullopt);
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.body.find("xxxx"), std::string::npos);
}

TEST(console_router, console_and_schema_routes) {
    router r("/api", "/ws");
    auto m = r.match("GET", "/_/");
    EXPECT_EQ(m.kind, route_kind::console);
    EXPECT_EQ(m.rest, "/");
    EXPECT_EQ(r.match("HEAD", "/_/assets/a.js").kind, route_kind::console);
    EXPECT_EQ(r.match("GET", "/_/assets/a.js").rest, "/assets/a.js");
    EXPECT_EQ(r.match("GET", "/_").kind, route_kind::console);
    EXPECT_EQ(r.match("GET", "/_x").kind, route_kind::not_found);
    auto post = r.match("POST", "/_/");
    EXPECT_EQ(post.kind, route_kind::method_not_allowed);
    EXPECT_EQ(post.allow, "GET, HEAD");

    EXPECT_EQ(r.match("GET", "/api/schema").kind, route_kind::schema);
    EXPECT_EQ(r.match("GET", "/api/schema/").kind, route_kind::schema);
    EXPECT_EQ(r.match("GET", "/api/schema/realtime").kind, route_kind::schema_realtime);
    EXPECT_EQ(r.match("GET", "/api/schema/other").kind, route_kind::not_found);
    EXPECT_EQ(r.match("POST", "/api/schema").kind, route_kind::method_not_allowed);
    EXPECT_EQ(r.match("HEAD", "/api/schema/realtime").kind, route_kind::method_not_allowed);

    router root("/", "/ws");
    EXPECT_EQ(root.match("GET", "/_/").kind, route_kind::console);
    EXPECT_EQ(root.match("GET", "/schema").kind, route_kind::schema);
}

}  // namespace
}  // namespace livebase::http_detail
