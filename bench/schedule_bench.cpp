// Delayed and prioritized tasks in the engine itself (store + task queue + worker pool, no
// HTTP): how late delayed tasks start after their not_before, and how soon a high-priority task
// starts behind a backlog. See bench/README.md "Delays and priorities".
//
//   schedule_bench delayed [tasks=100000] [spread_ms=20000] [workers=4]
//   schedule_bench priority [backlog=10000] [workers=4]
//   schedule_bench rate [per_second=50] [seconds=10] [workers=4]
//
// delayed: stores `tasks` delayed no-op tasks (in transactions of 1,000) whose not_before are
// spread evenly over `spread_ms`, starting 2 s after the last is stored; the workers run them
// as they come due. Prints the lateness (start - not_before) p50/p90/p99/max in ms.
// priority: stores a backlog of no-op tasks that each take 1 ms, lets the workers start on it,
// then submits one task of priority 5; prints how many backlog tasks started between its
// submission and its start (one claim batch is the idle workers + tasks.prefetch = 132) and
// the time from its submission to its start.
//
// BENCH_STORAGE_URL=postgresql://... runs on PostgreSQL instead of a SQLite file in a temp dir.
#include <livebase/core/clock.hpp>
#include <livebase/store/store.hpp>
#include <livebase/tasks/queue.hpp>
#include <livebase/tasks/worker_pool.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdio>
#include <cstdlib>
#include <filesystem>
#include <mutex>
#include <string>
#include <thread>
#include <vector>

using namespace livebase;

namespace {

std::unique_ptr<store> open_bench_store(std::filesystem::path& dir) {
    result<std::unique_ptr<store>> s = problem::internal();
    if (const char* url = std::getenv("BENCH_STORAGE_URL"); url && *url) {
        s = open_store(url);
    } else {
        dir = std::filesystem::temp_directory_path() / ("schedule_bench." + std::to_string(::getpid()));
        std::filesystem::create_directories(dir);
        s = open_store("sqlite:" + (dir / "bench.db").string());
    }
    if (!s) {
        std::fprintf(stderr, "cannot open the store: %s\n", s.error().detail.c_str());
        std::exit(1);
    }
    auto db = std::move(s).value();
    if (auto m = db->migrate({&tasks_collection()}, false, false); !m) {
        std::fprintf(stderr, "cannot migrate: %s\n", m.error().detail.c_str());
        std::exit(1);
    }
    return db;
}

double percentile(std::vector<double> v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

struct finish_line {
    std::mutex mu;
    std::condition_variable cv;
    std::size_t done = 0;
    void add() {
        std::lock_guard lock(mu);
        ++done;
        cv.notify_all();
    }
    bool wait(std::size_t n, std::chrono::seconds limit) {
        std::unique_lock lock(mu);
        return cv.wait_for(lock, limit, [&] { return done >= n; });
    }
};

int delayed(std::size_t tasks, std::int64_t spread_ms, std::size_t workers) {
    std::filesystem::path dir;
    auto db = open_bench_store(dir);
    task_queue queue(*db);
    queue.set_limits({0, 0});
    worker_pool_options o;
    o.workers = workers;
    o.worker_id = "bench";
    worker_pool pool(queue, o);
    std::mutex mu;
    std::vector<double> late;
    late.reserve(tasks);
    finish_line fin;
    pool.register_handler("noop", [&](task_context& ctx) -> result<outcome> {
        const auto now = now_ms();
        const auto due = ctx.input().as_object().at("due").as_int64();
        {
            std::lock_guard lock(mu);
            late.push_back(static_cast<double>(now - due));
        }
        fin.add();
        return outcome::json_body(200, json::object{});
    });
    pool.start();

    // Storing 100,000 tasks takes a few seconds: the first comes due 2 s after the estimate.
    const std::int64_t first = now_ms() + 2000 + static_cast<std::int64_t>(tasks / 20);
    const auto stored_at = std::chrono::steady_clock::now();
    for (std::size_t i = 0; i < tasks;) {
        const std::size_t n = std::min<std::size_t>(1000, tasks - i);
        auto r = db->write_sync([&, i, n](write_txn& t) -> result<json::value> {
            const auto at = now_ms();
            for (std::size_t k = 0; k < n; ++k) {
                task_submission s;
                s.kind = "noop";
                s.not_before = first + static_cast<std::int64_t>((i + k) * static_cast<std::size_t>(spread_ms) / tasks);
                s.input = json::object{{"due", s.not_before}};
                auto rec = task_queue::submit_in(t, s, at, nullptr, static_cast<std::int64_t>(i + k));
                if (!rec) return std::move(rec).error();
            }
            return json::value(nullptr);
        });
        if (!r) {
            std::fprintf(stderr, "storing failed: %s\n", r.error().detail.c_str());
            return 1;
        }
        i += n;
    }
    const double store_s = std::chrono::duration<double>(std::chrono::steady_clock::now() - stored_at).count();
    if (now_ms() >= first) std::fprintf(stderr, "warning: storing took longer than planned; early tasks start late\n");
    queue.notify();
    const bool all = fin.wait(tasks, std::chrono::seconds(60 + spread_ms / 1000 * 2));
    pool.stop();
    std::lock_guard lock(mu);
    std::printf("delayed: %zu tasks over %.1f s (stored in %.2f s, %zu workers)%s\n", tasks,
                static_cast<double>(spread_ms) / 1000.0, store_s, workers, all ? "" : " (NOT ALL RAN)");
    std::printf("lateness ms: p50 %.1f  p90 %.1f  p99 %.1f  max %.1f  (early: %zu)\n", percentile(late, 0.5),
                percentile(late, 0.9), percentile(late, 0.99), percentile(late, 1.0),
                static_cast<std::size_t>(std::count_if(late.begin(), late.end(), [](double d) { return d < 0; })));
    db.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
    return all ? 0 : 1;
}

int priority(std::size_t backlog, std::size_t workers) {
    std::filesystem::path dir;
    auto db = open_bench_store(dir);
    task_queue queue(*db);
    queue.set_limits({0, 0});
    worker_pool_options o;
    o.workers = workers;
    o.worker_id = "bench";
    worker_pool pool(queue, o);
    std::atomic<std::size_t> started{0};
    std::atomic<std::size_t> urgent_at{0};
    std::atomic<std::int64_t> urgent_start_us{0};
    finish_line fin;
    pool.register_handler("work", [&](task_context& ctx) -> result<outcome> {
        const auto n = ++started;
        if (ctx.input().is_string()) {  // the urgent one
            urgent_at = n;
            urgent_start_us = std::chrono::duration_cast<std::chrono::microseconds>(
                                  std::chrono::steady_clock::now().time_since_epoch())
                                  .count();
        } else {
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        fin.add();
        return outcome::json_body(200, json::object{});
    });
    for (std::size_t i = 0; i < backlog;) {
        const std::size_t n = std::min<std::size_t>(1000, backlog - i);
        auto r = db->write_sync([&, i, n](write_txn& t) -> result<json::value> {
            const auto at = now_ms();
            for (std::size_t k = 0; k < n; ++k) {
                task_submission s;
                s.kind = "work";
                s.input = static_cast<std::int64_t>(i + k);
                auto rec = task_queue::submit_in(t, s, at, nullptr, static_cast<std::int64_t>(i + k));
                if (!rec) return std::move(rec).error();
            }
            return json::value(nullptr);
        });
        if (!r) {
            std::fprintf(stderr, "storing failed: %s\n", r.error().detail.c_str());
            return 1;
        }
        i += n;
    }
    pool.start();
    // Let the workers get into the backlog (a tenth of it) before the urgent task arrives.
    while (started.load() < backlog / 10) std::this_thread::sleep_for(std::chrono::milliseconds(1));
    task_submission s;
    s.kind = "work";
    s.input = "urgent";
    s.priority = 5;
    const std::size_t before = started.load();
    const auto submitted = std::chrono::steady_clock::now();
    auto r = queue.submit(s);
    if (!r) {
        std::fprintf(stderr, "urgent submission failed: %s\n", r.error().detail.c_str());
        return 1;
    }
    const bool ran = fin.wait(backlog / 10 + 1000, std::chrono::seconds(120)) && urgent_at.load() > 0;
    pool.stop();
    const double wait_ms = (static_cast<double>(urgent_start_us.load()) -
                            static_cast<double>(std::chrono::duration_cast<std::chrono::microseconds>(
                                                    submitted.time_since_epoch())
                                                    .count())) /
                           1000.0;
    std::printf("priority: backlog %zu, %zu workers: the priority 5 task started after %zu more backlog tasks "
                "started, %.1f ms after its submission%s\n",
                backlog, workers, ran ? urgent_at.load() - before - 1 : 0, ran ? wait_ms : 0.0,
                ran ? "" : " (DID NOT RUN)");
    db.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
    return ran ? 0 : 1;
}

// rate: a queue limited to `per_second` tasks per second, `workers` workers and a backlog that
// never runs dry; counts the tasks started in each second of `seconds` (after the first, which
// holds the bucket's burst) and prints the rate against the limit.
int rate_limited(std::int64_t per_second, std::int64_t seconds, std::size_t workers) {
    std::filesystem::path dir;
    auto db = open_bench_store(dir);
    if (auto m = db->migrate({&tasks_collection(), &task_queues_collection()}, false, false); !m) {
        std::fprintf(stderr, "cannot migrate: %s\n", m.error().detail.c_str());
        return 1;
    }
    task_queue queue(*db);
    worker_pool_options o;
    o.workers = workers;
    o.worker_id = "bench";
    o.queue = "limited";
    o.limits.name = "limited";
    o.limits.rate_limit = {static_cast<std::uint64_t>(per_second), std::chrono::milliseconds(1000)};
    worker_pool pool(queue, o);
    std::mutex mu;
    std::vector<std::chrono::steady_clock::time_point> starts;
    pool.register_handler("work", [&](task_context&) -> result<outcome> {
        std::lock_guard lock(mu);
        starts.push_back(std::chrono::steady_clock::now());
        return outcome::json_body(200, json::object{});
    });
    const auto backlog = static_cast<std::size_t>(per_second * (seconds + 2) + 100);
    for (std::size_t i = 0; i < backlog;) {
        const std::size_t n = std::min<std::size_t>(1000, backlog - i);
        auto r = db->write_sync([&, i, n](write_txn& t) -> result<json::value> {
            const auto at = now_ms();
            for (std::size_t k = 0; k < n; ++k) {
                task_submission s;
                s.kind = "work";
                auto rec = task_queue::submit_in(t, s, at, nullptr, static_cast<std::int64_t>(i + k));
                if (!rec) return std::move(rec).error();
            }
            return json::value(nullptr);
        });
        if (!r) {
            std::fprintf(stderr, "storing failed: %s\n", r.error().detail.c_str());
            return 1;
        }
        i += n;
    }
    const auto t0 = std::chrono::steady_clock::now();
    pool.start();
    std::this_thread::sleep_for(std::chrono::seconds(seconds + 1));
    pool.stop();
    std::vector<std::size_t> per(static_cast<std::size_t>(seconds + 1), 0);
    {
        std::lock_guard lock(mu);
        for (auto t : starts) {
            auto s = std::chrono::duration_cast<std::chrono::seconds>(t - t0).count();
            if (s >= 0 && s < static_cast<long>(per.size())) ++per[static_cast<std::size_t>(s)];
        }
    }
    std::size_t total = 0;
    std::size_t lo = SIZE_MAX, hi = 0;
    for (std::size_t i = 1; i < per.size(); ++i) {
        total += per[i];
        lo = std::min(lo, per[i]);
        hi = std::max(hi, per[i]);
    }
    const double measured = static_cast<double>(total) / static_cast<double>(seconds);
    std::printf("rate: limit %lld/s, %zu workers: %.1f tasks/s over %lld s (%.1f%% of the limit; seconds from %zu "
                "to %zu; first second %zu)\n",
                static_cast<long long>(per_second), workers, measured, static_cast<long long>(seconds),
                100.0 * measured / static_cast<double>(per_second), lo, hi, per[0]);
    db.reset();
    if (!dir.empty()) std::filesystem::remove_all(dir);
    return 0;
}

}  // namespace

int main(int argc, char** argv) {
    const std::string mode = argc > 1 ? argv[1] : "";
    auto arg = [&](int i, long long fallback) { return argc > i ? std::atoll(argv[i]) : fallback; };
    if (mode == "delayed")
        return delayed(static_cast<std::size_t>(arg(2, 100000)), arg(3, 20000), static_cast<std::size_t>(arg(4, 4)));
    if (mode == "priority") return priority(static_cast<std::size_t>(arg(2, 10000)), static_cast<std::size_t>(arg(3, 4)));
    if (mode == "rate") return rate_limited(arg(2, 50), arg(3, 10), static_cast<std::size_t>(arg(4, 4)));
    std::fprintf(stderr, "usage: schedule_bench delayed [tasks] [spread_ms] [workers] | priority [backlog] [workers] | "
                         "rate [per_second] [seconds] [workers]\n");
    return 2;
}
