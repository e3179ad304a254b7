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
// While the database is away, one connection attempt a second at most.
constexpr auto k_probe_interval = std::chrono::milliseconds(1000);

problem unreachable(const connection& c) {
    // While the store is down every request hears the same answer at once.
    if (c.last_problem().status == 503 || c.last_problem().status == 507) return c.last_problem();
    return pg::storage_unavailable("The database is not reachable.");
}

class pg_session final : public store_detail::session {
public:
    pg_session(std::unique_ptr<connection> conn, bool writer, const pg::channels* ch,
               std::shared_ptr<pg::reachability> reach)
        : conn_(std::move(conn)), txn_(*conn_, writer, ch), reach_(std::move(reach)) {
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
        if (!conn_->ensure()) return pg::storage_unavailable("The database is not reachable.");
        if (!conn_->defer("BEGIN ISOLATION LEVEL REPEATABLE READ READ ONLY")) return unreachable(*conn_);
        return {};
    }
    void end_read() override {
        if (!conn_->defer("COMMIT")) return;
        conn_->flush();
    }

    result<void> begin_write(std::int64_t) override {
        txn_.drop_pending_from(0);
        txn_.reset_replay();
        commit_sent_ = false;
        if (!conn_->ensure()) return pg::storage_unavailable("The database is not reachable.");
        if (!conn_->defer("BEGIN")) return unreachable(*conn_);
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
    bool replay_needed() const override { return txn_.replay_needed(); }
    void set_careful(bool on) override { txn_.set_careful(on); }
    bool optimistic() const override { return txn_.optimistic(); }
    std::int64_t writes() const override { return txn_.writes(); }
    bool failed() const override { return conn_->in_error(); }
    std::int64_t mark() const override { return static_cast<std::int64_t>(txn_.pending()); }
    void undo_to(std::int64_t mark) override { txn_.drop_pending_from(static_cast<std::size_t>(mark)); }
    // The group's changes are appended at the end, under the append lock (pg/txn.hpp).
    result<std::int64_t> commit(std::int64_t committed) override {
        if (auto r = send_commit(committed); !r) return std::move(r).error();
        return finish_commit(committed);
    }
    // The row writes' answers first (before the append lock, which is held until COMMIT), then
    // the append and the COMMIT go out without waiting.
    result<void> send_commit(std::int64_t) override {
        if (auto r = txn_.confirm_writes(); !r) return std::move(r).error();
        if (auto r = txn_.append_pending(); !r) return std::move(r).error();
        commit_sent_ = true;
        if (auto r = conn_->defer("COMMIT"); !r) return std::move(r).error();
        if (!conn_->flush()) return pg::storage_unavailable("The database did not take the commit in time.");
        return {};
    }
    // A statement after the COMMIT carries its answer (and the append's) back.
    result<std::int64_t> finish_commit(std::int64_t committed) override {
        if (auto r = conn_->exec("SELECT 1"); !r) return std::move(r).error();
        commit_sent_ = false;
        // Only a commit that wrote rows shows there is room again (an idle claim commits anyway).
        if (reach_ && reach_->full() && txn_.writes() > 0) reach_->set_full(false);
        return std::max(committed, txn_.appended_last());
    }
    void rollback() override {
        if (!conn_->ok()) return;
        (void)conn_->exec("ROLLBACK");
        // Sent behind a deferred statement that failed, that ROLLBACK was skipped with the rest
        // of its pipeline segment; this one runs after the sync point.
        if (conn_->ok() && conn_->in_transaction()) (void)conn_->exec("ROLLBACK");
    }
    problem lost() const override {
        if (conn_->last_problem().status == 507) return conn_->last_problem();
        if (commit_sent_ && !conn_->ok())
            return pg::storage_unavailable(
                "The database connection was lost before the commit was confirmed: the write may or may not "
                "have been applied. Retry it (an Idempotency-Key makes that safe).");
        // The connection's own reason (no answer in time, unreachable) when it has one.
        if (conn_->last_problem().status == 503) return conn_->last_problem();
        if (!conn_->ok()) return pg::storage_unavailable("The database connection was lost; the write was not applied.");
        return pg::storage_unavailable("The database did not commit the write; try again.");
    }

private:
    std::unique_ptr<connection> conn_;
    pg_txn txn_;
    std::shared_ptr<pg::reachability> reach_;
    bool commit_sent_ = false;  // the group's COMMIT went out: a lost connection loses its outcome
};

class pg_store final : public store_detail::store_core {
public:
    pg_store(const postgres_options& options, std::string schema, std::vector<std::unique_ptr<connection>> writers,
             std::vector<std::unique_ptr<connection>> readers, std::unique_ptr<connection> listener,
             std::int64_t last_seq, std::shared_ptr<pg::reachability> reach)
        : store_core(options.log, limits_of(options), last_seq),
          channels_(pg::channels_for(schema)),
          reach_(std::move(reach)),
          listener_conn_(std::move(listener)) {
        std::vector<std::unique_ptr<store_detail::session>> sessions;
        for (auto& r : readers) sessions.push_back(std::make_unique<pg_session>(std::move(r), false, nullptr, reach_));
        // Two writer sessions: one group's COMMIT is in flight while the next runs (core.hpp).
        std::vector<std::unique_ptr<store_detail::session>> writer_sessions;
        for (auto& w : writers) {
            writer_sessions.push_back(std::make_unique<pg_session>(std::move(w), true, &channels_, reach_));
            writer_conns_.push_back(&static_cast<pg_session&>(*writer_sessions.back()).conn());
        }
        start(std::move(writer_sessions), std::move(sessions));
        listener_thread_ = std::thread([this] { listener_loop(); });
    }

    ~pg_store() override { close(); }

    void set_stop_flag(std::shared_ptr<std::atomic<bool>> f) { stop_flag_ = std::move(f); }

    std::string_view condition() const noexcept override {
        if (reach_->down()) return "unavailable";
        return reach_->full() ? "full" : "ok";
    }

protected:
    result<migration_plan> migrate_on(store_detail::session& s, const std::vector<const collection_def*>& collections,
                                      bool allow_destructive, bool dry_run) override {
        auto& conn = static_cast<pg_session&>(s).conn();
        // DDL on large tables and the wait for another node's migration are not bounded by
        // statement_timeout (startup only; the group's COMMIT ends the SET LOCAL).
        conn.set_unbounded(true);
        (void)conn.exec("SET LOCAL statement_timeout = 0");
        auto r = pg::migrate_schema(conn, collections, allow_destructive, dry_run);
        conn.set_unbounded(false);
        // The tables changed under every writer's prepared statements.
        for (auto* w : writer_conns_) w->forget_statements();
        return r;
    }

    void stop_backend() override {
        listening_ = false;
        if (stop_flag_) stop_flag_->store(true);
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
    // The listener is also the store's prober: while the store is down it tries to connect once
    // a second, and its success ends the episode (every other connection then reconnects).
    void listener_loop() {
        connection& conn = *listener_conn_;
        bool listening = listen(conn);
        auto next_poll = std::chrono::steady_clock::now() + k_listen_poll;
        auto next_probe = std::chrono::steady_clock::now();
        int failures = 0;
        while (listening_.load()) {
            if (reach_->down()) {
                listening = false;
                const auto now = std::chrono::steady_clock::now();
                if (now < next_probe) {
                    std::this_thread::sleep_for(std::min<std::chrono::steady_clock::duration>(
                        next_probe - now, std::chrono::milliseconds(50)));
                    continue;
                }
                next_probe = now + k_probe_interval;
                if (conn.probe()) {
                    listening = listen(conn);
                    if (listening) poll_last_seq(conn);
                    next_poll = std::chrono::steady_clock::now() + k_listen_poll;
                }
                continue;
            }
            if (!listening) {
                // Backoff after a failed LISTEN, still checking for close() often.
                std::this_thread::sleep_for(std::chrono::milliseconds(std::min(50 << std::min(failures, 4), 1000)));
                listening = listen(conn);
                failures = listening ? 0 : failures + 1;
                if (listening) poll_last_seq(conn);
                continue;
            }
            pollfd pfd{PQsocket(conn.handle()), POLLIN, 0};
            int rc = ::poll(&pfd, 1, 100);
            if (rc > 0 && !PQconsumeInput(conn.handle())) {
                // The socket broke (a restart): the store hears it as an episode if reconnecting fails.
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
                // Also the store's heartbeat: a PostgreSQL that stopped answering is noticed here
                // within statement_timeout + 1 s even when no request is running.
                poll_last_seq(conn);
                if (!conn.ok()) listening = false;
            }
        }
    }

    pg::channels channels_;
    std::vector<connection*> writer_conns_;  // owned by the writer sessions (the core's)
    std::shared_ptr<pg::reachability> reach_;
    std::unique_ptr<connection> listener_conn_;
    std::atomic<bool> listening_{true};
    std::shared_ptr<std::atomic<bool>> stop_flag_;
    std::thread listener_thread_;
};

}  // namespace

result<std::unique_ptr<store>> open_postgres_store(const postgres_options& options) {
    auto url = pg::split_url(options.url);
    if (!url) return std::move(url).error();
    auto reach = std::make_shared<pg::reachability>(options.log, pg::endpoint_of(url->conninfo));
    auto stopping = std::make_shared<std::atomic<bool>>(false);
    connection::options copts;
    copts.limits = {options.timeouts.connect, options.timeouts.statement, options.timeouts.keepalives};
    copts.reach = reach;
    auto writer = connection::open(url->conninfo, url->schema, /*create_schema=*/true, options.log, copts);
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
        auto reader = connection::open(url->conninfo, url->schema, false, options.log, copts);
        if (!reader) return std::move(reader).error();
        readers.push_back(std::move(reader).value());
    }
    // The listener's attempts (the prober's) stop when the store closes.
    auto lopts = copts;
    lopts.cancelled = [stopping] { return stopping->load(); };
    auto listener = connection::open(url->conninfo, url->schema, false, options.log, lopts);
    if (!listener) return std::move(listener).error();
    const std::int64_t last_seq = last->int64(0, 0);
    std::vector<std::unique_ptr<connection>> writers;
    writers.push_back(std::move(writer).value());
    auto second = connection::open(url->conninfo, url->schema, false, options.log, copts);
    if (!second) return std::move(second).error();
    writers.push_back(std::move(second).value());
    auto* s = new pg_store(options, std::move(schema_name), std::move(writers), std::move(readers),
                           std::move(listener).value(), last_seq, std::move(reach));
    s->set_stop_flag(std::move(stopping));
    return std::unique_ptr<store>(s);
}

}  // namespace livebase
