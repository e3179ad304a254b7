#pragma once
/// The read/write transaction objects handed to store::read() and store::write() callbacks.
/// The caller (a reader or the writer thread) opens and ends the SQL transaction; these only
/// run statements on its connection.
#include "store/change_log.hpp"
#include "store/sqlite/connection.hpp"

#include <livebase/store/store.hpp>

namespace livebase::sqlite {

/// Operations on one connection inside an open transaction. Used as read_txn by readers (the
/// connection is query_only, so writes would fail) and as write_txn by the writer.
class sqlite_txn final : public write_txn, public store_detail::sql_runner {
public:
    explicit sqlite_txn(connection& conn) noexcept : conn_(conn) {}

    result<std::optional<json::object>> get(const collection_def& c, std::string_view id) override;
    result<page> list(const collection_def& c, const query& q) override;
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
    /// The seq of the last change appended through this object (writer bookkeeping: the writer
    /// resets it when a savepoint or the transaction is rolled back).
    std::int64_t last_appended() const noexcept { return last_appended_; }
    void set_last_appended(std::int64_t seq) noexcept { last_appended_ = seq; }

private:
    /// `before`: the previous stored record of an update, null otherwise.
    result<void> append(const collection_def& c, std::string_view op, const json::object& stored,
                        const json::object* before = nullptr);
    /// Binds every column of `record` (normalized) in insert_sql/update_sql order.
    result<void> write_row(const collection_def& c, const std::string& sql, const json::object& record,
                           bool must_exist);
    /// A failed write statement: unique violations -> 409 naming the field, else logged 500.
    problem write_error(const collection_def& c, const std::string& sql);

    connection& conn_;
    std::int64_t last_appended_ = 0;
};

/// "UNIQUE constraint failed: c_cars.f_vin" -> "vin" ("id" for the primary key); empty when
/// the message names no column of `c`.
std::string unique_violation_field(const collection_def& c, std::string_view message);

}  // namespace livebase::sqlite
