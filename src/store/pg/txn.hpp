#pragma once
/// The read/write transaction objects of the PostgreSQL store. Reads run in REPEATABLE READ
/// READ ONLY transactions (one snapshot for a list and its seq); writes in the writer's group
/// transaction (READ COMMITTED), where get() locks the row (SELECT ... FOR UPDATE) so that a
/// read-modify-write is safe against other nodes.
///
/// The change log is appended at the end of the group (append_pending), under a transaction-
/// scoped advisory lock that is held until COMMIT: every appender waits for the previous one
/// to commit, so seq order is commit order across every node, and a reader that has seen seq N
/// has seen every seq below N. The lock is the last one a transaction takes (only _changes
/// rows are written after it), so it cannot close a deadlock cycle. The lock, the rows and the
/// NOTIFY travel in the COMMIT's round trip (pipeline mode), once per group commit.
#include "store/change_log.hpp"
#include "store/pg/connection.hpp"

#include <livebase/store/store.hpp>

namespace livebase::pg {

/// The NOTIFY channel of one schema's store. Payload: the new last seq, then " t" when the
/// commit made a task pending (idle workers elsewhere claim it).
struct channels {
    std::string changes;
};
channels channels_for(std::string_view schema);

class pg_txn final : public write_txn, public store_detail::sql_runner {
public:
    pg_txn(connection& conn, bool writer, const channels* ch = nullptr) noexcept
        : conn_(conn), writer_(writer), channels_(ch) {}

    result<std::optional<json::object>> get(const collection_def& c, std::string_view id) override;
    result<page> list(const collection_def& c, const query& q) override;
    result<page> list_locked(const collection_def& c, const query& q) override;
    result<std::vector<json::object>> get_many(const collection_def& c, const std::vector<std::string>& ids) override;
    result<std::vector<change>> changes_after(std::int64_t after, std::size_t limit) override;
    result<std::int64_t> history_floor() override;
    result<std::int64_t> snapshot_seq() override;
    result<void> insert(const collection_def& c, const json::object& record) override;
    result<void> update(const collection_def& c, const json::object& record,
                        const json::object* before = nullptr) override;
    result<void> remove(const collection_def& c, const json::object& before) override;
    result<std::size_t> trim_changes(std::uint64_t keep, std::int64_t older_than_ms,
                                     std::int64_t keep_after) override;
    result<node_positions> node_heartbeat(std::int64_t node, std::int64_t delivered, std::int64_t now_ms,
                                          std::int64_t alive_since_ms) override;
    result<std::optional<std::int64_t>> scalar(const std::string& sql,
                                               std::initializer_list<std::int64_t> args) override;
    result<std::int64_t> execute(const std::string& sql, std::initializer_list<std::int64_t> args) override;

    connection& conn() noexcept { return conn_; }

    // Optimistic writes (the writer): row writes are deferred into the pipeline and checked at
    // commit (confirm_writes). One that failed, or changed no row where one was expected,
    // makes replay_needed() true; the core then runs the group's writes again in careful mode,
    // where each row write waits for its answer (store/core.hpp).
    void set_careful(bool on) noexcept { careful_ = on; }
    bool optimistic() const noexcept { return writer_ && !careful_ && conn_.pipelined(); }
    /// Row writes (and statements that change rows) since reset_replay().
    std::int64_t writes() const noexcept { return writes_; }
    bool replay_needed() const noexcept { return missed_ || conn_.write_failed(); }
    void reset_replay() noexcept {
        missed_ = false;
        writes_ = 0;
        conn_.clear_write_failed();
    }
    /// Waits for the answers of the deferred row writes not confirmed yet (one round trip;
    /// none when there are none). A problem when one failed or missed its row (then
    /// replay_needed()), or the connection failed.
    result<void> confirm_writes();

    // Writer bookkeeping: changes made in this group, not yet in the log.
    std::size_t pending() const noexcept { return pending_.size(); }
    void drop_pending_from(std::size_t n) { pending_.resize(std::min(n, pending_.size())); }
    /// Queues (connection::defer) the append lock, the pending changes and the NOTIFY
    /// (delivered at COMMIT), and clears the list. The COMMIT that follows carries them;
    /// after it, appended_last() is the last seq appended (0 when nothing was pending).
    result<void> append_pending();
    std::int64_t appended_last() const noexcept { return appended_last_; }

private:
    struct pending_change {
        std::int64_t ts;
        std::string collection;
        std::string op;
        std::string id;
        std::string record;
        std::optional<std::string> before;
        bool task_ready;
    };
    void buffer(const collection_def& c, std::string_view op, const json::object& stored,
                const json::object* before);
    result<void> write_row(const collection_def& c, const std::string& sql, const json::object& record,
                           bool must_exist);
    /// Runs (or, optimistic, defers) an INSERT/UPDATE/DELETE; `must_exist`: one row changes.
    result<void> run_write(const collection_def& c, const std::string& sql, const params& p, bool must_exist);
    problem write_error(const collection_def& c);
    result<page> select_page(const collection_def& c, const query& q, bool locked);

    connection& conn_;
    bool writer_;
    const channels* channels_;
    std::vector<pending_change> pending_;
    std::int64_t appended_last_ = 0;
    bool careful_ = false;
    bool missed_ = false;  // a deferred UPDATE/DELETE changed no row
    std::int64_t writes_ = 0;
};

/// "Key (f_vin)=(X) already exists." -> "vin" ("id" for the primary key); empty otherwise.
std::string unique_violation_field(const collection_def& c, std::string_view detail);

/// The advisory lock keys (two int4s) of a schema's change-log appends and migrations.
inline constexpr int k_lock_class_append = 0x6c62;    // "lb"
inline constexpr int k_lock_class_migrate = 0x6c63;

}  // namespace livebase::pg
