#include "store/change_log.hpp"

#include "store/tables.hpp"

#include <algorithm>
#include <limits>

namespace livebase::store_detail {

change_log_sql make_change_log_sql(char param, std::string_view greatest) {
    const std::string p1 = placeholder(param, 1);
    change_log_sql s;
    s.newest = "SELECT max(seq) FROM _changes";
    s.keep_cut = "SELECT seq FROM _changes ORDER BY seq DESC LIMIT 1 OFFSET " + p1;
    // Rows are visited in seq order, so the scan stops at the first young row and never reads
    // more than the rows it is about to delete.
    s.young = "SELECT seq FROM _changes WHERE ts >= " + p1 + " ORDER BY seq LIMIT 1";
    s.trim = "DELETE FROM _changes WHERE seq <= " + p1;
    s.floor = "SELECT value FROM _livebase_meta WHERE key = 'history_floor'";
    s.set_floor = "INSERT INTO _livebase_meta (key, value) VALUES ('history_floor', " + p1 +
                  ") ON CONFLICT (key) DO UPDATE SET value = " + std::string(greatest) +
                  "(_livebase_meta.value, excluded.value)";
    s.beat = "INSERT INTO _livebase_nodes (node, delivered, seen) VALUES (" + p1 + ", " + placeholder(param, 2) +
             ", " + placeholder(param, 3) +
             ") ON CONFLICT (node) DO UPDATE SET delivered = excluded.delivered, seen = excluded.seen";
    // Nothing here waits on a row another node holds: a node frozen inside its own trim or
    // heartbeat (SIGSTOP, a stalled VM) must not stall the others' group commits with it.
    const bool pg = param == '$';
    s.forget = pg ? "DELETE FROM _livebase_nodes WHERE node IN (SELECT node FROM _livebase_nodes WHERE seen < " + p1 +
                        " FOR UPDATE SKIP LOCKED)"
                  : "DELETE FROM _livebase_nodes WHERE seen < " + p1;
    s.slowest = "SELECT min(delivered) FROM _livebase_nodes WHERE seen >= " + p1;
    if (pg) s.lock_floor = "SELECT 1 FROM _livebase_meta WHERE key = 'history_floor' FOR UPDATE SKIP LOCKED";
    return s;
}

result<std::int64_t> history_floor(sql_runner& db, const change_log_sql& sql) {
    auto r = db.scalar(sql.floor, {});
    if (!r) return std::move(r).error();
    return r->value_or(0);
}

result<std::size_t> trim_changes(sql_runner& db, const change_log_sql& sql, std::uint64_t keep,
                                 std::int64_t older_than_ms, std::int64_t keep_after) {
    auto newest = db.scalar(sql.newest, {});
    if (!newest) return std::move(newest).error();
    const std::int64_t last = newest->value_or(0);
    if (last <= 1) return std::size_t{0};
    // One trim at a time across nodes; while another node's runs (or it froze inside one), skip
    // this one rather than wait.
    if (!sql.lock_floor.empty()) {
        auto locked = db.scalar(sql.lock_floor, {});
        if (!locked) return std::move(locked).error();
        if (!*locked) {
            auto floor = db.scalar(sql.floor, {});
            if (!floor) return std::move(floor).error();
            if (*floor) return std::size_t{0};
        }
    }
    // The newest row always stays: it keeps the sequence from going back after a restart, and
    // a resume at the last seq needs no rows anyway.
    constexpr auto max_keep = static_cast<std::uint64_t>(std::numeric_limits<std::int64_t>::max());
    const auto kept = static_cast<std::int64_t>(std::clamp<std::uint64_t>(keep, 1, max_keep));
    auto by_count = db.scalar(sql.keep_cut, {kept});
    if (!by_count) return std::move(by_count).error();
    auto first_young = db.scalar(sql.young, {older_than_ms});
    if (!first_young) return std::move(first_young).error();
    const std::int64_t cut = std::min(
        {std::max(by_count->value_or(0), first_young->value_or(last + 1) - 1), last - 1, keep_after});
    auto floor = history_floor(db, sql);
    if (!floor) return std::move(floor).error();
    if (cut <= *floor) return std::size_t{0};
    auto deleted = db.execute(sql.trim, {cut});
    if (!deleted) return std::move(deleted).error();
    if (auto r = db.execute(sql.set_floor, {cut}); !r) return std::move(r).error();
    return static_cast<std::size_t>(*deleted);
}

result<node_positions> node_heartbeat(sql_runner& db, const change_log_sql& sql, std::int64_t node,
                                      std::int64_t delivered, std::int64_t now_ms, std::int64_t alive_since_ms) {
    if (auto r = db.execute(sql.beat, {node, delivered, now_ms}); !r) return std::move(r).error();
    auto gone = db.execute(sql.forget, {alive_since_ms});
    if (!gone) return std::move(gone).error();
    auto slowest = db.scalar(sql.slowest, {alive_since_ms});
    if (!slowest) return std::move(slowest).error();
    node_positions out;
    out.delivered = std::min(delivered, slowest->value_or(delivered));
    out.forgotten = static_cast<std::size_t>(std::max<std::int64_t>(*gone, 0));
    return out;
}

}  // namespace livebase::store_detail
