#include "support/test_app.hpp"

#include <thread>

namespace livebase::test {

std::string test_config(const std::filesystem::path& db, std::string extra, std::string cars_rules) {
    const std::string pub = std::string(k_public_rules) + "\n";
    const std::string auth = extra.find("[auth]") == std::string::npos
                                 ? "[auth]\nthrottle.anonymous = \"unlimited\"\nthrottle.user = \"unlimited\"\n\n"
                                 : "";
    return R"([server]
listen = "127.0.0.1:0"
threads = 2
max_body = "64KiB"
shutdown_grace = "2s"
drain_period = "0s"

[storage]
url = ")" + storage_url(db.string()) + R"("

)" + auth + cars_toml(cars_rules, R"(indexes = [["brand", "model"]]
page_size = 25
max_page_size = 100

[collections.things]
)" + pub + R"(fields.title   = { type = "string", required = true, pattern = "^[A-Z]" }
fields.body    = { type = "text" }
fields.count   = { type = "integer" }
fields.price   = { type = "number", min = 0 }
fields.active  = { type = "boolean", default = true }
fields.when    = { type = "datetime" }
fields.meta    = { type = "json" }
fields.secret  = { type = "string", write_only = true }
fields.stamp   = { type = "string", read_only = true }

[collections.owners]
)" + pub + R"(fields.name = { type = "string", required = true }

[collections.pets]
)" + pub + R"(fields.name  = { type = "string", required = true }
fields.owner_ref = { type = "ref", to = "owners", on_delete = "cascade" }
fields.vet   = { type = "ref", to = "vets", on_delete = "null" }

[collections.vets]
)" + pub + R"(fields.name = { type = "string", required = true }

[collections.visits]
)" + pub + R"(fields.pet = { type = "ref", to = "pets" }
)") + extra;
}

void app_test::configure(const std::string& extra, std::string cars_rules, log_level level,
                         const std::string& name) {
    auto r = app_.load_config_string(test_config(dir_.path() / (name + ".db"), extra, std::move(cars_rules)),
                                     name + ".toml");
    ASSERT_TRUE(r) << r.error().detail;
    app_.log().set_level(level);
}

void app_test::start_app() {
    auto s = app_.start();
    ASSERT_TRUE(s) << s.error().detail;
}

void app_test::start_with(const std::string& extra, log_level level) {
    ASSERT_NO_FATAL_FAILURE(configure(extra, k_public_rules, level));
    start_app();
}

void app_test::add_test_actions() {
    action_def count;
    count.name = "count";
    count.methods = {"GET", "POST"};
    count.rule = access_rule::public_;
    ASSERT_TRUE(app_.add_action("cars", count, [](action_call& call) -> result<outcome> {
        auto page = call.db.list_sync(call.collection, query{});
        if (!page) return std::move(page).error();
        return outcome::json_body(200, json::object{{"count", page->count}, {"input", call.op.input}});
    }));
    action_def honk;
    honk.name = "honk";
    honk.detail = true;
    honk.rule = access_rule::public_;
    ASSERT_TRUE(app_.add_action("cars", honk, [](action_call& call) -> result<outcome> {
        if (call.op.input.is_object() && call.op.input.get_object().contains("fail"))
            return problem::conflict("asked to fail");
        if (call.op.input.is_object() && call.op.input.get_object().contains("throw"))
            throw std::runtime_error("handler exploded");
        return outcome::json_body(200, json::object{{"honked", get_string(*call.record, "brand")},
                                                    {"input", call.op.input}});
    }));
}

void app_test::add_hold_kind(const std::string& kind, std::atomic<int>* started) {
    ASSERT_TRUE(app_.add_task_kind(kind, [this, started](task_context& ctx) -> result<outcome> {
        if (started) ++*started;
        for (int i = 0; i < 500 && !release_; ++i) {  // up to 10 s
            ctx.throw_if_cancelled();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return outcome::json_body(200, json::object{{"held", true}});
    }));
}

void app_test::add_hang_kind(int polls) {
    ASSERT_TRUE(app_.add_task_kind("hang", [this, polls](task_context& ctx) -> result<outcome> {
        ctx.progress(1);
        for (int i = 0; i < polls && !release_; ++i) {
            ctx.throw_if_cancelled();
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return outcome::json_body(200, json::object{});
    }));
}

std::unique_ptr<ws_client> app_test::connect(ws_connect_options o) {
    auto c = std::make_unique<ws_client>();
    auto r = c->connect(app_.port(), std::move(o));
    EXPECT_TRUE(r) << (r ? "" : r.error().detail);
    return c;
}

json::object app_test::create_car(http_client& c, json::object car) {
    auto r = c.post("/api/cars", car);
    EXPECT_EQ(r.status, 201) << r.body;
    return obj(r.json());
}

std::string app_test::login_token(const std::string& name, const std::string& password) {
    auto c = client();
    auto r = c.post("/api/auth/login", json::object{{"username", name}, {"password", password}});
    EXPECT_EQ(r.status, 200) << r.body;
    return str(obj(r.json())["token"]);
}

}  // namespace livebase::test
