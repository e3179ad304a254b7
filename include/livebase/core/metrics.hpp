#pragma once
/// Process metrics in Prometheus text format. Policy only, no I/O. Thread-safe.
#include <array>
#include <atomic>
#include <chrono>
#include <cstdint>
#include <map>
#include <mutex>
#include <string>

namespace livebase {

class metrics {
public:
    /// Records one finished HTTP request. `route` is a template ("/api/{c}/{id}"), never a raw
    /// path, so the label set stays bounded.
    void observe_request(std::string_view route, std::string_view method, int status,
                         std::chrono::microseconds latency);
    void connection_opened() noexcept { open_connections_.fetch_add(1); }
    void connection_closed() noexcept { open_connections_.fetch_sub(1); }
    std::int64_t open_connections() const noexcept { return open_connections_.load(); }

    /// A gauge set by other components (e.g. "livebase_last_seq").
    void set_gauge(const std::string& name, double value);

    /// The exposition text (text/plain; version=0.0.4).
    std::string render() const;

    static constexpr std::array<double, 12> k_buckets{0.0005, 0.001, 0.0025, 0.005, 0.01, 0.025,
                                                      0.05, 0.1, 0.25, 0.5, 1.0, 5.0};

private:
    struct series {
        std::uint64_t count = 0;
    };
    struct histogram {
        std::array<std::uint64_t, k_buckets.size()> buckets{};
        std::uint64_t count = 0;
        double sum = 0;
    };
    mutable std::mutex mu_;
    std::map<std::tuple<std::string, std::string, int>, series> requests_;
    std::map<std::string, histogram> latency_;  // by route
    std::map<std::string, double> gauges_;
    std::atomic<std::int64_t> open_connections_{0};
};

}  // namespace livebase
