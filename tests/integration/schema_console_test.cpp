// GET {base}/schema, {base}/schema/realtime and the console at /_/ over a real server.
#include "support/test_app.hpp"

#include <fstream>

namespace livebase::testing {
namespace {

namespace fs = std::filesystem;

const std::string k_extra = R"(
[tasks.kinds.ping]
command = ["true"]

)" + test::endpoint_toml("ping", "POST", "ping");

void write_file(const fs::path& p, std::string_view text) {
    fs::create_directories(p.parent_path());
    std::ofstream out(p, std::ios::binary);
    out << text;
}

/// The fixture's server with `server.console_dir` set to a directory that holds a built console.
class schema_console : public server_test {
protected:
    void SetUp() override {
        console_ = dir_.path() / "dist";
        write_file(console_ / "index.html", "<!doctype html><div id=app></div>");
        write_file(console_ / "assets" / "index-4f3a2b.js", "export const x = 1;");
        write_file(console_ / "assets" / "index-4f3a2b.css", "body { margin: 0 }");
        write_file(console_ / "favicon.svg", "<svg/>");
        write_file(dir_.path() / "secret.txt", "do not serve");
        auto cfg = test_config(dir_.path() / "test.db", k_extra);
        const std::string server = "[server]\n";
        cfg.replace(cfg.find(server), server.size(),
                    server + "console_dir = \"" + console_.string() + "\"\n");
        auto r = app_.load_config_string(cfg, "test.toml");
        ASSERT_TRUE(r) << r.error().detail;
        app_.log().set_level(log_level::warn);
        add_test_actions();
        start_app();
    }

    /// HEAD needs a client that knows the response has no body: raw bytes on a fresh connection.
    std::string head(std::string_view target) {
        http_client c(app_.port());
        c.send_raw("HEAD " + std::string(target) + " HTTP/1.1\r\nHost: x\r\nConnection: close\r\n\r\n");
        return c.read_until_close().bytes;
    }

    fs::path console_;
};

/// The object member `key` of `o` (an empty object when absent). Overloaded for objects so a
/// chain never converts an object into a temporary value (the result refers into `o`).
const json::object& obj(const json::object& o, std::string_view key) {
    static const json::object empty;
    auto* p = o.if_contains(key);
    return p && p->is_object() ? p->get_object() : empty;
}
const json::object& obj(const json::value& v, std::string_view key) {
    static const json::object empty;
    return v.is_object() ? obj(v.get_object(), key) : empty;
}

TEST_F(schema_console, openapi_describes_collections_actions_endpoints_tasks_and_auth) {
    auto c = client();
    auto r = c.get("/api/schema");
    ASSERT_EQ(r.status, 200) << r.body;
    EXPECT_EQ(r.header("Content-Type"), "application/json");
    auto doc = r.json();
    ASSERT_TRUE(doc.is_object());
    EXPECT_EQ(doc.at("openapi"), "3.1.0");
    const auto& paths = obj(doc, "paths");
    const auto& schemas = obj(obj(doc, "components"), "schemas");

    for (std::string_view n : {"cars", "things", "owners", "pets", "vets", "visits", "users"}) {
        const std::string name(n);
        EXPECT_TRUE(paths.contains("/api/" + name)) << name;
        EXPECT_TRUE(paths.contains("/api/" + name + "/{id}")) << name;
        EXPECT_TRUE(paths.contains("/api/" + name + "/events")) << name;
        EXPECT_TRUE(schemas.contains(name)) << name;
        EXPECT_TRUE(schemas.contains(name + ".input")) << name;
        EXPECT_TRUE(schemas.contains(name + ".page")) << name;
    }
    // Field types, required, limits and choices of cars.
    const auto& cars = obj(schemas.at("cars"), "properties");
    EXPECT_EQ(obj(cars, "brand").at("type"), "string");
    EXPECT_EQ(obj(cars, "brand").at("maxLength"), 100);
    EXPECT_EQ(obj(cars, "model").at("type"), (json::array{"integer", "null"}));
    EXPECT_EQ(obj(cars, "model").at("minimum").to_number<double>(), 1886);
    EXPECT_EQ(obj(cars, "color").at("enum"), (json::array{"Blue", "Red", "Black", nullptr}));
    EXPECT_TRUE(obj(cars, "owner").contains("readOnly"));
    const auto& input = schemas.at("cars.input").as_object();
    EXPECT_EQ(input.at("required"), json::array{"brand"});
    EXPECT_FALSE(obj(input, "properties").contains("id"));
    // read_only / write_only.
    const auto& things = obj(schemas.at("things"), "properties");
    EXPECT_EQ(obj(things, "when").at("format"), "date-time");
    EXPECT_TRUE(obj(things, "stamp").at("readOnly").as_bool());
    EXPECT_FALSE(things.contains("secret"));
    EXPECT_TRUE(obj(obj(schemas.at("things.input"), "properties"), "secret").at("writeOnly").as_bool());
    EXPECT_EQ(obj(obj(schemas.at("pets"), "properties"), "owner_ref").at("x-livebase-ref"), "owners");
    // Filters and ordering.
    EXPECT_TRUE(obj(schemas.at("cars.filter"), "properties").contains("model__gte"));
    EXPECT_TRUE(obj(schemas.at("cars.filter"), "properties").contains("brand__icontains"));

    const auto& list = obj(obj(paths, "/api/cars"), "get");
    EXPECT_EQ(list.at("operationId"), "cars_list");
    EXPECT_NE(json::serialize(list).find("ordering"), std::string::npos);
    EXPECT_TRUE(obj(list, "responses").contains("202"));  // Prefer: respond-async
    EXPECT_TRUE(obj(obj(obj(paths, "/api/cars"), "post"), "responses").contains("201"));
    // Actions, endpoints, tasks, auth, health.
    EXPECT_TRUE(obj(paths, "/api/cars:count").contains("get"));
    EXPECT_TRUE(obj(paths, "/api/cars:count").contains("post"));
    EXPECT_TRUE(obj(paths, "/api/cars/{id}:honk").contains("post"));
    EXPECT_EQ(obj(obj(paths, "/api/ping"), "post").at("x-livebase-task"), "ping");
    EXPECT_TRUE(obj(paths, "/api/tasks").contains("get"));
    EXPECT_TRUE(obj(paths, "/api/tasks/{id}").contains("get"));
    EXPECT_TRUE(obj(paths, "/api/tasks/{id}").contains("delete"));
    EXPECT_TRUE(obj(paths, "/api/tasks/{id}/result").contains("get"));
    for (std::string_view p : {"/api/auth/login", "/api/auth/logout", "/api/auth/me", "/api/auth/register",
                               "/api/health", "/api/schema", "/api/schema/realtime"})
        EXPECT_TRUE(paths.contains(p)) << p;
    // Problems and security schemes.
    const auto& components = obj(doc, "components");
    EXPECT_EQ(obj(obj(obj(obj(components, "responses"), "problem_404"), "content"), "application/problem+json").size(), 1u);
    const auto& sec = obj(components, "securitySchemes");
    EXPECT_EQ(obj(sec, "bearer").at("scheme"), "bearer");
    EXPECT_EQ(obj(sec, "cookie").at("name"), "livebase_session");

    // Never the internals.
    EXPECT_EQ(r.body.find("password_hash"), std::string::npos);
    EXPECT_EQ(r.body.find("auth_tokens"), std::string::npos);
    EXPECT_EQ(r.body.find("token_hash"), std::string::npos);
    EXPECT_EQ(r.body.find("idempotency_keys"), std::string::npos);

    // A second fetch is the same document; a trailing slash means the same.
    EXPECT_EQ(c.get("/api/schema/").body, r.body);
    EXPECT_EQ(c.request("POST", "/api/schema", "{}").status, 405);
}

TEST_F(schema_console, asyncapi_lists_each_collections_messages) {
    auto c = client();
    auto r = c.get("/api/schema/realtime");
    ASSERT_EQ(r.status, 200) << r.body;
    auto doc = r.json();
    ASSERT_TRUE(doc.is_object());
    EXPECT_EQ(doc.at("asyncapi"), "3.0.0");
    const auto& channels = obj(doc, "channels");
    EXPECT_EQ(obj(channels, "socket").at("address"), "/ws");
    const auto& messages = obj(obj(doc, "components"), "messages");
    const auto& operations = obj(doc, "operations");
    for (std::string_view n : {"cars", "things", "owners", "pets", "vets", "visits"}) {
        const std::string name(n);
        for (std::string_view a : {"create", "update", "delete"})
            EXPECT_TRUE(messages.contains(name + ".event." + std::string(a))) << name << a;
        for (std::string_view a : {"list", "retrieve", "create", "update", "patch", "delete", "subscribe", "observe"}) {
            EXPECT_TRUE(messages.contains(name + "." + std::string(a) + ".request")) << name << a;
            EXPECT_TRUE(operations.contains(name + "." + std::string(a))) << name << a;
        }
        EXPECT_TRUE(messages.contains(name + ".observe.diff")) << name;
        EXPECT_EQ(obj(channels, name + ".sse").at("address"), json::value("/api/" + name + "/events")) << name;
        EXPECT_TRUE(obj(obj(doc, "components"), "schemas").contains(name)) << name;
    }
    // The event's data is the record schema.
    const auto event = json::serialize(messages.at("cars.event.update"));
    EXPECT_NE(event.find("#/components/schemas/cars"), std::string::npos);
    EXPECT_TRUE(messages.contains("cars.honk.request"));
    EXPECT_TRUE(messages.contains("session.hello"));
    EXPECT_TRUE(messages.contains("error"));
    EXPECT_TRUE(messages.contains("tasks.event"));
    EXPECT_TRUE(messages.contains("auth.login.request"));
    EXPECT_EQ(operations.at("cars.create").at("action"), "send");
    EXPECT_EQ(operations.at("cars.events").at("action"), "receive");
    EXPECT_EQ(r.body.find("password_hash"), std::string::npos);
    EXPECT_EQ(r.body.find("auth_tokens"), std::string::npos);
}

TEST_F(schema_console, schema_is_public_with_credentials_or_without) {
    ASSERT_TRUE(app_.auth().create_user_sync("ann", "password-1", /*admin=*/false));
    auto c = client();
    EXPECT_EQ(c.get("/api/schema").status, 200);
    // A bad token is not resolved on the documents' routes: they describe, never serve records.
    EXPECT_EQ(c.get("/api/schema", {{"Authorization", "Bearer nope"}}).status, 200);
}

TEST_F(schema_console, console_index_assets_and_headers) {
    auto c = client();
    for (std::string_view target : {"/_/", "/_", "/_/index.html"}) {
        auto r = c.get(target);
        EXPECT_EQ(r.status, 200) << target;
        EXPECT_EQ(r.body, "<!doctype html><div id=app></div>") << target;
        EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8");
        EXPECT_EQ(r.header("Cache-Control"), "no-cache");
        EXPECT_FALSE(r.header("ETag").empty());
        EXPECT_EQ(r.header("X-Content-Type-Options"), "nosniff");
        EXPECT_NE(r.header("Content-Security-Policy").find("connect-src 'self' ws: wss:"), std::string::npos);
    }
    auto js = c.get("/_/assets/index-4f3a2b.js");
    EXPECT_EQ(js.status, 200);
    EXPECT_EQ(js.body, "export const x = 1;");
    EXPECT_EQ(js.header("Content-Type"), "text/javascript; charset=utf-8");
    EXPECT_EQ(js.header("Cache-Control"), "public, max-age=31536000, immutable");
    auto css = c.get("/_/assets/index-4f3a2b.css");
    EXPECT_EQ(css.header("Content-Type"), "text/css; charset=utf-8");
    auto svg = c.get("/_/favicon.svg");
    EXPECT_EQ(svg.header("Content-Type"), "image/svg+xml");
    EXPECT_EQ(svg.header("Cache-Control"), "no-cache");
}

TEST_F(schema_console, etag_revalidation_answers_304) {
    auto c = client();
    auto first = c.get("/_/");
    const auto etag = first.header("ETag");
    ASSERT_FALSE(etag.empty());
    auto again = c.get("/_/", {{"If-None-Match", etag}});
    EXPECT_EQ(again.status, 304);
    EXPECT_TRUE(again.body.empty());
    EXPECT_EQ(again.header("ETag"), etag);
    EXPECT_EQ(c.get("/_/", {{"If-None-Match", "\"stale\""}}).status, 200);
    auto asset = c.get("/_/assets/index-4f3a2b.js");
    EXPECT_EQ(c.get("/_/assets/index-4f3a2b.js", {{"If-None-Match", asset.header("ETag")}}).status, 304);
}

TEST_F(schema_console, head_has_the_headers_without_the_body) {
    auto raw = head("/_/");
    EXPECT_EQ(raw.rfind("HTTP/1.1 200", 0), 0u) << raw;
    EXPECT_NE(raw.find("Content-Length: 33"), std::string::npos) << raw;
    EXPECT_NE(raw.find("ETag: "), std::string::npos) << raw;
    EXPECT_EQ(raw.find("<!doctype"), std::string::npos) << raw;
    EXPECT_EQ(raw.substr(raw.size() - 4), "\r\n\r\n");
    auto asset = head("/_/assets/index-4f3a2b.js");
    EXPECT_NE(asset.find("immutable"), std::string::npos) << asset;
    EXPECT_EQ(asset.find("export const"), std::string::npos) << asset;
    // Other methods are refused; the connection stays usable.
    auto c = client();
    auto post = c.request("POST", "/_/", "{}");
    EXPECT_EQ(post.status, 405);
    EXPECT_EQ(post.header("Allow"), "GET, HEAD");
    EXPECT_EQ(c.request("DELETE", "/_/assets/index-4f3a2b.js").status, 405);
    EXPECT_EQ(c.get("/_/").status, 200);
}

TEST_F(schema_console, traversal_attempts_are_404) {
    auto c = client();
    for (std::string_view target :
         {"/_/../secret.txt", "/_/%2e%2e/secret.txt", "/_/%2E%2E/secret.txt", "/_/..%2fsecret.txt",
          "/_/..%2Fsecret.txt", "/_/%2e%2e%2fsecret.txt", "/_/..%5csecret.txt",
          "/_/assets/%2e%2e/%2e%2e/secret.txt", "/_/index.html%00.js", "/_/%00", "/_/.%2e/secret.txt",
          "/_//etc/passwd", "/_/%2fetc%2fpasswd", "/_/assets/%2e%2e%2f%2e%2e%2fsecret.txt"}) {
        auto r = c.get(target);
        EXPECT_EQ(r.status, 404) << target;
        EXPECT_EQ(r.body.find("do not serve"), std::string::npos) << target;
        EXPECT_EQ(r.header("Content-Type"), "application/problem+json") << target;
    }
    // A raw backslash is not a valid request-target character: the parser refuses it (400,
    // connection closed) before routing.
    auto raw = client().get("/_/..\\secret.txt");
    EXPECT_TRUE(raw.status == 400 || raw.status == 404) << raw.status;
    EXPECT_EQ(raw.body.find("do not serve"), std::string::npos);
}

TEST_F(schema_console, unknown_routes_fall_back_to_index) {
    auto c = client();
    for (std::string_view target : {"/_/collections", "/_/collections/cars", "/_/tasks/01JD2/"}) {
        auto r = c.get(target);
        EXPECT_EQ(r.status, 200) << target;
        EXPECT_EQ(r.header("Content-Type"), "text/html; charset=utf-8") << target;
        EXPECT_EQ(r.header("Cache-Control"), "no-cache") << target;
    }
    EXPECT_EQ(c.get("/_/missing.js").status, 404);
    EXPECT_EQ(c.get("/_/assets/gone-123.js").status, 404);
}

TEST_F(schema_console, missing_console_directory_is_a_404_problem) {
    fs::remove_all(console_);
    auto c = client();
    auto r = c.get("/_/");
    EXPECT_EQ(r.status, 404);
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    auto body = r.json();
    ASSERT_TRUE(body.is_object()) << r.body;
    EXPECT_EQ(body.at("type"), "/problems/console-not-built");
    EXPECT_NE(r.body.find("server.console_dir"), std::string::npos);
    // Rebuilt while running: served again.
    write_file(console_ / "index.html", "rebuilt");
    EXPECT_EQ(c.get("/_/").body, "rebuilt");
}

}  // namespace
}  // namespace livebase::testing
