#include <livebase/realtime/event_filter.hpp>

namespace livebase {

std::string_view to_string(event_action a) noexcept {
    switch (a) {
        case event_action::create: return "create";
        case event_action::update: return "update";
        case event_action::remove: return "delete";
    }
    return "update";
}

std::optional<event_action> event_action_from_string(std::string_view s) noexcept {
    if (s == "create") return event_action::create;
    if (s == "update") return event_action::update;
    if (s == "delete") return event_action::remove;
    return std::nullopt;
}

result<event_filter> event_filter::make(const collection_def& c, std::string pk,
                                        const std::vector<std::string>& actions, const json::object& filter) {
    event_filter f;
    f.pk_ = std::move(pk);
    if (!actions.empty()) {
        f.actions_ = 0;
        for (const auto& name : actions) {
            auto a = event_action_from_string(name);
            if (!a)
                return problem::bad_parameter(
                    "actions", "Unknown action \"" + name + "\"; use create, update or delete.");
            f.actions_ |= static_cast<std::uint8_t>(1u << static_cast<unsigned>(*a));
        }
    }
    auto terms = parse_filter_json(c, filter);
    if (!terms) return std::move(terms).error();
    f.filters_ = std::move(*terms);
    return f;
}

std::optional<event_action> event_filter::classify(const change& ch) const noexcept {
    return classify(ch, event_action_from_string(ch.op));
}

std::optional<event_action> event_filter::classify(const change& ch, std::optional<event_action> op) const noexcept {
    if (!op) return std::nullopt;
    if (!pk_.empty() && ch.id != pk_) return std::nullopt;
    std::optional<event_action> a;
    if (*op != event_action::update || filters_.empty()) {
        // A create or delete counts when its record (after, or before the deletion) matches.
        if (filters_.empty() || matches(filters_, ch.record)) a = *op;
    } else {
        const bool before = matches(filters_, ch.before ? *ch.before : ch.record);
        const bool after = matches(filters_, ch.record);
        if (before && after)
            a = event_action::update;
        else if (after)
            a = event_action::create;
        else if (before)
            a = event_action::remove;
    }
    if (a && !wants(*a)) return std::nullopt;
    return a;
}

}  // namespace livebase
