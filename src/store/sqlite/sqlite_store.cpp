// The SQLite store: the shared core (store/core.hpp) over SQLite sessions, plus a watcher that
// notices commits made by other processes on the same file (a `livebase worker`, the CLI, a
// second server): SQLite has no notifications across processes, so it checks the cheap
// `PRAGMA data_version` every few milliseconds and reads the new last seq when it moved; and a
// checkpointer that copies the WAL back into the database file off the writer thread.
#include "store/sqlite/connection.hpp"
#include "store/sqlite/migrate.hpp"
#include "store/sqlite/txn.hpp"

#include "store/core.hpp"

#include <livebase/store/store.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <mutex>
#include <thread>

namespace livebase {

namespace {

using sqlite::connection;
using sqlite::sqlite_txn;

// How often the watcher looks for other processes' commits.
constexpr auto k_watch_interval = std::chrono::milliseconds(20);

// WAL checkpoints: SQLite's own rule (a checkpoint by the commit that takes the WAL past 1,000
// pages) stalls the writer, and with it every write of the group, for the checkpoint's copy and
// fsync. The checkpointer thread does that work instead, PASSIVE so that it never blocks the
// writer or a reader. Should it fall far behind, the writer checkpoints itself as before.
constexpr int k_checkpoint_pages = 1000;
constexpr int k_inline_checkpoint_pages = 20000;

const std::string k_last_seq_sql =
    "SELECT max(coalesce((SELECT seq FROM sqlite_sequence WHERE name = '_changes'), 0),"
    " coalesce((SELECT max(seq) FROM _changes), 0))";

// Transaction control, prepared once per connection.
const std::string k_begin = "BEGIN";
const std::string k_begin_immediate = "BEGIN IMMEDIATE";
const std::string k_savepoint = "SAVEPOINT w";
const std::string k_release = "RELEASE w";
const std::string k_rollback_to = "ROLLBACK TO w";
const std::string k_commit = "COMMIT";
const std::string k_rollback = "ROLLBACK";

class sqlite_session final : public store_detail::session {
public:
    explicit sqlite_session(std::unique_ptr<connection> conn) : conn_(std::move(conn)), txn_(*conn_) {}

    write_txn& txn() noexcept override { return txn_; }
    connection& conn() noexcept { return *conn_; }

    result<void> begin_read() override { return conn_->run(k_begin); }
    void end_read() override {
        if (conn_->in_transaction() && !conn_->run(k_commit)) {
            if (conn_->in_transaction()) (void)conn_->run(k_rollback);
        }
    }

    result<void> begin_write(std::int64_t committed) override {
        if (conn_->damaged()) return connection::damaged_problem();  // never write into a malformed file
        txn_.set_last_appended(committed);
        changes_at_begin_ = sqlite3_total_changes64(conn_->handle());
        return conn_->run(k_begin_immediate);
    }
    result<void> savepoint() override { return conn_->run(k_savepoint); }
    result<void> release() override { return conn_->run(k_release); }
    result<void> undo() override {
        if (auto r = conn_->run(k_rollback_to); !r) return r;
        return conn_->run(k_release);
    }
    bool in_transaction() const override { return conn_->in_transaction(); }
    std::int64_t mark() const override { return txn_.last_appended(); }
    void undo_to(std::int64_t mark) override { txn_.set_last_appended(mark); }
    result<std::int64_t> commit(std::int64_t committed) override {
        if (auto r = conn_->run(k_commit); !r) return std::move(r).error();
        // Only a commit that changed rows shows there is room again: an empty transaction (an
        // idle worker's claim, a reap that found nothing) commits on a full disk too.
        if (sqlite3_total_changes64(conn_->handle()) > changes_at_begin_) conn_->wrote();
        return std::max(committed, txn_.last_appended());
    }
    void rollback() override { (void)conn_->run(k_rollback); }
    // The transaction is gone: its writes fail with the reason that ended it (507 for a full
    // disk, 503 for I/O errors), 500 otherwise.
    problem lost() const override { return conn_->last_failure(); }

private:
    std::unique_ptr<connection> conn_;
    sqlite_txn txn_;
    sqlite3_int64 changes_at_begin_ = 0;
};

result<std::int64_t> read_last_seq(connection& conn) {
    auto cur = conn.prepare(k_last_seq_sql);
    if (!cur) return std::move(cur).error();
    if (cur->step() != SQLITE_ROW) return conn.fail("reading the change log failed", k_last_seq_sql);
    return cur->column_int(0);
}

result<std::int64_t> data_version(connection& conn) {
    auto cur = conn.prepare("PRAGMA data_version");
    if (!cur) return std::move(cur).error();
    if (cur->step() != SQLITE_ROW) return conn.fail("reading the data version failed");
    return cur->column_int(0);
}

class sqlite_store final : public store_detail::store_core {
public:
    sqlite_store(const sqlite_options& options, std::unique_ptr<store_detail::session> writer,
                 std::vector<std::unique_ptr<store_detail::session>> readers,
                 std::unique_ptr<connection> watcher, std::unique_ptr<connection> checkpointer,
                 std::int64_t last_seq)
        : store_core(options.log, limits_of(options), last_seq),
          watcher_conn_(std::move(watcher)),
          checkpoint_conn_(std::move(checkpointer)) {
        writer_conn_ = &static_cast<sqlite_session&>(*writer).conn();
        // Replaces SQLite's autocheckpoint on the writer's connection (see k_checkpoint_pages).
        sqlite3_wal_hook(writer_conn_->handle(), &sqlite_store::on_wal, this);
        std::vector<std::unique_ptr<store_detail::session>> writers;
        writers.push_back(std::move(writer));  // one: SQLite has a single writer connection
        start(std::move(writers), std::move(readers));
        watcher_ = std::thread([this] { watch(); });
        checkpointer_ = std::thread([this] { checkpoints(); });
    }

    ~sqlite_store() override { close(); }

    std::string_view condition() const noexcept override {
        if (writer_conn_->damaged()) return "damaged";
        return writer_conn_->full() ? "full" : "ok";
    }

protected:
    result<migration_plan> migrate_on(store_detail::session& s, const std::vector<const collection_def*>& collections,
                                      bool allow_destructive, bool dry_run) override {
        return sqlite::migrate_schema(static_cast<sqlite_session&>(s).conn(), collections, allow_destructive,
                                      dry_run);
    }

    void stop_backend() override {
        {
            std::lock_guard<std::mutex> lock(watch_mu_);
            watching_ = false;
        }
        watch_cv_.notify_all();
        if (watcher_.joinable()) watcher_.join();
        watcher_conn_.reset();
        {
            std::lock_guard<std::mutex> lock(checkpoint_mu_);
            checkpointing_.store(false);
        }
        checkpoint_cv_.notify_all();
        if (checkpointer_.joinable()) checkpointer_.join();
        // The writer may still commit queued writes: from here it checkpoints itself (on_wal);
        // the last connection to close checkpoints what is left.
    }

private:
    connection* writer_conn_ = nullptr;  // owned by the writer session (the core's)

    static store_detail::core_limits limits_of(const sqlite_options& o) {
        store_detail::core_limits l;
        l.max_batch = o.max_batch;
        return l;
    }

    // Commits by other connections move data_version (our own writer's too: then the last seq
    // is already known and nothing happens). A seq beyond ours is another process's commit:
    // the hub reads it, and idle workers look for tasks it made pending.
    void watch() {
        auto seen = data_version(*watcher_conn_);
        std::unique_lock<std::mutex> lock(watch_mu_);
        while (watching_) {
            watch_cv_.wait_for(lock, k_watch_interval, [&] { return !watching_; });
            if (!watching_) break;
            lock.unlock();
            auto v = data_version(*watcher_conn_);
            if (v && (!seen || *v != *seen)) {
                seen = v;
                if (auto seq = read_last_seq(*watcher_conn_); seq && *seq > last_seq()) {
                    observe_seq(*seq);
                    task_ready();
                }
            }
            lock.lock();
        }
    }

    // Runs on the writer thread after each commit, with the WAL's size in pages.
    static int on_wal(void* self, sqlite3* db, const char*, int pages) {
        auto* store = static_cast<sqlite_store*>(self);
        if (pages >= k_inline_checkpoint_pages || !store->checkpointing_.load(std::memory_order_relaxed)) {
            if (pages >= k_checkpoint_pages)
                (void)sqlite3_wal_checkpoint_v2(db, nullptr, SQLITE_CHECKPOINT_PASSIVE, nullptr, nullptr);
        } else if (pages >= k_checkpoint_pages && !store->checkpoint_due_.exchange(true)) {
            std::lock_guard<std::mutex> lock(store->checkpoint_mu_);
            store->checkpoint_cv_.notify_one();
        }
        return SQLITE_OK;
    }

    void checkpoints() {
        std::unique_lock<std::mutex> lock(checkpoint_mu_);
        while (checkpointing_.load()) {
            checkpoint_cv_.wait(lock, [&] { return checkpoint_due_.load() || !checkpointing_.load(); });
            if (!checkpointing_.load()) break;
            lock.unlock();
            checkpoint_due_.store(false);
            const int rc = sqlite3_wal_checkpoint_v2(checkpoint_conn_->handle(), nullptr, SQLITE_CHECKPOINT_PASSIVE,
                                                     nullptr, nullptr);
            if (rc != SQLITE_OK && rc != SQLITE_BUSY && rc != SQLITE_LOCKED)
                (void)checkpoint_conn_->fail("checkpointing the WAL failed");
            lock.lock();
        }
    }

    std::unique_ptr<connection> watcher_conn_;
    std::unique_ptr<connection> checkpoint_conn_;
    std::mutex checkpoint_mu_;
    std::condition_variable checkpoint_cv_;
    // The checkpointer runs (until stop_backend()); after that the writer checkpoints itself.
    std::atomic<bool> checkpointing_{true};
    std::atomic<bool> checkpoint_due_{false};
    std::thread checkpointer_;
    std::mutex watch_mu_;
    std::condition_variable watch_cv_;
    bool watching_ = true;
    std::thread watcher_;
};

result<void> check_wal(connection& conn, const std::string& path) {
    auto cur = conn.prepare("PRAGMA journal_mode");
    if (!cur) return std::move(cur).error();
    if (cur->step() != SQLITE_ROW) return conn.fail("reading the journal mode failed");
    auto mode = cur->column_text(0);
    if (mode != "wal")
        return problem::internal("The database " + path + " cannot use WAL mode (journal mode is " + mode + ").");
    return {};
}

}  // namespace

// PRAGMA quick_check / integrity_check: "ok", or rows naming what is damaged.
result<void> check_integrity(connection& conn, const std::string& path, bool full, logger* log) {
    const std::string sql = full ? "PRAGMA integrity_check(20)" : "PRAGMA quick_check(20)";
    auto cur = conn.prepare(sql);
    if (!cur) return std::move(cur).error();
    std::string found;
    int rc;
    while ((rc = cur->step()) == SQLITE_ROW) {
        auto line = cur->column_text(0);
        if (line == "ok") continue;
        if (!found.empty()) found += "; ";
        found += line;
    }
    if (rc != SQLITE_DONE) return conn.fail("the database check failed", sql);
    if (found.empty()) return {};
    if (found.size() > 1000) found = found.substr(0, 1000) + "...";
    if (log) log->error("the database file is damaged", {{"path", path}, {"check", full ? "integrity_check" : "quick_check"}, {"found", found}});
    return problem::make(503, "/problems/storage-damaged", "Storage damaged",
                         "The database file " + path + " is damaged (" + found +
                             "). Restore it from a backup (docs/operations.md).");
}

result<std::unique_ptr<store>> open_sqlite_store(const sqlite_options& options) {
    if (options.path.empty() || options.path == ":memory:" || options.path.rfind("file:", 0) == 0)
        return problem::bad_request("The SQLite store needs a file path, not \"" + options.path + "\".");
    std::filesystem::path path(options.path);
    if (path.has_parent_path()) {
        std::error_code ec;
        std::filesystem::create_directories(path.parent_path(), ec);
        if (ec)
            return problem::internal("Cannot create the directory " + path.parent_path().string() + ": " +
                                     ec.message());
    }
    auto writer = connection::open(options.path, /*query_only=*/false, options.log);
    if (!writer) return std::move(writer).error();
    auto damage = std::make_shared<std::atomic<bool>>(false);
    (*writer)->share_damage(damage);
    if (auto r = check_wal(**writer, options.path); !r) return std::move(r).error();
    if (options.check != integrity_check::off) {
        auto r = check_integrity(**writer, options.path, options.check == integrity_check::full, options.log);
        if (!r) return std::move(r).error();
    }
    if (options.max_size > 0) {
        auto cur = (*writer)->prepare("PRAGMA page_size");
        if (!cur) return std::move(cur).error();
        const std::int64_t page = cur->step() == SQLITE_ROW ? cur->column_int(0) : 4096;
        const auto pages = std::max<std::uint64_t>(options.max_size / static_cast<std::uint64_t>(std::max<std::int64_t>(page, 512)), 16);
        if (auto r = (*writer)->exec("PRAGMA max_page_count = " + std::to_string(pages)); !r) return std::move(r).error();
    }
    if (auto r = sqlite::create_system_tables(**writer); !r) return std::move(r).error();
    auto last = read_last_seq(**writer);
    if (!last) return std::move(last).error();

    std::vector<std::unique_ptr<store_detail::session>> readers;
    for (std::size_t i = 0; i < std::max<std::size_t>(1, options.readers); ++i) {
        auto reader = connection::open(options.path, /*query_only=*/true, options.log);
        if (!reader) return std::move(reader).error();
        (*reader)->share_damage(damage);
        readers.push_back(std::make_unique<sqlite_session>(std::move(reader).value()));
    }
    auto watcher = connection::open(options.path, /*query_only=*/true, options.log);
    if (!watcher) return std::move(watcher).error();
    (*watcher)->share_damage(damage);
    auto checkpointer = connection::open(options.path, /*query_only=*/false, options.log);
    if (!checkpointer) return std::move(checkpointer).error();
    (*checkpointer)->share_damage(damage);
    return std::unique_ptr<store>(new sqlite_store(options,
                                                   std::make_unique<sqlite_session>(std::move(writer).value()),
                                                   std::move(readers), std::move(watcher).value(),
                                                   std::move(checkpointer).value(), *last));
}

}  // namespace livebase
