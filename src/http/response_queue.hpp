#pragma once
/// Ordered, bounded slots for pipelined HTTP/1.1 responses. Policy only, no I/O.
/// Not thread-safe: a session touches it only on its own strand.
#include <cassert>
#include <cstdint>
#include <deque>
#include <utility>

namespace livebase::http_detail {

/// Responses must leave in request order although the api may finish them out of order: each
/// request takes a slot when it is read, its response fills the slot whenever it is ready, and
/// only a ready front slot may be written. At most `limit` slots exist; a full queue means the
/// session stops reading (the peer's bytes wait in TCP buffers), so memory never grows with a
/// client that pipelines without reading.
template <class Slot>
class response_queue {
public:
    using id_type = std::uint64_t;

    /// `limit` 0 is treated as 1 (no pipelining, but one request at a time still works).
    explicit response_queue(std::size_t limit) noexcept : limit_(limit == 0 ? 1 : limit) {}

    bool empty() const noexcept { return slots_.empty(); }
    bool full() const noexcept { return slots_.size() >= limit_; }
    std::size_t size() const noexcept { return slots_.size(); }
    std::size_t limit() const noexcept { return limit_; }

    /// Appends a not-ready slot and returns its id. REQUIRES: !full().
    id_type push(Slot s) {
        assert(!full());
        slots_.push_back(entry{std::move(s), false});
        return front_id_ + slots_.size() - 1;
    }

    /// The slot `id`, or nullptr once it has been popped. Ids are never reused.
    Slot* find(id_type id) noexcept {
        if (id < front_id_ || id - front_id_ >= slots_.size()) return nullptr;
        return &slots_[id - front_id_].slot;
    }

    /// Marks `id` ready (its response can be written once it reaches the front). Returns false
    /// if the slot is gone.
    bool set_ready(id_type id) noexcept {
        if (id < front_id_ || id - front_id_ >= slots_.size()) return false;
        slots_[id - front_id_].ready = true;
        return true;
    }

    /// The front slot if it is ready, else nullptr.
    Slot* ready_front() noexcept {
        return !slots_.empty() && slots_.front().ready ? &slots_.front().slot : nullptr;
    }
    Slot& front() noexcept { return slots_.front().slot; }

    /// Removes the front slot. REQUIRES: !empty().
    void pop() noexcept {
        assert(!slots_.empty());
        slots_.pop_front();
        ++front_id_;
    }

private:
    struct entry {
        Slot slot;
        bool ready;
    };
    std::size_t limit_;
    id_type front_id_ = 0;
    std::deque<entry> slots_;
};

}  // namespace livebase::http_detail
