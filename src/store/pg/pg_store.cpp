// The PostgreSQL store: the shared core (store/core.hpp) over PostgreSQL sessions, plus a
// listener connection that LISTENs for other nodes' commits and tasks. See store.hpp for the
// contract and pg/txn.hpp for commit order.
#include "store/pg/connection.hpp"
#include "store/pg/migrate.hpp"
#include "store/pg/txn.hpp"

#include "store/core.hpp"

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
using pg::pg_txn;

// The listener re-reads the last seq this often even without notifications (a notification
// lost with a broken connection must not stall the hub).
constexpr auto k_listen_poll = std::chrono::milliseconds(1000);

problem unreachable() { return problem::unavailable("The database is not reachable."); }

class pg_session final : public store_detail::session {
public:
    pg_session(std::unique_ptr<connection> conn, bool writer, const pg::channels* ch)
        : conn_(std::move(conn)), txn_(*conn_, writer, ch) {
        // The writer's queries (claims, reaping, purging) read the first rows of an index in
        // its order and stop: a plain index scan, which also marks the dead entries a busy
        // queue leaves behind so the next scan skips them. A bitmap scan would read and sort
        // every matching entry, dead ones included, at each claim.
        if (writer) (void)conn_->configure("SET enable_bitmapscan = off");
        // Transaction control travels with the statements (pg/connection.hpp).
        (void)conn_->enter_pipeline();
    }

    write_txn& txn() noexcept override { return txn_; }
    connection& conn() noexcept { return *conn_; }

    // A read costs one round trip: BEGIN goes with its first statement, and COMMIT is sent at
    // once but read with the next read's first statement.
    result<void> begin_read() override {
        if (!conn_->ensure() || !conn_->defer("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) return unreachable();
        return {};
    }
    void end_read() override {
        if (!conn_->defer("COMMIT")) return;
        conn_->flush();
    }

    result<void> begin_write(std::int64_t) override {
        txn_.drop_pending_from(0);
        if (!conn_->ensure() || !conn_->defer("BEGIN")) return unreachable();
        return {};
    }
    result<void> savepoint() override { return conn_->defer("SAVEPOINT w"); }
    result<void> release() override { return conn_->defer("RELEASE w"); }
    result<void> undo() override {
        if (auto r = conn_->exec("ROLLBACK TO w"); !r) return r;
        return conn_->defer("RELEASE w");
    }
    bool in_transaction() const override { return conn_->in_transaction(); }
    bool retryable() const override { return conn_->retryable(); }
    std::int64_t mark() const override { return static_cast<std::int64_t>(txn_.pending()); }
    void undo_to(std::int64_t mark) override { txn_.drop_pending_from(static_cast<std::size_t>(mark)); }
    // The group's changes are appended at the end, under the append lock (pg/txn.hpp).
    result<std::int64_t> commit(std::int64_t committed) override {
        if (auto r = txn_.append_pending(); !r) return std::move(r).error();
        if (auto r = conn_->exec("COMMIT"); !r) return std::move(r).error();
        return std::max(committed, txn_.appended_last());
    }
    void rollback() override { (void)conn_->exec("ROLLBACK"); }
    problem lost() const override {
        if (!conn_->ok()) return problem::unavailable("The database connection was lost.");
        return problem::unavailable("The database did not commit the write; try again.");
    }

private:
    std::unique_ptr<connection> conn_;
    pg_txn txn_;
};

class pg_store final : public store_detail::store_core {
public:
    pg_store(const postgres_options& options, std::string schema, std::unique_ptr<connection> writer,
             std::vector<std::unique_ptr<connection>> readers, std::unique_ptr<connection> listener,
             std::int64_t last_seq)
        : store_core(options.log, limits_of(options), last_seq),
          channels_(pg::channels_for(schema)),
          listener_conn_(std::move(listener)) {
        std::vector<std::unique_ptr<store_detail::session>> sessions;
        for (auto& r : readers) sessions.push_back(std::make_unique<pg_session>(std::move(r), false, nullptr));
        start(std::make_unique<pg_session>(std::move(writer), true, &channels_), std::move(sessions));
        listener_thread_ = std::thread([this] { listener_loop(); });
    }

    ~pg_store() override { close(); }

protected:
    result<migration_plan> migrate_on(store_detail::session& s, const std::vector<const collection_def*>& collections,
                                      bool allow_destructive, bool dry_run) override {
        auto& conn = static_cast<pg_session&>(s).conn();
        auto r = pg::migrate_schema(conn, collections, allow_destructive, dry_run);
        conn.forget_statements();
        return r;
    }

    void stop_backend() override {
        listening_ = false;
        if (listener_thread_.joinable()) listener_thread_.join();
        listener_conn_.reset();
    }

private:
    static store_detail::core_limits limits_of(const postgres_options& o) {
        store_detail::core_limits l;
        l.max_batch = o.max_batch;
        return l;
    }

    bool listen(connection& conn) {
        return conn.ensure() && conn.exec("LISTEN " + pg::quote_ident(channels_.changes));
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
                    // "<last seq>" or "<last seq> t" (a task became pending).
                    std::string_view payload = n->extra ? n->extra : "";
                    std::int64_t seq = 0;
                    auto [end, ec] = std::from_chars(payload.data(), payload.data() + payload.size(), seq);
                    if (ec == std::errc()) newest = std::max(newest, seq);
                    tasks = tasks || std::string_view(end, payload.data() + payload.size() - end) == " t";
                }
                PQfreemem(n);
            }
            if (newest > 0) observe_seq(newest);
            if (tasks) task_ready();
            if (std::chrono::steady_clock::now() >= next_poll) {
                next_poll = std::chrono::steady_clock::now() + k_listen_poll;
                poll_last_seq(conn);
                if (!conn.ok()) listening = false;
            }
        }
    }

    pg::channels channels_;
    std::unique_ptr<connection> listener_conn_;
    std::atomic<bool> listening_{true};
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
    return std::unique_ptr<store>(new pg_store(options, std::move(schema_name),
                                               std::move(writer).value(), std::move(readers),
                                               std::move(listener).value(), last_seq));
}

}  // namespace livebase
