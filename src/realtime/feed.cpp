// A pass over the change log: read a batch after the cursor (and the live queries it touched),
// then match each change against the subscriptions and encode it once.
#include "realtime/hub_impl.hpp"

#include <algorithm>

namespace livebase {

namespace {

// After a storage error the hub waits this long before it reads again.
constexpr auto k_retry_delay = std::chrono::milliseconds(100);

}  // namespace

// One pass: a batch of the log, and (when the batch reached the end of the log) the live
// queries it touched, re-listed at the same snapshot.
void hub::impl::pass() {
    std::optional<problem> failed;
    std::vector<change> changes;
    bool complete = false;
    std::int64_t snap = 0;
    std::int64_t floor = 0;
    std::vector<std::pair<observer_state*, result<page>>> lists;
    const bool read = blocking_read([&](read_txn& t) {
        auto r = t.changes_after(cursor_, opt_.batch);
        if (!r) return void(failed = std::move(r).error());
        changes = std::move(*r);
        // A hole after the cursor is usually a rolled-back append; the floor tells whether
        // the log was trimmed past this hub (trims never delete the newest row, so a
        // trimmed past cursor always leaves a hole here).
        if (!changes.empty() && changes.front().seq > cursor_ + 1) {
            auto f = t.history_floor();
            if (!f) return void(failed = std::move(f).error());
            floor = *f;
        }
        complete = changes.size() < opt_.batch;
        for (const auto& ch : changes)
            if (auto it = colls_.find(ch.collection); it != colls_.end()) it->second->touched = true;
        if (!complete) return;
        auto s = t.snapshot_seq();
        if (!s) return void(failed = std::move(s).error());
        snap = *s;
        for (auto& [name, coll] : colls_) {
            for (auto* obs : coll->observers) {
                // A stale window (a failed re-list, a new identity) is re-listed even at
                // its own seq: nothing else would clear it.
                if (!obs->stale && (!coll->touched || obs->seq >= snap)) continue;
                lists.emplace_back(obs, list_window(t, *obs->owner, *coll->def, obs->q));
            }
        }
    });
    if (!read && !failed) failed = problem::unavailable("The change log read threw.");
    if (failed) {
        log_.warn("reading the change log failed; retrying",
                  {{"after", cursor_}, {"status", failed->status}, {"detail", failed->detail}});
        retry_at_ = steady::now() + k_retry_delay;
        return;
    }

    if (floor > cursor_) history_lost(floor);
    for (const auto& ch : changes) {
        check_revocation(ch);
        fan_out(ch);
    }
    std::int64_t next = changes.empty() ? cursor_ : changes.back().seq;
    if (complete) {
        for (auto& [obs, pg] : lists) {
            if (!pg) {
                log_.warn("re-listing a live query failed; retrying",
                          {{"observer", obs->id}, {"client", obs->owner->id}, {"status", pg.error().status}});
                mark_stale(*obs);
                retry_at_ = steady::now() + k_retry_delay;
                continue;
            }
            guarded(log_, "re-listing a live query failed", [&] { relisted(*obs, *pg, snap); });
        }
        for (auto& [name, coll] : colls_) coll->touched = false;
        next = std::max(next, snap);
    }
    deliver_pending();
    cursor_ = next;
    // A full batch may have ended exactly at the end of the log: only a pass that reads
    // less than a batch knows, and only it re-lists live queries.
    more_ = !complete;
    // seq() promises that everything up to it is out, live-query diffs included, so it
    // moves only with passes that reached the end of the log (it lags while catching up).
    if (complete) s_->delivered.store(cursor_);
}

// The log was trimmed past the cursor (this node lagged behind the others for longer than
// realtime.node_timeout): the changes in (cursor_, floor] are gone. Every client with
// subscriptions loses them and is closed to resync (it resumes, gets 410, lists again);
// never a silent gap. Live queries re-list at the next snapshot, which covers the gap.
void hub::impl::history_lost(std::int64_t floor) {
    std::size_t closed = 0;
    for (auto& [id, cp] : clients_) {
        client_state& c = *cp;
        for (auto& [oid, obs] : c.observers) mark_stale(*obs);
        if (c.subscriptions.empty()) continue;
        for (auto& [sid, sub] : c.subscriptions) unindex(*sub);
        c.subscriptions.clear();
        ++closed;
        if (auto sink = c.sink.lock())
            guarded(log_, "a resync callback failed", [&] { sink->resync(); });
    }
    log_.warn("the change log was trimmed past this node's position; subscribers resync",
              {{"after", cursor_}, {"floor", floor}, {"clients", closed}});
}

// Every subscription's event for one change. The per (change x subscription) path
// allocates nothing but the client's vector slot; the frame is built once per distinct
// (encoding, action, subscription id) and shared.
void hub::impl::fan_out(const change& ch) {
    auto it = colls_.find(ch.collection);
    if (it == colls_.end()) return;
    collection_state& coll = *it->second;
    const std::vector<subscription_state*>* by_pk = nullptr;
    if (!coll.by_pk.empty()) {
        auto p = coll.by_pk.find(ch.id);
        if (p != coll.by_pk.end()) by_pk = &p->second;
    }
    if (coll.all.empty() && !by_pk) return;

    const auto op = event_action_from_string(ch.op);
    std::optional<change_text> text;
    auto offer = [&](subscription_state& sub) {
        auto a = sub.filter.classify(ch, op);
        if (!a) return;
        client_state& c = *sub.owner;
        if (!visible(c, *coll.def, ch.record)) return;
        frame_ptr& slot = frame_slot(c.encoding, *a, sub.number);
        if (!slot) {
            if (!text) text = encode_change(coll, ch);
            slot = std::make_shared<const std::string>(c.encoding == event_encoding::sse
                                                           ? realtime_detail::sse_event(*text, *a)
                                                           : realtime_detail::websocket_event(*text, *a, sub.id));
        }
        push_frame(c, slot);
    };
    // One subscriber's failure (a throwing hook) must not cost the others this change.
    auto offer_guarded = [&](subscription_state& sub) {
        guarded(log_, "matching a change failed", [&] { offer(sub); });
    };
    for (auto* sub : coll.all) offer_guarded(*sub);
    if (by_pk)
        for (auto* sub : *by_pk) offer_guarded(*sub);
    clear_frame_slots();
}

bool hub::impl::visible(const principal& who, const collection_def& def, const json::object& stored) const {
    return !hooks_.may_see || hooks_.may_see(who, def, stored);
}

bool hub::impl::visible(const client_state& c, const collection_def& def, const json::object& stored) const {
    return visible(c.who, def, stored);
}

auto hub::impl::encode_change(const collection_def& def, const std::string& stream, const change& ch) const -> change_text {
    change_text t;
    t.stream = stream;
    t.pk = realtime_detail::json_string(ch.id);
    t.data = to_json_text(hooks_.present(def, ch.record));
    t.seq = ch.seq;
    return t;
}

auto hub::impl::encode_change(const collection_state& coll, const change& ch) const -> change_text {
    return encode_change(*coll.def, coll.stream, ch);
}

}  // namespace livebase
