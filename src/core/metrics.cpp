#include <algorithm>
#include <charconv>
#include <cmath>
#include <livebase/core/metrics.hpp>
#include <tuple>
#include <vector>

namespace livebase {

namespace {

/// Prometheus sample values: shortest round-trip form; +Inf/-Inf/NaN spelled as the format wants.
std::string format_value(double v) {
    if (std::isnan(v)) return "NaN";
    if (std::isinf(v)) return v > 0 ? "+Inf" : "-Inf";
    // Plain decimals ("0.0005", not "5e-04") where that stays short; exponent form beyond.
    const double a = std::fabs(v);
    const bool fixed = a == 0 || (a >= 1e-6 && a < 1e15);
    char buf[128];
    auto r = fixed ? std::to_chars(buf, buf + sizeof buf, v, std::chars_format::fixed)
                   : std::to_chars(buf, buf + sizeof buf, v);
    return std::string(buf, r.ptr);
}

/// Label values escape backslash, double quote and newline (exposition format 0.0.4).
std::string escape_label(std::string_view s) {
    std::string out;
    out.reserve(s.size());
    for (char c : s) {
        switch (c) {
            case '\\':
                out += "\\\\";
                break;
            case '"':
                out += "\\\"";
                break;
            case '\n':
                out += "\\n";
                break;
            default:
                out += c;
        }
    }
    return out;
}

/// "name{a=\"b\"}" -> "name": gauges set by other components may carry a label set.
std::string_view base_name(std::string_view series) {
    auto brace = series.find('{');
    return brace == std::string_view::npos ? series : series.substr(0, brace);
}

/// The HELP text of every gauge family livebase sets (docs/operations.md lists them).
std::string_view gauge_help(std::string_view family) {
    static constexpr std::pair<std::string_view, std::string_view> k_help[] = {
        {"livebase_tasks", "Tasks by state (pending is the queue depth), refreshed every 2 s."},
        {"livebase_queue_pending", "Tasks waiting, by queue (its depth), refreshed every 2 s."},
        {"livebase_queue_running", "Tasks running, by queue, on every node, refreshed every 2 s."},
        {"livebase_queue_started", "Tasks this process started, by queue, since start (its rate: rate() of it)."},
        {"livebase_change_log_seq", "The last seq of the change log, refreshed every 2 s."},
        {"livebase_realtime_clients", "WebSocket and SSE clients attached to the realtime hub."},
        {"livebase_realtime_lag", "Changes committed but not yet fanned out to clients."},
        {"livebase_realtime_replays", "Resumes whose replay is still running (paged, not yet live)."},
        {"livebase_realtime_replayed_events", "Events handed to clients by resume replays since start."},
        {"livebase_ws_sockets", "Open WebSockets."},
        {"livebase_ws_slow_consumer_closes", "WebSockets closed with 4008 (slow consumer) since start."},
    };
    for (const auto& [name, help] : k_help)
        if (name == family) return help;
    return {};
}

}  // namespace

void metrics::observe_request(std::string_view route, std::string_view method, int status,
                              std::chrono::microseconds latency) {
    const double seconds = static_cast<double>(latency.count()) / 1e6;
    std::lock_guard lock(mu_);
    ++requests_[std::make_tuple(std::string(route), std::string(method), status)].count;

    auto it = latency_.find(std::string(route));
    if (it == latency_.end()) it = latency_.emplace(std::string(route), histogram{}).first;
    auto& h = it->second;
    // Buckets are stored non-cumulatively (one increment per observation) and summed on render.
    auto b = std::lower_bound(k_buckets.begin(), k_buckets.end(), seconds);
    if (b != k_buckets.end()) ++h.buckets[static_cast<std::size_t>(b - k_buckets.begin())];
    ++h.count;
    h.sum += seconds;
}

void metrics::set_gauge(const std::string& name, double value) {
    std::lock_guard lock(mu_);
    gauges_[name] = value;
}

std::string metrics::render() const {
    std::string out;
    out.reserve(4096);
    std::lock_guard lock(mu_);

    out +=
        "# HELP livebase_http_requests_total HTTP requests by route template, method and status.\n";
    out += "# TYPE livebase_http_requests_total counter\n";
    for (const auto& [key, s] : requests_) {
        const auto& [route, method, status] = key;
        out += "livebase_http_requests_total{route=\"" + escape_label(route) + "\",method=\"" +
               escape_label(method) + "\",status=\"" + std::to_string(status) + "\"} " +
               std::to_string(s.count) + '\n';
    }

    out +=
        "# HELP livebase_http_request_duration_seconds HTTP request latency by route template.\n";
    out += "# TYPE livebase_http_request_duration_seconds histogram\n";
    for (const auto& [route, h] : latency_) {
        const std::string label = "route=\"" + escape_label(route) + "\"";
        std::uint64_t cumulative = 0;
        for (std::size_t i = 0; i < k_buckets.size(); ++i) {
            cumulative += h.buckets[i];
            out += "livebase_http_request_duration_seconds_bucket{" + label + ",le=\"" +
                   format_value(k_buckets[i]) + "\"} " + std::to_string(cumulative) + '\n';
        }
        out += "livebase_http_request_duration_seconds_bucket{" + label + ",le=\"+Inf\"} " +
               std::to_string(h.count) + '\n';
        out += "livebase_http_request_duration_seconds_sum{" + label + "} " + format_value(h.sum) +
               '\n';
        out += "livebase_http_request_duration_seconds_count{" + label + "} " +
               std::to_string(h.count) + '\n';
    }

    out += "# HELP livebase_open_connections Open HTTP connections.\n";
    out += "# TYPE livebase_open_connections gauge\n";
    out += "livebase_open_connections " + std::to_string(open_connections_.load()) + '\n';

    // Gauges of other components, grouped by metric name so each family is contiguous and gets
    // one TYPE line ("a{x=\"1\"}" and "a{x=\"2\"}" are one family, "a_b" another).
    std::map<std::string_view, std::vector<const std::pair<const std::string, double>*>> families;
    for (const auto& g : gauges_) families[base_name(g.first)].push_back(&g);
    for (const auto& [base, series] : families) {
        auto help = gauge_help(base);
        out += "# HELP ";
        out += base;
        out += ' ';
        if (help.empty()) {
            out += "Gauge ";
            out += base;
            out += '.';
        } else {
            out += help;
        }
        out += '\n';
        out += "# TYPE ";
        out += base;
        out += " gauge\n";
        for (const auto* g : series) {
            out += g->first;
            out += ' ';
            out += format_value(g->second);
            out += '\n';
        }
    }
    return out;
}

}  // namespace livebase
