// A WebSocket session's send path: replies and the hub's frames through one ordered ingress
// into the bounded outbox, then out in gathered writes.
#include "ws/session.hpp"

namespace livebase::ws_detail {

void session::take_live(std::vector<frame_ptr>&& frames) {
    std::vector<std::vector<frame_ptr>> earlier;
    bool overflow = false;
    {
        std::lock_guard lock(in_mu_);
        if (in_closed_) return;
        earlier.swap(in_);
        admit_locked(frames);
        overflow = overflow_;
    }
    if (closed_) return;
    if (overflow) return slow_consumer();
    for (auto& d : earlier)
        if (!out_.push(std::move(d))) return slow_consumer();
    if (!out_.push(std::move(frames))) return slow_consumer();
    do_write();
}

bool session::admit_locked(const std::vector<frame_ptr>& frames) {
    // out_.limit() never changes, so reading it off the strand is safe.
    if (!out_.limit().admit(queued_bytes_, queued_frames_)) {
        overflow_ = true;
        in_closed_ = true;
        return false;
    }
    for (const auto& f : frames) queued_bytes_ += f->size();
    queued_frames_ += frames.size();
    return true;
}

void session::enqueue_one(frame_ptr f) {
    std::vector<frame_ptr> v;
    v.push_back(std::move(f));
    enqueue(std::move(v));
}

void session::enqueue(std::vector<frame_ptr>&& frames) {
    bool post = false;
    {
        std::lock_guard lock(in_mu_);
        if (in_closed_) return;
        if (admit_locked(frames)) in_.push_back(std::move(frames));
        if (!drain_posted_) post = drain_posted_ = true;
    }
    if (post) net::post(ex_, [self = shared_from_this()] { self->on_ingress(); });
}

void session::on_ingress() {
    std::vector<std::vector<frame_ptr>> batch;
    bool overflow = false;
    {
        std::lock_guard lock(in_mu_);
        batch.swap(in_);
        drain_posted_ = false;
        overflow = overflow_;
    }
    if (closed_) return;
    if (overflow) return slow_consumer();
    // The ingress admitted each delivery against everything queued, which includes what
    // the outbox holds, so the outbox admits them too; it stays the guard all the same.
    for (auto& d : batch)
        if (!out_.push(std::move(d))) return slow_consumer();
    do_write();
}

void session::do_write() {
    if (writing_ || closed_ || !open_) return;
    if (closing_ && !close_started_ && out_.empty()) {
        control_ += ws_detail::close_frame(close_code_, close_reason_);
        close_started_ = true;
        close_queued_ = true;
    }
    if (out_.empty() && control_.empty()) return;
    const std::size_t n = std::min(out_.size(), k_max_frames_per_write);
    headers_.resize(n * ws_detail::k_max_header);  // not resized again until the write ends
    iov_.clear();
    iov_.reserve(2 * n + 1);
    control_inflight_ = std::move(control_);
    control_ = std::string();
    close_in_flight_ = std::exchange(close_queued_, false);
    if (!control_inflight_.empty()) iov_.push_back(net::buffer(control_inflight_));
    inflight_.reserve(n);
    for (std::size_t i = 0; i < n; ++i) {
        frame_ptr f = out_.front();
        out_.pop();
        inflight_bytes_ += f->size();
        ++inflight_frames_;
        bool compressed = false;
        if (deflate_ && f->size() >= st_->opts.deflate_threshold) {
            frame_ptr c = lane_->compressed(f, *deflate_);
            if (!c->empty() && c->size() < f->size()) {
                inflight_.push_back(std::move(f));  // counted by its own size
                f = std::move(c);
                compressed = true;
            }
        }
        auto* h = reinterpret_cast<unsigned char*>(headers_.data()) + i * ws_detail::k_max_header;
        const std::size_t hn = ws_detail::write_header(h, opcode::text, f->size(), compressed);
        iov_.push_back(net::const_buffer(h, hn));
        iov_.push_back(net::buffer(*f));
        inflight_.push_back(std::move(f));
    }
    writing_ = true;
    // Usually the socket takes it all at once: write now, on the strand, and skip the
    // asynchronous operation and its completion handler. What does not fit goes async.
    error_code ec;
    std::size_t done = sock_.write_some(iov_, ec);
    if (ec == net::error::would_block || ec == net::error::try_again) {
        ec = {};
        done = 0;
    }
    if (ec) return on_write(ec, 0);
    if (done == net::buffer_size(iov_)) return on_write({}, done);
    std::size_t first = 0;
    while (done >= iov_[first].size()) done -= iov_[first++].size();
    iov_[first] += done;
    iov_.erase(iov_.begin(), iov_.begin() + static_cast<std::ptrdiff_t>(first));
    net::async_write(sock_, iov_, beast::bind_front_handler(&session::on_write, shared_from_this()));
}

void session::on_write(error_code ec, std::size_t) {
    writing_ = false;
    std::function<void()> ready;
    {
        std::lock_guard lock(in_mu_);
        queued_bytes_ -= inflight_bytes_;
        queued_frames_ -= inflight_frames_;
        if (ready_ && !in_closed_ && has_room()) ready.swap(ready_);
    }
    if (ready) ready();  // only queues a hub command
    inflight_bytes_ = 0;
    inflight_frames_ = 0;
    inflight_.clear();
    const bool wrote_control = !control_inflight_.empty();
    control_inflight_.clear();
    if (out_.empty()) {
        // An idle socket keeps no write buffers.
        std::vector<frame_ptr>().swap(inflight_);
        std::vector<net::const_buffer>().swap(iov_);
        std::string().swap(headers_);
        std::string().swap(control_inflight_);
    }
    if (closed_) return;
    if (ec) {
        fail(ec, "write");
        return finish();
    }
    if (wrote_control && control_.empty()) ping_inflight_ = false;
    if (std::exchange(close_in_flight_, false)) {
        close_sent_ = true;
        // The peer's close was answered: done. Otherwise the peer's close (or, after a
        // protocol error, its EOF) ends the handshake; the deadline bounds the wait. Reading
        // on rather than closing at once keeps unread bytes from turning into a reset that
        // would destroy the close frame before the peer reads it.
        if (close_by_peer_) return finish();
        do_read();
    }
    do_write();
}

bool session::has_room() const noexcept {
    const auto& l = out_.limit();
    return queued_bytes_ <= l.max_bytes / 4 && queued_frames_ <= l.max_messages / 4;
}

void session::slow_consumer() {
    if (closed_) return;
    drop_outgoing();
    if (closing_) return;  // a close is already under way; nothing more is queued
    st_->slow_consumer_closed();
    start_close(k_close_slow_consumer, "slow consumer");
}

void ws_lane::deliver(std::vector<lane_delivery> batch) {
    net::post(strand_, [batch = std::move(batch)]() mutable {
        for (auto& d : batch) static_cast<session&>(*d.sink).take_live(std::move(d.frames));
    });
}

}  // namespace livebase::ws_detail
