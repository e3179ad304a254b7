#include "api/record_hooks.hpp"

#include <livebase/schema/validate.hpp>

#include <exception>
#include <memory>

namespace livebase::api_detail {

namespace {

std::string what_of(std::exception_ptr e) {
    try {
        std::rethrow_exception(std::move(e));
    } catch (const std::exception& x) {
        return x.what();
    } catch (...) {
        return "unknown exception";
    }
}

// After the hooks: the declared fields as the hooks left them, validated; every other key as
// it was before them.
result<void> settle_record(logger& log, const collection_def& c, std::string_view action,
                           const json::object& before, json::object& rec) {
    auto bug = [&](std::string_view field, const std::string& error) -> result<void> {
        log.error("a before hook left a record that cannot be stored",
                  {{"collection", c.name}, {"action", action}, {"field", field}, {"error", error}});
        return problem::internal();
    };
    for (const auto& kv : rec)
        if (!c.find_field(kv.key()) && !before.contains(kv.key()))
            return bug(kv.key(), "the collection declares no such field");
    json::object out;
    out.reserve(before.size());
    for (const auto& kv : before)
        if (!c.find_field(kv.key())) out[kv.key()] = kv.value();
    for (const auto& f : c.fields) {
        auto it = rec.find(f.name);
        std::vector<std::string> errors;
        auto v = validate_field_value(f, it == rec.end() ? json::value() : it->value(), errors);
        if (!v) return bug(f.name, errors.empty() ? std::string("invalid value") : errors.front());
        out[f.name] = std::move(*v);
    }
    rec = std::move(out);
    return {};
}

}  // namespace

result<void> run_before_hooks(logger& log, const collection_def& c, const std::vector<before_hook>& hooks,
                              record_write& w) {
    if (hooks.empty()) return {};
    std::optional<json::object> before;
    if (w.record) before = *w.record;
    for (const auto& h : hooks) {
        std::exception_ptr thrown;
        try {
            if (auto r = h(w); !r) return r;
        } catch (...) {
            thrown = std::current_exception();
        }
        if (thrown) {
            log.error("a before hook failed",
                      {{"collection", c.name}, {"action", w.action}, {"error", what_of(thrown)}});
            return problem::internal();
        }
    }
    if (w.record) return settle_record(log, c, w.action, *before, *w.record);
    return {};
}

void schedule_after_hooks(logger& log, const collection_def& c, const std::vector<after_hook>& hooks,
                          committed_write w, const std::function<bool(std::function<void()>)>& post) {
    if (hooks.empty()) return;
    const std::string action = w.action;
    auto job = [&log, &c, &hooks, w = std::make_shared<committed_write>(std::move(w))] {
        record_write view{w->who, w->action, w->record ? &*w->record : nullptr, w->stored ? &*w->stored : nullptr,
                          nullptr};
        for (const auto& h : hooks) {
            std::exception_ptr thrown;
            try {
                h(view);
            } catch (...) {
                thrown = std::current_exception();
            }
            if (thrown)
                log.error("an after hook failed",
                          {{"collection", c.name}, {"action", w->action}, {"error", what_of(thrown)}});
        }
    };
    if (!post(std::move(job)))
        log.warn("after hooks dropped: the handler pool is full or stopping",
                 {{"collection", c.name}, {"action", action}});
}

}  // namespace livebase::api_detail
