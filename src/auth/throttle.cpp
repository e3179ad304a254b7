// Token buckets for throttle.anonymous / throttle.user and login attempts.
#include <livebase/auth/auth.hpp>

#include <algorithm>
#include <array>
#include <cmath>
#include <mutex>
#include <unordered_map>
#include <vector>

namespace livebase {

namespace {

using clock_type = std::chrono::steady_clock;
using ms_double = std::chrono::duration<double, std::milli>;

// Sharded so that concurrent requests of different callers rarely wait on one mutex.
constexpr std::size_t k_shards = 16;

struct bucket {
    double tokens = 0;
    clock_type::time_point last;  ///< when `tokens` was last brought up to date
    clock_type::time_point used;  ///< the last take(): sweeps refill `last`, not this
    // The rate the bucket was last used with, so a sweep can tell whether it is full.
    std::uint64_t count = 0;
    std::chrono::milliseconds per{1000};
};

void refill(bucket& b, clock_type::time_point now) {
    if (now <= b.last) return;  // time_points from callers may be slightly out of order
    double elapsed = std::chrono::duration_cast<ms_double>(now - b.last).count();
    double per = std::max<double>(1.0, static_cast<double>(b.per.count()));
    b.tokens = std::min(static_cast<double>(b.count), b.tokens + elapsed * static_cast<double>(b.count) / per);
    b.last = now;
}

struct shard {
    std::mutex mu;
    std::unordered_map<std::string, bucket> buckets;
};

}  // namespace

struct throttle::impl {
    explicit impl(std::size_t max_keys) : per_shard(std::max<std::size_t>(1, max_keys / k_shards)) {}

    /// Makes room for one more bucket in `s` (its mutex held): full buckets first (dropping one
    /// loses nothing, a fresh bucket starts full), then the least recently refilled. Frees at
    /// least an eighth of the shard at once so that the O(n) sweep is amortized.
    void make_room(shard& s, clock_type::time_point now) {
        for (auto it = s.buckets.begin(); it != s.buckets.end();) {
            refill(it->second, now);
            if (it->second.tokens >= static_cast<double>(it->second.count))
                it = s.buckets.erase(it);
            else
                ++it;
        }
        std::size_t target = per_shard - std::max<std::size_t>(1, per_shard / 8);
        if (s.buckets.size() <= target) return;
        std::vector<std::pair<clock_type::time_point, const std::string*>> ages;
        ages.reserve(s.buckets.size());
        for (const auto& [key, b] : s.buckets) ages.emplace_back(b.used, &key);
        std::size_t drop = s.buckets.size() - target;
        std::nth_element(ages.begin(), ages.begin() + static_cast<std::ptrdiff_t>(drop - 1), ages.end(),
                         [](const auto& a, const auto& b) { return a.first < b.first; });
        std::vector<std::string> victims;
        victims.reserve(drop);
        for (std::size_t i = 0; i < drop; ++i) victims.push_back(*ages[i].second);
        for (const auto& k : victims) s.buckets.erase(k);
    }

    std::size_t per_shard;
    std::array<shard, k_shards> shards;
};

throttle::throttle(std::size_t max_keys) : impl_(std::make_unique<impl>(max_keys)) {}
throttle::~throttle() = default;

std::optional<std::chrono::milliseconds> throttle::take(std::string_view key, const rate& r,
                                                        clock_type::time_point now) {
    if (r.count == 0) return std::nullopt;  // unlimited
    auto& s = impl_->shards[std::hash<std::string_view>{}(key) % k_shards];
    std::lock_guard lock(s.mu);
    auto it = s.buckets.find(std::string(key));
    if (it == s.buckets.end()) {
        if (s.buckets.size() >= impl_->per_shard) impl_->make_room(s, now);
        bucket fresh;
        fresh.tokens = static_cast<double>(r.count);
        fresh.last = now;
        it = s.buckets.emplace(std::string(key), fresh).first;
    }
    auto& b = it->second;
    b.count = r.count;
    b.per = r.per;
    b.used = std::max(b.used, now);
    refill(b, now);
    if (b.tokens >= 1.0) {
        b.tokens -= 1.0;
        return std::nullopt;
    }
    // Time until the bucket holds one whole token, rounded up to whole seconds (Retry-After).
    double per = std::max<double>(1.0, static_cast<double>(r.per.count()));
    double wait_ms = (1.0 - b.tokens) * per / static_cast<double>(r.count);
    auto seconds = std::max<std::int64_t>(1, static_cast<std::int64_t>(std::ceil(wait_ms / 1000.0)));
    return std::chrono::milliseconds(seconds * 1000);
}

std::size_t throttle::size() const {
    std::size_t n = 0;
    for (auto& s : impl_->shards) {
        std::lock_guard lock(s.mu);
        n += s.buckets.size();
    }
    return n;
}

std::int64_t retry_after_seconds(std::chrono::milliseconds wait) noexcept {
    return std::max<std::int64_t>(1, (wait.count() + 999) / 1000);
}

std::string throttle_key(const principal& who, std::string_view ip) {
    if (who.authenticated()) return "u:" + who.user_id;
    return "ip:" + std::string(ip);
}

}  // namespace livebase
