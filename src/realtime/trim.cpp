// Trimming the change log: this node's heartbeat (its delivered position) and the periodic
// trim, which never drops what a live node has not delivered yet.
#include "realtime/hub_impl.hpp"

#include <livebase/core/clock.hpp>

#include <algorithm>

namespace livebase {

namespace {

json::object problem_fields(const problem& p) { return {{"status", p.status}, {"detail", p.detail}}; }

}  // namespace

// This node's first heartbeat, before it serves: a node that stalls before its first trim
// (trim_every later) still holds the other nodes' trims back at its position.
void hub::impl::register_node() {
    const std::int64_t wall = now_ms();
    const std::int64_t alive_since = wall - opt_.node_timeout.count();
    auto r = db_.write_sync([node = node_, pos = cursor_, wall, alive_since](write_txn& t) -> result<json::value> {
        auto n = t.node_heartbeat(node, pos, wall, alive_since);
        if (!n) return std::move(n).error();
        return json::value(nullptr);
    });
    if (!r) log_.warn("could not register this node's change-log position; its first trim will", problem_fields(r.error()));
}

void hub::impl::start_trim(steady::time_point now) {
    next_trim_ = now + opt_.trim_every;
    {
        std::lock_guard<std::mutex> lock(s_->mu);
        if (s_->trim_running) return;
        s_->trim_running = true;
    }
    auto s = s_;
    const std::uint64_t history = opt_.history;
    const std::int64_t wall = now_ms();
    const std::int64_t older_than = wall - opt_.history_age.count();
    const std::int64_t alive_since = wall - opt_.node_timeout.count();
    const std::int64_t node = node_;
    db_.write(
        [s, history, older_than, node, wall, alive_since](write_txn& t) -> result<json::value> {
            // Never trim what a live node (this one included) has not delivered yet, by
            // count or by age.
            const std::int64_t own = s->delivered.load();
            auto nodes = t.node_heartbeat(node, own, wall, alive_since);
            if (!nodes) return std::move(nodes).error();
            const std::int64_t delivered = std::min(own, nodes->delivered);
            auto newest = t.snapshot_seq();
            if (!newest) return std::move(newest).error();
            std::uint64_t keep = history;
            if (*newest > delivered) keep = std::max<std::uint64_t>(keep, static_cast<std::uint64_t>(*newest - delivered));
            std::int64_t cutoff = older_than;
            auto undelivered = t.changes_after(delivered, 1);
            if (!undelivered) return std::move(undelivered).error();
            if (!undelivered->empty()) cutoff = std::min(cutoff, undelivered->front().ts);
            auto n = t.trim_changes(keep, cutoff, delivered);
            if (!n) return std::move(n).error();
            // Held back: another node's position kept rows the history limit would drop.
            const bool held = delivered < own && *newest > delivered &&
                              static_cast<std::uint64_t>(*newest - delivered) > history;
            return json::value(json::object{{"deleted", static_cast<std::uint64_t>(*n)},
                                            {"forgotten", static_cast<std::uint64_t>(nodes->forgotten)},
                                            {"held_at", held ? json::value(delivered) : json::value(nullptr)},
                                            {"delivered", own}});
        },
        [s](result<json::value> r) {
            std::lock_guard<std::mutex> lock(s->mu);
            s->trim_running = false;
            if (!s->log) return;
            if (!r) return s->log->warn("trimming the change log failed", problem_fields(r.error()));
            trimmed(*s, r->is_object() ? r->get_object() : json::object{});
        });
}

// A trim's outcome, logged once per episode of a held-back trim. REQUIRES: s.mu held, s.log set.
void hub::impl::trimmed(shared_state& s, const json::object& out) {
    auto count = [&](const char* k) {
        auto it = out.find(k);
        return it != out.end() && it->value().is_uint64() ? it->value().get_uint64() : 0;
    };
    if (count("forgotten") > 0)
        s.log->warn("serve nodes stopped sending heartbeats; they no longer hold the change-log trim back",
                    {{"nodes", count("forgotten")}});
    auto held = out.find("held_at");
    const bool is_held = held != out.end() && !held->value().is_null();
    if (is_held && !s.trim_held)
        s.log->warn("a lagging serve node holds the change-log trim back",
                    {{"held_at", held->value()}, {"delivered", out.find("delivered")->value()}});
    else if (!is_held && s.trim_held)
        s.log->info("the change-log trim is no longer held back", {});
    s.trim_held = is_held;
    if (count("deleted") > 0 && s.log->enabled(log_level::debug))
        s.log->debug("trimmed the change log", {{"deleted", count("deleted")}});
}

}  // namespace livebase
