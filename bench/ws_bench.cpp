// WebSocket load client for bench/ws_run.sh (no livebase code: it speaks realtime.md on the wire).
//
//   ws_bench --port P --mode fanout   --sockets N --seconds S [--rate R] [--writers W]
//            [--write-port Q]
//   ws_bench --port P --mode idle     --sockets N --pid SERVER_PID
//   ws_bench --port P --mode reqreply --sockets N --seconds S [--depth D] --pk ID
//
// fanout:   N sockets subscribe to `cars`; W HTTP keep-alive connections create cars (at most R
//           creates/s in total, 0 = as fast as the server answers). Every record carries its send
//           time in `make` ("t<steady ns>"), so each receipt yields a write -> receipt latency.
//           Prints events/s delivered (all sockets) and p50/p99 latency, and sockets closed early.
//           --write-port Q: the writers create on another server (port Q, e.g. a second node on
//           the same PostgreSQL) while the sockets stay on P: cross-node fan-out. The send time
//           is taken on this machine's steady clock, so both ends must be on this host.
// idle:     opens N subscribed sockets, waits, and prints the server's RSS before and after.
// reqreply: N sockets each keep D `retrieve` requests in flight; prints replies/s.
// --client raw: the subscribed sockets speak RFC 6455 themselves on plain TCP sockets (a
//           fixed handshake, a small frame parser, no Beast stream), about half the client CPU
//           of the default --client beast, so on a shared machine the server gets more of it.
// Last line: "RESULT key=value ..." for the script.
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core.hpp>
#include <boost/beast/http.hpp>
#include <boost/beast/websocket.hpp>
// The build compiles Asio and Beast separately (BOOST_*_SEPARATE_COMPILATION): this standalone
// program compiles their sources itself.
#include <boost/asio/impl/src.hpp>
#include <boost/beast/src.hpp>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <fstream>
#include <iostream>
#include <map>
#include <memory>
#include <string>
#include <thread>
#include <vector>

namespace net = boost::asio;
namespace beast = boost::beast;
namespace http = beast::http;
namespace websocket = beast::websocket;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
using error_code = boost::system::error_code;

namespace {

struct options {
    unsigned short port = 8080;
    unsigned short write_port = 0;  // 0 = port
    std::string mode = "fanout";
    std::size_t sockets = 100;
    double seconds = 10;
    double rate = 0;
    std::size_t writers = 4;
    std::size_t depth = 8;
    std::string pk;
    std::string token;  // Bearer token of the writers (creating cars needs a user)
    long pid = 0;
    std::string client = "beast";  // or "raw"
};

std::int64_t now_ns() {
    return std::chrono::duration_cast<std::chrono::nanoseconds>(steady::now().time_since_epoch())
        .count();
}

long rss_kib(long pid) {
    std::ifstream in("/proc/" + std::to_string(pid) + "/status");
    std::string line;
    while (std::getline(in, line))
        if (line.rfind("VmRSS:", 0) == 0) return std::strtol(line.c_str() + 6, nullptr, 10);
    return -1;
}

/// Shared counters; every handler runs on the one io_context thread, so plain members suffice.
struct stats {
    std::size_t ready = 0;          // sockets subscribed
    std::size_t failed = 0;         // connect/handshake/subscribe failures
    std::size_t closed = 0;         // closed after being ready (e.g. 4008)
    std::map<int, std::size_t> close_codes;
    std::uint64_t events = 0;       // event frames received while measuring
    std::uint64_t replies = 0;      // request replies received while measuring
    bool measuring = false;
    std::vector<std::uint32_t> latency_us;  // write -> receipt, sampled while measuring
};

constexpr std::size_t k_max_samples = 20'000'000;

/// One subscribed (or request/reply) WebSocket client.
class client : public std::enable_shared_from_this<client> {
public:
    client(net::io_context& ioc, const options& o, stats& st, std::function<void()> on_ready)
        : ws_(ioc), o_(o), st_(st), on_ready_(std::move(on_ready)) {}

    void start(const tcp::endpoint& ep) {
        beast::get_lowest_layer(ws_).async_connect(ep, [self = shared_from_this()](error_code ec) {
            if (ec) return self->fail();
            beast::get_lowest_layer(self->ws_).expires_never();
            self->ws_.async_handshake("127.0.0.1", "/ws", [self](error_code ec) {
                if (ec) return self->fail();
                self->read_hello();
            });
        });
    }

    void close() {
        error_code ec;
        beast::get_lowest_layer(ws_).socket().close(ec);
    }

private:
    void fail() {
        ++st_.failed;
        if (on_ready_) std::exchange(on_ready_, nullptr)();
    }

    void read_hello() {
        ws_.async_read(buf_, [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) return self->fail();
            self->buf_.consume(self->buf_.size());
            if (self->o_.mode == "reqreply") return self->begin_requests();
            self->send("{\"stream\":\"cars\",\"payload\":{\"action\":\"subscribe\",\"data\":{},"
                       "\"request_id\":\"sub\"}}");
            self->ws_.async_read(self->buf_, [self](error_code ec, std::size_t) {
                if (ec) return self->fail();
                const auto text = beast::buffers_to_string(self->buf_.data());
                self->buf_.consume(self->buf_.size());
                if (text.find("\"response_status\":201") == std::string::npos) {
                    std::cerr << "subscribe refused: " << text << "\n";
                    return self->fail();
                }
                ++self->st_.ready;
                if (self->on_ready_) std::exchange(self->on_ready_, nullptr)();
                self->read_events();
            });
        });
    }

    void read_events() {
        ws_.async_read(buf_, [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) {
                ++self->st_.closed;
                ++self->st_.close_codes[self->ws_.reason().code];
                return;
            }
            if (self->st_.measuring) {
                ++self->st_.events;
                auto data = self->buf_.data();
                std::string_view text(static_cast<const char*>(data.data()), data.size());
                if (auto at = text.find("\"make\":\"t"); at != std::string_view::npos) {
                    const std::int64_t sent = std::strtoll(text.data() + at + 9, nullptr, 10);
                    if (self->st_.latency_us.size() < k_max_samples)
                        self->st_.latency_us.push_back(
                            static_cast<std::uint32_t>((now_ns() - sent) / 1000));
                }
            }
            self->buf_.consume(self->buf_.size());
            self->read_events();
        });
    }

    // ---- request/reply ----
    void begin_requests() {
        ++st_.ready;
        if (on_ready_) std::exchange(on_ready_, nullptr)();
        request_ = "{\"stream\":\"cars\",\"payload\":{\"action\":\"retrieve\",\"pk\":\"" + o_.pk +
                   "\",\"request_id\":1}}";
        for (std::size_t i = 0; i < o_.depth; ++i) send(request_);
        read_replies();
    }

    void read_replies() {
        ws_.async_read(buf_, [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) {
                ++self->st_.closed;
                return;
            }
            self->buf_.consume(self->buf_.size());
            if (self->st_.measuring) ++self->st_.replies;
            self->send(self->request_);
            self->read_replies();
        });
    }

    // Writes one at a time (Beast allows one outstanding write).
    void send(std::string text) {
        out_.push_back(std::move(text));
        if (!writing_) write_next();
    }
    void write_next() {
        if (out_.empty()) {
            writing_ = false;
            return;
        }
        writing_ = true;
        current_ = std::move(out_.front());
        out_.erase(out_.begin());
        ws_.text(true);
        ws_.async_write(net::buffer(current_), [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) {
                self->writing_ = false;
                return;
            }
            self->write_next();
        });
    }

    websocket::stream<beast::tcp_stream> ws_;
    beast::flat_buffer buf_;
    const options& o_;
    stats& st_;
    std::function<void()> on_ready_;
    std::vector<std::string> out_;
    std::string current_;
    std::string request_;
    bool writing_ = false;
};

/// A subscribed socket on plain TCP: a hand-written handshake and frame parser (server frames
/// are unmasked), a masked subscribe frame. Counts events as the Beast client does.
class raw_client : public std::enable_shared_from_this<raw_client> {
public:
    raw_client(net::io_context& ioc, const options& o, stats& st, std::function<void()> on_ready)
        : sock_(ioc), o_(o), st_(st), on_ready_(std::move(on_ready)) {}

    void start(const tcp::endpoint& ep) {
        sock_.async_connect(ep, [self = shared_from_this()](error_code ec) {
            if (ec) return self->fail();
            self->out_ =
                "GET /ws HTTP/1.1\r\nHost: 127.0.0.1\r\nUpgrade: websocket\r\nConnection: Upgrade\r\n"
                "Sec-WebSocket-Key: dGhlIHNhbXBsZSBub25jZQ==\r\nSec-WebSocket-Version: 13\r\n\r\n";
            net::async_write(self->sock_, net::buffer(self->out_), [self](error_code ec, std::size_t) {
                if (ec) return self->fail();
                self->read();
            });
        });
    }

    void close() {
        error_code ec;
        sock_.close(ec);
    }

private:
    enum class phase { handshake, hello, subscribed_reply, events };

    void fail() {
        if (phase_ == phase::events) {
            ++st_.closed;
            ++st_.close_codes[close_code_ ? close_code_ : 1006];
            return;
        }
        ++st_.failed;
        if (on_ready_) std::exchange(on_ready_, nullptr)();
    }

    // Waits for readability, then reads into one shared buffer: 10,000 idle sockets hold no
    // read buffers, only the bytes of a frame that arrived in parts.
    void read() {
        sock_.async_wait(tcp::socket::wait_read, [self = shared_from_this()](error_code ec) {
            if (ec) return self->fail();
            static char chunk[1 << 16];
            self->sock_.non_blocking(true, ec);
            for (;;) {
                const std::size_t n = self->sock_.read_some(net::buffer(chunk), ec);
                if (ec == net::error::would_block || ec == net::error::try_again) break;
                if (ec) return self->fail();
                self->in_.append(chunk, n);
                if (n < sizeof chunk) break;
            }
            if (!self->parse()) return self->fail();
            self->read();
        });
    }

    // Consumes whole frames (and the handshake response); false on a close or a bad response.
    bool parse() {
        std::size_t pos = 0;
        if (phase_ == phase::handshake) {
            auto end = in_.find("\r\n\r\n");
            if (end == std::string::npos) return true;
            if (in_.compare(0, 12, "HTTP/1.1 101") != 0) return false;
            pos = end + 4;
            phase_ = phase::hello;
        }
        for (;;) {
            if (in_.size() - pos < 2) break;
            const auto* p = reinterpret_cast<const unsigned char*>(in_.data() + pos);
            const unsigned op = p[0] & 0x0f;
            std::uint64_t len = p[1] & 0x7f;
            std::size_t h = 2;
            if (len == 126) {
                if (in_.size() - pos < 4) break;
                len = (std::uint64_t{p[2]} << 8) | p[3];
                h = 4;
            } else if (len == 127) {
                if (in_.size() - pos < 10) break;
                len = 0;
                for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
                h = 10;
            }
            if (in_.size() - pos < h + len) break;
            std::string_view payload(in_.data() + pos + h, static_cast<std::size_t>(len));
            pos += h + static_cast<std::size_t>(len);
            if (op == 8) {
                if (payload.size() >= 2)
                    close_code_ = (static_cast<unsigned char>(payload[0]) << 8) | static_cast<unsigned char>(payload[1]);
                in_.erase(0, pos);
                return false;
            }
            if (op == 9) {  // ping: answer pong (masked, empty)
                static const char pong[] = {'\x8a', '\x80', 0, 0, 0, 0};
                send(std::string(pong, sizeof pong));
                continue;
            }
            if (op != 1) continue;
            on_message(payload);
        }
        in_.erase(0, pos);
        if (in_.empty() && in_.capacity() > 4096) std::string().swap(in_);
        return true;
    }

    void on_message(std::string_view text) {
        switch (phase_) {
            case phase::hello:
                phase_ = phase::subscribed_reply;
                send(masked("{\"stream\":\"cars\",\"payload\":{\"action\":\"subscribe\",\"data\":{},"
                            "\"request_id\":\"sub\"}}"));
                return;
            case phase::subscribed_reply:
                if (text.find("\"response_status\":201") == std::string_view::npos) {
                    std::cerr << "subscribe refused: " << text << "\n";
                    ++st_.failed;
                    if (on_ready_) std::exchange(on_ready_, nullptr)();
                    phase_ = phase::handshake;  // counts nothing more
                    return;
                }
                phase_ = phase::events;
                ++st_.ready;
                if (on_ready_) std::exchange(on_ready_, nullptr)();
                return;
            case phase::events:
                if (!st_.measuring) return;
                ++st_.events;
                if (auto at = text.find("\"make\":\"t"); at != std::string_view::npos) {
                    const std::int64_t sent = std::strtoll(text.data() + at + 9, nullptr, 10);
                    if (st_.latency_us.size() < k_max_samples)
                        st_.latency_us.push_back(static_cast<std::uint32_t>((now_ns() - sent) / 1000));
                }
                return;
            case phase::handshake: return;
        }
    }

    static std::string masked(std::string_view text) {
        std::string f;
        f += '\x81';
        if (text.size() < 126) {
            f += static_cast<char>(0x80 | text.size());
        } else {
            f += static_cast<char>(0x80 | 126);
            f += static_cast<char>(text.size() >> 8);
            f += static_cast<char>(text.size() & 0xff);
        }
        f.append(4, '\0');  // a zero mask key: the payload goes as it is
        f += text;
        return f;
    }

    void send(std::string frame) {
        pending_ += frame;
        if (writing_) return;
        writing_ = true;
        out_ = std::move(pending_);
        pending_.clear();
        net::async_write(sock_, net::buffer(out_), [self = shared_from_this()](error_code ec, std::size_t) {
            self->writing_ = false;
            if (ec || self->pending_.empty()) return;
            self->send({});
        });
    }

    tcp::socket sock_;
    const options& o_;
    stats& st_;
    std::function<void()> on_ready_;
    std::string in_, out_, pending_;
    bool writing_ = false;
    phase phase_ = phase::handshake;
    int close_code_ = 0;
};

/// One keep-alive HTTP connection creating cars in a closed loop (optionally paced).
class writer : public std::enable_shared_from_this<writer> {
public:
    writer(net::io_context& ioc, unsigned short port, double per_second, steady::time_point until,
           std::string token)
        : stream_(ioc), timer_(ioc), port_(port), until_(until), token_(std::move(token)),
          gap_(per_second > 0 ? std::chrono::nanoseconds(static_cast<std::int64_t>(1e9 / per_second))
                              : std::chrono::nanoseconds(0)) {}

    void start() {
        stream_.async_connect(tcp::endpoint(net::ip::make_address("127.0.0.1"), port_),
                              [self = shared_from_this()](error_code ec) {
                                  if (ec) {
                                      std::cerr << "writer connect failed: " << ec.message() << "\n";
                                      return;
                                  }
                                  self->next_at_ = steady::now();
                                  self->send();
                              });
    }

    std::uint64_t writes = 0;

private:
    void send() {
        if (steady::now() >= until_) return;
        req_ = {http::verb::post, "/api/cars", 11};
        req_.set(http::field::host, "127.0.0.1");
        req_.set(http::field::content_type, "application/json");
        if (!token_.empty()) req_.set(http::field::authorization, "Bearer " + token_);
        req_.body() = "{\"brand\":\"Bench\",\"make\":\"t" + std::to_string(now_ns()) + "\"}";
        req_.prepare_payload();
        http::async_write(stream_, req_, [self = shared_from_this()](error_code ec, std::size_t) {
            if (ec) return;
            self->res_ = {};
            http::async_read(self->stream_, self->buf_, self->res_,
                             [self](error_code ec, std::size_t) {
                                 if (ec) return;
                                 if (self->res_.result_int() == 201) ++self->writes;
                                 self->pace();
                             });
        });
    }

    void pace() {
        if (gap_.count() == 0) return send();
        next_at_ += gap_;
        if (next_at_ <= steady::now()) return send();
        timer_.expires_at(next_at_);
        timer_.async_wait([self = shared_from_this()](error_code ec) {
            if (!ec) self->send();
        });
    }

    beast::tcp_stream stream_;
    net::steady_timer timer_;
    unsigned short port_;
    steady::time_point until_;
    std::string token_;
    std::chrono::nanoseconds gap_;
    steady::time_point next_at_;
    beast::flat_buffer buf_;
    http::request<http::string_body> req_;
    http::response<http::string_body> res_;
};

/// Runs `ioc` until `done()` or the deadline.
template <class Pred>
bool run_until(net::io_context& ioc, Pred done, std::chrono::milliseconds limit) {
    const auto deadline = steady::now() + limit;
    while (!done()) {
        if (steady::now() >= deadline) return false;
        ioc.run_for(std::chrono::milliseconds(20));
        if (ioc.stopped()) ioc.restart();
    }
    return true;
}

double percentile(std::vector<std::uint32_t>& v, double p) {
    if (v.empty()) return 0;
    const auto k = static_cast<std::size_t>(p * static_cast<double>(v.size() - 1));
    std::nth_element(v.begin(), v.begin() + static_cast<std::ptrdiff_t>(k), v.end());
    return static_cast<double>(v[k]) / 1000.0;
}

}  // namespace

int main(int argc, char** argv) {
    options o;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i], v = argv[i + 1];
        if (k == "--port") o.port = static_cast<unsigned short>(std::stoi(v));
        else if (k == "--write-port") o.write_port = static_cast<unsigned short>(std::stoi(v));
        else if (k == "--mode") o.mode = v;
        else if (k == "--sockets") o.sockets = std::stoul(v);
        else if (k == "--seconds") o.seconds = std::stod(v);
        else if (k == "--rate") o.rate = std::stod(v);
        else if (k == "--writers") o.writers = std::stoul(v);
        else if (k == "--depth") o.depth = std::stoul(v);
        else if (k == "--pk") o.pk = v;
        else if (k == "--token") o.token = v;
        else if (k == "--pid") o.pid = std::stol(v);
        else if (k == "--client") o.client = v;
        else {
            std::cerr << "unknown option " << k << "\n";
            return 2;
        }
    }

    net::io_context ioc(1);
    stats st;
    const tcp::endpoint ep(net::ip::make_address("127.0.0.1"), o.port);
    const long rss_before = o.pid ? rss_kib(o.pid) : -1;

    // Connect in waves of at most 256 handshakes in flight (the listen backlog stays small).
    if (o.client != "beast" && (o.client != "raw" || o.mode == "reqreply")) {
        std::cerr << "--client: beast, or raw (fanout and idle only)\n";
        return 2;
    }
    std::vector<std::shared_ptr<client>> clients;
    std::vector<std::shared_ptr<raw_client>> raw_clients;
    clients.reserve(o.sockets);
    std::size_t started = 0, settled = 0;
    std::function<void()> launch = [&] {
        while (started < o.sockets && started - settled < 256) {
            auto ready = [&] {
                ++settled;
                launch();
            };
            ++started;
            if (o.client == "raw") {
                auto c = std::make_shared<raw_client>(ioc, o, st, ready);
                raw_clients.push_back(c);
                c->start(ep);
            } else {
                auto c = std::make_shared<client>(ioc, o, st, ready);
                clients.push_back(c);
                c->start(ep);
            }
        }
    };
    const auto t_connect = steady::now();
    launch();
    if (!run_until(ioc, [&] { return settled == o.sockets; }, std::chrono::minutes(3))) {
        std::cerr << "timed out connecting: " << st.ready << " ready of " << o.sockets << "\n";
        return 1;
    }
    const double connect_s = std::chrono::duration<double>(steady::now() - t_connect).count();
    std::cout << "sockets ready: " << st.ready << " (" << st.failed << " failed) in " << connect_s
              << " s\n";
    if (st.ready != o.sockets) return 1;

    if (o.mode == "idle") {
        run_until(ioc, [] { return false; }, std::chrono::milliseconds(3000));  // let it settle
        const long rss_after = rss_kib(o.pid);
        const double per_socket =
            static_cast<double>(rss_after - rss_before) * 1024.0 / static_cast<double>(o.sockets);
        std::cout << "server RSS: " << rss_before << " KiB before, " << rss_after << " KiB after\n";
        std::cout << "RESULT sockets=" << o.sockets << " rss_before_kib=" << rss_before
                  << " rss_after_kib=" << rss_after << " bytes_per_socket=" << per_socket << "\n";
        return 0;
    }

    const auto until = steady::now() + std::chrono::duration_cast<steady::duration>(
                                           std::chrono::duration<double>(o.seconds));
    std::vector<std::shared_ptr<writer>> writers;
    if (o.mode == "fanout") {
        for (std::size_t i = 0; i < o.writers; ++i) {
            writers.push_back(std::make_shared<writer>(
                ioc, o.write_port ? o.write_port : o.port,
                o.rate > 0 ? o.rate / static_cast<double>(o.writers) : 0, until, o.token));
            writers.back()->start();
        }
    }
    st.measuring = true;
    const auto t0 = steady::now();
    run_until(ioc, [&] { return steady::now() >= until; }, std::chrono::hours(1));
    const double elapsed = std::chrono::duration<double>(steady::now() - t0).count();
    // Drain events already in flight for a moment so late receipts count in latency.
    run_until(ioc, [] { return false; }, std::chrono::milliseconds(500));
    st.measuring = false;
    std::uint64_t writes = 0;
    for (auto& w : writers) writes += w->writes;

    if (o.mode == "reqreply") {
        const double rps = static_cast<double>(st.replies) / elapsed;
        std::cout << "replies: " << st.replies << " in " << elapsed << " s = " << rps << "/s\n";
        std::cout << "RESULT sockets=" << o.sockets << " rps=" << rps << " closed=" << st.closed
                  << "\n";
    } else {
        const double eps = static_cast<double>(st.events) / elapsed;
        const double p50 = percentile(st.latency_us, 0.50), p99 = percentile(st.latency_us, 0.99);
        std::cout << "writes: " << writes << ", events received: " << st.events << " in "
                  << elapsed << " s = " << eps << " events/s; latency p50 " << p50 << " ms, p99 "
                  << p99 << " ms; closed early: " << st.closed;
        for (auto& [code, n] : st.close_codes) std::cout << " [" << code << "]x" << n;
        std::cout << "\n";
        std::cout << "RESULT sockets=" << o.sockets << " writes=" << writes << " eps=" << eps
                  << " p50_ms=" << p50 << " p99_ms=" << p99 << " closed=" << st.closed << "\n";
    }
    for (auto& c : clients) c->close();
    for (auto& c : raw_clients) c->close();
    ioc.poll();
    return 0;
}
