// The SQLite store: one writer thread with group commit, a pool of reader threads, each thread
// with its own connection. See store.hpp for the contract and migrate.hpp for migrations.
#include "store/sqlite/connection.hpp"
#include "store/sqlite/migrate.hpp"
#include "store/sqlite/txn.hpp"

#include "store/failed_txn.hpp"

#include <livebase/store/store.hpp>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <filesystem>
#include <future>
#include <mutex>
#include <thread>

namespace livebase {

namespace {

using sqlite::connection;
using store_detail::failed_txn;
using sqlite::sqlite_txn;

// Bounds of the job queues: a full queue refuses work with 503 instead of growing memory.
constexpr std::size_t k_max_queued_writes = 100000;
constexpr std::size_t k_max_queued_reads = 100000;

problem closed_problem() { return problem::unavailable("The store is closed."); }
problem full_problem() { return problem::unavailable("The store is overloaded."); }

class sqlite_store final : public store {
public:
    sqlite_store(const sqlite_options& options, std::unique_ptr<connection> writer,
                 std::vector<std::unique_ptr<connection>> readers, std::int64_t last_seq)
        : log_(options.log),
          max_batch_(std::max<std::size_t>(1, options.max_batch)),
          writer_conn_(std::move(writer)),
          reader_conns_(std::move(readers)),
          last_seq_(last_seq) {
        writer_thread_ = std::thread([this] { writer_loop(); });
        for (auto& conn : reader_conns_)
            reader_threads_.emplace_back([this, c = conn.get()] { reader_loop(*c); });
    }

    ~sqlite_store() override { close(); }

    result<migration_plan> migrate(const std::vector<const collection_def*>& collections,
                                   bool allow_destructive, bool dry_run) override {
        std::optional<migration_plan> plan;
        std::promise<result<migration_plan>> done;
        auto f = done.get_future();
        enqueue(
            [&](sqlite_txn& t) -> result<json::value> {
                auto r = sqlite::migrate_schema(t.conn(), collections, allow_destructive, dry_run);
                if (!r) return std::move(r).error();
                plan = std::move(r).value();
                return json::value(nullptr);
            },
            [&](result<json::value> r) {
                if (!r) return done.set_value(std::move(r).error());
                done.set_value(std::move(*plan));
            });
        return f.get();
    }

    void read(std::function<void(read_txn&)> fn) override {
        bool stopping;
        {
            std::lock_guard<std::mutex> lock(read_mu_);
            stopping = reads_stopping_;
            if (!stopping && reads_.size() < k_max_queued_reads) {
                reads_.push_back(std::move(fn));
                read_cv_.notify_one();
                return;
            }
        }
        failed_txn t(stopping ? closed_problem() : full_problem());
        fn(t);
    }

    void write(write_fn fn, write_done done) override {
        enqueue([fn = std::move(fn)](sqlite_txn& t) { return fn(t); }, std::move(done));
    }

    std::int64_t last_seq() override { return last_seq_.load(std::memory_order_acquire); }

    void on_commit(std::function<void(std::int64_t)> fn) override {
        std::lock_guard<std::mutex> lock(listener_mu_);
        on_commit_ = std::move(fn);
    }

    void close() override {
        std::lock_guard<std::mutex> close_lock(close_mu_);
        if (closed_) return;
        {
            std::lock_guard<std::mutex> lock(write_mu_);
            writes_stopping_ = true;
        }
        write_cv_.notify_all();
        writer_thread_.join();
        {
            std::lock_guard<std::mutex> lock(read_mu_);
            reads_stopping_ = true;
        }
        read_cv_.notify_all();
        for (auto& t : reader_threads_) t.join();
        // Readers first: the last connection to close checkpoints and removes the WAL file.
        reader_conns_.clear();
        writer_conn_.reset();
        closed_ = true;
    }

private:
    using job_fn = std::function<result<json::value>(sqlite_txn&)>;
    struct write_job {
        job_fn fn;
        write_done done;
    };

    void enqueue(job_fn fn, write_done done) {
        problem refused;
        {
            std::lock_guard<std::mutex> lock(write_mu_);
            if (!writes_stopping_ && writes_.size() < k_max_queued_writes) {
                writes_.push_back({std::move(fn), std::move(done)});
                write_cv_.notify_one();
                return;
            }
            refused = writes_stopping_ ? closed_problem() : full_problem();
        }
        if (done) done(std::move(refused));
    }

    void log_error(std::string_view msg, json::object fields = {}) {
        if (log_) log_->error(msg, fields);
    }

    // Calls a user callback that must not take the store thread down with it.
    template <class Fn>
    void guarded(std::string_view what, Fn&& fn) {
        try {
            fn();
        } catch (const std::exception& e) {
            log_error(what, {{"error", e.what()}});
        } catch (...) {
            log_error(what, {{"error", "unknown exception"}});
        }
    }

    void writer_loop() {
        std::vector<write_job> batch;
        for (;;) {
            {
                std::unique_lock<std::mutex> lock(write_mu_);
                write_cv_.wait(lock, [&] { return writes_stopping_ || !writes_.empty(); });
                if (writes_.empty()) return;  // stopping and drained
                std::size_t n = std::min(max_batch_, writes_.size());
                for (std::size_t i = 0; i < n; ++i) {
                    batch.push_back(std::move(writes_.front()));
                    writes_.pop_front();
                }
            }
            run_group(batch);
            batch.clear();
        }
    }

    // One group commit: every job in its own savepoint of one transaction. If SQLite rolls the
    // whole transaction back under a job (I/O error, disk full), the jobs before it in the
    // transaction fail with 500 and the rest continue in a new transaction.
    void run_group(std::vector<write_job>& batch) {
        connection& conn = *writer_conn_;
        sqlite_txn txn(conn);
        const std::int64_t committed = last_seq_.load(std::memory_order_relaxed);
        txn.set_last_appended(committed);
        std::vector<result<json::value>> results;
        results.reserve(batch.size());
        std::size_t segment_start = 0;
        bool open = false;

        auto fail_segment = [&](std::size_t end) {
            for (std::size_t j = segment_start; j < end; ++j)
                if (results[j]) results[j] = problem::internal();
            txn.set_last_appended(committed);
            open = false;
        };

        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (!open) {
                if (!conn.exec("BEGIN IMMEDIATE")) {
                    results.emplace_back(problem::internal());
                    continue;
                }
                open = true;
                segment_start = i;
            }
            if (!conn.exec("SAVEPOINT w")) {
                results.emplace_back(problem::internal());
                if (!conn.in_transaction()) fail_segment(i);
                continue;
            }
            const std::int64_t before = txn.last_appended();
            result<json::value> r = problem::internal();
            try {
                r = batch[i].fn(txn);
            } catch (const std::exception& e) {
                log_error("write failed with an exception", {{"error", e.what()}});
                r = problem::internal();
            } catch (...) {
                log_error("write failed with an exception", {{"error", "unknown exception"}});
                r = problem::internal();
            }
            if (!conn.in_transaction()) {  // SQLite rolled everything back
                results.emplace_back(r ? result<json::value>(problem::internal()) : std::move(r));
                fail_segment(i);
                continue;
            }
            if (r && !conn.exec("RELEASE w")) r = problem::internal();
            if (!r) {
                // Undo this job only; the group goes on.
                if (!conn.exec("ROLLBACK TO w") || !conn.exec("RELEASE w")) {
                    results.emplace_back(std::move(r));
                    if (conn.in_transaction() && !conn.exec("ROLLBACK"))
                        log_error("rollback after a failed savepoint failed");
                    fail_segment(i);
                    continue;
                }
                txn.set_last_appended(before);
            }
            results.emplace_back(std::move(r));
        }

        std::int64_t new_last = committed;
        if (open) {
            if (conn.exec("COMMIT")) {
                new_last = txn.last_appended();
            } else {
                if (conn.in_transaction() && !conn.exec("ROLLBACK"))
                    log_error("rollback after a failed commit failed");
                fail_segment(batch.size());
            }
        }
        bool advanced = new_last > committed;
        if (advanced) last_seq_.store(new_last, std::memory_order_release);

        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (!batch[i].done) continue;
            guarded("write completion failed", [&] { batch[i].done(std::move(results[i])); });
        }
        if (advanced) {
            std::function<void(std::int64_t)> listener;
            {
                std::lock_guard<std::mutex> lock(listener_mu_);
                listener = on_commit_;
            }
            if (listener) guarded("commit listener failed", [&] { listener(new_last); });
        }
    }

    void reader_loop(connection& conn) {
        sqlite_txn txn(conn);
        for (;;) {
            std::function<void(read_txn&)> job;
            {
                std::unique_lock<std::mutex> lock(read_mu_);
                read_cv_.wait(lock, [&] { return reads_stopping_ || !reads_.empty(); });
                if (reads_.empty()) return;  // stopping and drained
                job = std::move(reads_.front());
                reads_.pop_front();
            }
            if (!conn.exec("BEGIN")) {
                failed_txn failed(problem::internal());
                guarded("read failed with an exception", [&] { job(failed); });
                continue;
            }
            guarded("read failed with an exception", [&] { job(txn); });
            if (conn.in_transaction() && !conn.exec("COMMIT")) {
                if (conn.in_transaction() && !conn.exec("ROLLBACK"))
                    log_error("ending a read transaction failed");
            }
        }
    }

    logger* log_;
    const std::size_t max_batch_;
    std::unique_ptr<connection> writer_conn_;
    std::vector<std::unique_ptr<connection>> reader_conns_;
    std::atomic<std::int64_t> last_seq_;

    std::mutex write_mu_;
    std::condition_variable write_cv_;
    std::deque<write_job> writes_;
    bool writes_stopping_ = false;

    std::mutex read_mu_;
    std::condition_variable read_cv_;
    std::deque<std::function<void(read_txn&)>> reads_;
    bool reads_stopping_ = false;

    std::mutex listener_mu_;
    std::function<void(std::int64_t)> on_commit_;

    std::mutex close_mu_;
    bool closed_ = false;
    std::thread writer_thread_;
    std::vector<std::thread> reader_threads_;
};

result<std::int64_t> read_last_seq(connection& conn) { return sqlite_txn(conn).snapshot_seq(); }

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
    auto writer = sqlite::connection::open(options.path, /*query_only=*/false, options.log);
    if (!writer) return std::move(writer).error();
    if (auto r = check_wal(**writer, options.path); !r) return std::move(r).error();
    if (auto r = sqlite::create_system_tables(**writer); !r) return std::move(r).error();
    auto last = read_last_seq(**writer);
    if (!last) return std::move(last).error();

    std::vector<std::unique_ptr<sqlite::connection>> readers;
    for (std::size_t i = 0; i < std::max<std::size_t>(1, options.readers); ++i) {
        auto reader = sqlite::connection::open(options.path, /*query_only=*/true, options.log);
        if (!reader) return std::move(reader).error();
        readers.push_back(std::move(reader).value());
    }
    return std::unique_ptr<store>(
        new sqlite_store(options, std::move(writer).value(), std::move(readers), *last));
}

}  // namespace livebase
