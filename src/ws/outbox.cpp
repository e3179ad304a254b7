#include "ws/outbox.hpp"

namespace livebase::ws_detail {

namespace {
/// Capacity an empty outbox may keep; beyond it the memory goes back (idle sockets stay small).
constexpr std::size_t k_keep_capacity = 16;
/// Consumed slots at the head are compacted away once there are this many and they are at
/// least half the vector, so a steady stream never grows the vector without bound.
constexpr std::size_t k_compact_after = 64;
}  // namespace

void outbox::compact() {
    if (head_ >= k_compact_after && head_ * 2 >= frames_.size()) {
        frames_.erase(frames_.begin(), frames_.begin() + static_cast<std::ptrdiff_t>(head_));
        head_ = 0;
    }
}

bool outbox::push(std::vector<frame_ptr>&& delivery) {
    if (!admits()) return false;
    compact();
    for (auto& f : delivery) {
        bytes_ += f->size();
        frames_.push_back(std::move(f));
    }
    delivery.clear();
    return true;
}

bool outbox::push(frame_ptr frame) {
    if (!admits()) return false;
    compact();
    bytes_ += frame->size();
    frames_.push_back(std::move(frame));
    return true;
}

void outbox::pop() noexcept {
    bytes_ -= frames_[head_]->size();
    frames_[head_].reset();
    if (++head_ == frames_.size()) {
        frames_.clear();
        head_ = 0;
        if (frames_.capacity() > k_keep_capacity) frames_.shrink_to_fit();
    }
}

void outbox::clear() noexcept {
    std::vector<frame_ptr>().swap(frames_);
    head_ = 0;
    bytes_ = 0;
}

}  // namespace livebase::ws_detail
