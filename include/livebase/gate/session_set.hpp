#pragma once
/// The open sessions of a door (HTTP connections, WebSocket sockets), for drain and close_all:
/// sessions add themselves when they start and remove themselves when they end; a snapshot
/// holds each live one. Thread-safe.
#include <memory>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace livebase {

template <class Session>
class session_set {
public:
    void add(const std::shared_ptr<Session>& s) {
        std::lock_guard lock(mu_);
        sessions_.emplace(s.get(), s);
    }
    void remove(const Session* s) noexcept {
        std::lock_guard lock(mu_);
        sessions_.erase(s);
    }
    /// The sessions still alive now.
    std::vector<std::shared_ptr<Session>> snapshot() const {
        std::vector<std::shared_ptr<Session>> out;
        std::lock_guard lock(mu_);
        out.reserve(sessions_.size());
        for (const auto& [p, w] : sessions_)
            if (auto s = w.lock()) out.push_back(std::move(s));
        return out;
    }

private:
    mutable std::mutex mu_;
    std::unordered_map<const Session*, std::weak_ptr<Session>> sessions_;
};

}  // namespace livebase
