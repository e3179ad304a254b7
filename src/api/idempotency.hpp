#pragma once
// Idempotency-Keys (http.md section 3): remembered responses, replays, and the holders of keys
// whose requests are in flight. Private to the api component; the api owns one.
#include <livebase/core/log.hpp>
#include <livebase/ops/operation.hpp>
#include <livebase/store/store.hpp>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <functional>
#include <map>
#include <mutex>
#include <string>

namespace livebase {

class idempotency_keys {
public:
    using done_fn = std::function<void(outcome)>;
    /// Runs an operation with its key claimed (the api's dispatch without the key step).
    using run_fn = std::function<void(operation, done_fn)>;

    idempotency_keys(store& db, logger& log);

    /// How long a key is remembered (default 24 h).
    void set_retention(std::chrono::milliseconds retention) noexcept { retention_ = retention; }
    /// This node's name in the holder of a pending key (default "<host>:<pid>").
    void set_node(std::string name);
    /// Renews the lease of the keys held by requests in flight here (at most every 10 s).
    void keep_alive();

    /// Handles `op` (which carries an Idempotency-Key) through `run`: a replay of the stored
    /// response, 422 for another request under the key, 409 with Retry-After while it is held
    /// by a live request, or `run` with the key claimed; the response is stored with its
    /// effect (op.finish) or after it.
    void handle(operation op, done_fn done, run_fn run);

private:
    /// "<node> <boot id>": the holder of this process's pending keys.
    std::string holder() const;
    std::string holder_locked() const;  ///< REQUIRES: mu_ held
    /// Counts a key row held by a request in flight here (renewed by keep_alive).
    void hold(const std::string& row_id, bool held);

    store& db_;
    logger& log_;
    std::chrono::milliseconds retention_{24 * 3600 * 1000};
    std::atomic<std::size_t> inserts_{0};
    mutable std::mutex mu_;
    std::string node_;
    std::string boot_;
    std::map<std::string, int> held_;
    std::int64_t renewed_ = 0;
};

}  // namespace livebase
