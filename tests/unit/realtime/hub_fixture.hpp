#pragma once
// Shared by the hub tests: a real SQLite store in a temporary directory, the cars collection,
// a hub wired to them, and a sink that captures what the hub delivers.
#include "unit/store/store_test_support.hpp"

#include <livebase/core/log.hpp>
#include <livebase/realtime/hub.hpp>
#include <livebase/realtime/live_query.hpp>
#include <livebase/schema/validate.hpp>

#include <gtest/gtest.h>

#include <chrono>
#include <condition_variable>
#include <functional>
#include <future>
#include <mutex>
#include <thread>

namespace livebase::test {

/// Generous: a loaded 2-core machine under sanitizers must not trip it; only a hang does.
inline constexpr auto k_deadline = std::chrono::seconds(60);

/// Keeps every frame delivered to it. Thread-safe.
class capturing_sink final : public event_sink {
public:
    void deliver(std::vector<std::shared_ptr<const std::string>> frames) override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            ++deliveries_;
            sizes_.push_back(frames.size());
            for (auto& f : frames) frames_.push_back(std::move(f));
        }
        cv_.notify_all();
    }
    void revoked() override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            ++revocations_;
        }
        cv_.notify_all();
    }
    /// Open (the default): `ready` at once. Gated: kept until release(), like a socket whose
    /// queue is full until its reader drains it.
    void when_ready(std::function<void()> ready) override {
        std::unique_lock<std::mutex> lock(mu_);
        ++ready_asks_;
        if (!gated_) {
            lock.unlock();
            cv_.notify_all();
            return ready();
        }
        ready_ = std::move(ready);
        lock.unlock();
        cv_.notify_all();
    }
    void resync() override {
        {
            std::lock_guard<std::mutex> lock(mu_);
            ++resyncs_;
        }
        cv_.notify_all();
    }

    /// Holds when_ready() notices from now on (gate(true)) or not.
    void gate(bool on) {
        std::lock_guard<std::mutex> lock(mu_);
        gated_ = on;
    }
    /// Gives the held when_ready() notice, if any; true if there was one.
    bool release() {
        std::function<void()> ready;
        {
            std::lock_guard<std::mutex> lock(mu_);
            ready.swap(ready_);
        }
        if (!ready) return false;
        ready();
        return true;
    }
    /// Waits (bounded) until a when_ready() notice is held; false on timeout.
    bool wait_held(std::chrono::steady_clock::duration limit = k_deadline) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, limit, [&] { return static_cast<bool>(ready_); });
    }
    bool held() const {
        std::lock_guard<std::mutex> lock(mu_);
        return static_cast<bool>(ready_);
    }
    /// Waits (bounded) until the hub called resync(); false on timeout.
    bool wait_resync(std::chrono::steady_clock::duration limit = k_deadline) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, limit, [&] { return resyncs_ > 0; });
    }
    std::size_t resyncs() const {
        std::lock_guard<std::mutex> lock(mu_);
        return resyncs_;
    }
    /// The sizes of the deliveries so far, in order.
    std::vector<std::size_t> delivery_sizes() const {
        std::lock_guard<std::mutex> lock(mu_);
        return sizes_;
    }

    /// How many times the hub called revoked().
    std::size_t revocations() const {
        std::lock_guard<std::mutex> lock(mu_);
        return revocations_;
    }

    std::vector<std::shared_ptr<const std::string>> frames() const {
        std::lock_guard<std::mutex> lock(mu_);
        return frames_;
    }
    std::size_t size() const {
        std::lock_guard<std::mutex> lock(mu_);
        return frames_.size();
    }
    std::size_t deliveries() const {
        std::lock_guard<std::mutex> lock(mu_);
        return deliveries_;
    }
    /// Waits (bounded) until at least `n` frames arrived; false on timeout.
    bool wait_for(std::size_t n, std::chrono::steady_clock::duration limit = k_deadline) {
        std::unique_lock<std::mutex> lock(mu_);
        return cv_.wait_for(lock, limit, [&] { return frames_.size() >= n; });
    }

private:
    mutable std::mutex mu_;
    std::condition_variable cv_;
    std::vector<std::shared_ptr<const std::string>> frames_;
    std::size_t deliveries_ = 0;
    std::size_t revocations_ = 0;
    std::vector<std::size_t> sizes_;
    bool gated_ = false;
    std::function<void()> ready_;
    std::size_t ready_asks_ = 0;
    std::size_t resyncs_ = 0;
};

/// A WebSocket event frame, decoded.
struct ws_event {
    std::string stream, action, pk, subscription, observer;
    std::int64_t seq = 0;
    json::value data;
};

inline ws_event decode(const std::string& frame) {
    ws_event e;
    auto v = parse_json(frame);
    EXPECT_TRUE(v && v->is_object()) << frame;
    if (!v || !v->is_object()) return e;
    const auto& o = v->get_object();
    e.stream = std::string(get_string(o, "stream"));
    const auto& p = o.at("payload").get_object();
    e.action = std::string(get_string(p, "action"));
    e.pk = std::string(get_string(p, "pk"));
    e.subscription = std::string(get_string(p, "subscription"));
    e.observer = std::string(get_string(p, "observer"));
    e.seq = get_int(p, "seq").value_or(-1);
    if (auto it = p.find("data"); it != p.end()) e.data = it->value();
    return e;
}

inline window_diff diff_from_json(const json::object& d) {
    window_diff out;
    auto msg = get_string(d, "msg");
    out.msg = msg == "removed" ? window_diff::kind::removed
              : msg == "added" ? window_diff::kind::added
              : msg == "moved" ? window_diff::kind::moved
                               : window_diff::kind::changed;
    out.order = static_cast<std::size_t>(get_int(d, "order").value_or(-1));
    out.from = static_cast<std::size_t>(get_int(d, "from").value_or(0));
    out.pk = std::string(get_string(d, "pk"));
    if (auto it = d.find("item"); it != d.end() && it->value().is_object()) out.item = it->value().get_object();
    return out;
}

inline window window_from_items(const json::array& items) {
    window w;
    for (const auto& v : items) {
        const auto& o = v.get_object();
        w.push_back(window_row{std::string(get_string(o, "id")), o});
    }
    return w;
}

/// The stored form of a car: managed fields plus `fields`.
inline json::object car(const std::string& id, json::object fields = {}, std::int64_t version = 1,
                        const std::string& owner = "u1") {
    json::object rec{{"id", id},
                     {"created", "2026-01-01T00:00:00.000Z"},
                     {"updated", "2026-01-01T00:00:00.000Z"},
                     {"version", version},
                     {"owner", owner}};
    for (auto& kv : fields) rec[kv.key()] = kv.value();
    return rec;
}

/// Waits for a hub callback's answer, failing instead of hanging.
template <class T>
result<T> wait_answer(std::future<result<T>>& f) {
    if (f.wait_for(k_deadline) != std::future_status::ready) {
        ADD_FAILURE() << "no answer from the hub";
        return problem::internal("timeout");
    }
    return f.get();
}

class hub_test_base : public ::testing::Test {
protected:
    void SetUp() override {
        db_ = open_or_die(dir_.file("data/hub.db"));
        ASSERT_TRUE(db_);
        migrate_or_die(*db_, cars_);
    }
    void TearDown() override {
        if (hub_) hub_->stop();
        hub_.reset();
        db_.reset();
    }

    hub_hooks hooks() {
        hub_hooks h;
        h.find_collection = [this](std::string_view name) -> const collection_def* {
            return name == "cars" ? &cars_ : nullptr;
        };
        h.present = [](const collection_def& c, const json::object& stored) { return present_record(c, stored); };
        if (may_see_)
            h.may_see = [this](const principal& who, const collection_def& c, const json::object& rec) {
                return may_see_(who, c, rec);
            };
        if (narrow_)
            h.narrow = [this](const principal& who, const collection_def& c, query& q) { return narrow_(who, c, q); };
        if (on_change_) h.on_change = [this](const change& ch) { return on_change_(ch); };
        return h;
    }

    void start(hub_options o = {}) {
        hub_ = std::make_unique<hub>(*db_, hooks(), o, log_);
        hub_->start();
    }

    std::string attach(const std::shared_ptr<capturing_sink>& sink, principal who = {},
                       event_encoding enc = event_encoding::websocket) {
        return hub_->attach(sink, std::move(who), enc);
    }

    result<subscribed> subscribe(const std::string& client, subscribe_request req) {
        if (req.collection.empty()) req.collection = "cars";
        std::promise<result<subscribed>> p;
        auto f = p.get_future();
        hub_->subscribe(client, std::move(req), [&p](result<subscribed> r) { p.set_value(std::move(r)); });
        return wait_answer(f);
    }
    result<void> unsubscribe(const std::string& client, const std::string& id) {
        return end(&hub::unsubscribe, client, id);
    }
    result<observed> observe(const std::string& client, json::object query, std::string collection = "cars") {
        std::promise<result<observed>> p;
        auto f = p.get_future();
        hub_->observe(client, observe_request{std::move(collection), std::move(query)},
                      [&p](result<observed> r) { p.set_value(std::move(r)); });
        return wait_answer(f);
    }
    result<void> unobserve(const std::string& client, const std::string& id) {
        return end(&hub::unobserve, client, id);
    }
    /// Calls hub_->*`stop`(client, id, callback) and waits for its answer.
    template <class Stop>
    result<void> end(Stop stop, const std::string& client, const std::string& id) {
        std::promise<result<void>> p;
        auto f = p.get_future();
        ((*hub_).*stop)(client, id, [&p](result<void> r) { p.set_value(std::move(r)); });
        return wait_answer(f);
    }

    /// Runs one write and returns the seq it committed (the store's last seq after it).
    std::int64_t write(std::function<result<void>(write_txn&)> fn) {
        auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
            if (auto w = fn(t); !w) return std::move(w).error();
            return json::value(nullptr);
        });
        EXPECT_TRUE(r.has_value()) << (r ? "" : r.error().detail);
        return db_->last_seq();
    }
    std::int64_t create(const json::object& rec) {
        return write([&](write_txn& t) { return t.insert(cars_, rec); });
    }
    std::int64_t update(const json::object& rec) {
        return write([&](write_txn& t) { return t.update(cars_, rec); });
    }
    std::int64_t remove(const json::object& rec) {
        return write([&](write_txn& t) { return t.remove(cars_, rec); });
    }

    /// Waits (bounded) until the hub handed every event up to `seq` to the sinks.
    bool wait_seq(std::int64_t seq) {
        auto until = std::chrono::steady_clock::now() + k_deadline;
        while (hub_->seq() < seq) {
            if (std::chrono::steady_clock::now() > until) {
                ADD_FAILURE() << "hub stuck at seq " << hub_->seq() << ", waiting for " << seq;
                return false;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(1));
        }
        return true;
    }

    temp_dir dir_;
    collection_def cars_ = typed_cars();
    logger log_{stderr, log_format::text, log_level::warn};
    std::unique_ptr<store> db_;
    std::function<bool(const principal&, const collection_def&, const json::object&)> may_see_;
    std::function<bool(const principal&, const collection_def&, query&)> narrow_;  ///< unset: narrow_query
    std::function<std::optional<revocation>(const change&)> on_change_;
    std::unique_ptr<hub> hub_;
};

}  // namespace livebase::test
