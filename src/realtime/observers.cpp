// Live queries: observe (the first window), unobserve, and the windows a pass re-lists and
// diffs. A window is the query as its client may see it.
#include "realtime/hub_impl.hpp"

#include <livebase/auth/rules.hpp>
#include <livebase/schema/query.hpp>

#include <algorithm>

namespace livebase {

void hub::impl::do_observe(const std::string& client, observe_request req,
                           const std::function<void(result<observed>)>& done) {
    constexpr std::string_view what = "an observe callback failed";
    client_state* c = find_client(client);
    // Another caller's socket answers exactly like a missing one: its id proves nothing.
    if (!c || (req.caller && req.caller->owner_key() != c->who.owner_key()))
        return answer(done, problem::not_found("No such client."), what);
    const collection_def* def = hooks_.find_collection(req.collection);
    if (!def) return answer(done, problem::not_found("No stream \"" + req.collection + "\"."), what);
    if (c->encoding == event_encoding::sse)
        return answer(done, problem::bad_request("Live queries are not offered over Server-Sent Events."), what);
    auto q = parse_query_json(*def, req.query);
    if (!q) return answer(done, std::move(q).error(), what);
    if (streams_of(*c) >= opt_.max_subscriptions) return answer(done, too_many(), what);

    std::optional<problem> refused;
    page pg;
    std::int64_t snap = 0;
    const bool read = blocking_read([&](read_txn& t) {
        auto r = list_window(t, *c, *def, *q);
        if (!r) return void(refused = std::move(r).error());
        auto s = t.snapshot_seq();
        if (!s) return void(refused = std::move(s).error());
        pg = std::move(*r);
        snap = *s;
    });
    if (!read && !refused) refused = problem::unavailable("The records could not be read; try again.");
    if (refused) {
        if (refused->status >= 500)
            log_.warn("observing failed on a storage error",
                      {{"client", client}, {"collection", req.collection}, {"status", refused->status}});
        return answer(done, std::move(*refused), what);
    }

    collection_state& coll = collection(*def);
    auto obs = std::make_unique<observer_state>();
    obs->id = "o-" + std::to_string(c->next_observer++);
    obs->owner = c;
    obs->coll = &coll;
    obs->q = std::move(*q);
    obs->seq = snap;
    obs->rows = to_window(*c, *def, pg.items);
    // A snapshot older than the cursor cannot happen (reads start at the latest commit),
    // but if it did the changes in between must not be lost: re-list on the next pass.
    if (snap < cursor_) mark_stale(*obs);
    observed out;
    out.observer = obs->id;
    out.seq = snap;
    out.count = pg.count;
    out.items.reserve(obs->rows.size());
    for (const auto& row : obs->rows) out.items.emplace_back(row.item);
    coll.observers.push_back(obs.get());
    if (log_.enabled(log_level::debug))
        log_.debug("observing", {{"client", client},
                                 {"observer", obs->id},
                                 {"collection", req.collection},
                                 {"rows", obs->rows.size()},
                                 {"seq", snap}});
    c->observers.emplace(obs->id, std::move(obs));
    answer(done, std::move(out), what);
}

void hub::impl::do_unobserve(const std::string& client, const std::string& id,
                             const std::function<void(result<void>)>& done) {
    constexpr std::string_view what = "an unobserve callback failed";
    client_state* c = find_client(client);
    if (!c) return answer(done, problem::not_found("No such client."), what);
    auto it = c->observers.find(id);
    if (it == c->observers.end())
        return answer(done, problem::not_found("No observer \"" + id + "\"."), what);
    unindex(*it->second);
    c->observers.erase(it);
    answer(done, {}, what);
}

void hub::impl::unindex(observer_state& obs) {
    auto& v = obs.coll->observers;
    v.erase(std::remove(v.begin(), v.end(), &obs), v.end());
    if (obs.stale) --stale_observers_;
}

// A live query's window as its client may see it: the query narrowed to the client's
// records first, so that limit and offset count only those (may_see alone would filter
// after the limit and leave the window short). Runs inside a read (see blocking_read).
result<page> hub::impl::list_window(read_txn& t, const client_state& c, const collection_def& def, const query& q) const {
    query narrowed = q;
    bool any = false;
    // A throwing hook shows nothing rather than failing every pass's read.
    guarded(log_, "narrowing a live query failed", [&] {
        any = hooks_.narrow ? hooks_.narrow(c.who, def, narrowed) : narrow_query(def, c.who, narrowed);
    });
    if (!any) return page{};
    return t.list(def, narrowed);
}

window hub::impl::to_window(const client_state& c, const collection_def& def, const std::vector<json::object>& items) const {
    window w;
    w.reserve(items.size());
    for (const auto& rec : items) {
        if (!visible(c, def, rec)) continue;
        w.push_back(window_row{std::string(get_string(rec, "id")), hooks_.present(def, rec)});
    }
    return w;
}

// Re-listed on the next pass, whatever the pass reads.
void hub::impl::mark_stale(observer_state& obs) {
    if (obs.stale) return;
    obs.stale = true;
    ++stale_observers_;
}

void hub::impl::relisted(observer_state& obs, const page& pg, std::int64_t snap) {
    client_state& c = *obs.owner;
    const collection_def& def = *obs.coll->def;
    window next = to_window(c, def, pg.items);
    auto diffs = diff_window(obs.rows, next);
    for (const auto& d : diffs)
        push_frame(c, std::make_shared<const std::string>(
                          realtime_detail::websocket_observe(obs.coll->stream, obs.id, snap, to_json(d))));
    obs.rows = std::move(next);
    obs.seq = snap;
    if (obs.stale) {
        obs.stale = false;
        --stale_observers_;
    }
}

}  // namespace livebase
