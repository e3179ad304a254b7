// Delivery: the frames of one change shared between subscriptions, and a pass's frames handed
// to each client's sink, or to its lane in one batch per lane.
#include "realtime/hub_impl.hpp"

#include <algorithm>

namespace livebase {

// The shared frame of (encoding, action, subscription number) for the current change.
auto hub::impl::frame_slot(event_encoding enc, event_action a, std::uint64_t number) -> frame_ptr& {
    // SSE frames do not name the subscription: one frame per action serves all.
    if (enc == event_encoding::sse) number = 0;
    const std::size_t kind = static_cast<std::size_t>(enc) * k_event_actions + static_cast<std::size_t>(a);
    if (number < k_dense_slots) {
        auto& table = dense_[kind];
        if (table.empty()) table.resize(k_dense_slots);
        frame_ptr& slot = table[number];
        if (!slot) used_slots_.push_back(&slot);
        return slot;
    }
    return sparse_[number * 8 + kind];
}

void hub::impl::clear_frame_slots() {
    for (auto* slot : used_slots_) slot->reset();
    used_slots_.clear();
    if (!sparse_.empty()) sparse_.clear();
}

void hub::impl::push_frame(client_state& c, const frame_ptr& f) {
    if (!c.pending) {
        c.pending = true;
        pending_.push_back(&c);
        if (c.out.capacity() == 0) c.out.reserve(std::min<std::size_t>(c.last_frames, 1 << 16));
    }
    c.out.push_back(f);
}

// Clients of a lane go to it in one batch per pass (no hand-off per client); the others
// get deliver() each.
void hub::impl::deliver_pending() {
    std::vector<std::string> expired;
    for (client_state* c : pending_) {
        c->pending = false;
        frame_list frames = std::move(c->out);
        c->out = frame_list();
        c->last_frames = frames.size();
        auto sink = c->sink.lock();
        if (!sink) {
            expired.push_back(c->id);
            continue;
        }
        if (event_lane* l = sink->lane()) {
            auto it = std::find_if(lanes_.begin(), lanes_.end(), [&](const auto& e) { return e.first == l; });
            if (it == lanes_.end()) it = lanes_.insert(lanes_.end(), {l, {}});
            it->second.push_back(lane_delivery{std::move(sink), std::move(frames)});
            continue;
        }
        guarded(log_, "delivering realtime frames failed", [&] { sink->deliver(std::move(frames)); });
    }
    pending_.clear();
    for (auto& [l, batch] : lanes_) {
        if (batch.empty()) continue;
        const std::size_t hint = batch.size();
        guarded(log_, "delivering realtime frames failed", [&] { l->deliver(std::move(batch)); });
        batch = std::vector<lane_delivery>();
        batch.reserve(hint);
    }
    if (!expired.empty()) expire(expired);
}

}  // namespace livebase
