#pragma once
/// What one subscription asks of the change log (realtime.md "subscribe"), and which event, if
/// any, a committed change is for it. Policy only, no I/O.
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/schema/query.hpp>
#include <livebase/store/store.hpp>

#include <cstdint>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace livebase {

/// The action of an event. `remove` is the wire's "delete".
enum class event_action : std::uint8_t { create = 0, update = 1, remove = 2 };
inline constexpr std::size_t k_event_actions = 3;

/// "create" | "update" | "delete".
std::string_view to_string(event_action a) noexcept;
/// The action named `s` (wire names), nullopt for anything else.
std::optional<event_action> event_action_from_string(std::string_view s) noexcept;

/// One subscription's selection: a pk (or every record), a filter and the wanted actions.
/// A value; immutable after make(), so safe to share between threads for reading.
class event_filter {
public:
    /// Problems (400, naming the parameter): an action name other than create, update and
    /// delete ("actions"), or a bad filter key or value ("filter.<key>", parse_filter_json).
    /// Empty `actions` means all three.
    static result<event_filter> make(const collection_def& c, std::string pk,
                                     const std::vector<std::string>& actions, const json::object& filter);

    /// The event `ch` is for this subscription, nullopt for none. A create or delete counts
    /// when its record matches the filter. An update counts as an update when the record
    /// matched before and after it, as a create when it starts matching (entered), as a delete
    /// when it stops (left); the record before is `ch.before`, or `ch.record` when the log has
    /// none. Actions not asked for give nullopt. REQUIRES: ch is a change of the subscription's
    /// collection.
    std::optional<event_action> classify(const change& ch) const noexcept;
    /// The same, with `op` = event_action_from_string(ch.op) computed once by a caller that
    /// classifies one change for many subscriptions. A change whose op is unknown has no event.
    std::optional<event_action> classify(const change& ch, std::optional<event_action> op) const noexcept;

    const std::string& pk() const noexcept { return pk_; }
    bool wants(event_action a) const noexcept { return (actions_ >> static_cast<unsigned>(a)) & 1u; }

private:
    std::string pk_;
    std::vector<filter_term> filters_;
    std::uint8_t actions_ = 0b111;
};

}  // namespace livebase
