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
//                    [--latency-conns L] [--poll-port Q [--follow events|wait]]
// --poll-port Q (scale-out: another node on the same PostgreSQL, tasks run by `worker`
// processes): submissions go to P, the e2e count is read from Q, and each latency task is
// submitted to P without waiting; its end is seen on Q, either (--follow events, the default)
// as the `succeeded` event on one SSE stream `GET /api/tasks/events?state=succeeded` held open
// on Q (the change log's path: Q's hub woken by NOTIFY), or (--follow wait) by a long poll
// `GET /api/tasks/{id}` with `Prefer: wait=10` on Q (-> 303), which notices tasks finished by
// other processes by polling (every 250 ms).
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
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <condition_variable>
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

/// Holds `GET /api/tasks/events?state=succeeded` open on a port and records when each task's
/// event arrived (steady clock), for the cross-node latency.
class event_follower {
public:
    explicit event_follower(std::uint16_t port) {
        fd_ = ::socket(AF_INET, SOCK_STREAM, 0);
        sockaddr_in addr{};
        addr.sin_family = AF_INET;
        addr.sin_port = htons(port);
        addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
        if (fd_ < 0 || ::connect(fd_, reinterpret_cast<sockaddr*>(&addr), sizeof addr) != 0) return;
        std::string req = "GET /api/tasks/events?state=succeeded HTTP/1.1\r\nHost: 127.0.0.1\r\n"
                          "Accept: text/event-stream\r\n\r\n";
        if (::send(fd_, req.data(), req.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(req.size())) return;
        ok_ = true;
        thread_ = std::thread([this] { run(); });
    }
    ~event_follower() {
        ::shutdown(fd_, SHUT_RDWR);
        if (thread_.joinable()) thread_.join();
        if (fd_ >= 0) ::close(fd_);
    }
    bool ok() const { return ok_; }
    /// When the event of `id` arrived; waits up to `limit`.
    std::optional<steady::time_point> wait(const std::string& id, std::chrono::seconds limit) {
        std::unique_lock<std::mutex> lock(mu_);
        if (!cv_.wait_for(lock, limit, [&] { return seen_.count(id) > 0; })) return std::nullopt;
        return seen_[id];
    }

private:
    void run() {
        std::string buf;
        char chunk[65536];
        for (;;) {
            auto n = ::recv(fd_, chunk, sizeof chunk, 0);
            if (n <= 0) return;
            auto now = steady::now();
            buf.append(chunk, static_cast<std::size_t>(n));
            std::size_t pos = 0, at;
            std::lock_guard<std::mutex> lock(mu_);
            while ((at = buf.find("data: {\"id\":\"", pos)) != std::string::npos) {
                auto end = buf.find('"', at + 13);
                if (end == std::string::npos) break;
                seen_.emplace(buf.substr(at + 13, end - at - 13), now);
                pos = end;
            }
            buf.erase(0, pos ? pos : (buf.size() > 64 ? buf.size() - 64 : 0));
            cv_.notify_all();
        }
    }
    int fd_ = -1;
    bool ok_ = false;
    std::thread thread_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::map<std::string, steady::time_point> seen_;
};

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
    std::uint16_t poll_port = 0;  // 0 = port
    bool follow_events = true;    // with a poll port: SSE events (else long polls)
};

bool parse(int argc, char** argv, options& o) {
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string_view k = argv[i];
        if (k == "--follow") {
            std::string_view f = argv[i + 1];
            if (f != "events" && f != "wait") return false;
            o.follow_events = f == "events";
            continue;
        }
        long v = std::strtol(argv[i + 1], nullptr, 10);
        if (v <= 0) return false;
        if (k == "--port") o.port = static_cast<std::uint16_t>(v);
        else if (k == "--tasks") o.tasks = v;
        else if (k == "--conns") o.conns = static_cast<int>(v);
        else if (k == "--depth") o.depth = static_cast<int>(v);
        else if (k == "--latency-tasks") o.latency_tasks = v;
        else if (k == "--latency-conns") o.latency_conns = static_cast<int>(v);
        else if (k == "--poll-port") o.poll_port = static_cast<std::uint16_t>(v);
        else return false;
    }
    if (o.poll_port == 0) o.poll_port = o.port;
    return argc % 2 == 1 && o.port != 0;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    if (!parse(argc, argv, o)) {
        std::fprintf(stderr,
                     "usage: tasks_bench --port P [--tasks N=5000] [--conns C=8] [--depth D=8] "
                     "[--latency-tasks M=1000] [--latency-conns L=4] [--poll-port Q=P [--follow events|wait]]\n");
        return 2;
    }
    connection poller(o.poll_port);
    long base = poller.ok() ? succeeded_count(poller) : -1;
    if (base < 0) {
        std::fprintf(stderr, "cannot read GET /api/tasks?state=succeeded on port %u\n", o.poll_port);
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

    // latency: one `wait` submission outstanding per connection; across nodes, a plain submit on
    // `port` followed by a long poll of the task on `poll_port`.
    const bool split = o.poll_port != o.port;
    std::unique_ptr<event_follower> follower;
    if (split && o.follow_events) {
        follower = std::make_unique<event_follower>(o.poll_port);
        if (!follower->ok()) ++errors;
        std::this_thread::sleep_for(std::chrono::milliseconds(200));  // the stream is attached
    }
    const std::string waited = request("/api/double?foo=1", "Prefer: respond-async, wait=10\r\n");
    std::atomic<long> lat_tickets{0};
    std::vector<std::vector<double>> per_thread(static_cast<std::size_t>(o.latency_conns));
    {
        std::vector<std::thread> threads;
        for (int i = 0; i < o.latency_conns; ++i)
            threads.emplace_back([&, i] {
                connection c(o.port);
                std::unique_ptr<connection> other;
                if (split && !follower) other = std::make_unique<connection>(o.poll_port);
                if (!c.ok() || (other && !other->ok())) {
                    ++errors;
                    return;
                }
                auto& out = per_thread[static_cast<std::size_t>(i)];
                while (lat_tickets.fetch_add(1) < o.latency_tasks) {
                    auto start = steady::now();
                    std::string body;
                    if (!c.send_all(split ? submit : waited)) {
                        ++errors;
                        return;
                    }
                    int status = c.read_response(&body);
                    if (status == 0) {
                        ++errors;
                        return;
                    }
                    if (split) {
                        // 202 {"id":"...",...}: long-poll it on the other node; 303 = succeeded.
                        auto at = body.find("\"id\":\"");
                        if (status != 202 || at == std::string::npos) {
                            ++errors;
                            continue;
                        }
                        auto end = body.find('"', at + 6);
                        std::string id = body.substr(at + 6, end - at - 6);
                        if (follower) {
                            auto when = follower->wait(id, std::chrono::seconds(10));
                            if (!when) {
                                ++errors;
                                continue;
                            }
                            out.push_back(seconds(*when - start) * 1000);
                            continue;
                        }
                        if (!other->send_all(request("/api/tasks/" + id, "Prefer: wait=10\r\n"))) {
                            ++errors;
                            return;
                        }
                        status = other->read_response(&body);
                        if (status == 0) {
                            ++errors;
                            return;
                        }
                        if (status != 303) {
                            ++errors;
                            continue;
                        }
                    } else if (status != 200 || body.find("\"result\":2") == std::string::npos) {
                        // 200 {"result":2}: the task finished within the wait.
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
    std::printf("latency: %zu tasks, %d connections, submit -> finished%s: p50 %.3f ms, p99 %.3f ms\n", all.size(),
                o.latency_conns, split ? (follower ? " (event on the poll port)" : " (long poll on the poll port)") : "", p50, p99);
    std::printf("RESULT submit_rps=%.0f e2e_tps=%.0f p50_ms=%.3f p99_ms=%.3f errors=%ld\n", submit_rps, e2e_tps, p50,
                p99, errors.load());
    return errors.load() == 0 ? 0 : 1;
}
