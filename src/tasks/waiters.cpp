#include <livebase/tasks/waiters.hpp>

#include <vector>

namespace livebase {

task_waiters::task_waiters() : thread_([this] { run(); }) {}

task_waiters::~task_waiters() { stop(); }

bool task_waiters::add(const std::string& task_id, entry& e) {
    std::lock_guard<std::mutex> lock(mu_);
    if (stopping_ || waiting_.size() >= k_max_waiters) return false;
    waiting_.emplace(task_id, std::move(e));
    cv_.notify_one();
    return true;
}

void task_waiters::wait(const std::string& task_id, std::chrono::steady_clock::time_point deadline,
                        std::function<void()> cb) {
    entry e{deadline, std::move(cb), false};
    if (!add(task_id, e)) e.cb();  // answered now, with the task as it is
}

bool task_waiters::watch(const std::string& task_id, std::chrono::steady_clock::time_point deadline,
                         std::function<void()> cb) {
    entry e{deadline, std::move(cb), true};
    return add(task_id, e);
}

void task_waiters::notify(const std::string& task_id, bool finished) {
    std::vector<std::function<void()>> ready;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto [first, last] = waiting_.equal_range(task_id);
        for (auto it = first; it != last;) {
            if (finished || it->second.any_change) {
                ready.push_back(std::move(it->second.cb));
                it = waiting_.erase(it);
            } else {
                ++it;
            }
        }
    }
    for (auto& cb : ready) cb();
}

void task_waiters::stop() {
    std::vector<std::function<void()>> ready;
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (stopping_ && !thread_.joinable()) return;
        stopping_ = true;
        for (auto& [_, e] : waiting_) ready.push_back(std::move(e.cb));
        waiting_.clear();
        cv_.notify_all();
    }
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
    for (auto& cb : ready) cb();
}

// Only deadlines need this thread: notify() runs callbacks on the notifier's thread.
void task_waiters::run() {
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
        if (waiting_.empty()) {
            cv_.wait(lock);
            continue;
        }
        auto wake = std::chrono::steady_clock::time_point::max();
        for (const auto& [_, e] : waiting_) wake = std::min(wake, e.deadline);
        cv_.wait_until(lock, wake);
        if (stopping_) break;

        auto now = std::chrono::steady_clock::now();
        std::vector<std::function<void()>> ready;
        for (auto it = waiting_.begin(); it != waiting_.end();) {
            if (it->second.deadline <= now) {
                ready.push_back(std::move(it->second.cb));
                it = waiting_.erase(it);
            } else {
                ++it;
            }
        }
        lock.unlock();
        for (auto& cb : ready) cb();
        lock.lock();
    }
}

}  // namespace livebase
