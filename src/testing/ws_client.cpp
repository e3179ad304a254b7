// The test WebSocket client: Beast on a private io_context run by one thread, which owns the
// stream (every stream operation is posted to it); the test thread waits on futures and on the
// frame queue, always with a deadline.
#include <algorithm>
#include <atomic>
#include <boost/asio/connect.hpp>
#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <cctype>
#include <condition_variable>
#include <deque>
#include <future>
#include <livebase/core/text.hpp>
#include <livebase/testing/ws_client.hpp>
#include <map>
#include <mutex>
#include <thread>
#include "gate/net_names.hpp"

namespace livebase::testing {

namespace {
using namespace net_names;
using clock = std::chrono::steady_clock;

/// Close code for a connection that ended without a close frame (RFC 6455 7.1.5).
constexpr std::uint16_t k_abnormal = 1006;

problem connect_problem(std::string detail, int status = 503) {
    return problem::make(status, "/problems/ws-connect", "WebSocket connect failed",
                         std::move(detail));
}

/// A TCP stream whose reads can be held back. Beast's websocket read cannot be cancelled
/// without failing the stream, and while one is pending it keeps reading (and answering
/// pings); parking the read at this layer makes a paused client really stop reading, so the
/// server sees a peer that neither reads nor pongs. Used on the io thread only.
class pausable_stream {
public:
    using executor_type = beast::tcp_stream::executor_type;
    using next_layer_type = beast::tcp_stream;

    explicit pausable_stream(net::io_context& ioc) : next_(ioc) {}

    executor_type get_executor() noexcept { return next_.get_executor(); }
    next_layer_type& next_layer() noexcept { return next_; }

    template <class MutableBufferSequence, class ReadHandler>
    auto async_read_some(const MutableBufferSequence& buffers, ReadHandler&& handler) {
        return net::async_initiate<ReadHandler, void(error_code, std::size_t)>(
            [this](auto h, const MutableBufferSequence& b) {
                if (!paused_) return next_.async_read_some(b, std::move(h));
                // std::function needs a copyable callable; the handler is move-only.
                auto held = std::make_shared<decltype(h)>(std::move(h));
                parked_ = [this, b, held] { next_.async_read_some(b, std::move(*held)); };
            },
            handler, buffers);
    }

    template <class ConstBufferSequence, class WriteHandler>
    auto async_write_some(const ConstBufferSequence& buffers, WriteHandler&& handler) {
        return next_.async_write_some(buffers, std::forward<WriteHandler>(handler));
    }

    void pause() noexcept { paused_ = true; }
    /// Issues a parked read. Must also run before the socket is dropped: a parked handler
    /// keeps the io_context's work count up until it completes.
    void resume() {
        paused_ = false;
        if (auto f = std::move(parked_)) {
            parked_ = nullptr;
            f();
        }
    }

private:
    beast::tcp_stream next_;
    bool paused_ = false;
    std::function<void()> parked_;
};

// Websocket teardown of the wrapper is the TCP stream's (found by argument-dependent lookup).
template <class TeardownHandler>
void async_teardown(beast::role_type role, pausable_stream& s, TeardownHandler&& handler) {
    s.resume();
    using websocket::async_teardown;  // the tcp_stream overload is found by argument lookup
    async_teardown(role, s.next_layer(), std::forward<TeardownHandler>(handler));
}

}  // namespace

struct ws_client::impl {
    net::io_context ioc;
    std::optional<net::executor_work_guard<net::io_context::executor_type>> work;
    websocket::stream<pausable_stream> ws{ioc};
    tcp::resolver resolver{ioc};
    beast::flat_buffer buffer;
    websocket::response_type response;
    std::thread thread;

    // io thread only
    struct write_item {
        std::string data;
        bool binary = false;
        std::shared_ptr<std::promise<bool>> done;
    };
    std::deque<write_item> writes;
    bool writing = false;
    bool reading = false;
    bool closing = false;  // we started the close handshake: its completion ends the session
    bool started = false;  // the handshake completed

    // shared, under mu
    mutable std::mutex mu;
    std::condition_variable cv;
    std::deque<json::value> frames;
    std::map<std::string, std::string> headers;  // lower-case names
    bool connected = false;  // the handshake completed (a copy of `started` for other threads)
    bool ended = false;
    ws_close how;

    impl() {
        work.emplace(ioc.get_executor());
        thread = std::thread([this] { ioc.run(); });
    }

    ~impl() {
        // Dropping the socket completes every pending operation; then the thread runs out of
        // work and returns, and no handler outlives this object.
        net::post(ioc, [this] {
            error_code ec;
            resolver.cancel();
            beast::get_lowest_layer(ws).socket().close(ec);
            ws.next_layer().resume();
        });
        work.reset();
        thread.join();
    }

    void end(std::uint16_t code, std::string reason) {
        std::lock_guard lock(mu);
        if (ended) return;
        ended = true;
        how.code = code;
        how.reason = std::move(reason);
        cv.notify_all();
    }

    // ---- reading (io thread) ----

    void start_read() {
        if (reading || !started) return;
        {
            std::lock_guard lock(mu);
            if (ended) return;
        }
        reading = true;
        ws.async_read(buffer, [this](error_code ec, std::size_t) { on_read(ec); });
    }

    void on_read(error_code ec) {
        reading = false;
        if (ec) {
            // Beast hands the server's close frame to our close operation, aborting the read.
            if (closing && ec == net::error::operation_aborted) return;
            fail_queued_writes();
            if (ec == websocket::error::closed)
                return end(ws.reason().code,
                           std::string(ws.reason().reason.data(), ws.reason().reason.size()));
            return end(k_abnormal, ec.message());
        }
        auto text = beast::buffers_to_string(buffer.data());
        buffer.consume(buffer.size());
        auto v = parse_json(text, 256);
        {
            std::lock_guard lock(mu);
            frames.push_back(v ? std::move(*v) : json::value(text));
            cv.notify_all();
        }
        start_read();
    }

    // ---- writing (io thread) ----

    void start_write() {
        if (writing || writes.empty()) return;
        writing = true;
        auto& w = writes.front();
        ws.binary(w.binary);
        ws.async_write(net::buffer(w.data), [this](error_code ec, std::size_t) {
            writing = false;
            writes.front().done->set_value(!ec);
            writes.pop_front();
            if (ec) return fail_queued_writes();
            start_write();
        });
    }

    /// Answers false to every write not yet started. The one in flight (the front, while
    /// `writing`) keeps its buffer, which Beast is still using; its completion answers it.
    void fail_queued_writes() {
        auto first = writes.begin();
        if (writing && first != writes.end()) ++first;
        for (auto it = first; it != writes.end(); ++it) it->done->set_value(false);
        writes.erase(first, writes.end());
    }

    bool send(std::string data, bool binary, std::chrono::milliseconds timeout) {
        auto done = std::make_shared<std::promise<bool>>();
        auto f = done->get_future();
        net::post(ioc, [this, data = std::move(data), binary, done]() mutable {
            {
                std::lock_guard lock(mu);
                if (ended || !started) return done->set_value(false);
            }
            writes.push_back({std::move(data), binary, std::move(done)});
            start_write();
        });
        if (f.wait_for(timeout) != std::future_status::ready) return false;
        return f.get();
    }

    // ---- the queue (any thread) ----

    std::optional<json::value> take(const std::function<bool(const json::value&)>* pred,
                                    std::chrono::milliseconds timeout) {
        const auto deadline = clock::now() + timeout;
        std::unique_lock lock(mu);
        for (;;) {
            for (auto it = frames.begin(); it != frames.end(); ++it) {
                if (!pred || (*pred)(*it)) {
                    auto v = std::move(*it);
                    frames.erase(it);
                    return v;
                }
            }
            if (ended) return std::nullopt;
            if (cv.wait_until(lock, deadline) == std::cv_status::timeout) {
                // One last look: a frame may have arrived with the timeout.
                for (auto it = frames.begin(); it != frames.end(); ++it) {
                    if (!pred || (*pred)(*it)) {
                        auto v = std::move(*it);
                        frames.erase(it);
                        return v;
                    }
                }
                return std::nullopt;
            }
        }
    }

    template <class Fn>
    void run_on_io(Fn fn, std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        auto done = std::make_shared<std::promise<void>>();
        auto f = done->get_future();
        net::post(ioc, [fn = std::move(fn), done]() mutable {
            fn();
            done->set_value();
        });
        f.wait_for(timeout);
    }
};

ws_client::ws_client() : impl_(std::make_unique<impl>()) {}

ws_client::~ws_client() = default;

result<void> ws_client::connect(std::uint16_t port, std::string path,
                                std::vector<std::pair<std::string, std::string>> headers) {
    ws_connect_options o;
    o.path = std::move(path);
    o.headers = std::move(headers);
    return connect(port, std::move(o));
}

result<void> ws_client::connect(std::uint16_t port, ws_connect_options o) {
    auto& im = *impl_;
    const auto deadline = clock::now() + o.timeout;
    auto done = std::make_shared<std::promise<result<void>>>();
    auto f = done->get_future();
    net::post(im.ioc, [&im, port, o, done] {
        auto fail = [&im, done](problem p) {
            error_code ignored;
            beast::get_lowest_layer(im.ws).socket().close(ignored);
            done->set_value(std::move(p));
        };
        im.resolver.async_resolve(
            o.host, std::to_string(port),
            [&im, port, o, done, fail](error_code ec, tcp::resolver::results_type results) {
                if (ec) return fail(connect_problem("resolve " + o.host + ": " + ec.message()));
                auto& tcp_layer = beast::get_lowest_layer(im.ws);
                error_code oc;
                tcp_layer.socket().open(results.begin()->endpoint().protocol(), oc);
                if (oc) return fail(connect_problem("open: " + oc.message()));
                if (o.receive_buffer > 0)
                    tcp_layer.socket().set_option(
                        net::socket_base::receive_buffer_size(o.receive_buffer), oc);
                tcp_layer.expires_after(o.timeout);
                tcp_layer.async_connect(
                    results, [&im, port, o, done, fail](error_code ec, const tcp::endpoint&) {
                        if (ec) return fail(connect_problem("connect: " + ec.message()));
                        im.ws.set_option(
                            websocket::stream_base::decorator([o](websocket::request_type& req) {
                                for (const auto& [k, v] : o.headers) req.set(k, v);
                                if (!o.subprotocols.empty()) {
                                    std::string list;
                                    for (const auto& s : o.subprotocols)
                                        list += (list.empty() ? "" : ", ") + s;
                                    req.set(bhttp::field::sec_websocket_protocol, list);
                                }
                            }));
                        im.ws.async_handshake(
                            im.response, o.host + ":" + std::to_string(port), o.path,
                            [&im, done, fail](error_code ec) {
                                {
                                    std::lock_guard lock(im.mu);
                                    for (const auto& field : im.response)
                                        im.headers[lowercase(field.name_string())] =
                                            std::string(field.value());
                                }
                                if (ec) {
                                    int status = static_cast<int>(im.response.result_int());
                                    return fail(connect_problem("handshake: " + ec.message() +
                                                                    " (HTTP " +
                                                                    std::to_string(status) + ")",
                                                                status >= 400 ? status : 503));
                                }
                                beast::get_lowest_layer(im.ws).expires_never();
                                im.started = true;
                                {
                                    std::lock_guard lock(im.mu);
                                    im.connected = true;
                                }
                                im.start_read();
                                done->set_value(result<void>{});
                            });
                    });
            });
    });
    if (f.wait_until(deadline) != std::future_status::ready) {
        im.run_on_io([&im] {
            error_code ignored;
            im.resolver.cancel();
            beast::get_lowest_layer(im.ws).socket().close(ignored);
            im.ws.next_layer().resume();
        });
        return connect_problem("timed out");
    }
    auto r = f.get();
    if (!r) return r;
    subprotocol_ = response_header("Sec-WebSocket-Protocol");
    if (!o.expect_hello) return {};
    auto remaining =
        std::max(std::chrono::milliseconds(1),
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()));
    auto hello = receive_until(
        [](const json::value& v) {
            return stream_of(v) == "session" && payload_of(v, "action") == "hello";
        },
        remaining);
    if (!hello) return connect_problem("no hello frame");
    hello_ = *hello;
    const auto& data = payload_of(hello_, "data");
    if (data.is_object()) subscriber_ = std::string(get_string(data.get_object(), "subscriber"));
    return {};
}

std::string ws_client::response_header(std::string_view name) const {
    std::lock_guard lock(impl_->mu);
    auto it = impl_->headers.find(lowercase(name));
    return it == impl_->headers.end() ? std::string() : it->second;
}

bool ws_client::send_text(std::string_view text, std::chrono::milliseconds timeout) {
    return impl_->send(std::string(text), false, timeout);
}

bool ws_client::send_json(const json::value& v, std::chrono::milliseconds timeout) {
    return impl_->send(to_json_text(v), false, timeout);
}

bool ws_client::send_binary(std::string_view bytes, std::chrono::milliseconds timeout) {
    return impl_->send(std::string(bytes), true, timeout);
}

std::optional<json::value> ws_client::receive(std::chrono::milliseconds timeout) {
    return impl_->take(nullptr, timeout);
}

std::optional<json::value> ws_client::receive_until(
    const std::function<bool(const json::value&)>& pred, std::chrono::milliseconds timeout) {
    return impl_->take(&pred, timeout);
}

std::optional<json::value> ws_client::request(std::string_view stream, json::object payload,
                                              std::chrono::milliseconds timeout) {
    const std::string id = "req-" + std::to_string(++next_request_);
    payload["request_id"] = id;
    json::object frame{{"stream", stream}, {"payload", std::move(payload)}};
    const auto deadline = clock::now() + timeout;
    if (!send_json(frame, timeout)) return std::nullopt;
    auto remaining =
        std::max(std::chrono::milliseconds(1),
                 std::chrono::duration_cast<std::chrono::milliseconds>(deadline - clock::now()));
    return receive_until(
        [&id](const json::value& v) {
            const auto& rid = payload_of(v, "request_id");
            return rid.is_string() && rid.get_string() == id &&
                   !payload_of(v, "response_status").is_null();
        },
        remaining);
}

bool ws_client::queue_empty(std::chrono::milliseconds wait) {
    std::unique_lock lock(impl_->mu);
    impl_->cv.wait_for(lock, wait, [this] { return !impl_->frames.empty(); });
    return impl_->frames.empty();
}

std::size_t ws_client::queue_count() const {
    std::lock_guard lock(impl_->mu);
    return impl_->frames.size();
}

std::size_t ws_client::clear_queue() {
    std::lock_guard lock(impl_->mu);
    auto n = impl_->frames.size();
    impl_->frames.clear();
    return n;
}

void ws_client::pause_reading() {
    impl_->run_on_io([im = impl_.get()] { im->ws.next_layer().pause(); });
}

void ws_client::resume_reading() {
    impl_->run_on_io([im = impl_.get()] { im->ws.next_layer().resume(); });
}

void ws_client::close(std::uint16_t code, std::chrono::milliseconds timeout) {
    auto* im = impl_.get();
    im->run_on_io([im, code] {
        im->ws.next_layer().resume();
        {
            std::lock_guard lock(im->mu);
            if (im->ended || !im->started) return;
        }
        // The pending (or restarted) read sees the server's close frame and ends the session.
        im->start_read();
        im->closing = true;
        im->ws.async_close(websocket::close_reason(static_cast<websocket::close_code>(code)),
                           [im](error_code ec) {
                               if (ec) return im->end(k_abnormal, ec.message());
                               const auto& r = im->ws.reason();
                               im->end(r.code, std::string(r.reason.data(), r.reason.size()));
                           });
    });
    wait_closed(timeout);
}

void ws_client::abort() {
    auto* im = impl_.get();
    im->run_on_io([im] {
        error_code ignored;
        beast::get_lowest_layer(im->ws).socket().close(ignored);
        im->ws.next_layer().resume();  // a parked read fails now and ends the session
    });
    wait_closed(std::chrono::seconds(5));
}

std::optional<ws_close> ws_client::wait_closed(std::chrono::milliseconds timeout) {
    resume_reading();
    std::unique_lock lock(impl_->mu);
    if (!impl_->cv.wait_for(lock, timeout, [this] { return impl_->ended; })) return std::nullopt;
    return impl_->how;
}

bool ws_client::is_open() const noexcept {
    std::lock_guard lock(impl_->mu);
    return impl_->connected && !impl_->ended;
}

const json::value& payload_of(const json::value& frame, std::string_view key) {
    static const json::value null;
    if (!frame.is_object()) return null;
    auto p = frame.get_object().find("payload");
    if (p == frame.get_object().end() || !p->value().is_object()) return null;
    auto it = p->value().get_object().find(key);
    return it == p->value().get_object().end() ? null : it->value();
}

std::string stream_of(const json::value& frame) {
    if (!frame.is_object()) return {};
    return std::string(get_string(frame.get_object(), "stream"));
}

}  // namespace livebase::testing
