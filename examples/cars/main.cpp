// The car factory: the cars collection comes from cars.toml; two custom actions are written in
// C++ against the public API.
//
//   GET|POST /api/cars:brands          -> {"brands": {"Ford": 3, ...}}   (list action)
//   POST     /api/cars/{id}:repaint    {"color": "Red"} -> the updated car (detail action)
#include <livebase/app/app.hpp>

#include <iostream>
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
    if (!call.op.input.is_object() || !call.op.input.get_object().contains("color"))
        return lb::problem::validation({{"color", {"This field is required."}}});
    lb::operation patch = call.op;
    patch.kind = lb::op_kind::patch;
    patch.input = lb::json::object{{"color", call.op.input.get_object().at("color")}};
    return call.self.execute_sync(std::move(patch));
}

}  // namespace

int main(int argc, char** argv) {
    lb::app app;
    if (auto r = app.load_config_file(LIVEBASE_CARS_CONFIG); !r) {
        std::cerr << r.error().detail << "\n";
        return 1;
    }
    lb::action_def list_action;
    list_action.name = "brands";
    list_action.methods = {"GET", "POST"};
    list_action.rule = lb::access_rule::public_;
    lb::action_def detail_action;
    detail_action.name = "repaint";
    detail_action.detail = true;
    detail_action.rule = lb::access_rule::authenticated;
    if (auto r = app.add_action("cars", list_action, brands); !r) return 1;
    if (auto r = app.add_action("cars", detail_action, repaint); !r) return 1;
    return app.main(argc, argv);
}
