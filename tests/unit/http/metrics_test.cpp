#include <gtest/gtest.h>

#include <livebase/core/metrics.hpp>
#include <set>
#include <sstream>

using namespace std::chrono_literals;

namespace {

bool has_line(const std::string& text, const std::string& line) {
    std::istringstream in(text);
    for (std::string l; std::getline(in, l);)
        if (l == line) return true;
    return false;
}

}  // namespace

TEST(metrics, request_counters) {
    livebase::metrics m;
    m.observe_request("/api/{c}", "GET", 200, 1ms);
    m.observe_request("/api/{c}", "GET", 200, 2ms);
    m.observe_request("/api/{c}", "POST", 201, 3ms);
    auto text = m.render();
    EXPECT_TRUE(has_line(text, "# TYPE livebase_http_requests_total counter")) << text;
    EXPECT_TRUE(has_line(
        text, "livebase_http_requests_total{route=\"/api/{c}\",method=\"GET\",status=\"200\"} 2"));
    EXPECT_TRUE(has_line(
        text, "livebase_http_requests_total{route=\"/api/{c}\",method=\"POST\",status=\"201\"} 1"));
    EXPECT_NE(text.find("# HELP livebase_http_requests_total "), std::string::npos);
}

TEST(metrics, histogram_is_cumulative) {
    livebase::metrics m;
    m.observe_request("/api/{c}/{id}", "GET", 200, 300us);  // <= 0.0005
    m.observe_request("/api/{c}/{id}", "GET", 200, 20ms);   // <= 0.025
    m.observe_request("/api/{c}/{id}", "GET", 404, 10s);    // only +Inf
    auto text = m.render();
    const std::string p = "livebase_http_request_duration_seconds";
    const std::string r = "route=\"/api/{c}/{id}\"";
    EXPECT_TRUE(has_line(text, "# TYPE " + p + " histogram"));
    EXPECT_TRUE(has_line(text, p + "_bucket{" + r + ",le=\"0.0005\"} 1")) << text;
    EXPECT_TRUE(has_line(text, p + "_bucket{" + r + ",le=\"0.01\"} 1"));
    EXPECT_TRUE(has_line(text, p + "_bucket{" + r + ",le=\"0.025\"} 2"));
    EXPECT_TRUE(has_line(text, p + "_bucket{" + r + ",le=\"5\"} 2"));
    EXPECT_TRUE(has_line(text, p + "_bucket{" + r + ",le=\"+Inf\"} 3"));
    EXPECT_TRUE(has_line(text, p + "_count{" + r + "} 3"));
    const std::string sum = p + "_sum{" + r + "} ";
    auto at = text.find(sum);
    ASSERT_NE(at, std::string::npos);
    EXPECT_NEAR(std::stod(text.substr(at + sum.size())), 10.0203, 1e-9);
}

TEST(metrics, bucket_boundary_is_inclusive) {
    livebase::metrics m;
    m.observe_request("r", "GET", 200, 1ms);  // exactly le="0.001"
    auto text = m.render();
    EXPECT_TRUE(has_line(
        text, "livebase_http_request_duration_seconds_bucket{route=\"r\",le=\"0.0005\"} 0"));
    EXPECT_TRUE(has_line(
        text, "livebase_http_request_duration_seconds_bucket{route=\"r\",le=\"0.001\"} 1"));
}

TEST(metrics, connections_gauge) {
    livebase::metrics m;
    m.connection_opened();
    m.connection_opened();
    m.connection_closed();
    EXPECT_EQ(m.open_connections(), 1);
    auto text = m.render();
    EXPECT_TRUE(has_line(text, "# TYPE livebase_open_connections gauge"));
    EXPECT_TRUE(has_line(text, "livebase_open_connections 1"));
}

TEST(metrics, custom_gauges_grouped_by_family) {
    livebase::metrics m;
    m.set_gauge("livebase_last_seq", 42);
    m.set_gauge("livebase_tasks{state=\"running\"}", 2);
    m.set_gauge("livebase_tasks_total", 7);
    m.set_gauge("livebase_tasks{state=\"pending\"}", 1.5);
    m.set_gauge("livebase_last_seq", 43);
    auto text = m.render();
    EXPECT_TRUE(has_line(text, "# TYPE livebase_last_seq gauge"));
    EXPECT_TRUE(has_line(text, "livebase_last_seq 43"));
    EXPECT_TRUE(has_line(text, "livebase_tasks{state=\"pending\"} 1.5"));
    // One TYPE line for the family, its samples contiguous right after it.
    auto type = text.find("# TYPE livebase_tasks gauge\n");
    ASSERT_NE(type, std::string::npos) << text;
    EXPECT_EQ(text.find("# TYPE livebase_tasks gauge", type + 1), std::string::npos);
    auto after = text.substr(type);
    std::istringstream in(after);
    std::string l;
    std::getline(in, l);
    std::getline(in, l);
    EXPECT_EQ(l.rfind("livebase_tasks{", 0), 0u) << after;
    std::getline(in, l);
    EXPECT_EQ(l.rfind("livebase_tasks{", 0), 0u) << after;
}

TEST(metrics, label_values_are_escaped) {
    livebase::metrics m;
    m.observe_request("a\"b\\c\nd", "GET", 200, 1ms);
    auto text = m.render();
    EXPECT_NE(text.find("route=\"a\\\"b\\\\c\\nd\""), std::string::npos) << text;
}

TEST(metrics, empty_render_has_the_families) {
    livebase::metrics m;
    auto text = m.render();
    EXPECT_TRUE(has_line(text, "# TYPE livebase_http_requests_total counter"));
    EXPECT_TRUE(has_line(text, "# TYPE livebase_http_request_duration_seconds histogram"));
    EXPECT_TRUE(has_line(text, "livebase_open_connections 0"));
    EXPECT_EQ(text.back(), '\n');
}

TEST(metrics, every_family_has_help_and_type) {
    livebase::metrics m;
    m.observe_request("/api/{c}", "GET", 200, 1ms);
    for (const char* g : {"livebase_tasks{state=\"pending\"}", "livebase_change_log_seq", "livebase_realtime_clients",
                          "livebase_realtime_lag", "livebase_realtime_replays",
                          "livebase_realtime_replayed_events", "livebase_ws_sockets", "livebase_ws_slow_consumer_closes",
                          "livebase_something_new"})
        m.set_gauge(g, 0);
    auto text = m.render();
    std::istringstream in(text);
    std::set<std::string> helped, typed;
    for (std::string l; std::getline(in, l);) {
        std::istringstream words(l);
        std::string hash, kind, name;
        words >> hash >> kind >> name;
        if (hash != "#") continue;
        (kind == "HELP" ? helped : typed).insert(name);
        if (kind == "HELP") {
            std::string rest;
            std::getline(words, rest);
            EXPECT_GT(rest.size(), 3u) << l;
        }
    }
    EXPECT_EQ(helped, typed) << text;
    EXPECT_EQ(typed.size(), 12u) << text;
    EXPECT_TRUE(has_line(text, "# HELP livebase_ws_slow_consumer_closes WebSockets closed with 4008 (slow consumer) since start."));
    EXPECT_TRUE(has_line(text, "# HELP livebase_something_new Gauge livebase_something_new."));
}
