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

void store_core::start(std::unique_ptr<session> writer, std::vector<std::unique_ptr<session>> readers) {
    writer_ = std::move(writer);
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
    writer_.reset();
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
    std::vector<write_job> batch;
    for (;;) {
        {
            std::unique_lock<std::mutex> lock(write_mu_);
            write_cv_.wait(lock, [&] { return writes_stopping_ || !writes_.empty(); });
            if (writes_.empty()) return;  // stopping and drained
            const std::size_t n = std::min(limits_.max_batch, writes_.size());
            for (std::size_t i = 0; i < n; ++i) {
                batch.push_back(std::move(writes_.front()));
                writes_.pop_front();
            }
        }
        run_group(batch);
        batch.clear();
    }
}

result<json::value> store_core::run_job(write_job& job) {
    try {
        return job.fn(*writer_);
    } catch (const std::exception& e) {
        log_error("write failed with an exception", {{"error", e.what()}});
    } catch (...) {
        log_error("write failed with an exception", {{"error", "unknown exception"}});
    }
    return problem::internal();
}

void store_core::run_group(std::vector<write_job>& batch) {
    session& s = *writer_;
    const std::int64_t committed = last_seq_.load(std::memory_order_acquire);
    std::vector<result<json::value>> results;
    results.reserve(batch.size());
    std::size_t segment_start = 0;
    bool open = false;

    // The transaction holding writes [segment_start, end) is gone: they fail.
    auto lose_segment = [&](std::size_t end) {
        for (std::size_t j = segment_start; j < end; ++j)
            if (results[j]) results[j] = s.lost();
        open = false;
    };

    for (std::size_t i = 0; i < batch.size(); ++i) {
        if (!open) {
            if (auto b = s.begin_write(committed); !b) {
                // The database takes no transaction now: the rest of the batch fails with it.
                for (; i < batch.size(); ++i) results.emplace_back(b.error());
                break;
            }
            open = true;
            segment_start = i;
        }
        result<json::value> r = problem::internal();
        bool lost = false;
        for (int attempt = 0;; ++attempt) {
            const std::int64_t mark = s.mark();
            if (!s.savepoint()) {
                lost = true;
                r = s.lost();
                break;
            }
            r = run_job(batch[i]);
            if (!s.in_transaction()) {  // the backend rolled everything back under the write
                lost = true;
                if (r) r = s.lost();
                break;
            }
            if (r && s.release()) break;
            const bool retry = batch[i].retry && s.retryable() && attempt + 1 < limits_.retries;
            if (r) r = problem::internal();  // the release failed
            s.undo_to(mark);
            if (!s.undo()) {
                lost = true;
                break;
            }
            if (!retry) break;
        }
        results.push_back(std::move(r));
        if (lost) {
            if (s.in_transaction()) s.rollback();
            lose_segment(i);
        }
    }

    std::int64_t new_last = committed;
    if (open) {
        if (auto c = s.commit(committed)) {
            new_last = *c;
        } else {
            if (s.in_transaction()) s.rollback();
            lose_segment(batch.size());
        }
    }
    // A backend's watcher may have raised the last seq already (our own NOTIFY can arrive
    // first): the commit listener hears each seq once, from whichever thread raised it.
    const bool advanced = new_last > committed && raise_seq(new_last);
    completed_group g;
    g.dones.reserve(batch.size());
    for (auto& job : batch) g.dones.push_back(std::move(job.done));
    g.results = std::move(results);
    g.advanced_to = advanced ? new_last : 0;
    std::unique_lock<std::mutex> lock(done_mu_);
    // Bounded: when completions fall behind, the writer waits for them.
    done_cv_.wait(lock, [&] { return done_queue_.size() < k_max_completed_groups; });
    done_queue_.push_back(std::move(g));
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
