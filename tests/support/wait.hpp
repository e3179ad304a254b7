#pragma once
/// Bounded waits shared by every suite. A bound is there for hangs only: a passing test never
/// waits it out, so it is generous (Argon2id and PostgreSQL under sanitizers are slow). Waiting
/// polls at a short interval inside the bound; no test sleeps to synchronize.
#include <livebase/core/problem.hpp>
#include <livebase/core/result.hpp>

#include <chrono>
#include <functional>
#include <future>
#include <memory>
#include <thread>

namespace livebase::test {

using steady = std::chrono::steady_clock;

/// The bound of a wait for something that must happen.
inline constexpr std::chrono::milliseconds k_wait{60000};
/// The interval at which a bounded wait polls.
inline constexpr std::chrono::milliseconds k_poll{5};

/// Polls `pred` every k_poll until it holds or `limit` passed; returns its last value.
inline bool eventually(const std::function<bool()>& pred, std::chrono::milliseconds limit = std::chrono::seconds(10)) {
    const auto deadline = std::chrono::steady_clock::now() + limit;
    while (std::chrono::steady_clock::now() < deadline) {
        if (pred()) return true;
        std::this_thread::sleep_for(k_poll);
    }
    return pred();
}

/// Runs an asynchronous call (`start(callback)`) and waits, at most k_wait, for its result;
/// a problem "timed out" when none came.
template <class T, class F>
result<T> await(F start) {
    auto p = std::make_shared<std::promise<result<T>>>();
    auto f = p->get_future();
    start([p](result<T> r) { p->set_value(std::move(r)); });
    if (f.wait_for(k_wait) != std::future_status::ready) return problem::internal("timed out");
    return f.get();
}

}  // namespace livebase::test
