#pragma once
// The api's pool of threads for blocking work (C++ action handlers, password hashing, task
// cancels), away from I/O and store threads. Private to the api component.
#include <livebase/api/api.hpp>

#include <condition_variable>
#include <deque>
#include <functional>
#include <mutex>
#include <thread>
#include <vector>

namespace livebase {

// Runs C++ action handlers, which may block on the store, away from I/O and store threads.
// Bounded: a full queue refuses work (the caller answers 503).
class api::handler_pool {
public:
    static constexpr std::size_t k_threads = 2;
    static constexpr std::size_t k_max_queued = 10000;

    handler_pool() {
        for (std::size_t i = 0; i < k_threads; ++i) threads_.emplace_back([this] { run(); });
    }
    ~handler_pool() {
        {
            std::lock_guard<std::mutex> lock(mu_);
            stopping_ = true;
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
    }
    bool post(std::function<void()> job) {
        {
            std::lock_guard<std::mutex> lock(mu_);
            if (stopping_ || jobs_.size() >= k_max_queued) return false;
            jobs_.push_back(std::move(job));
        }
        cv_.notify_one();
        return true;
    }

private:
    void run() {
        for (;;) {
            std::function<void()> job;
            {
                std::unique_lock<std::mutex> lock(mu_);
                cv_.wait(lock, [&] { return stopping_ || !jobs_.empty(); });
                if (jobs_.empty()) return;  // stopping and drained
                job = std::move(jobs_.front());
                jobs_.pop_front();
            }
            job();
        }
    }
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<std::function<void()>> jobs_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

}  // namespace livebase
