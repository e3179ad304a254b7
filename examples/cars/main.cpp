// The car factory: the cars collection comes from cars.toml; C++ attaches to it through its
// handle (app.collection("cars")): a permission, two custom actions, record hooks and the task
// kinds.
//
//   GET|POST /api/cars:brands          -> {"brands": {"Ford": 3, ...}}   (list action)
//   POST     /api/cars/{id}:repaint    {"color": "Red"} -> the updated car (detail action)
//   POST     /api/cars/{id}:build      -> 202, task `build_car`: frame, paint, wheels
//   POST     /api/cars {"build": true, ...} -> 201, and the build task enqueued with the car
//   GET      /api/double?foo=1         -> 202, task `double` -> {"result": 2}
#include <livebase/app/app.hpp>
#include <livebase/core/text.hpp>

#include <chrono>
#include <cstdlib>
#include <iostream>
#include <thread>
#include <map>

namespace lb = livebase;

namespace {

// Counts cars per brand, a page at a time.
lb::result<lb::outcome> brands(lb::action_call& call) {
    std::map<std::string, std::int64_t> counts;
    lb::query q;
    q.limit = call.collection.max_page_size;
    for (;;) {
        auto page = call.db.list_sync(call.collection, q);
        if (!page) return std::move(page).error();
        for (const auto& car : page->items) ++counts[std::string(lb::get_string(car, "brand"))];
        q.offset += page->items.size();
        if (page->items.empty() || q.offset >= static_cast<std::size_t>(page->count)) break;
    }
    lb::json::object by_brand;
    for (const auto& [brand, n] : counts) by_brand[brand] = n;
    return lb::outcome::json_body(200, lb::json::object{{"brands", std::move(by_brand)}});
}

// Repaints a car through the same pipeline as PATCH, so validation (choices) and the change
// log apply exactly as for any write.
lb::result<lb::outcome> repaint(lb::action_call& call) {
    auto color = call.input().require<std::string>("color");  // else 400 naming "color"
    if (!color) return std::move(color).error();
    lb::operation patch = call.op;
    patch.kind = lb::op_kind::patch;
    patch.input = lb::json::object{{"color", *color}};
    return call.self.execute_sync(std::move(patch));
}

// A car built before 1950 is a classic: only an admin may scrap it. The rules (cars.toml)
// already let only the owner delete; this says why a classic's owner may not.
lb::verdict keep_classics(const lb::principal& who, std::string_view action, const lb::json::object* car) {
    if (action != "delete" || !car || who.admin) return lb::verdict::allow();
    auto model = lb::get_int(*car, "model");
    if (model && *model < 1950) return lb::verdict::deny("A classic car (built before 1950) is scrapped only by an admin.");
    return lb::verdict::allow();
}

// Before a car is stored (inside its transaction): " Ford " is stored as "Ford". Returning a
// problem instead would refuse the write.
lb::result<void> tidy_brand(lb::record_write& w) {
    auto& car = *w.record;
    car["brand"] = std::string(lb::trim_space(lb::get_string(car, "brand")));
    return {};
}

// Created with "build": true, a car's build task is enqueued in the same transaction: the car
// and its build commit together, or neither does. The creator follows it at /api/tasks.
lb::result<void> build_on_create(lb::record_write& w) {
    auto& car = *w.record;
    auto build = car.find("build");
    if (build == car.end() || !build->value().is_bool() || !build->value().get_bool()) return {};
    car["build"] = false;  // a request, not a state to keep
    auto task = w.enqueue("build_car", lb::json::object{{"pk", car.at("id")}});
    if (!task) return std::move(task).error();  // e.g. 429: too many pending tasks
    return {};
}

// Builds a car in three steps with progress; honours cancellation between (and within) steps.
// CARS_STEP_MS sets each step's duration (default 1500 ms).
lb::result<lb::outcome> build_car(lb::task_context& ctx) {
    static const char* steps[] = {"frame", "paint", "wheels"};
    const char* env = std::getenv("CARS_STEP_MS");
    int step_ms = env ? std::atoi(env) : 1500;
    for (const char* s : steps) ctx.step(s, "pending");
    for (int i = 0; i < 3; ++i) {
        ctx.step(steps[i], "running");
        ctx.message(std::string("building: ") + steps[i]);
        for (int t = 0; t < 10; ++t) {
            ctx.throw_if_cancelled();
            std::this_thread::sleep_for(std::chrono::milliseconds(step_ms / 10));
            ctx.progress((i * 10 + t + 1) * 100.0 / 30);
            ctx.eta(((2 - i) * 10 + (9 - t)) * step_ms / 10 / 1000.0);
        }
        ctx.step(steps[i], "done");
    }
    const auto& in = ctx.input();
    lb::json::value car = in.is_object() && in.get_object().contains("pk") ? in.get_object().at("pk") : nullptr;
    return lb::outcome::json_body(200, lb::json::object{{"car", car}, {"state", "ready"}});
}

// GET /api/double?foo=1 -> {"result": 2}
lb::result<lb::outcome> double_it(lb::task_context& ctx) {
    const auto& in = ctx.input();
    if (!in.is_object() || !in.get_object().contains("foo"))
        return lb::problem::validation({{"foo", {"This field is required."}}});
    const auto& v = in.get_object().at("foo");
    std::string text = v.is_string() ? std::string(v.get_string()) : lb::to_json_text(v);
    char* end = nullptr;
    double n = std::strtod(text.c_str(), &end);
    if (text.empty() || *end != '\0') return lb::problem::validation({{"foo", {"Must be a number."}}});
    double twice = n * 2;
    lb::json::value result = twice;
    if (twice == static_cast<double>(static_cast<std::int64_t>(twice))) result = static_cast<std::int64_t>(twice);
    return lb::outcome::json_body(200, lb::json::object{{"result", result}});
}

}  // namespace

int main(int argc, char** argv) {
    lb::app app;
    if (auto r = app.load_config_file(LIVEBASE_CARS_CONFIG); !r) {
        std::cerr << r.error().detail << "\n";
        return 1;
    }
    // What goes wrong here (an unknown collection, a bad action) fails start with the reason.
    app.collection("cars")
        .permission(keep_classics)
        .action({.name = "brands", .methods = {"GET", "POST"}, .rule = lb::access_rule::public_}, brands)
        .action({.name = "repaint", .detail = true, .rule = lb::access_rule::authenticated}, repaint)
        .task_kind("build_car", build_car)
        .before_create(tidy_brand)
        .before_create(build_on_create)
        .before_update(tidy_brand)
        .after_delete([&app](const lb::record_write& w) {  // once the delete has committed
            app.log().info("car scrapped", {{"id", w.stored->at("id")}, {"by", w.who.user_id}});
        });
    if (auto r = app.add_task_kind("double", double_it); !r) return 1;
    return app.main(argc, argv);
}
