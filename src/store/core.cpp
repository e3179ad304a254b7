#include "store/core.hpp"

#include "store/failed_txn.hpp"

#include <algorithm>
#include <exception>
#include <future>
#include <optional>

namespace livebase::store_detail {

namespace {
constexpr std::size_t k_max_completed_groups = 64;
problem closed_problem() { return problem::unavailable("The store is closed."); }
problem full_problem() { return problem::unavailable("The store is overloaded."); }
}  // namespace

store_core::store_core(logger* log, core_limits limits, std::int64_t last_seq)
    : log_(log),
      limits_([&] {
          limits.max_batch = std::max<std::size_t>(1, limits.max_batch);
          limits.retries = std::max(1, limits.retries);
          return limits;
      }()),
      last_seq_(last_seq) {}

store_core::~store_core() { close(); }

void store_core::start(std::vector<std::unique_ptr<session>> writers,
                       std::vector<std::unique_ptr<session>> readers) {
    writers_ = std::move(writers);
    readers_ = std::move(readers);
    writer_thread_ = std::thread([this] { writer_loop(); });
    completion_thread_ = std::thread([this] { completion_loop(); });
    for (auto& s : readers_) reader_threads_.emplace_back([this, r = s.get()] { reader_loop(*r); });
}

void store_core::log_error(std::string_view msg, json::object fields) {
    if (log_) log_->error(msg, fields);
}

// Calls code that must not take a store thread down with it.
template <class Fn>
void store_core::guarded(std::string_view what, Fn&& fn) {
    try {
        fn();
    } catch (const std::exception& e) {
        log_error(what, {{"error", e.what()}});
    } catch (...) {
        log_error(what, {{"error", "unknown exception"}});
    }
}

result<migration_plan> store_core::migrate(const std::vector<const collection_def*>& collections,
                                           bool allow_destructive, bool dry_run) {
    std::optional<migration_plan> plan;
    std::promise<result<migration_plan>> done;
    auto f = done.get_future();
    enqueue(
        [&](session& s) -> result<json::value> {
            auto r = migrate_on(s, collections, allow_destructive, dry_run);
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

void store_core::read(std::function<void(read_txn&)> fn) {
    bool stopping;
    {
        std::lock_guard<std::mutex> lock(read_mu_);
        stopping = reads_stopping_;
        if (!stopping && reads_.size() < limits_.max_queued_reads) {
            reads_.push_back(std::move(fn));
            read_cv_.notify_one();
            return;
        }
    }
    failed_txn t(stopping ? closed_problem() : full_problem());
    fn(t);
}

void store_core::write(write_fn fn, write_done done) {
    enqueue([fn = std::move(fn)](session& s) { return fn(s.txn()); }, std::move(done), true);
}

void store_core::on_commit(std::function<void(std::int64_t)> fn) {
    std::lock_guard<std::mutex> lock(listener_mu_);
    on_commit_ = std::move(fn);
}

void store_core::on_task_ready(std::function<void()> fn) {
    std::lock_guard<std::mutex> lock(listener_mu_);
    on_task_ready_ = std::move(fn);
}

void store_core::close() {
    std::lock_guard<std::mutex> close_lock(close_mu_);
    if (closed_) return;
    stop_backend();
    {
        std::lock_guard<std::mutex> lock(write_mu_);
        writes_stopping_ = true;
    }
    write_cv_.notify_all();
    if (writer_thread_.joinable()) writer_thread_.join();
    {
        std::lock_guard<std::mutex> lock(done_mu_);
        done_stopping_ = true;
    }
    done_cv_.notify_all();
    if (completion_thread_.joinable()) completion_thread_.join();
    {
        std::lock_guard<std::mutex> lock(read_mu_);
        reads_stopping_ = true;
    }
    read_cv_.notify_all();
    for (auto& t : reader_threads_) t.join();
    // Readers first: with SQLite the last connection to close checkpoints and removes the WAL.
    readers_.clear();
    writers_.clear();
    closed_ = true;
}

void store_core::enqueue(job_fn fn, write_done done, bool retry) {
    problem refused;
    {
        std::lock_guard<std::mutex> lock(write_mu_);
        if (!writes_stopping_ && writes_.size() < limits_.max_queued_writes) {
            writes_.push_back({std::move(fn), std::move(done), retry});
            write_cv_.notify_one();
            return;
        }
        refused = writes_stopping_ ? closed_problem() : full_problem();
    }
    if (done) done(std::move(refused));
}

void store_core::writer_loop() {
    // With two writer sessions a group's COMMIT (its fsync) is in flight while the next group
    // runs on the other session; `prev` is that group, finished before the next one commits
    // so completions and seqs stay in commit order. One session: each group finishes at once.
    std::optional<group> prev;
    std::size_t turn = 0;
    for (;;) {
        std::vector<write_job> batch;
        {
            std::unique_lock<std::mutex> lock(write_mu_);
            if (prev && writes_.empty()) {
                lock.unlock();
                finish_group(*prev);
                prev.reset();
                continue;
            }
            write_cv_.wait(lock, [&] { return writes_stopping_ || !writes_.empty(); });
            if (writes_.empty()) return;  // stopping and drained
            const std::size_t n = std::min(limits_.max_batch, writes_.size());
            batch.reserve(n);
            for (std::size_t i = 0; i < n; ++i) {
                batch.push_back(std::move(writes_.front()));
                writes_.pop_front();
            }
        }
        session& s = *writers_[turn];
        turn = (turn + 1) % writers_.size();
        group g = run_group(s, std::move(batch));
        if (writers_.size() == 1) {
            finish_group(g);
            continue;
        }
        if (prev) finish_group(*prev);
        prev = std::move(g);
    }
}

result<json::value> store_core::run_job(session& s, write_job& job) {
    try {
        return job.fn(s);
    } catch (const std::exception& e) {
        log_error("write failed with an exception", {{"error", e.what()}});
    } catch (...) {
        log_error("write failed with an exception", {{"error", "unknown exception"}});
    }
    return problem::internal();
}

store_core::group store_core::run_group(session& s, std::vector<write_job> batch) {
    group g;
    g.s = &s;
    g.committed = last_seq_.load(std::memory_order_acquire);
    g.batch = std::move(batch);
    auto& results = g.results;
    results.reserve(g.batch.size());
    bool careful = false;

    // A deferred row write of the open transaction failed: roll it back and run its writes
    // again, each confirmed (careful mode lasts to the end of the group). Returns where to
    // go on.
    auto replay_segment = [&]() -> std::size_t {
        if (s.in_transaction()) s.rollback();
        results.erase(results.begin() + static_cast<std::ptrdiff_t>(g.segment_start), results.end());
        g.open = false;
        careful = true;
        s.set_careful(true);
        return g.segment_start;
    };

    std::size_t i = 0;
    for (;;) {
        while (i < g.batch.size()) {
            if (!g.open) {
                if (auto b = s.begin_write(g.committed); !b) {
                    // The database takes no transaction now: the rest of the batch fails with it.
                    for (; i < g.batch.size(); ++i) results.emplace_back(b.error());
                    break;
                }
                g.open = true;
                g.segment_start = i;
            }
            result<json::value> r = problem::internal();
            bool lost = false;
            bool replay = false;
            if (s.optimistic()) {
                // No savepoint: a write that fails having changed nothing needs no undo; one
                // that changed something, or broke the transaction, replays the group.
                const std::int64_t before = s.writes();
                r = run_job(s, g.batch[i]);
                if (s.replay_needed() || s.failed() || (!r && s.writes() != before)) {
                    if (s.in_transaction() || s.replay_needed()) {
                        i = replay_segment();
                        continue;
                    }
                }
                if (!s.in_transaction()) {  // the connection broke under the write
                    lost = true;
                    if (r) r = s.lost();
                }
            } else {
                for (int attempt = 0;; ++attempt) {
                    const std::int64_t mark = s.mark();
                    if (!s.savepoint()) {
                        replay = s.replay_needed();
                        lost = true;
                        r = s.lost();
                        break;
                    }
                    r = run_job(s, g.batch[i]);
                    if (s.replay_needed()) {
                        replay = true;
                        break;
                    }
                    if (!s.in_transaction()) {  // the backend rolled everything back under the write
                        lost = true;
                        if (r) r = s.lost();
                        break;
                    }
                    if (r && s.release()) break;
                    const bool retry = g.batch[i].retry && s.retryable() && attempt + 1 < limits_.retries;
                    if (r) r = problem::internal();  // the release failed
                    s.undo_to(mark);
                    if (!s.undo()) {
                        replay = s.replay_needed();
                        lost = true;
                        break;
                    }
                    if (!retry) break;
                }
            }
            if (replay && !careful) {
                i = replay_segment();
                continue;
            }
            results.push_back(std::move(r));
            if (lost) {
                if (s.in_transaction()) s.rollback();
                g.lose(i);
            }
            ++i;
        }
        if (!g.open) break;
        if (s.send_commit(g.committed)) break;
        if (s.replay_needed() && !careful) {
            i = replay_segment();
            continue;
        }
        if (s.in_transaction()) s.rollback();
        g.lose(g.batch.size());
        break;
    }
    if (careful) s.set_careful(false);
    return g;
}

void store_core::finish_group(group& g) {
    session& s = *g.s;
    std::int64_t new_last = g.committed;
    if (g.open) {
        if (auto c = s.finish_commit(g.committed)) {
            new_last = *c;
        } else {
            if (s.in_transaction()) s.rollback();
            g.lose(g.results.size());
        }
        g.open = false;
    }
    // A backend's watcher may have raised the last seq already (our own NOTIFY can arrive
    // first): the commit listener hears each seq once, from whichever thread raised it.
    const bool advanced = new_last > g.committed && raise_seq(new_last);
    completed_group done;
    done.dones.reserve(g.batch.size());
    for (auto& job : g.batch) done.dones.push_back(std::move(job.done));
    done.results = std::move(g.results);
    done.advanced_to = advanced ? new_last : 0;
    std::unique_lock<std::mutex> lock(done_mu_);
    // Bounded: when completions fall behind, the writer waits for them.
    done_cv_.wait(lock, [&] { return done_queue_.size() < k_max_completed_groups; });
    done_queue_.push_back(std::move(done));
    done_cv_.notify_all();
}

void store_core::completion_loop() {
    for (;;) {
        completed_group g;
        {
            std::unique_lock<std::mutex> lock(done_mu_);
            done_cv_.wait(lock, [&] { return done_stopping_ || !done_queue_.empty(); });
            if (done_queue_.empty()) return;  // stopping and drained
            g = std::move(done_queue_.front());
            done_queue_.pop_front();
            done_cv_.notify_all();  // the writer may wait for room
        }
        for (std::size_t i = 0; i < g.dones.size(); ++i) {
            if (!g.dones[i]) continue;
            guarded("write completion failed", [&] { g.dones[i](std::move(g.results[i])); });
        }
        if (g.advanced_to > 0) notify_commit(g.advanced_to);
    }
}

void store_core::reader_loop(session& s) {
    for (;;) {
        std::function<void(read_txn&)> job;
        {
            std::unique_lock<std::mutex> lock(read_mu_);
            read_cv_.wait(lock, [&] { return reads_stopping_ || !reads_.empty(); });
            if (reads_.empty()) return;  // stopping and drained
            job = std::move(reads_.front());
            reads_.pop_front();
        }
        if (auto b = s.begin_read(); !b) {
            failed_txn failed(b.error());
            guarded("read failed with an exception", [&] { job(failed); });
            continue;
        }
        guarded("read failed with an exception", [&] { job(s.txn()); });
        s.end_read();
    }
}

bool store_core::raise_seq(std::int64_t seq) {
    std::int64_t prev = last_seq_.load(std::memory_order_relaxed);
    while (prev < seq) {
        if (last_seq_.compare_exchange_weak(prev, seq, std::memory_order_acq_rel)) return true;
    }
    return false;
}

void store_core::notify_commit(std::int64_t seq) {
    std::function<void(std::int64_t)> listener;
    {
        std::lock_guard<std::mutex> lock(listener_mu_);
        listener = on_commit_;
    }
    if (listener) guarded("commit listener failed", [&] { listener(seq); });
}

void store_core::observe_seq(std::int64_t seq) {
    if (raise_seq(seq)) notify_commit(seq);
}

void store_core::task_ready() {
    std::function<void()> fn;
    {
        std::lock_guard<std::mutex> lock(listener_mu_);
        fn = on_task_ready_;
    }
    if (fn) guarded("task listener failed", fn);
}

}  // namespace livebase::store_detail
