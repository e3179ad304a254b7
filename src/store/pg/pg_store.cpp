// The PostgreSQL store: the same threads as the SQLite store (one writer with group commit, a
// pool of readers, each with its own connection) plus a listener connection that LISTENs for
// other nodes' commits. See store.hpp for the contract and pg/txn.hpp for commit order.
#include "store/pg/connection.hpp"
#include "store/pg/migrate.hpp"
#include "store/pg/txn.hpp"

#include "store/failed_txn.hpp"

#include <livebase/store/store.hpp>

#include <poll.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <condition_variable>
#include <deque>
#include <future>
#include <mutex>
#include <thread>

namespace livebase {

namespace {

using pg::connection;
using store_detail::failed_txn;
using pg::pg_txn;

constexpr std::size_t k_max_queued_writes = 100000;
constexpr std::size_t k_max_queued_reads = 100000;
constexpr int k_retries = 3;  // a write that lost a deadlock or serialization race runs again
// The listener re-reads the last seq this often even without notifications (a notification
// lost with a broken connection must not stall the hub).
constexpr auto k_listen_poll = std::chrono::milliseconds(1000);

problem closed_problem() { return problem::unavailable("The store is closed."); }
problem full_problem() { return problem::unavailable("The store is overloaded."); }

class pg_store final : public store {
public:
    pg_store(const postgres_options& options, pg::url_parts url, std::string schema,
             std::unique_ptr<connection> writer, std::vector<std::unique_ptr<connection>> readers,
             std::unique_ptr<connection> listener, std::int64_t last_seq)
        : log_(options.log),
          max_batch_(std::max<std::size_t>(1, options.max_batch)),
          url_(std::move(url)),
          channels_(pg::channels_for(schema)),
          writer_conn_(std::move(writer)),
          reader_conns_(std::move(readers)),
          listener_conn_(std::move(listener)),
          last_seq_(last_seq) {
        writer_thread_ = std::thread([this] { writer_loop(); });
        for (auto& conn : reader_conns_) reader_threads_.emplace_back([this, c = conn.get()] { reader_loop(*c); });
        listener_thread_ = std::thread([this] { listener_loop(); });
    }

    ~pg_store() override { close(); }

    result<migration_plan> migrate(const std::vector<const collection_def*>& collections, bool allow_destructive,
                                   bool dry_run) override {
        std::optional<migration_plan> plan;
        std::promise<result<migration_plan>> done;
        auto f = done.get_future();
        enqueue(
            [&](pg_txn& t) -> result<json::value> {
                auto r = pg::migrate_schema(t.conn(), collections, allow_destructive, dry_run);
                t.conn().forget_statements();
                if (!r) return std::move(r).error();
                plan = std::move(r).value();
                return json::value(nullptr);
            },
            [&](result<json::value> r) {
                if (!r) return done.set_value(std::move(r).error());
                done.set_value(std::move(*plan));
            },
            /*retry=*/false);
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
        enqueue([fn = std::move(fn)](pg_txn& t) { return fn(t); }, std::move(done), true);
    }

    std::int64_t last_seq() override { return last_seq_.load(std::memory_order_acquire); }

    void on_commit(std::function<void(std::int64_t)> fn) override {
        std::lock_guard<std::mutex> lock(listener_mu_);
        on_commit_ = std::move(fn);
    }

    void on_task_ready(std::function<void()> fn) override {
        std::lock_guard<std::mutex> lock(listener_mu_);
        on_task_ready_ = std::move(fn);
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
        listening_ = false;
        listener_thread_.join();
        reader_conns_.clear();
        writer_conn_.reset();
        listener_conn_.reset();
        closed_ = true;
    }

private:
    using job_fn = std::function<result<json::value>(pg_txn&)>;
    struct write_job {
        job_fn fn;
        write_done done;
        bool retry = true;
    };

    void enqueue(job_fn fn, write_done done, bool retry) {
        problem refused;
        {
            std::lock_guard<std::mutex> lock(write_mu_);
            if (!writes_stopping_ && writes_.size() < k_max_queued_writes) {
                writes_.push_back({std::move(fn), std::move(done), retry});
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
                if (writes_.empty()) return;
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

    result<json::value> run_job(write_job& job, pg_txn& txn) {
        try {
            return job.fn(txn);
        } catch (const std::exception& e) {
            log_error("write failed with an exception", {{"error", e.what()}});
        } catch (...) {
            log_error("write failed with an exception", {{"error", "unknown exception"}});
        }
        return problem::internal();
    }

    // One group commit: every job in its own savepoint of one transaction; the change log is
    // appended at the end, under the append lock (pg/txn.hpp). A job that failed on a deadlock
    // or serialization race runs again (up to k_retries). If the connection breaks, every job
    // of the group fails (503) and the next group reconnects.
    void run_group(std::vector<write_job>& batch) {
        connection& conn = *writer_conn_;
        std::vector<result<json::value>> results;
        results.reserve(batch.size());
        auto fail_all = [&](problem p) {
            results.clear();
            for (std::size_t i = 0; i < batch.size(); ++i) results.emplace_back(p);
        };
        pg_txn txn(conn, /*writer=*/true, &channels_);
        std::int64_t appended = 0;
        if (!conn.ensure() || !conn.exec("BEGIN")) {
            fail_all(problem::unavailable("The database is not reachable."));
        } else {
            bool broken = false;
            for (auto& job : batch) {
                if (broken) {
                    results.emplace_back(problem::unavailable("The database connection was lost."));
                    continue;
                }
                result<json::value> r = problem::internal();
                for (int attempt = 0;; ++attempt) {
                    const std::size_t mark = txn.pending();
                    if (!conn.exec("SAVEPOINT w")) {
                        broken = true;
                        break;
                    }
                    r = run_job(job, txn);
                    if (r && conn.exec("RELEASE w")) break;
                    const bool retry = job.retry && conn.retryable() && attempt + 1 < k_retries;
                    if (r) r = problem::internal();
                    txn.drop_pending_from(mark);
                    if (!conn.exec("ROLLBACK TO w") || !conn.exec("RELEASE w")) {
                        broken = true;
                        break;
                    }
                    if (!retry) break;
                }
                if (broken) r = problem::unavailable("The database connection was lost.");
                results.push_back(std::move(r));
            }
            auto last = broken ? result<std::int64_t>(problem::unavailable("The database connection was lost."))
                               : txn.append_pending();
            if (last && conn.exec("COMMIT")) {
                appended = *last;
            } else {
                if (conn.in_transaction() && !conn.exec("ROLLBACK")) log_error("rollback after a failed commit failed");
                for (auto& r : results)
                    if (r) r = problem::internal();
            }
        }

        // The listener may have raised last_seq already (our own NOTIFY can arrive first): the
        // commit listener hears each seq once, from whichever thread raised it.
        const bool advanced = appended > 0 && raise_seq(appended);
        for (std::size_t i = 0; i < batch.size(); ++i) {
            if (!batch[i].done) continue;
            guarded("write completion failed", [&] { batch[i].done(std::move(results[i])); });
        }
        if (advanced) notify_commit(appended);
    }

    void notify_commit(std::int64_t seq) {
        std::function<void(std::int64_t)> listener;
        {
            std::lock_guard<std::mutex> lock(listener_mu_);
            listener = on_commit_;
        }
        if (listener) guarded("commit listener failed", [&] { listener(seq); });
    }

    void reader_loop(connection& conn) {
        pg_txn txn(conn, /*writer=*/false);
        for (;;) {
            std::function<void(read_txn&)> job;
            {
                std::unique_lock<std::mutex> lock(read_mu_);
                read_cv_.wait(lock, [&] { return reads_stopping_ || !reads_.empty(); });
                if (reads_.empty()) return;
                job = std::move(reads_.front());
                reads_.pop_front();
            }
            if (!conn.ensure() || !conn.exec("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) {
                failed_txn failed(problem::unavailable("The database is not reachable."));
                guarded("read failed with an exception", [&] { job(failed); });
                continue;
            }
            guarded("read failed with an exception", [&] { job(txn); });
            if (conn.in_transaction() && !conn.exec("COMMIT")) {
                if (conn.in_transaction() && !conn.exec("ROLLBACK")) log_error("ending a read transaction failed");
            }
        }
    }

    // True when this call moved last_seq up to `seq`.
    bool raise_seq(std::int64_t seq) {
        std::int64_t prev = last_seq_.load(std::memory_order_relaxed);
        while (prev < seq) {
            if (last_seq_.compare_exchange_weak(prev, seq)) return true;
        }
        return false;
    }

    // Raises last_seq to `seq` and tells the listener when it moved.
    void observe_seq(std::int64_t seq) {
        if (raise_seq(seq)) notify_commit(seq);
    }

    bool listen(connection& conn) {
        return conn.ensure() && conn.exec("LISTEN " + pg::quote_ident(channels_.changes)) &&
               conn.exec("LISTEN " + pg::quote_ident(channels_.tasks));
    }

    void poll_last_seq(connection& conn) {
        auto r = conn.query("SELECT coalesce(max(seq), 0) FROM _changes");
        if (r && r->size() == 1) observe_seq(r->int64(0, 0));
    }

    // Other nodes' commits arrive as NOTIFYs (payload: their last seq). A reconnect re-reads
    // the last seq (notifications sent while disconnected are lost), and so does a quiet second.
    void listener_loop() {
        connection& conn = *listener_conn_;
        bool listening = listen(conn);
        auto next_poll = std::chrono::steady_clock::now() + k_listen_poll;
        int failures = 0;
        while (listening_.load()) {
            if (!listening) {
                // Backoff while the database is away, still checking for close() often.
                std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 << std::min(failures, 4), 1000)));
                listening = listen(conn);
                failures = listening ? 0 : failures + 1;
                if (listening) poll_last_seq(conn);
                continue;
            }
            pollfd pfd{PQsocket(conn.handle()), POLLIN, 0};
            int rc = ::poll(&pfd, 1, 100);
            if (rc > 0 && !PQconsumeInput(conn.handle())) {
                log_error("the PostgreSQL listener connection failed; reconnecting");
                listening = false;
                continue;
            }
            bool tasks = false;
            std::int64_t newest = 0;
            while (PGnotify* n = PQnotifies(conn.handle())) {
                if (channels_.changes == n->relname) {
                    std::int64_t seq = 0;
                    const char* p = n->extra ? n->extra : "";
                    std::from_chars(p, p + std::char_traits<char>::length(p), seq);
                    newest = std::max(newest, seq);
                } else if (channels_.tasks == n->relname) {
                    tasks = true;
                }
                PQfreemem(n);
            }
            if (newest > 0) observe_seq(newest);
            if (tasks) {
                std::function<void()> fn;
                {
                    std::lock_guard<std::mutex> lock(listener_mu_);
                    fn = on_task_ready_;
                }
                if (fn) guarded("task listener failed", fn);
            }
            if (std::chrono::steady_clock::now() >= next_poll) {
                next_poll = std::chrono::steady_clock::now() + k_listen_poll;
                poll_last_seq(conn);
                if (!conn.ok()) listening = false;
            }
        }
    }

    logger* log_;
    const std::size_t max_batch_;
    pg::url_parts url_;
    pg::channels channels_;
    std::unique_ptr<connection> writer_conn_;
    std::vector<std::unique_ptr<connection>> reader_conns_;
    std::unique_ptr<connection> listener_conn_;
    std::atomic<std::int64_t> last_seq_;
    std::atomic<bool> listening_{true};

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
    std::function<void()> on_task_ready_;

    std::mutex close_mu_;
    bool closed_ = false;
    std::thread writer_thread_;
    std::vector<std::thread> reader_threads_;
    std::thread listener_thread_;
};

}  // namespace

result<std::unique_ptr<store>> open_postgres_store(const postgres_options& options) {
    auto url = pg::split_url(options.url);
    if (!url) return std::move(url).error();
    auto writer = connection::open(url->conninfo, url->schema, /*create_schema=*/true, options.log);
    if (!writer) return std::move(writer).error();
    if (auto r = pg::create_system_tables(**writer); !r) return std::move(r).error();
    auto schema = (*writer)->query("SELECT current_schema()");
    if (!schema) return std::move(schema).error();
    if (schema->size() != 1 || schema->is_null(0, 0))
        return problem::internal("PostgreSQL names no current schema (check search_path).");
    std::string schema_name(schema->text(0, 0));
    auto last = (*writer)->query("SELECT coalesce(max(seq), 0) FROM _changes");
    if (!last) return std::move(last).error();
    std::vector<std::unique_ptr<connection>> readers;
    for (std::size_t i = 0; i < std::max<std::size_t>(1, options.readers); ++i) {
        auto reader = connection::open(url->conninfo, url->schema, false, options.log);
        if (!reader) return std::move(reader).error();
        readers.push_back(std::move(reader).value());
    }
    auto listener = connection::open(url->conninfo, url->schema, false, options.log);
    if (!listener) return std::move(listener).error();
    const std::int64_t last_seq = last->int64(0, 0);
    return std::unique_ptr<store>(new pg_store(options, std::move(*url), std::move(schema_name),
                                               std::move(writer).value(), std::move(readers),
                                               std::move(listener).value(), last_seq));
}

}  // namespace livebase
