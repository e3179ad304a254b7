#pragma once
/// A transaction that could not be opened (store closed, queue full, database unreachable):
/// every call returns the same problem. Shared by the SQLite and PostgreSQL stores.
#include <livebase/store/store.hpp>

namespace livebase::store_detail {

class failed_txn final : public write_txn {
public:
    explicit failed_txn(problem p) : p_(std::move(p)) {}
    result<std::optional<json::object>> get(const collection_def&, std::string_view) override { return p_; }
    result<page> list(const collection_def&, const query&) override { return p_; }
    result<std::vector<change>> changes_after(std::int64_t, std::size_t) override { return p_; }
    result<std::int64_t> history_floor() override { return p_; }
    result<std::int64_t> snapshot_seq() override { return p_; }
    result<void> insert(const collection_def&, const json::object&) override { return p_; }
    result<void> update(const collection_def&, const json::object&, const json::object*) override {
        return p_;
    }
    result<void> remove(const collection_def&, const json::object&) override { return p_; }
    result<std::size_t> trim_changes(std::uint64_t, std::int64_t, std::int64_t) override { return p_; }
    result<node_positions> node_heartbeat(std::int64_t, std::int64_t, std::int64_t, std::int64_t) override {
        return p_;
    }

private:
    problem p_;
};

}  // namespace livebase::store_detail
