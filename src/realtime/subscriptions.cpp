// Subscriptions: subscribe (with its checks, and the catch-up to a resume's seq), unsubscribe,
// and the per-collection indexes a pass offers each change to.
#include "realtime/hub_impl.hpp"

#include <algorithm>
#include <mutex>

namespace livebase {

// A resume from a seq the hub has not read yet: the client saw it on another node (or
// here, between the commit and the pass that reads it). When the log holds it, the hub
// reads up to it now (passes as usual, delivering to everyone), so that the replay starts
// there; only a seq beyond the log's last one is refused (410: another database, or a
// client from the future). Each pass moves the cursor or fails, so this ends; a failure
// answers 503.
std::optional<problem> hub::impl::catch_up_to(std::int64_t since) {
    std::optional<problem> failed;
    std::int64_t last = 0;
    const bool read = blocking_read([&](read_txn& t) {
        auto s = t.snapshot_seq();
        if (!s) return void(failed = std::move(s).error());
        last = *s;
    });
    if (!read && !failed) failed = problem::unavailable("The change log could not be read; try again.");
    if (failed) return failed;
    if (since > last)
        return problem::gone("seq " + std::to_string(since) + " is ahead of the change log; list again.");
    {
        std::lock_guard<std::mutex> lock(s_->mu);
        if (last > s_->committed) s_->committed = last;
    }
    while (cursor_ < since) {
        const std::int64_t before = cursor_;
        pass();
        if (cursor_ <= before) return problem::unavailable("The change log could not be read; try again.");
    }
    return std::nullopt;
}

void hub::impl::do_subscribe(const std::string& client, subscribe_request req,
                             const std::function<void(result<subscribed>)>& done) {
    constexpr std::string_view what = "a subscribe callback failed";
    client_state* c = find_client(client);
    if (!c) return answer(done, problem::not_found("No such client."), what);
    const collection_def* def = hooks_.find_collection(req.collection);
    if (!def) return answer(done, problem::not_found("No stream \"" + req.collection + "\"."), what);
    auto filter = event_filter::make(*def, req.pk, req.actions, req.filter);
    if (!filter) return answer(done, std::move(filter).error(), what);
    if (streams_of(*c) >= opt_.max_subscriptions) return answer(done, too_many(), what);
    if (req.since && *req.since > cursor_) {
        if (auto refused = catch_up_to(*req.since)) return answer(done, std::move(*refused), what);
        c = find_client(client);  // the passes may have expired it
        if (!c) return answer(done, problem::not_found("No such client."), what);
    }

    // Every refusal (404 for a pk, 410 for a trimmed or too long history, 503) comes before
    // `done` says yes; the replay itself is read in pages after the answer (replay_page).
    collection_state& coll = collection(*def);
    if (auto refused = check_subscription(*c, *def, req)) return answer(done, std::move(*refused), what);
    const bool replaying = req.since && *req.since < cursor_;
    subscription_state& added =
        add_subscription(*c, coll, std::move(*filter), replaying ? req.since : std::nullopt);
    if (log_.enabled(log_level::debug))
        log_.debug("subscribed", {{"client", client},
                                  {"subscription", added.id},
                                  {"collection", req.collection},
                                  {"pk", req.pk},
                                  {"since", req.since ? json::value(*req.since) : json::value(nullptr)},
                                  {"replay", replaying},
                                  {"seq", cursor_}});
    answer(done, subscribed{added.id, cursor_}, what);
    if (replaying) want_page(added);
}

// The checks that need the store, in one read: a pk's record must exist and be visible to the
// client; a resume's history must still reach back to `since`, with at most max_replay changes.
std::optional<problem> hub::impl::check_subscription(const client_state& c, const collection_def& def,
                                                     const subscribe_request& req) {
    if (req.pk.empty() && !req.since) return std::nullopt;
    std::optional<problem> refused;
    const std::int64_t upto = cursor_;
    const bool read = blocking_read([&](read_txn& t) {
        if (!req.pk.empty()) refused = check_record(t, c, def, req.pk);
        if (refused || !req.since) return;
        refused = check_history(t, *req.since, upto);
    });
    if (!read && !refused) refused = problem::unavailable("The change log could not be read; try again.");
    if (refused && refused->status >= 500)
        log_.warn("subscribing failed on a storage error",
                  {{"client", c.id}, {"collection", req.collection}, {"status", refused->status}});
    return refused;
}

// Runs inside a read (see blocking_read).
std::optional<problem> hub::impl::check_record(read_txn& t, const client_state& c, const collection_def& def,
                                               const std::string& pk) const {
    auto rec = t.get(def, pk);
    if (!rec) return std::move(rec).error();
    if (!*rec || !visible(c, def, **rec)) return problem::not_found();
    return std::nullopt;
}

// Runs inside a read; `upto` is the hub's cursor.
std::optional<problem> hub::impl::check_history(read_txn& t, std::int64_t since, std::int64_t upto) const {
    auto floor = t.history_floor();
    if (!floor) return std::move(floor).error();
    if (since < *floor)
        return problem::gone("The history no longer reaches back to seq " + std::to_string(since) +
                             "; list again.");
    // Seqs above the floor count changes at most (PostgreSQL's sequence may skip).
    if (upto - since > static_cast<std::int64_t>(opt_.max_replay))
        return problem::gone("More than " + std::to_string(opt_.max_replay) + " changes to replay since seq " +
                             std::to_string(since) + "; list again.");
    return std::nullopt;
}

// The client's next subscription, in the indexes at once, or (with `replay_since`) out of them
// until its replay from that seq is live.
auto hub::impl::add_subscription(client_state& c, collection_state& coll, event_filter filter,
                                 std::optional<std::int64_t> replay_since) -> subscription_state& {
    const std::uint64_t number = c.next_subscription;
    const std::string id = "s-" + std::to_string(number);
    auto sub = std::make_unique<subscription_state>();
    sub->id = id;
    sub->number = number;
    sub->owner = &c;
    sub->coll = &coll;
    sub->filter = std::move(filter);
    if (replay_since) {
        sub->replay = std::make_unique<replay_state>();
        sub->replay->pos = *replay_since;
        sub->replay->token = ++replay_tokens_;
        s_->replays.fetch_add(1);
    } else {
        index(*sub);
    }
    subscription_state& added = *sub;
    ++c.next_subscription;
    c.subscriptions.emplace(id, std::move(sub));
    return added;
}

void hub::impl::do_unsubscribe(const std::string& client, const std::string& id,
                               const std::function<void(result<void>)>& done) {
    constexpr std::string_view what = "an unsubscribe callback failed";
    client_state* c = find_client(client);
    if (!c) return answer(done, problem::not_found("No such client."), what);
    auto it = c->subscriptions.find(id);
    if (it == c->subscriptions.end())
        return answer(done, problem::not_found("No subscription \"" + id + "\"."), what);
    unindex(*it->second);
    c->subscriptions.erase(it);
    answer(done, {}, what);
}

void hub::impl::index(subscription_state& sub) {
    auto& coll = *sub.coll;
    if (sub.filter.pk().empty()) {
        sub.index = coll.all.size();
        coll.all.push_back(&sub);
    } else {
        coll.by_pk[sub.filter.pk()].push_back(&sub);
    }
}

void hub::impl::unindex(subscription_state& sub) {
    if (sub.replay) {  // still replaying: in no index; its pending page is dropped on return
        sub.replay.reset();
        s_->replays.fetch_sub(1);
        return;
    }
    auto& coll = *sub.coll;
    if (sub.filter.pk().empty()) {
        auto* last = coll.all.back();
        coll.all[sub.index] = last;
        last->index = sub.index;
        coll.all.pop_back();
        return;
    }
    auto it = coll.by_pk.find(sub.filter.pk());
    if (it == coll.by_pk.end()) return;
    auto& v = it->second;
    v.erase(std::remove(v.begin(), v.end(), &sub), v.end());
    if (v.empty()) coll.by_pk.erase(it);
}

}  // namespace livebase
