#pragma once
/// The bounded send queue of one WebSocket session (realtime.md "Flow control").
#include <cstddef>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace livebase::ws_detail {

using frame_ptr = std::shared_ptr<const std::string>;

/// Bounded FIFO of outgoing frames for one WebSocket session. Policy only, no I/O. Not
/// thread-safe: a session touches it only on its own strand.
///
/// Frames arrive in deliveries (a reply, or what the hub hands over at once: one pass's
/// events, or one page of a resume's replay). A delivery is taken whole or refused: it is
/// refused when the queue is already over a limit. So the queue exceeds its limits by at most
/// one delivery; the frames are the hub's shared, already-allocated buffers, so taking them
/// costs pointers, not copies.
///
/// The session pops a frame when it starts writing it; the bytes in flight are the session's
/// to count.
class outbox {
public:
    struct limits {
        std::uint64_t max_bytes = 4u << 20;  ///< queued bytes before the peer counts as slow
        std::size_t max_messages = 100000;   ///< queued frames before the peer counts as slow

        /// The acceptance rule, shared with the session's ingress: a queue holding `bytes` in
        /// `frames` takes another delivery iff it is within both limits.
        bool admit(std::uint64_t bytes, std::size_t frames) const noexcept {
            return bytes <= max_bytes && frames <= max_messages;
        }
    };
    explicit outbox(limits l) noexcept : limits_(l) {}

    /// Queues `delivery` whole, or returns false and changes nothing when the outbox is already
    /// over a limit. REQUIRES: no null frames.
    [[nodiscard]] bool push(std::vector<frame_ptr>&& delivery);
    /// A delivery of one frame.
    [[nodiscard]] bool push(frame_ptr frame);
    /// True when push() would accept a delivery now.
    bool admits() const noexcept { return limits_.admit(bytes_, size()); }

    bool empty() const noexcept { return head_ == frames_.size(); }
    std::size_t size() const noexcept { return frames_.size() - head_; }
    std::uint64_t bytes() const noexcept { return bytes_; }
    const limits& limit() const noexcept { return limits_; }

    /// The oldest frame. REQUIRES: !empty().
    const frame_ptr& front() const noexcept { return frames_[head_]; }
    /// Drops the oldest frame. REQUIRES: !empty().
    void pop() noexcept;
    /// Drops every frame and releases their memory.
    void clear() noexcept;

private:
    void compact();

    limits limits_;
    // A vector with a moving head rather than a deque: libstdc++'s deque allocates ~600 bytes
    // even when empty, and most sockets are idle most of the time.
    std::vector<frame_ptr> frames_;
    std::size_t head_ = 0;
    std::uint64_t bytes_ = 0;
};

}  // namespace livebase::ws_detail
