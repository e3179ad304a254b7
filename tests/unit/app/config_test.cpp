// Loading the configuration (config.md): the full example, the defaults, every key of every
// section, and collections and fields in the order of the file.
#include "unit/app/config_test_support.hpp"

#include <gtest/gtest.h>

#include <livebase/app/config.hpp>
#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace livebase {
namespace {

using namespace std::chrono_literals;

const collection_def* find_collection(const config& c, std::string_view name) {
    for (const auto& col : c.collections) {
        if (col.name == name) return &col;
    }
    return nullptr;
}

TEST(Config, FullExampleOfTheContract) {
    auto r = load_config_file(k_data_dir + "full.toml");
    ASSERT_TRUE(r.has_value()) << r.error().detail;
    const config& c = *r;

    EXPECT_EQ(c.server.host, "127.0.0.1");
    EXPECT_EQ(c.server.port, 8080);
    EXPECT_EQ(c.server.threads, 0u);
    EXPECT_EQ(c.server.base_path, "/api");
    EXPECT_EQ(c.server.max_body, 1u << 20);
    EXPECT_EQ(c.server.max_connections, 100000u);
    EXPECT_EQ(c.server.idle_timeout, 60s);
    EXPECT_EQ(c.server.shutdown_grace, 10s);
    EXPECT_TRUE(c.server.cors_origins.empty());

    EXPECT_EQ(c.storage.url, "sqlite:data/livebase.db");

    EXPECT_EQ(c.realtime.history, 100000u);
    EXPECT_EQ(c.realtime.history_age, 24h);
    EXPECT_EQ(c.realtime.node_timeout, 5min);
    EXPECT_EQ(c.realtime.send_queue, 4u << 20);
    EXPECT_EQ(c.realtime.max_message, 1u << 20);
    EXPECT_EQ(c.realtime.max_subscriptions, 1000u);

    EXPECT_EQ(c.tasks.workers, 4u);
    EXPECT_EQ(c.tasks.retention, 7 * 24h);
    EXPECT_EQ(c.tasks.max_attempts, 3u);
    EXPECT_EQ(c.tasks.timeout, 10min);
    EXPECT_EQ(c.tasks.lease, 30s);
    ASSERT_EQ(c.tasks.kinds.count("build_car"), 1u);
    const auto& kind = c.tasks.kinds.at("build_car");
    EXPECT_EQ(kind.name, "build_car");
    EXPECT_EQ(kind.command, std::vector<std::string>{"./examples/cars/build_car.sh"});
    EXPECT_EQ(kind.timeout, std::optional<std::chrono::milliseconds>(5min));
    EXPECT_EQ(kind.max_attempts, std::optional<std::size_t>(2));
    EXPECT_EQ(kind.kill_grace, 5s);

    EXPECT_FALSE(c.auth.signup);
    EXPECT_EQ(c.auth.token_ttl, 30 * 24h);
    EXPECT_EQ(c.auth.throttle_anonymous.count, 120u);
    EXPECT_EQ(c.auth.throttle_anonymous.per, 60s);
    EXPECT_EQ(c.auth.throttle_user.count, 2000u);
    EXPECT_EQ(c.auth.throttle_user.per, 60s);

    ASSERT_EQ(c.collections.size(), 1u);
    const auto& cars = c.collections[0];
    EXPECT_EQ(cars.name, "cars");
    EXPECT_TRUE(cars.owned);
    ASSERT_EQ(cars.fields.size(), 5u);
    const char* names[] = {"brand", "make", "model", "color", "vin"};
    for (std::size_t i = 0; i < 5; ++i) EXPECT_EQ(cars.fields[i].name, names[i]);
    const auto& brand = cars.fields[0];
    EXPECT_EQ(brand.type, field_type::string);
    EXPECT_TRUE(brand.required);
    EXPECT_EQ(brand.max_length, std::optional<std::size_t>(100));
    const auto& make = cars.fields[1];
    ASSERT_TRUE(make.default_value.has_value());
    EXPECT_EQ(*make.default_value, json::value(""));
    const auto& model = cars.fields[2];
    EXPECT_EQ(model.type, field_type::integer);
    EXPECT_EQ(model.min, std::optional<double>(1886));
    EXPECT_EQ(model.max, std::optional<double>(2100));
    const auto& color = cars.fields[3];
    ASSERT_EQ(color.choices.size(), 3u);
    EXPECT_EQ(color.choices[0], json::value("Blue"));
    EXPECT_EQ(color.choices[2], json::value("Black"));
    EXPECT_TRUE(cars.fields[4].unique);
    ASSERT_EQ(cars.indexes.size(), 1u);
    EXPECT_EQ(cars.indexes[0], (std::vector<std::string>{"brand", "model"}));
    EXPECT_EQ(cars.rule_for("list"), access_rule::public_);
    EXPECT_EQ(cars.rule_for("retrieve"), access_rule::public_);
    EXPECT_EQ(cars.rule_for("create"), access_rule::authenticated);
    EXPECT_EQ(cars.rule_for("update"), access_rule::owner);
    EXPECT_EQ(cars.rule_for("delete"), access_rule::owner);
    EXPECT_EQ(cars.async_for("create"), async_mode::always);
    EXPECT_EQ(cars.async_for("update"), async_mode::allowed);
    EXPECT_EQ(cars.page_size, 25u);
    EXPECT_EQ(cars.max_page_size, 500u);
    ASSERT_EQ(cars.actions.count("build"), 1u);
    const auto& build = cars.actions.at("build");
    EXPECT_TRUE(build.detail);
    EXPECT_EQ(build.task, "build_car");
    EXPECT_EQ(build.rule, access_rule::owner);
    EXPECT_EQ(build.methods, std::vector<std::string>{"POST"});

    ASSERT_EQ(c.endpoints.size(), 1u);
    EXPECT_EQ(c.endpoints[0].name, "double");
    EXPECT_EQ(c.endpoints[0].path, "/api/double");
    EXPECT_EQ(c.endpoints[0].method, "GET");
    EXPECT_EQ(c.endpoints[0].task, "double");
    EXPECT_EQ(c.endpoints[0].rule, access_rule::public_);
}

TEST(Config, EmptyFileGivesTheDefaults) {
    auto c = load_ok("");
    const config d;
    EXPECT_EQ(c.server.host, d.server.host);
    EXPECT_EQ(c.server.port, d.server.port);
    EXPECT_EQ(c.server.base_path, "/api");
    EXPECT_EQ(c.server.max_body, 1u << 20);
    EXPECT_EQ(c.server.max_header, 16u * 1024);
    EXPECT_EQ(c.server.max_uri, 8u * 1024);
    EXPECT_EQ(c.server.read_timeout, 10s);
    EXPECT_EQ(c.server.pipeline_limit, 16u);
    EXPECT_EQ(c.storage.url, "sqlite:data/livebase.db");
    EXPECT_EQ(c.realtime.send_queue, 4u << 20);
    EXPECT_EQ(c.tasks.workers, 4u);
    EXPECT_TRUE(c.tasks.kinds.empty());
    EXPECT_EQ(c.auth.throttle_user.count, 2000u);
    EXPECT_TRUE(c.collections.empty());
    EXPECT_TRUE(c.endpoints.empty());
}

TEST(Config, OneCollectionIsAWorkingFile) {
    auto c = load_ok("[collections.notes]\nfields.title = { type = \"string\" }\n");
    ASSERT_EQ(c.collections.size(), 1u);
    const auto& notes = c.collections[0];
    EXPECT_EQ(notes.name, "notes");
    EXPECT_FALSE(notes.owned);
    ASSERT_EQ(notes.fields.size(), 1u);
    EXPECT_EQ(notes.fields[0].name, "title");
    EXPECT_EQ(notes.page_size, 25u);
    EXPECT_EQ(notes.max_page_size, 500u);
    EXPECT_EQ(c.server.port, 8080);
}

TEST(Config, FieldAndCollectionOrderFollowTheFile) {
    auto c = load_ok(R"(
[collections.zebra]
fields.zz = { type = "string" }
fields.aa = { type = "integer" }
fields.mm = { type = "boolean" }

[collections.apple]
fields = { z9 = { type = "text" }, a1 = { type = "number" }, q = { type = "json" } }

[collections.mango.fields.second]
type = "string"
[collections.mango.fields.first]
type = "datetime"
)");
    ASSERT_EQ(c.collections.size(), 3u);
    EXPECT_EQ(c.collections[0].name, "zebra");
    EXPECT_EQ(c.collections[1].name, "apple");
    EXPECT_EQ(c.collections[2].name, "mango");
    auto names = [](const collection_def& col) {
        std::vector<std::string> out;
        for (const auto& f : col.fields) out.push_back(f.name);
        return out;
    };
    EXPECT_EQ(names(c.collections[0]), (std::vector<std::string>{"zz", "aa", "mm"}));
    EXPECT_EQ(names(c.collections[1]), (std::vector<std::string>{"z9", "a1", "q"}));
    EXPECT_EQ(names(c.collections[2]), (std::vector<std::string>{"second", "first"}));
    EXPECT_EQ(c.collections[2].fields[1].type, field_type::datetime);
}

TEST(Config, EveryFieldOption) {
    auto c = load_ok(R"(
[collections.owners]
fields.name = { type = "string" }

[collections.things]
fields.s = { type = "string", required = true, default = "x", unique = true, min_length = 1, max_length = 5, choices = ["x", "y"], pattern = "^[a-z]+$" }
fields.t = { type = "text", write_only = true }
fields.i = { type = "integer", min = -5, max = 5, default = 0 }
fields.n = { type = "number", min = 0.5, max = 9.5 }
fields.b = { type = "boolean", default = true, read_only = true }
fields.d = { type = "datetime", default = 2024-01-02T03:04:05Z }
fields.j = { type = "json", default = { a = [1, 2.5, "x"], b = { c = false } } }
fields.r = { type = "ref", to = "owners", on_delete = "cascade" }
fields.r2 = { type = "ref", to = "owners", on_delete = "null" }
fields.r3 = { type = "ref", to = "things" }
)");
    const auto* t = find_collection(c, "things");
    ASSERT_NE(t, nullptr);
    const auto* s = t->find_field("s");
    ASSERT_NE(s, nullptr);
    EXPECT_TRUE(s->required);
    EXPECT_TRUE(s->unique);
    EXPECT_EQ(s->min_length, std::optional<std::size_t>(1));
    EXPECT_EQ(s->max_length, std::optional<std::size_t>(5));
    EXPECT_EQ(s->pattern, "^[a-z]+$");
    EXPECT_NE(s->pattern_re, nullptr);  // finalize() compiled it
    EXPECT_TRUE(t->find_field("t")->write_only);
    EXPECT_EQ(t->find_field("i")->min, std::optional<double>(-5));
    EXPECT_EQ(t->find_field("i")->default_value, std::optional<json::value>(json::value(0)));
    EXPECT_EQ(t->find_field("n")->min, std::optional<double>(0.5));
    EXPECT_TRUE(t->find_field("b")->read_only);
    ASSERT_TRUE(t->find_field("d")->default_value);
    EXPECT_TRUE(t->find_field("d")->default_value->is_string());
    ASSERT_TRUE(t->find_field("j")->default_value);
    const auto& j = t->find_field("j")->default_value->as_object();
    EXPECT_EQ(j.at("a").as_array().size(), 3u);
    EXPECT_EQ(j.at("a").as_array()[1], json::value(2.5));
    EXPECT_EQ(j.at("b").at("c"), json::value(false));
    EXPECT_EQ(t->find_field("r")->ref_to, "owners");
    EXPECT_EQ(t->find_field("r")->on_delete, on_delete_policy::cascade);
    EXPECT_EQ(t->find_field("r2")->on_delete, on_delete_policy::set_null);
    EXPECT_EQ(t->find_field("r3")->on_delete, on_delete_policy::restrict);
}

TEST(Config, DurationsAndSizesAcceptIntegers) {
    auto c = load_ok(R"(
[server]
idle_timeout = 30
max_body = 2048
shutdown_grace = "500ms"
max_header = "32KiB"
cors_origins = ["https://a.example", "https://b.example"]
listen = ":9000"
base_path = "/v1/"
[realtime]
history_age = "1h"
node_timeout = "30s"
send_queue = 1000
[auth]
signup = true
[auth.throttle]
anonymous = "10/s"
)");
    EXPECT_EQ(c.server.idle_timeout, 30s);
    EXPECT_EQ(c.server.max_body, 2048u);
    EXPECT_EQ(c.server.shutdown_grace, 500ms);
    EXPECT_EQ(c.server.max_header, 32u * 1024);
    EXPECT_EQ(c.server.cors_origins.size(), 2u);
    EXPECT_EQ(c.server.host, "");
    EXPECT_EQ(c.server.port, 9000);
    EXPECT_EQ(c.server.base_path, "/v1");
    EXPECT_EQ(c.realtime.history_age, 1h);
    EXPECT_EQ(c.realtime.node_timeout, 30s);
    EXPECT_EQ(c.realtime.send_queue, 1000u);
    EXPECT_TRUE(c.auth.signup);
    EXPECT_EQ(c.auth.throttle_anonymous.count, 10u);
    EXPECT_EQ(c.auth.throttle_anonymous.per, 1s);
    EXPECT_EQ(c.auth.throttle_user.count, 2000u);
}

TEST(Config, ProxiesCookiesMetricsAndLoginLimits) {
    auto d = load_ok("");
    EXPECT_TRUE(d.server.trusted_proxies.empty());
    EXPECT_FALSE(d.server.secure_cookie);
    EXPECT_EQ(d.server.metrics_token, "");
    EXPECT_EQ(d.auth.throttle_login.count, 10u);
    EXPECT_EQ(d.auth.throttle_login_address.count, 60u);

    auto c = load_ok(R"(
[server]
trusted_proxies = ["10.0.0.0/8", "::1"]
secure_cookie = true
metrics_token = "s3cret"
[auth.throttle]
login = "3/min"
login_address = "unlimited"
)");
    EXPECT_EQ(c.server.trusted_proxies, (std::vector<std::string>{"10.0.0.0/8", "::1"}));
    EXPECT_TRUE(c.server.secure_cookie);
    EXPECT_EQ(c.server.metrics_token, "s3cret");
    EXPECT_EQ(c.auth.throttle_login.count, 3u);
    EXPECT_EQ(c.auth.throttle_login.per, 60s);
    EXPECT_EQ(c.auth.throttle_login_address.count, 0u);
    EXPECT_CONFIG_ERROR("[server]\ntrusted_proxies = [\"10.0.0.0/33\"]\n",
                        "t.toml:2: server.trusted_proxies:");
    EXPECT_CONFIG_ERROR("[server]\ntrusted_proxies = [\"proxy.example\"]\n",
                        "t.toml:2: server.trusted_proxies:");

    config e;
    ASSERT_TRUE(apply_env_overrides(e, {"LIVEBASE_SERVER_TRUSTED_PROXIES=10.1.0.0/16, 127.0.0.1",
                                        "LIVEBASE_AUTH_THROTTLE_LOGIN=4/min",
                                        "LIVEBASE_AUTH_THROTTLE_LOGIN_ADDRESS=40/min",
                                        "LIVEBASE_SERVER_METRICS_TOKEN=t"}));
    EXPECT_EQ(e.server.trusted_proxies.size(), 2u);
    EXPECT_EQ(e.auth.throttle_login.count, 4u);
    EXPECT_EQ(e.auth.throttle_login_address.count, 40u);
    EXPECT_EQ(e.server.metrics_token, "t");
    EXPECT_FALSE(apply_env_overrides(e, {"LIVEBASE_SERVER_TRUSTED_PROXIES=nope"}));
}

TEST(Config, BasePathRoot) {
    EXPECT_EQ(load_ok("[server]\nbase_path = \"/\"\n").server.base_path, "/");
    EXPECT_CONFIG_ERROR("[server]\nbase_path = \"api\"\n",
                        "t.toml:2: server.base_path: must start with \"/\"");
    EXPECT_CONFIG_ERROR("[server]\nbase_path = \"/a?b\"\n", "t.toml:2: server.base_path:");
}

TEST(Config, ActionsEndpointsAndKinds) {
    auto c = load_ok(R"(
[collections.cars]
fields.brand = { type = "string" }
[collections.cars.actions.report]
methods = ["GET", "POST"]
[collections.cars.actions.paint]
detail = true
task = "registered_in_cpp"

[tasks.kinds.cpp_only]
timeout = 30
[tasks.kinds.script]
command = ["/bin/echo", "hi"]
kill_grace = "2s"

[endpoints.b]
path = "/api/b"
method = "POST"
task = "x"
rule = "admin"
[endpoints.a]
path = "/api/a"
task = "y"
)");
    const auto& cars = c.collections.at(0);
    EXPECT_EQ(cars.actions.at("report").methods, (std::vector<std::string>{"GET", "POST"}));
    EXPECT_FALSE(cars.actions.at("report").detail);
    EXPECT_EQ(cars.actions.at("report").rule, access_rule::authenticated);
    EXPECT_EQ(cars.actions.at("paint").task, "registered_in_cpp");
    EXPECT_TRUE(c.tasks.kinds.at("cpp_only").command.empty());
    EXPECT_EQ(c.tasks.kinds.at("cpp_only").timeout, std::optional<std::chrono::milliseconds>(30s));
    EXPECT_FALSE(c.tasks.kinds.at("cpp_only").max_attempts.has_value());
    EXPECT_EQ(c.tasks.kinds.at("script").command.size(), 2u);
    EXPECT_EQ(c.tasks.kinds.at("script").kill_grace, 2s);
    ASSERT_EQ(c.endpoints.size(), 2u);
    EXPECT_EQ(c.endpoints[0].name, "b");
    EXPECT_EQ(c.endpoints[0].method, "POST");
    EXPECT_EQ(c.endpoints[0].rule, access_rule::admin);
    EXPECT_EQ(c.endpoints[1].name, "a");
    EXPECT_EQ(c.endpoints[1].method, "GET");
    EXPECT_EQ(c.endpoints[1].rule, access_rule::public_);
}

TEST(Config, TaskKindsSubmittableDirectly) {
    auto c = load_ok("[tasks.kinds.mail]\nsubmit = \"authenticated\"\n[tasks.kinds.quiet]\ntimeout = 3\n");
    ASSERT_TRUE(c.tasks.kinds.at("mail").submit.has_value());
    EXPECT_EQ(*c.tasks.kinds.at("mail").submit, access_rule::authenticated);
    EXPECT_FALSE(c.tasks.kinds.at("quiet").submit.has_value());
    EXPECT_CONFIG_ERROR("[tasks.kinds.mail]\nsubmit = \"owner\"\n", "t.toml:2: tasks.kinds.mail.submit: \"owner\" applies to records");
    EXPECT_CONFIG_ERROR("[tasks.kinds.mail]\nsubmit = \"everyone\"\n", "t.toml:2: tasks.kinds.mail.submit: unknown rule");
    EXPECT_CONFIG_ERROR("[tasks.kinds.mail]\nsubmit = true\n", "t.toml:2: tasks.kinds.mail.submit");
}

TEST(Config, TaskQueuesWithWorkersLimitsAndTheirKinds) {
    auto c = load_ok(R"(
[tasks.queues.mail]
workers = 2
rate_limit = "50/s"
priority = 3
[tasks.queues.media]
concurrency = { render = 1 }
[tasks.kinds.send]
queue = "mail"
[tasks.kinds.render]
queue = "media"
[tasks.kinds.plain]
queue = "default"
)");
    const auto& mail = c.tasks.queues.at("mail");
    EXPECT_EQ(mail.workers, 2u);
    EXPECT_EQ(mail.rate_limit.count, 50u);
    EXPECT_EQ(mail.rate_limit.per, 1s);
    EXPECT_EQ(mail.priority, 3);
    const auto& media = c.tasks.queues.at("media");
    EXPECT_EQ(media.workers, 1u);
    EXPECT_EQ(media.rate_limit.count, 0u);
    EXPECT_EQ(media.concurrency.at("render"), 1u);
    EXPECT_EQ(c.tasks.kinds.at("send").queue, "mail");
    EXPECT_EQ(c.tasks.kinds.at("plain").queue, "");  // "default" is the tasks.workers queue

    EXPECT_CONFIG_ERROR("[tasks.kinds.send]\nqueue = \"mail\"\n", "t.toml:2: tasks.kinds.send.queue: no [tasks.queues.mail]");
    EXPECT_CONFIG_ERROR("[tasks.queues.default]\nworkers = 1\n", "tasks.queues.default: a queue name");
    EXPECT_CONFIG_ERROR("[tasks.queues.mail]\nrate_limit = \"fast\"\n", "t.toml:2: tasks.queues.mail.rate_limit");
    EXPECT_CONFIG_ERROR("[tasks.queues.mail]\nworkers = -1\n", "t.toml:2: tasks.queues.mail.workers");
    EXPECT_CONFIG_ERROR("[tasks.queues.mail]\npriority = 11\n", "t.toml:2: tasks.queues.mail.priority");
    EXPECT_CONFIG_ERROR("[tasks.queues.mail]\nspeed = 1\n", "tasks.queues.mail.speed");
    EXPECT_CONFIG_ERROR("[tasks.queues.mail]\nconcurrency = { send = 0 }\n", "tasks.queues.mail.concurrency.send");
    // A limit on a kind that does not run in the queue would never apply.
    EXPECT_CONFIG_ERROR("[tasks.queues.mail]\nconcurrency = { send = 2 }\n",
                        "tasks.queues.mail.concurrency.send: the kind must be declared with queue = \"mail\"");
}

TEST(Config, RealtimeDeflateSettings) {
    auto d = load_ok("");
    EXPECT_FALSE(d.realtime.deflate);
    EXPECT_EQ(d.realtime.deflate_threshold, 1024u);
    EXPECT_EQ(d.realtime.deflate_level, 6u);
    auto c = load_ok("[realtime]\ndeflate = true\ndeflate_threshold = \"2KiB\"\ndeflate_level = 9\n");
    EXPECT_TRUE(c.realtime.deflate);
    EXPECT_EQ(c.realtime.deflate_threshold, 2048u);
    EXPECT_EQ(c.realtime.deflate_level, 9u);
    EXPECT_CONFIG_ERROR("[realtime]\ndeflate_level = 0\n", "t.toml:2: realtime.deflate_level: must be at least 1");
    EXPECT_CONFIG_ERROR("[realtime]\ndeflate_level = 10\n", "t.toml:2: realtime.deflate_level");
    EXPECT_CONFIG_ERROR("[realtime]\ndeflate = \"maybe\"\n", "t.toml:2: realtime.deflate");
}

TEST(Config, PostgresTimeoutsAndDrainPeriod) {
    const auto d = load_ok("[storage]\nurl = \"sqlite:x.db\"\n");
    EXPECT_EQ(d.storage.connect_timeout, 5s);
    EXPECT_EQ(d.storage.statement_timeout, 30s);
    EXPECT_TRUE(d.storage.keepalives);
    EXPECT_EQ(d.storage.startup_wait, 30s);
    EXPECT_EQ(d.server.drain_period, 5s);

    const auto c = load_ok(R"(
[server]
drain_period = "0s"
[storage]
url = "postgresql://u@localhost/db"
connect_timeout = "1500ms"
statement_timeout = "2s"
keepalives = false
startup_wait = 0
)");
    EXPECT_EQ(c.server.drain_period, 0s);
    EXPECT_EQ(c.storage.connect_timeout, 1500ms);
    EXPECT_EQ(c.storage.statement_timeout, 2s);
    EXPECT_FALSE(c.storage.keepalives);
    EXPECT_EQ(c.storage.startup_wait, 0s);

    EXPECT_NE(load_error("[storage]\nconnect_timeout = \"10ms\"\n").find("connect_timeout"), std::string::npos);
    EXPECT_NE(load_error("[storage]\nstatement_timeout = \"soon\"\n").find("statement_timeout"), std::string::npos);
    EXPECT_NE(load_error("[storage]\nkeepalives = \"yes\"\n").find("keepalives"), std::string::npos);
    EXPECT_NE(load_error("[server]\ndrain_period = -1\n").find("drain_period"), std::string::npos);
}

}  // namespace
}  // namespace livebase
