#pragma once
/// The change log's upkeep, written once for both backends: trimming by count and age, and the
/// history floor it leaves behind. The `_changes` table itself (seq, ts, collection, op,
/// record_id, record, before), `_livebase_meta` (key, value) and `_livebase_nodes` (node,
/// delivered, seen) are created by each backend.
#include <livebase/core/result.hpp>
#include <livebase/store/store.hpp>

#include <cstdint>
#include <initializer_list>
#include <optional>
#include <string>

namespace livebase::store_detail {

/// Statements with integer parameters and results, run by a backend's transaction.
class sql_runner {
public:
    virtual ~sql_runner() = default;
    /// The first column of the first row; nullopt when there is no row or it is NULL.
    virtual result<std::optional<std::int64_t>> scalar(const std::string& sql,
                                                       std::initializer_list<std::int64_t> args) = 0;
    /// Runs a statement; the number of rows it changed.
    virtual result<std::int64_t> execute(const std::string& sql, std::initializer_list<std::int64_t> args) = 0;
};

/// The change-log statements in one dialect.
struct change_log_sql {
    std::string newest;     ///< the largest seq in the log
    std::string keep_cut;   ///< the newest seq of those to delete when <1> rows stay
    std::string young;      ///< the oldest seq whose ts >= <1>
    std::string trim;       ///< deletes seq <= <1>
    std::string floor;      ///< the history floor
    std::string set_floor;  ///< raises the history floor to <1>
    std::string beat;       ///< node <1> delivered <2> at <3> (upsert into `_livebase_nodes`)
    std::string forget;     ///< deletes the nodes last seen before <1>
    std::string slowest;    ///< the smallest delivered position of the nodes seen since <1>
    /// PostgreSQL: locks the history floor's row unless another node holds it (then no row);
    /// empty where one writer serializes trims anyway (SQLite).
    std::string lock_floor;
};
/// `param` numbers parameters ('?' or '$'); `greatest` is the dialect's two-argument max
/// ("max" in SQLite, "greatest" in PostgreSQL).
change_log_sql make_change_log_sql(char param, std::string_view greatest);

/// The history floor: every change with seq > floor is still in the log. 0 when nothing was
/// ever trimmed.
result<std::int64_t> history_floor(sql_runner& db, const change_log_sql& sql);

/// Deletes the oldest rows so that at most `keep` remain, and every row with ts <
/// `older_than_ms`; never the newest row, so the sequence keeps counting. Only a prefix of the
/// log goes, even when the clock went back (the floor must mean "everything above is here").
/// Never cuts past `keep_after`: on PostgreSQL each statement sees rows committed after the
/// caller read its position, so "keep the newest N" alone could drop what a lagging node still
/// needs. Raises the history floor. Returns rows deleted.
result<std::size_t> trim_changes(sql_runner& db, const change_log_sql& sql, std::uint64_t keep,
                                 std::int64_t older_than_ms, std::int64_t keep_after);

/// Records one node's heartbeat and delivered position in `_livebase_nodes` (node, delivered,
/// seen), forgets the nodes not seen since `alive_since_ms`, and returns the smallest delivered
/// position of those left (this node's own when it is the only one).
result<node_positions> node_heartbeat(sql_runner& db, const change_log_sql& sql, std::int64_t node,
                                      std::int64_t delivered, std::int64_t now_ms, std::int64_t alive_since_ms);

}  // namespace livebase::store_detail
