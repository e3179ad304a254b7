#include <livebase/api/api.hpp>

namespace livebase {

void registry::add_collection(collection_def c) {
    auto name = c.name;
    collections_.insert_or_assign(std::move(name), std::move(c));
}

const collection_def* registry::find(std::string_view name) const noexcept {
    auto it = collections_.find(name);
    return it == collections_.end() ? nullptr : &it->second;
}

collection_def* registry::find_mutable(std::string_view name) noexcept {
    auto it = collections_.find(name);
    return it == collections_.end() ? nullptr : &it->second;
}

std::vector<const collection_def*> registry::collections() const {
    std::vector<const collection_def*> out;
    out.reserve(collections_.size());
    for (const auto& [_, c] : collections_) out.push_back(&c);
    return out;
}

void registry::add_action_handler(std::string collection, std::string action, action_handler h) {
    actions_.insert_or_assign({std::move(collection), std::move(action)}, std::move(h));
}

const action_handler* registry::find_action_handler(std::string_view collection,
                                                    std::string_view action) const noexcept {
    auto it = actions_.find({std::string(collection), std::string(action)});
    return it == actions_.end() ? nullptr : &it->second;
}

void registry::add_endpoint(endpoint_binding e) { endpoints_.push_back(std::move(e)); }

const endpoint_binding* registry::find_endpoint(std::string_view method,
                                                std::string_view path) const noexcept {
    if (path.size() > 1 && path.back() == '/') path.remove_suffix(1);
    for (const auto& e : endpoints_)
        if (e.method == method && e.path == path) return &e;
    return nullptr;
}

void registry::add_submittable_kind(std::string kind, access_rule rule) { submittable_[std::move(kind)] = rule; }

const access_rule* registry::submit_rule(std::string_view kind) const noexcept {
    auto it = submittable_.find(kind);
    return it == submittable_.end() ? nullptr : &it->second;
}

std::string operation_task_kind(std::string_view collection, op_kind kind, std::string_view action) {
    std::string k(collection);
    if (kind == op_kind::action) {
        k += ':';
        k += action;
    } else {
        k += '.';
        k += to_string(kind);
    }
    return k;
}

}  // namespace livebase
