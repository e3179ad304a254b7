#include <livebase/tasks/waiters.hpp>

#include <set>
#include <vector>

namespace livebase {

task_waiters::task_waiters(std::function<bool(const std::string&)> is_finished,
                           std::chrono::milliseconds poll)
    : is_finished_(std::move(is_finished)), poll_(poll), thread_([this] { run(); }) {}

task_waiters::~task_waiters() { stop(); }

void task_waiters::wait(const std::string& task_id, std::chrono::steady_clock::time_point deadline,
                        std::function<void()> cb) {
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (!stopping_ && waiting_.size() < k_max_waiters) {
            waiting_.emplace(task_id, entry{deadline, std::move(cb)});
            cv_.notify_one();
            return;
        }
    }
    cb();
}

void task_waiters::notify(const std::string& task_id) {
    std::vector<std::function<void()>> ready;
    {
        std::lock_guard<std::mutex> lock(mu_);
        auto [first, last] = waiting_.equal_range(task_id);
        for (auto it = first; it != last; ++it) ready.push_back(std::move(it->second.cb));
        waiting_.erase(first, last);
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

void task_waiters::run() {
    auto next_poll = std::chrono::steady_clock::now() + poll_;
    std::unique_lock<std::mutex> lock(mu_);
    while (!stopping_) {
        auto wake = next_poll;
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
        std::set<std::string> to_check;
        if (is_finished_ && now >= next_poll) {
            for (const auto& [id, _] : waiting_) to_check.insert(id);
            next_poll = now + poll_;
        }
        lock.unlock();
        for (auto& cb : ready) cb();
        for (const auto& id : to_check)
            if (is_finished_(id)) notify(id);
        lock.lock();
    }
}

}  // namespace livebase
