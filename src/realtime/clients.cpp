// Clients of the hub: attached by doors, detached or expired (their sink gone), and their
// identity, which a login, a logout or a revoked credential changes.
#include "realtime/hub_impl.hpp"

namespace livebase {

void hub::impl::do_attach(std::string id, std::weak_ptr<event_sink> sink, principal who, event_encoding enc) {
    auto c = std::make_unique<client_state>();
    c->id = id;
    c->sink = std::move(sink);
    c->who = std::move(who);
    c->encoding = enc;
    clients_[id] = std::move(c);
}

void hub::impl::do_detach(const std::string& id) {
    auto it = clients_.find(id);
    if (it == clients_.end()) return;
    client_state& c = *it->second;
    for (auto& [sid, sub] : c.subscriptions) unindex(*sub);
    for (auto& [oid, obs] : c.observers) unindex(*obs);
    clients_.erase(it);
}

// Clients whose sink is gone without a detach.
void hub::impl::expire(const std::vector<std::string>& ids) {
    {
        std::lock_guard<std::mutex> lock(s_->mu);
        for (const auto& id : ids)
            if (s_->attached.erase(id)) s_->clients.fetch_sub(1);
    }
    for (const auto& id : ids) do_detach(id);
}

void hub::impl::do_set_principal(const std::string& client, principal who) {
    client_state* c = find_client(client);
    if (!c) return;
    c->who = std::move(who);
    identity_changed(*c);
}

// The client's identity changed: its live queries are re-listed on the next pass, so
// their windows follow the new identity even if no change touches them.
void hub::impl::identity_changed(client_state& c) {
    ++c.generation;
    for (auto& [oid, obs] : c.observers) mark_stale(*obs);
}

// Credentials ended by a committed change: every client authorized with them becomes
// anonymous before the change (and anything after it) is matched, and its door is told.
// Revocations are rare (logout, password change), so a scan of the clients is fine.
void hub::impl::revoke(const revocation& r) {
    if (r.user_id.empty() && r.token_id.empty()) return;
    for (auto& [id, cp] : clients_) {
        client_state& c = *cp;
        const bool hit = (!r.user_id.empty() && c.who.user_id == r.user_id) ||
                         (!r.token_id.empty() && c.who.token_id == r.token_id);
        if (!hit) continue;
        if (log_.enabled(log_level::debug))
            log_.debug("credentials revoked", {{"client", c.id}, {"user", c.who.user_id}});
        principal anonymous;
        anonymous.address = c.who.address;  // what an anonymous caller's tasks are known by
        c.who = std::move(anonymous);
        identity_changed(c);
        if (auto sink = c.sink.lock()) guarded(log_, "a revocation callback failed", [&] { sink->revoked(); });
    }
}

void hub::impl::check_revocation(const change& ch) {
    if (!hooks_.on_change) return;
    std::optional<revocation> r;
    if (!guarded(log_, "the change hook failed", [&] { r = hooks_.on_change(ch); })) return;
    if (r) revoke(*r);
}

std::size_t hub::impl::streams_of(const client_state& c) const {
    return c.subscriptions.size() + c.observers.size();
}

problem hub::impl::too_many() const {
    return problem::too_many_requests("At most " + std::to_string(opt_.max_subscriptions) +
                                      " subscriptions and live queries per connection.");
}

}  // namespace livebase
