#pragma once
// An api over a fresh SQLite store, optionally with tasks (queue, waiters, an in-process worker
// pool that runs stored requests through the api, as app.cpp wires it) and an authenticator.
#include "support/cars.hpp"
#include "support/json_helpers.hpp"
#include "support/test_backend.hpp"
#include "support/wait.hpp"
#include <gtest/gtest.h>

#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <future>
#include <livebase/api/api.hpp>
#include <livebase/auth/auth.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/schema/validate.hpp>
#include <livebase/tasks/queue.hpp>
#include <livebase/tasks/task.hpp>
#include <livebase/tasks/waiters.hpp>
#include <livebase/tasks/worker_pool.hpp>
#include <map>
#include <memory>
#include <random>
#include <thread>

namespace livebase::api_test_support {

using namespace std::chrono_literals;

using test::await;
using test::eventually;
using test::k_wait;

inline principal anonymous() { return {}; }
inline principal user(std::string id) {
    principal p;
    p.user_id = id;
    p.username = std::move(id);
    return p;
}
inline principal admin(std::string id = "u-admin") {
    auto p = user(std::move(id));
    p.admin = true;
    return p;
}

inline std::FILE* quiet_sink() {
    static std::FILE* f = std::fopen("/dev/null", "w");
    return f ? f : stderr;
}

inline field_def string_field(std::string name, bool required = false) {
    field_def f;
    f.name = std::move(name);
    f.required = required;
    return f;
}

/// An owned collection `name` with one string field "title" and `rules` (unfinalized).
inline collection_def titled(std::string name, std::map<std::string, access_rule> rules = {}) {
    collection_def c;
    c.name = std::move(name);
    c.owned = true;
    c.fields = {string_field("title")};
    for (auto& [action, rule] : rules) c.rules[action] = rule;
    return c;
}

/// The notes: titled, listed by everyone, created by users, changed by their owners, and
/// retrieved under `retrieve`.
inline collection_def notes_collection(access_rule retrieve) {
    return titled("notes", {{"list", access_rule::public_},
                            {"retrieve", retrieve},
                            {"create", access_rule::authenticated},
                            {"update", access_rule::owner},
                            {"delete", access_rule::owner}});
}

/// The "errors" member of a validation problem body, or an empty object.
inline json::object field_errors_of(const outcome& o) {
    if (!o.body.is_object()) return {};
    auto it = o.body.get_object().find("errors");
    return it != o.body.get_object().end() && it->value().is_object() ? it->value().get_object()
                                                                      : json::object{};
}

inline std::string header(const outcome& o, std::string_view name) {
    for (const auto& [k, v] : o.headers)
        if (k == name) return v;
    return {};
}

class api_fixture : public ::testing::Test {
protected:
    void TearDown() override {
        if (workers_) workers_->stop();
        if (waiters_) waiters_->stop();
        api_.reset();
        auth_.reset();
        if (db_) db_->close();
        workers_.reset();
        waiters_.reset();
        queue_.reset();
        db_.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir_, ec);
    }

    /// Opens the store over reg_'s collections (plus users, tokens, tasks, idempotency keys)
    /// and builds the api. `tasks`: also a queue, waiters and a started worker pool.
    /// `auth`: an authenticator, enabled on the api with `signup`. `start_workers` false leaves
    /// the pool stopped (register more kinds, then workers_->start()).
    void start(bool tasks = false, bool auth = false, bool signup = false,
               bool start_workers = true) {
        std::random_device rd;
        dir_ = std::filesystem::temp_directory_path() / ("livebase-api-" + std::to_string(rd()));
        std::filesystem::create_directories(dir_);
        LIVEBASE_REQUIRE_BACKEND();
        auto s = open_store(test::storage_url((dir_ / "api.db").string()), &log_);
        ASSERT_TRUE(s) << s.error().detail;
        db_ = std::move(s).value();
        if (!reg_.find(users_collection().name)) reg_.add_collection(users_collection());
        auto all = reg_.collections();
        all.push_back(&tokens_collection());
        all.push_back(&tasks_collection());
        all.push_back(&idempotency_collection());
        auto m = db_->migrate(all, false, false);
        ASSERT_TRUE(m) << m.error().detail;
        api_ = std::make_unique<api>(reg_, *db_, log_, "/api");
        if (auth) {
            auth_ = std::make_unique<authenticator>(*db_, auth_settings{}, log_);
            api_->enable_auth(*auth_, signup);
        }
        if (tasks) {
            queue_ = std::make_unique<task_queue>(*db_);
            waiters_ = std::make_unique<task_waiters>();
            worker_pool_options wo;
            wo.workers = 2;
            wo.poll_interval = 20ms;
            wo.progress_interval = 20ms;
            wo.shutdown_grace = 500ms;
            wo.max_attempts = 1;
            wo.log = &log_;
            wo.on_finished = [w = waiters_.get()](const std::string& id) { w->notify(id); };
            workers_ = std::make_unique<worker_pool>(*queue_, wo);
            api_->enable_tasks(*queue_, *workers_, *waiters_);
            auto run_request = [a = api_.get()](task_context& ctx) -> result<outcome> {
                auto op = operation_from_request(ctx.input());
                if (!op) return std::move(op).error();
                op->from_task = true;
                return a->execute_sync(std::move(op).value());
            };
            for (const auto* c : reg_.collections()) {
                for (auto k : {op_kind::list, op_kind::retrieve, op_kind::create, op_kind::replace,
                               op_kind::patch, op_kind::remove})
                    workers_->register_handler(operation_task_kind(c->name, k), run_request);
                for (const auto& [name, def] : c->actions)
                    if (def.task.empty())
                        workers_->register_handler(
                            operation_task_kind(c->name, op_kind::action, name), run_request);
            }
            if (start_workers) workers_->start();
        }
    }

    outcome run(operation op) { return api_->execute_sync(std::move(op)); }

    static operation make_op(op_kind kind, std::string collection, std::string id, principal who,
                             json::value input = nullptr) {
        operation op;
        op.kind = kind;
        op.collection = std::move(collection);
        op.id = std::move(id);
        op.who = std::move(who);
        op.input = std::move(input);
        op.path = "/api/" + op.collection + (op.id.empty() ? "" : "/" + op.id);
        // The HTTP method of each op_kind, in the enum's order.
        static constexpr const char* k_methods[] = {"GET", "GET", "POST", "PUT", "PATCH", "DELETE", "POST"};
        op.method = k_methods[static_cast<int>(kind)];
        return op;
    }

    static operation action_op(std::string collection, std::string id, std::string action,
                               principal who) {
        auto op = make_op(op_kind::action, std::move(collection), std::move(id), std::move(who));
        op.action = std::move(action);
        return op;
    }

    static operation auth_op(std::string action, principal who = {}, json::value input = nullptr,
                             std::string method = "POST") {
        operation op;
        op.kind = op_kind::action;
        op.collection = "auth";
        op.action = std::move(action);
        op.method = std::move(method);
        op.who = std::move(who);
        op.input = std::move(input);
        op.path = "/api/auth/" + op.action;
        op.client_ip = "192.0.2.1";
        return op;
    }

    /// Stores a record directly (no rules): id, managed fields, `owner`, then `fields`.
    std::string insert(const collection_def& c, const std::string& owner,
                       json::object fields = {}) {
        json::object rec;
        auto now = now_ms();
        std::string id = make_ulid(now);
        rec["id"] = id;
        rec["created"] = format_timestamp(now);
        rec["updated"] = rec["created"];
        rec["version"] = 1;
        if (c.owned) rec["owner"] = owner.empty() ? json::value(nullptr) : json::value(owner);
        for (const auto& kv : fields) rec[kv.key()] = kv.value();
        auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
            if (auto w = t.insert(c, rec); !w) return std::move(w).error();
            return json::value(nullptr);
        });
        EXPECT_TRUE(r) << (r ? "" : r.error().detail);
        return id;
    }

    std::optional<json::object> stored(const collection_def& c, const std::string& id) {
        auto r = db_->get_sync(c, id);
        EXPECT_TRUE(r);
        return r ? *r : std::nullopt;
    }

    /// A user created through the authenticator (blocking): its principal.
    principal make_user(const std::string& name, const std::string& password,
                        bool is_admin = false) {
        auto u = auth_->create_user_sync(name, password, is_admin);
        EXPECT_TRUE(u) << (u ? "" : u.error().detail);
        principal p;
        if (!u) return p;
        p.user_id = std::string(get_string(*u, "id"));
        p.username = name;
        p.admin = is_admin;
        return p;
    }

    /// The finished task `id` (bounded wait), or an empty object.
    json::object wait_task(const std::string& id) {
        json::object last;
        eventually([&] {
            auto r = queue_->get(id);
            if (!r || !*r) return false;
            last = **r;
            auto s = task_state_from_string(get_string(last, "state"));
            return s && is_finished(*s);
        });
        return last;
    }

    std::filesystem::path dir_;
    logger log_{quiet_sink()};
    registry reg_;
    std::unique_ptr<store> db_;
    std::unique_ptr<authenticator> auth_;
    std::unique_ptr<task_queue> queue_;
    std::unique_ptr<task_waiters> waiters_;
    std::unique_ptr<worker_pool> workers_;
    std::unique_ptr<api> api_;
};

}  // namespace livebase::api_test_support
