// The OpenAPI and AsyncAPI documents built from a registry, without a server (the served
// documents and their validation: tests/integration/schema_console_test.cpp, tests/schema).
#include <livebase/apidoc/documents.hpp>

#include <livebase/auth/auth.hpp>
#include <livebase/tasks/task.hpp>

#include <gtest/gtest.h>

namespace livebase {
namespace {

const json::object& obj(const json::object& o, std::string_view key) {
    static const json::object empty;
    auto* p = o.if_contains(key);
    return p && p->is_object() ? p->get_object() : empty;
}

field_def field(std::string name, field_type type, bool required = false) {
    field_def f;
    f.name = std::move(name);
    f.type = type;
    f.required = required;
    return f;
}

registry cars_registry() {
    registry reg;
    collection_def cars;
    cars.name = "cars";
    cars.owned = true;
    cars.fields.push_back(field("model", field_type::string, true));
    auto price = field("price", field_type::number);
    price.min = 0;
    cars.fields.push_back(price);
    auto secret = field("secret", field_type::string);
    secret.write_only = true;
    cars.fields.push_back(secret);
    cars.rules["delete"] = access_rule::nobody;
    action_def build;
    build.name = "build";
    build.detail = true;
    cars.actions.emplace("build", build);
    EXPECT_EQ(finalize(cars), "");
    reg.add_collection(std::move(cars));
    reg.add_collection(users_collection());
    reg.add_collection(tokens_collection());
    reg.add_collection(tasks_collection());
    return reg;
}

TEST(openapi_document, describes_each_served_collection_and_hides_the_rest) {
    const auto reg = cars_registry();
    const auto doc = apidoc::openapi_document(reg, apidoc::document_options{});
    EXPECT_EQ(doc.at("openapi"), "3.1.0");
    const auto& paths = obj(doc, "paths");
    EXPECT_TRUE(obj(paths, "/api/cars").contains("get"));
    EXPECT_TRUE(obj(paths, "/api/cars").contains("post"));
    EXPECT_TRUE(obj(paths, "/api/cars/events").contains("get"));
    const auto& detail = obj(paths, "/api/cars/{id}");
    EXPECT_TRUE(detail.contains("get"));
    EXPECT_TRUE(detail.contains("put"));
    EXPECT_TRUE(detail.contains("patch"));
    EXPECT_FALSE(detail.contains("delete")) << "a \"nobody\" rule omits the operation";
    EXPECT_TRUE(obj(paths, "/api/cars/{id}:build").contains("post"));
    EXPECT_FALSE(paths.contains("/api/auth_tokens"));
    EXPECT_TRUE(obj(paths, "/api/tasks").contains("get")) << "the tasks API, not the tasks collection";
    EXPECT_TRUE(obj(paths, "/api/auth/login").contains("post"));

    const auto& schemas = obj(obj(doc, "components"), "schemas");
    for (auto name : {"cars", "cars.input", "cars.patch", "cars.filter", "cars.page", "livebase.task",
                      "livebase.problem"})
        EXPECT_TRUE(schemas.contains(name)) << name;
    EXPECT_FALSE(obj(obj(schemas, "cars"), "properties").contains("secret")) << "write-only is never returned";
    EXPECT_TRUE(obj(obj(obj(schemas, "cars.input"), "properties"), "secret").contains("writeOnly"));
    EXPECT_FALSE(obj(obj(schemas, "users"), "properties").contains("password_hash"));
    EXPECT_EQ(obj(obj(obj(schemas, "cars"), "properties"), "price").at("minimum").to_number<double>(), 0.0);
}

TEST(openapi_document, follows_the_options) {
    const auto reg = cars_registry();
    apidoc::document_options o;
    o.base_path = "";
    o.auth = false;
    o.tasks = false;
    const auto doc = apidoc::openapi_document(reg, o);
    const auto& paths = obj(doc, "paths");
    EXPECT_TRUE(paths.contains("/cars"));
    EXPECT_FALSE(paths.contains("/tasks"));
    EXPECT_FALSE(paths.contains("/auth/login"));
    EXPECT_FALSE(obj(obj(obj(paths, "/cars"), "post"), "responses").contains("202"))
        << "no asynchronous answer without tasks";
}

TEST(asyncapi_document, lists_requests_events_and_sse_channels) {
    const auto reg = cars_registry();
    apidoc::document_options o;
    o.websocket_path = "/ws/live";
    const auto doc = apidoc::asyncapi_document(reg, o);
    EXPECT_EQ(doc.at("asyncapi"), "3.0.0");
    const auto& channels = obj(doc, "channels");
    EXPECT_EQ(obj(channels, "socket").at("address"), "/ws/live");
    EXPECT_EQ(obj(channels, "cars.sse").at("address"), "/api/cars/events");
    const auto& messages = obj(obj(doc, "components"), "messages");
    for (auto name : {"cars.create.request", "cars.create.reply", "cars.subscribe.request", "cars.build.request",
                      "cars.event.update", "cars.observe.diff", "tasks.submit.request", "auth.login.request",
                      "session.hello", "error"})
        EXPECT_TRUE(messages.contains(name)) << name;
    EXPECT_FALSE(messages.contains("cars.delete.request")) << "a \"nobody\" rule omits the request";
    EXPECT_FALSE(messages.contains("auth_tokens.list.request"));
    EXPECT_TRUE(obj(doc, "operations").contains("cars.events"));
}

}  // namespace
}  // namespace livebase
