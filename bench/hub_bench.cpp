// Realtime hub fan-out (Google Benchmark): batches of committed changes delivered to 1,000
// capturing sinks, each with one subscription to the whole collection. One iteration commits
// `changes` inserts in one transaction and waits until every sink holds every event; the time
// therefore includes the commit, the change-log read, matching, encoding and delivery.
// items_per_second is events delivered (changes x sinks) per second.
//
//   hub_bench --benchmark_min_time=2
#include <livebase/core/log.hpp>
#include <livebase/realtime/hub.hpp>
#include <livebase/schema/validate.hpp>
#include <livebase/store/store.hpp>

#include <benchmark/benchmark.h>

#include <atomic>
#include <condition_variable>
#include <filesystem>
#include <future>
#include <mutex>
#include <random>

namespace livebase {
namespace {

// Keeps what it is given (as a door's send queue would) until the benchmark drops it between
// iterations, so releasing frames is not charged to the hub thread.
// Counts delivered frames; the benchmark thread sleeps until a target is reached (a spinning
// waiter would take a core from the hub on a small machine).
struct counter {
    std::atomic<std::size_t> total{0};
    std::atomic<std::size_t> target{0};
    std::mutex mu;
    std::condition_variable cv;

    void add(std::size_t n) {
        if (total.fetch_add(n) + n >= target.load()) {
            std::lock_guard<std::mutex> lock(mu);
            cv.notify_all();
        }
    }
    void wait_for(std::size_t t) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return total.load() >= t; });
    }
};

class capturing_sink final : public event_sink {
public:
    explicit capturing_sink(counter& c) : counter_(c) {}
    void deliver(std::vector<std::shared_ptr<const std::string>> frames) override {
        const auto n = frames.size();
        {
            std::lock_guard<std::mutex> lock(mu_);
            kept_.push_back(std::move(frames));
        }
        counter_.add(n);
    }
    void drop() {
        std::lock_guard<std::mutex> lock(mu_);
        kept_.clear();
    }

private:
    counter& counter_;
    std::mutex mu_;
    std::vector<std::vector<std::shared_ptr<const std::string>>> kept_;
};

collection_def cars() {
    collection_def c;
    c.name = "cars";
    field_def brand;
    brand.name = "brand";
    c.fields.push_back(brand);
    field_def model;
    model.name = "model";
    model.type = field_type::integer;
    c.fields.push_back(model);
    finalize(c);
    return c;
}

struct rig {
    explicit rig(std::size_t sinks, bool filtered) {
        dir = std::filesystem::temp_directory_path() / ("livebase-hub-bench-" + std::to_string(std::random_device{}()));
        sqlite_options o;
        o.path = (dir / "bench.db").string();
        auto s = open_sqlite_store(o);
        if (!s) throw std::runtime_error(s.error().detail);
        db = std::move(s).value();
        if (auto m = db->migrate({&def}, false, false); !m) throw std::runtime_error(m.error().detail);

        hub_hooks h;
        h.find_collection = [this](std::string_view n) { return n == "cars" ? &def : nullptr; };
        h.present = [](const collection_def& c, const json::object& r) { return present_record(c, r); };
        h.may_see = [](const principal&, const collection_def&, const json::object&) { return true; };
        hb = std::make_unique<hub>(*db, std::move(h), hub_options{}, log);
        hb->start();
        for (std::size_t i = 0; i < sinks; ++i) {
            all.push_back(std::make_shared<capturing_sink>(frames));
            auto id = hb->attach(all.back(), principal{"u" + std::to_string(i), false}, event_encoding::websocket);
            subscribe_request req;
            req.collection = "cars";
            if (filtered) req.filter = {{"brand", "Ford"}, {"model__gte", 2000}};
            std::promise<bool> ok;
            hb->subscribe(id, req, [&](result<subscribed> r) { ok.set_value(r.has_value()); });
            if (!ok.get_future().get()) throw std::runtime_error("subscribe failed");
        }
    }
    ~rig() {
        hb->stop();
        hb.reset();
        db.reset();
        std::error_code ec;
        std::filesystem::remove_all(dir, ec);
    }

    void commit(std::size_t changes) {
        auto r = db->write_sync([&](write_txn& t) -> result<json::value> {
            for (std::size_t i = 0; i < changes; ++i) {
                auto id = "R" + std::to_string(next_id++);
                json::object rec{{"id", id},         {"created", "2026-01-01T00:00:00.000Z"},
                                 {"updated", "2026-01-01T00:00:00.000Z"}, {"version", 1},
                                 {"brand", "Ford"},  {"model", 2014}};
                if (auto w = t.insert(def, rec); !w) return std::move(w).error();
            }
            return json::value(nullptr);
        });
        if (!r) throw std::runtime_error(r.error().detail);
    }

    std::filesystem::path dir;
    logger log{stderr, log_format::text, log_level::warn};
    collection_def def = cars();
    std::unique_ptr<store> db;
    std::unique_ptr<hub> hb;
    counter frames;
    std::vector<std::shared_ptr<capturing_sink>> all;
    std::size_t next_id = 0;
};

void fan_out(benchmark::State& state) {
    const auto sinks = static_cast<std::size_t>(state.range(0));
    const auto changes = static_cast<std::size_t>(state.range(1));
    const bool filtered = state.range(2) != 0;
    rig r(sinks, filtered);
    std::size_t events = 0;
    for (auto _ : state) {
        const std::size_t target = r.frames.total.load() + sinks * changes;
        r.frames.target.store(target);
        r.commit(changes);
        r.frames.wait_for(target);
        events += sinks * changes;
        state.PauseTiming();
        for (auto& s : r.all) s->drop();
        state.ResumeTiming();
    }
    state.SetItemsProcessed(static_cast<std::int64_t>(events));
    state.counters["sinks"] = static_cast<double>(sinks);
}

// sinks, changes per commit, filtered subscriptions (0/1). 0 sinks: the commit alone.
BENCHMARK(fan_out)
    ->Args({0, 1000, 0})
    ->Args({1000, 1000, 0})
    ->Args({1000, 1000, 1})
    ->Unit(benchmark::kMillisecond)
    ->UseRealTime();

}  // namespace
}  // namespace livebase

BENCHMARK_MAIN();
