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
    result<std::vector<change>> changes_after(std::int64_t after, std::size_t limit) override;
    result<std::int64_t> history_floor() override;
    result<std::int64_t> snapshot_seq() override;
    result<void> insert(const collection_def& c, const json::object& record) override;
    result<void> update(const collection_def& c, const json::object& record,
                        const json::object* before = nullptr) override;
    result<void> remove(const collection_def& c, const json::object& before) override;
    result<std::size_t> trim_changes(std::uint64_t keep, std::int64_t older_than_ms) override;
    result<node_positions> node_heartbeat(std::int64_t node, std::int64_t delivered, std::int64_t now_ms,
                                          std::int64_t alive_since_ms) override;
    result<std::optional<std::int64_t>> scalar(const std::string& sql,
                                               std::initializer_list<std::int64_t> args) override;
    result<std::int64_t> execute(const std::string& sql, std::initializer_list<std::int64_t> args) override;

    connection& conn() noexcept { return conn_; }

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
    problem write_error(const collection_def& c);
    result<page> select_page(const collection_def& c, const query& q, bool locked);

    connection& conn_;
    bool writer_;
    const channels* channels_;
    std::vector<pending_change> pending_;
    std::int64_t appended_last_ = 0;
};

/// "Key (f_vin)=(X) already exists." -> "vin" ("id" for the primary key); empty otherwise.
std::string unique_violation_field(const collection_def& c, std::string_view detail);

/// The advisory lock keys (two int4s) of a schema's change-log appends and migrations.
inline constexpr int k_lock_class_append = 0x6c62;    // "lb"
inline constexpr int k_lock_class_migrate = 0x6c63;

}  // namespace livebase::pg
