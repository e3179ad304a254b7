// Task engine load client (see bench/README.md, "Tasks"). Drives a running server on loopback
// with raw HTTP/1.1 keep-alive sockets and measures:
//   submit   N no-op tasks (GET /api/double?foo=1, an always-async endpoint -> 202) over C
//            connections with D requests in flight per connection: 202 responses per second;
//   e2e      the same N tasks, from the first submit until the server reports all of them
//            succeeded (GET /api/tasks?state=succeeded&limit=1 -> count): tasks per second;
//   latency  M more tasks with `Prefer: respond-async, wait=10`, one outstanding request per
//            connection, so each response arrives when its task finished: p50/p99 of
//            submit -> finished.
// Usage: tasks_bench --port P [--tasks N] [--conns C] [--depth D] [--latency-tasks M]
//                    [--latency-conns L]
// The last line is machine readable:
//   RESULT submit_rps=... e2e_tps=... p50_ms=... p99_ms=... errors=...
#include <arpa/inet.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/socket.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <charconv>
#include <chrono>
#include <cstdint>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

/// One keep-alive HTTP/1.1 connection to 127.0.0.1:port. Responses must carry Content-Length
/// (the server always sets it for these requests).
class connection {
public:
    explicit connection(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        if (fd_ < 0) return;
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) {
            ::close(fd_);
            fd_ = -1;
            return;
        }
        int one = 1;
        ::setsockopt(fd_, IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
        timeval tv{30, 0};  // a silent server ends the run instead of hanging it
        ::setsockopt(fd_, SOL_SOCKET, SO_RCVTIMEO, &tv, sizeof tv);
    }
    ~connection() {
        if (fd_ >= 0) ::close(fd_);
    }
    connection(const connection&) = delete;
    connection& operator=(const connection&) = delete;

    bool ok() const { return fd_ >= 0; }

    bool send_all(std::string_view bytes) {
        while (!bytes.empty()) {
            auto n = ::send(fd_, bytes.data(), bytes.size(), MSG_NOSIGNAL);
            if (n <= 0) return false;
            bytes.remove_prefix(static_cast<std::size_t>(n));
        }
        return true;
    }

    /// Reads one response; its status (0 on error) and body.
    int read_response(std::string* body = nullptr) {
        std::size_t head_end;
        while ((head_end = buf_.find("\r\n\r\n")) == std::string::npos)
            if (!fill()) return 0;
        std::string_view head(buf_.data(), head_end);
        int status = 0;
        if (head.size() < 12) return 0;
        std::from_chars(head.data() + 9, head.data() + 12, status);
        std::size_t length = 0;
        for (std::size_t pos = head.find("\r\n"); pos != std::string_view::npos;) {
            auto next = head.find("\r\n", pos + 2);
            auto line = head.substr(pos + 2, next == std::string_view::npos ? std::string_view::npos : next - pos - 2);
            if (line.size() > 15 && strncasecmp(line.data(), "content-length:", 15) == 0) {
                auto v = line.substr(15);
                while (!v.empty() && v.front() == ' ') v.remove_prefix(1);
                std::from_chars(v.data(), v.data() + v.size(), length);
            }
            pos = next;
        }
        std::size_t total = head_end + 4 + length;
        while (buf_.size() < total)
            if (!fill()) return 0;
        if (body) body->assign(buf_, head_end + 4, length);
        buf_.erase(0, total);
        return status;
    }

private:
    bool fill() {
        char chunk[16384];
        auto n = ::recv(fd_, chunk, sizeof chunk, 0);
        if (n <= 0) return false;
        buf_.append(chunk, static_cast<std::size_t>(n));
        return true;
    }

    int fd_ = -1;
    std::string buf_;
};

std::string request(std::string_view target, std::string_view extra_headers = {}) {
    std::string r = "GET ";
    r += target;
    r += " HTTP/1.1\r\nHost: 127.0.0.1\r\n";
    r += extra_headers;
    r += "\r\n";
    return r;
}

/// The `count` of GET /api/tasks?state=succeeded&limit=1, or -1.
long succeeded_count(connection& c) {
    static const std::string req = request("/api/tasks?state=succeeded&limit=1");
    std::string body;
    if (!c.send_all(req) || c.read_response(&body) != 200) return -1;
    auto pos = body.find("\"count\":");
    if (pos == std::string::npos) return -1;
    long n = -1;
    std::from_chars(body.data() + pos + 8, body.data() + body.size(), n);
    return n;
}

double seconds(steady::duration d) { return std::chrono::duration<double>(d).count(); }

double percentile(std::vector<double>& v, double p) {
    if (v.empty()) return 0;
    std::sort(v.begin(), v.end());
    auto i = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1) + 0.5);
    return v[std::min(i, v.size() - 1)];
}

struct options {
    std::uint16_t port = 0;
    long tasks = 5000;
    int conns = 8;
    int depth = 8;
    long latency_tasks = 1000;
    int latency_conns = 4;
};

bool parse(int argc, char** argv, options& o) {
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view k = argv[i];
        long v = std::strtol(argv[i + 1], nullptr, 10);
        if (v <= 0) return false;
        if (k == "--port") o.port = static_cast<std::uint16_t>(v);
        else if (k == "--tasks") o.tasks = v;
        else if (k == "--conns") o.conns = static_cast<int>(v);
        else if (k == "--depth") o.depth = static_cast<int>(v);
        else if (k == "--latency-tasks") o.latency_tasks = v;
        else if (k == "--latency-conns") o.latency_conns = static_cast<int>(v);
        else return false;
    }
    return argc % 2 == 1 && o.port != 0;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr,
                     "usage: tasks_bench --port P [--tasks N=5000] [--conns C=8] [--depth D=8] "
                     "[--latency-tasks M=1000] [--latency-conns L=4]\n");
        return 2;
    }
    connection poller(o.port);
    long base = poller.ok() ? succeeded_count(poller) : -1;
    if (base < 0) {
        std::fprintf(stderr, "cannot read GET /api/tasks?state=succeeded on port %u\n", o.port);
        return 1;
    }

    // submit + e2e: pipelined submissions; the main thread polls the succeeded count.
    const std::string submit = request("/api/double?foo=1");
    std::atomic<long> tickets{0}, accepted{0}, errors{0};
    std::atomic<std::int64_t> last_response_ns{0};
    auto t0 = steady::now();
    {
        std::vector<std::thread> threads;
        for (int i = 0; i < o.conns; ++i)
            threads.emplace_back([&] {
                connection c(o.port);
                if (!c.ok()) {
                    ++errors;
                    return;
                }
                int in_flight = 0;
                auto send_more = [&] {
                    while (in_flight < o.depth && tickets.fetch_add(1) < o.tasks) {
                        if (!c.send_all(submit)) return false;
                        ++in_flight;
                    }
                    return true;
                };
                if (!send_more()) {
                    ++errors;
                    return;
                }
                while (in_flight > 0) {
                    int status = c.read_response();
                    if (status == 0) {
                        errors += in_flight;
                        return;
                    }
                    --in_flight;
                    (status == 202 ? accepted : errors)++;
                    auto ns = std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now() - t0).count();
                    auto prev = last_response_ns.load();
                    while (prev < ns && !last_response_ns.compare_exchange_weak(prev, ns)) {
                    }
                    if (!send_more()) {
                        errors += in_flight + 1;
                        return;
                    }
                }
            });
        for (auto& t : threads) t.join();
    }
    double submit_secs = static_cast<double>(last_response_ns.load()) / 1e9;
    double submit_rps = submit_secs > 0 ? static_cast<double>(accepted.load()) / submit_secs : 0;
    std::printf("submit:  %ld tasks, %d connections x %d in flight: %ld x 202 in %.3f s = %.0f req/s (errors %ld)\n",
                o.tasks, o.conns, o.depth, accepted.load(), submit_secs, submit_rps, errors.load());

    auto deadline = t0 + std::chrono::seconds(120);
    long done = 0;
    while (steady::now() < deadline) {
        long n = succeeded_count(poller);
        if (n < 0) break;
        done = n - base;
        if (done >= accepted.load()) break;
        std::this_thread::sleep_for(std::chrono::milliseconds(5));
    }
    double e2e_secs = seconds(steady::now() - t0);
    double e2e_tps = done >= accepted.load() && e2e_secs > 0 ? static_cast<double>(done) / e2e_secs : 0;
    std::printf("e2e:     %ld of %ld tasks succeeded %.3f s after the first submit = %.0f tasks/s\n", done,
                accepted.load(), e2e_secs, e2e_tps);
    if (done < accepted.load()) ++errors;

    // latency: one `wait` submission outstanding per connection.
    const std::string waited = request("/api/double?foo=1", "Prefer: respond-async, wait=10\r\n");
    std::atomic<long> lat_tickets{0};
    std::vector<std::vector<double>> per_thread(static_cast<std::size_t>(o.latency_conns));
    {
        std::vector<std::thread> threads;
        for (int i = 0; i < o.latency_conns; ++i)
            threads.emplace_back([&, i] {
                connection c(o.port);
                if (!c.ok()) {
                    ++errors;
                    return;
                }
                auto& out = per_thread[static_cast<std::size_t>(i)];
                while (lat_tickets.fetch_add(1) < o.latency_tasks) {
                    auto start = steady::now();
                    std::string body;
                    if (!c.send_all(waited)) {
                        ++errors;
                        return;
                    }
                    int status = c.read_response(&body);
                    if (status == 0) {
                        ++errors;
                        return;
                    }
                    // 200 {"result":2}: the task finished within the wait.
                    if (status != 200 || body.find("\"result\":2") == std::string::npos) {
                        ++errors;
                        continue;
                    }
                    out.push_back(seconds(steady::now() - start) * 1000);
                }
            });
        for (auto& t : threads) t.join();
    }
    std::vector<double> all;
    for (auto& v : per_thread) all.insert(all.end(), v.begin(), v.end());
    double p50 = percentile(all, 0.50), p99 = percentile(all, 0.99);
    std::printf("latency: %zu tasks, %d connections, submit -> finished: p50 %.3f ms, p99 %.3f ms\n", all.size(),
                o.latency_conns, p50, p99);
    std::printf("RESULT submit_rps=%.0f e2e_tps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%ld\n", submit_rps, e2e_tps, p50,
                p99, errors.load());
    return errors.load() == 0 ? 0 : 1;
}
