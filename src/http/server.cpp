// The HTTP/1.1 server: listener and sessions in the shape of Beast's advanced server. Policy
// (routing, request decoding, rendering, request ids, the ordered response queue) lives in the
// plain classes next to this file; sessions only adapt them to sockets.
//
// Behaviour where http.md is silent:
// - Timeouts: the first request on a connection must start and finish arriving within
//   read_timeout; between requests the connection may idle for idle_timeout; a request that has
//   started arriving must complete within read_timeout of its first byte; a response must be
//   written within max(idle_timeout, read_timeout). Expiry closes the connection without a 408.
//   While responses are outstanding the connection never idles out (slow api calls, long polls).
// - Unparseable requests (400), bodies over max_body (413, also decided from Content-Length
//   alone) and headers over max_header (431, the request line and fields together) are answered
//   and the connection closed: the byte stream can no longer be trusted. So are framing faults
//   found in the header before the body is read (http_detail::check_framing): an HTTP/1.1
//   request without exactly one Host (400), a Transfer-Encoding whose final coding is not
//   `chunked` (400) or with another coding before it (501), and Transfer-Encoding on HTTP/1.0
//   (400). A request-target over max_uri (414) keeps the connection. A target longer than
//   max_header as well gets 431 (the header limit trips first).
// - After its last response the server half-closes and discards the peer's unread bytes for a
//   short while (lingering close) so that the response is not lost to a TCP reset.
// - Draining (drain(accept_for)): /health and /health/ready answer 503 draining with
//   Retry-After: 1; every response carries Connection: close; a connection accepted during
//   the drain period answers every other request 503 "shutting down". Idle keep-alive
//   connections stay open until accepting stops plus k_drain_idle_grace, so a request sent as
//   the drain began is answered rather than reset. Every 503 carries Retry-After.
// - Over max_connections: 503 + Retry-After: 1 written at once, without reading the request (so
//   the X-Request-Id is generated, not echoed), then close. These connections are not counted.
// - Every response has Server, X-Request-Id and (except 204/304, which must not) Content-Length.
// - HEAD and OPTIONS get 405 like any other unsupported method, except HEAD of the console
//   (/_/...), which answers the GET's status and headers (Content-Length included) without the
//   body; `Expect: 100-continue` is not answered (clients send the body after their own wait).
// - The console (/_/, http_detail::static_files) and the API documents ({base}/schema,
//   {base}/schema/realtime) are public like health: no credentials are resolved and no
//   throttle token is taken. The documents describe the declared API, never records, and are
//   built once, on first request (the registry is read-only while serving).
// - Access log: one "request" line per response written: request_id, method, path (encoded,
//   without the query), status, ms (from the request being read to its response written),
//   bytes (the whole response on the wire). Metrics use the same latency.
// - Server-Sent Events (realtime.md "SSE"): `GET {base}/tasks/{id}` whose Accept contains
//   text/event-stream streams `event: task` snapshots (`id:` counts 1, 2, ...): the current
//   task at once, then a new one whenever its JSON changed (looked up again at each change
//   the change log reports), a `: keep-alive` comment after sse_keep_alive without output, and the
//   response ends after the snapshot of a finished task (or when the task disappears). HTTP/1.1
//   streams are chunked, HTTP/1.0 ones close-delimited. An SSE request is always the last on its
//   connection (Connection: close; pipelined requests after it are discarded, unanswered), also
//   when it is answered by a normal response (404 for an unknown or invisible task). A stream
//   never idles out; a stalled write times out like any response, and output waiting behind it
//   beyond sse_max_pending closes the connection. The peer closing ends the stream. drain()
//   completes the event being written, ends the response and closes; close_all() closes at once.
//   The access log line and metrics (route "{base}/tasks/{id}") are written when the stream
//   ends; bytes counts the whole stream. Change streams use a second timer (keep-alives).
// - Change streams (http.md section 4): `GET {base}/{c}/events?<filters>` subscribes through
//   the hub (Last-Event-ID or ?since= resumes) whatever the Accept header says (the path only
//   streams). Problems of the subscription (404 unknown collection, 400 bad filter, 410 history
//   gone, 429) are normal responses. The hub's frames are complete events; the session only
//   frames them as chunks. They reach the strand through a sink whose not-yet-taken bytes are
//   bounded like the pending output (sse_max_pending): a reader or strand that falls behind
//   closes the connection, and the client resumes with Last-Event-ID. A resume's replay comes
//   in pages: the hub asks for each next one with when_ready(), answered once what the stream
//   holds is down to a quarter of sse_max_pending. Streams are otherwise
//   handled like task streams (last response of the connection, keep-alive comments, drain,
//   access log at the end with `events` = events sent). The hub client is detached when the
//   stream ends, however it ends.
// - Live queries: a list with `observe=<subscriber>` registers the query on that WebSocket
//   through the hub and answers the list's page {"count", "next", "previous", "results"} plus
//   {"observer", "seq"}. Unknown subscriber, another caller's socket (or no hub) -> 404. It
//   never runs as a task.
// - The client's address (throttles, login attempts, op.client_ip, the WebSocket it upgrades
//   to) is the peer's, unless the peer is one of opts.trusted_proxies: then X-Forwarded-For
//   names it (resolve_client_address) and X-Forwarded-Proto: https makes the request https
//   (Secure cookie, the Origin check's scheme). opts.secure_cookie makes every request https.
// - /metrics answers 401 without `Authorization: Bearer <opts.metrics_token>` when one is set.
// - A cookie-only GET that api::has_effects() from another site (Origin, else Sec-Fetch-Site
//   cross-site/same-site) is refused with 403 before it runs.
// - WebSocket upgrades (set_upgrade_handler): the upgrade request is the connection's last
//   HTTP request; bytes after it belong to the WebSocket. Its slot waits its turn like any
//   response, then the connection is handed over instead of written to.
#include <algorithm>
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/error.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/serializer.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <chrono>
#include <filesystem>
#include <functional>
#include <limits>
#include <livebase/auth/auth.hpp>
#include <livebase/auth/rules.hpp>
#include <livebase/core/client_address.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/http/server.hpp>
#include <livebase/http/upgrade.hpp>
#include <livebase/realtime/hub.hpp>
#include <livebase/tasks/task.hpp>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "http/events_door.hpp"
#include "http/framing.hpp"
#include "http/origin.hpp"
#include "http/request_id.hpp"
#include "http/response_queue.hpp"
#include "http/rest_door.hpp"
#include "http/router.hpp"
#include "http/schema_doc.hpp"
#include "http/sse.hpp"
#include "http/static_files.hpp"

namespace livebase {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using steady = std::chrono::steady_clock;
using error_code = boost::system::error_code;
using strand_type = net::strand<net::io_context::executor_type>;

/// Bytes asked of the socket per read while waiting for a request or discarding.
constexpr std::size_t k_read_chunk = 8192;
/// After our last response on a connection we half-close and keep reading (and discarding) the
/// peer's unread bytes for at most this long before closing: closing a socket with unread data
/// sends a RST that can destroy the response (e.g. a 413) before the client has read it.
constexpr std::chrono::milliseconds k_linger{1500};
/// Back-off after a failed accept (e.g. EMFILE) so the loop does not spin.
constexpr std::chrono::milliseconds k_accept_retry{100};
// Draining: an idle keep-alive connection stays open this long after the server stops
// accepting, so that a request its client sent just before it saw the drain is answered
// (with Connection: close) instead of reset.
constexpr std::chrono::milliseconds k_drain_idle_grace{500};
/// How often a task stream asks the api for the task.

class session;

/// State shared by the listener and every session. Outlives them all (each holds a shared_ptr).
struct server_state {
    server_state(net::io_context& ioc, api& a, const server_options& opts, logger& log, metrics& m)
        : ioc(ioc), a(a), opts(opts), log(log), m(m), router(opts.base_path),
          console(console_options(opts)) {
        // The app's configuration was validated on load; a bad list given in code trusts no one.
        if (auto t = address_set::parse(opts.trusted_proxies))
            trusted = std::move(*t);
        else
            log.warn("trusted_proxies ignored", {{"error", t.error().detail}});
    }

    static http_detail::static_files::options console_options(const server_options& o) {
        http_detail::static_files::options c;
        c.root = o.console_dir.empty() ? std::filesystem::path("console/dist")
                                       : std::filesystem::path(o.console_dir);
        return c;
    }

    net::io_context& ioc;
    api& a;
    const server_options opts;
    logger& log;
    metrics& m;
    // Set before listen() (set_hub, set_upgrade_handler), read-only once serving.
    http_detail::router router;
    hub* realtime = nullptr;
    std::function<void(websocket_upgrade&&)> on_upgrade;
    http_auth_options auth;
    std::string websocket_path;  // "" without an upgrade handler
    const http_detail::static_files console;
    address_set trusted;  // server.trusted_proxies (read-only once constructed)

    /// The API documents, serialized once on first request (the registry no longer changes).
    std::mutex docs_mu;
    std::shared_ptr<const std::string> openapi, asyncapi;

    std::atomic<bool> draining{false};
    std::atomic<bool> stopped{false};  // close_all(): connections accepted late close at once
    std::atomic<std::size_t> open{0};

    std::mutex mu;  // guards sessions
    std::unordered_map<const session*, std::weak_ptr<session>> sessions;

    void opened(const std::shared_ptr<session>& s) {
        open.fetch_add(1);
        m.connection_opened();
        std::lock_guard lock(mu);
        sessions.emplace(s.get(), s);
    }
    void closed(const session* s) noexcept {
        open.fetch_sub(1);
        m.connection_closed();
        std::lock_guard lock(mu);
        sessions.erase(s);
    }
    std::vector<std::shared_ptr<session>> snapshot() {
        std::vector<std::shared_ptr<session>> out;
        std::lock_guard lock(mu);
        out.reserve(sessions.size());
        for (auto& [p, w] : sessions)
            if (auto s = w.lock()) out.push_back(std::move(s));
        return out;
    }
};

/// The metrics label of a method: known verbs as themselves, anything else "OTHER" so a client
/// cannot grow the label set.
std::string method_label(const bhttp::request<bhttp::string_body>& req) {
    if (req.method() == bhttp::verb::unknown) return "OTHER";
    return std::string(bhttp::to_string(req.method()));
}

/// One queued response and what the access log needs about its request.
struct slot {
    std::string request_id;
    std::string method;
    std::string path;  // encoded, without the query
    std::string route = "unmatched";
    std::string client;  // the client's address (resolve_client_address): throttles, op.client_ip
    bool https = false;  // a trusted proxy says the client reached it over https
    steady::time_point start = steady::now();
    unsigned version = 11;
    bool close = false;  // this response ends the connection
    bool clear_cookie = false;  // the response ends the session cookie (logout, stale cookie)
    bool stream = false;  // an SSE stream: session::sse_ holds its state, res stays null
    bool head = false;  // HEAD of the console: the body is left out, not its length (other
                        // routes answer HEAD with 405, body included, as before)
    std::shared_ptr<bhttp::response<bhttp::string_body>> res;
    // A WebSocket upgrade: the connection is handed over when this slot reaches the front.
    std::shared_ptr<bhttp::request<bhttp::string_body>> upgrade;
};

class hub_sink;

/// An SSE stream in progress; at most one per connection, always its last response. Task
/// streams poll the api (an authenticated one is also a hub client, for revocations); change
/// streams get frames from the hub.
struct sse_stream {
    std::uint64_t slot_id = 0;
    operation op;  // task streams: the retrieve the stream repeats
    // Change streams and authenticated task streams: the sink (kept alive here, the hub holds
    // it weakly) and the hub client, "" once detached.
    std::shared_ptr<hub_sink> sink;
    std::string client;
    bool chunked = true;
    std::unique_ptr<bhttp::response<bhttp::empty_body>> header;
    std::unique_ptr<bhttp::response_serializer<bhttp::empty_body>> serializer;  // refers to header
    std::string last;      // JSON of the last snapshot sent
    std::uint64_t seq = 0;  // events sent (task streams: also the id: of the last one)
    std::string out;       // framed bytes waiting for the socket (bounded by sse_max_pending)
    std::string inflight;  // bytes being written
    steady::time_point last_output = steady::now();
    std::size_t bytes = 0;  // written so far, header included
    bool header_sent = false;
    bool ending = false;  // no more snapshots: flush, end the response, close
    bool terminated = false;  // the terminating chunk is queued
    bool done = false;  // response complete
    bool logged = false;
    std::function<void()> ready;  // the hub's when_ready() notice, waiting for room
};

/// The hub's side of a change stream. deliver() runs on the hub thread and must not block, so it
/// only counts the bytes and posts the frames to the connection's strand. Bytes posted but not
/// yet taken there are bounded by `limit` (an empty backlog always takes one batch, so a large
/// replay batch is not refused); past it the stream is closed as a slow reader, which then
/// resumes with Last-Event-ID. Nothing is dropped silently.
class hub_sink final : public event_sink {
public:
    hub_sink(std::weak_ptr<session> s, net::any_io_executor ex, std::size_t limit)
        : session_(std::move(s)), ex_(std::move(ex)), limit_(limit) {}

    void deliver(std::vector<std::shared_ptr<const std::string>> frames) override;
    /// The stream's credentials ended (logout, revocation, password change, disabled user):
    /// the stream ends after what was delivered before, and the client reconnects.
    void revoked() override;

    /// Asks the connection's strand to call `ready` once the stream has room for a resume's
    /// next page (session::on_hub_when_ready).
    void when_ready(std::function<void()> ready) override;
    /// A resume cannot go on without a gap: the stream ends after what was delivered, and the
    /// client resumes with Last-Event-ID.
    void resync() override;

    /// The strand took `n` posted bytes.
    void taken(std::size_t n) noexcept { backlog_.fetch_sub(n); }
    /// Bytes posted but not yet taken.
    std::size_t backlog() const noexcept { return backlog_.load(); }

private:
    const std::weak_ptr<session> session_;
    const net::any_io_executor ex_;
    const std::size_t limit_;
    std::atomic<std::size_t> backlog_{0};
    bool overflowed_ = false;  // the hub thread's only (deliver is never concurrent)
};

//------------------------------------------------------------------------------

/// One connection. Every member is touched only on the connection's strand.
class session : public std::enable_shared_from_this<session> {
    using response_queue_id = http_detail::response_queue<slot>::id_type;

public:
    session(tcp::socket&& socket, std::shared_ptr<server_state> state)
        : stream_(std::move(socket)),
          ex_(stream_.get_executor()),
          timer_(ex_),
          poll_timer_(ex_),
          queue_(state->opts.pipeline_limit),
          state_(std::move(state)) {
        error_code ec;
        auto peer = stream_.socket().remote_endpoint(ec);
        if (!ec) peer_ip_ = peer.address().to_string();
        peer_ip_ = canonical_address(peer_ip_).value_or(peer_ip_);  // "::ffff:1.2.3.4" -> IPv4
    }

    ~session() {
        if (counted_ && !closed_) state_->closed(this);
        release_hub();  // handlers destroyed unrun (the io_context stopped) end a stream too
    }

    /// Starts serving; called once by the listener right after accept.
    void start() {
        counted_ = true;
        state_->opened(shared_from_this());
        net::dispatch(ex_, [self = shared_from_this()] {
            if (self->state_->stopped.load()) return self->close_socket();
            // Accepted during the drain period: every request answers 503 draining.
            self->late_ = self->state_->draining.load();
            self->do_read();
        });
    }

    /// Answers 503 at once and closes, without reading a request (over max_connections).
    void reject() {
        net::dispatch(ex_, [self = shared_from_this()] {
            self->closing_ = true;
            slot s;
            s.request_id = make_ulid();
            s.close = true;
            auto id = self->queue_.push(std::move(s));
            auto parts = http_detail::render_problem(
                problem::unavailable("The server has too many open connections."));
            self->respond(id, std::move(parts));
        });
    }

    /// Graceful: every response from now on carries `Connection: close`, and a connection
    /// that is (or becomes) idle stays open until `idle_until`, so that a request the client
    /// sent just now, even right after a response written before the drain, is still answered
    /// rather than reset.
    void drain(steady::time_point idle_until) {
        net::dispatch(ex_, [self = shared_from_this(), idle_until] {
            if (self->closed_) return;
            if (self->sse_ && !self->sse_->done) {  // finish the current event, then close
                self->closing_ = true;
                self->sse_->ending = true;
                self->poll_timer_.cancel();
                return self->pump();
            }
            // Idle or busy alike: a response already on its way did not say Connection: close,
            // so the client may send its next request right after it. Requests read from now on
            // are answered with Connection: close; once idle, the connection closes at
            // `idle_until` (or when that answer is written).
            if (!self->drain_until_ || idle_until < *self->drain_until_) self->drain_until_ = idle_until;
            self->update_deadline();
        });
    }

    void force_close() {
        net::dispatch(ex_, [self = shared_from_this()] { self->close_socket(); });
    }

    /// Frames of this connection's change stream, posted by its hub_sink (on the strand).
    void on_hub_frames(std::vector<std::shared_ptr<const std::string>> frames, std::size_t bytes) {
        if (sse_ && sse_->sink) sse_->sink->taken(bytes);
        if (closed_ || !sse_ || sse_->ending || sse_->client.empty()) return;
        std::string text;
        text.reserve(bytes);
        for (const auto& f : frames)
            if (f) text += *f;
        sse_->seq += frames.size();
        add_output(text);
        if (closed_) return;
        pump();
    }

    /// The credentials of this connection's change stream ended (posted by hub_sink).
    void on_hub_revoked() { end_stream("stream credentials revoked"); }

    /// The hub waits for room to send a resume's next page (posted by hub_sink).
    void on_hub_when_ready(std::function<void()> ready) {
        if (closed_ || !sse_ || sse_->ending || sse_->client.empty()) return;
        sse_->ready = std::move(ready);
        notify_ready();
    }

    /// The hub cannot go on with this stream's resume without a gap (posted by hub_sink).
    void on_hub_resync() { end_stream("stream ended for a resync"); }

    /// The stream ends after what was delivered (the client reconnects or resumes).
    void end_stream(std::string_view why) {
        if (closed_ || !sse_ || sse_->ending || sse_->client.empty()) return;
        state_->log.info(why, {{"client", sse_->client}});
        sse_->ending = true;
        poll_timer_.cancel();
        pump();
    }

    /// The hub delivered faster than the strand took the frames (posted by hub_sink).
    void on_hub_overflow() {
        if (closed_) return;
        state_->log.debug("stream reader too slow", {{"pending", "hub backlog"}});
        close_socket();
    }

private:
    enum class read_phase {
        none,        // no read pending
        awaiting,    // waiting for the first bytes of a request
        partial,     // a request has started arriving
        discarding,  // closing: reading and dropping whatever the peer still sends
    };

    // ---- reading ----

    void do_read() {
        if (closing_ || closed_ || phase_ != read_phase::none || queue_.full()) return;
        const auto& o = state_->opts;
        parser_.emplace();
        parser_->header_limit(static_cast<std::uint32_t>(
            std::min<std::size_t>(o.max_header, std::numeric_limits<std::uint32_t>::max())));
        parser_->body_limit(o.max_body);
        if (buffer_.size() > 0) return start_request();  // pipelined bytes already here
        phase_ = read_phase::awaiting;
        if (queue_.empty() && !writing_) idle_since_ = steady::now();
        update_deadline();
        stream_.async_read_some(
            buffer_.prepare(k_read_chunk),
            beast::bind_front_handler(&session::on_first_bytes, shared_from_this()));
    }

    void on_first_bytes(error_code ec, std::size_t n) {
        phase_ = read_phase::none;
        if (closed_) return;
        if (ec) return on_read_error(ec, "read");
        buffer_.commit(n);
        if (closing_) {  // drained while idle-waiting: the peer's request is not served
            buffer_.consume(buffer_.size());
            return do_discard();
        }
        start_request();
    }

    void start_request() {
        phase_ = read_phase::partial;
        request_since_ = steady::now();
        update_deadline();
        bhttp::async_read_header(
            stream_, buffer_, *parser_,
            beast::bind_front_handler(&session::on_header, shared_from_this()));
    }

    /// The header is parsed (`n` is its size in bytes) or reading it failed. The framing is
    /// checked before any of the body is read: a body whose length cannot be determined must
    /// not be read as the next request.
    void on_header(error_code ec, std::size_t n) {
        if (closed_) return;
        if (ec) return on_read(ec, n);
        const auto& req = parser_->get();
        http_detail::framing_facts facts;
        facts.version = req.version();
        facts.header_bytes = n;
        facts.max_header = state_->opts.max_header;
        for (const auto& f : req) {
            if (f.name() == bhttp::field::transfer_encoding)
                facts.transfer_encoding.push_back(f.value());
            else if (f.name() == bhttp::field::host)
                facts.host.push_back(f.value());
        }
        if (auto p = http_detail::check_framing(facts)) {
            phase_ = read_phase::none;
            return reply_and_close(http_detail::render_problem(*p));
        }
        if (parser_->is_done()) return on_read({}, 0);
        bhttp::async_read(stream_, buffer_, *parser_,
                          beast::bind_front_handler(&session::on_read, shared_from_this()));
    }

    void on_read(error_code ec, std::size_t) {
        phase_ = read_phase::none;
        if (closed_) return;
        if (ec == bhttp::error::end_of_stream || ec == bhttp::error::partial_message)
            return on_read_error(net::error::eof, "read");
        if (ec == bhttp::error::body_limit)
            return reply_and_close(http_detail::render_problem(problem::payload_too_large()));
        if (ec == bhttp::error::header_limit)
            return reply_and_close(
                http_detail::render_problem(http_detail::header_fields_too_large()));
        if (ec && ec.category() == bhttp::make_error_code(bhttp::error::bad_target).category())
            return reply_and_close(
                http_detail::render_problem(problem::bad_request("Malformed HTTP request.")));
        if (ec) return on_read_error(ec, "read");

        handle_request(parser_->release());
        parser_.reset();
        do_read();
        update_deadline();
    }

    /// The peer closed or the socket failed while reading.
    void on_read_error(error_code ec, const char* what) {
        if (ec == net::error::eof) {
            // A client may half-close after pipelining its requests: still answer them.
            peer_eof_ = true;
            closing_ = true;
            if (queue_.empty() && !writing_)
                close_socket();
            else
                update_deadline();
            return;
        }
        fail(ec, what);
        close_socket();
    }

    /// Answers a request that could not be parsed (413, 431, 400) and closes: the rest of the
    /// byte stream cannot be trusted to start at a request boundary.
    void reply_and_close(http_detail::response_parts parts) {
        slot s;
        s.request_id = make_ulid();
        if (parser_ && parser_->is_header_done()) {
            const auto& req = parser_->get();
            s.request_id = http_detail::accept_request_id(req["X-Request-Id"]);
            s.method = method_label(req);
            auto target = req.target();
            s.path =
                std::string(target.substr(0, std::min(target.find('?'), state_->opts.max_uri)));
            s.version = req.version();
        }
        s.close = true;
        closing_ = true;
        parser_.reset();
        auto id = queue_.push(std::move(s));
        respond(id, std::move(parts));
    }

    void do_discard() {
        phase_ = read_phase::discarding;
        stream_.async_read_some(
            buffer_.prepare(k_read_chunk),
            beast::bind_front_handler(&session::on_discard, shared_from_this()));
    }

    void on_discard(error_code ec, std::size_t) {
        phase_ = read_phase::none;
        if (closed_) return;
        if (ec) {
            peer_eof_ = true;
            // A stream's reader is gone when its peer closes: nobody would read the rest.
            if (lingering_ || (sse_ && !sse_->done) || (queue_.empty() && !writing_))
                close_socket();
            return;
        }
        buffer_.consume(buffer_.size());
        do_discard();
    }

    // ---- handling ----

    // The drain began after this request was read (its slot said keep-alive): its draining
    // answer still closes the connection.
    void close_after(response_queue_id id) {
        if (auto* s = queue_.find(id)) s->close = true;
        closing_ = true;
    }

    void handle_request(bhttp::request<bhttp::string_body> req) {
        slot s;
        s.request_id = http_detail::accept_request_id(req["X-Request-Id"]);
        s.method = method_label(req);
        s.version = req.version();
        s.close = !req.keep_alive() || state_->draining.load();
        if (s.close) closing_ = true;

        const auto target = req.target();
        s.path = std::string(target.substr(0, std::min(target.find('?'), state_->opts.max_uri)));
        resolve_client(req, s);
        served_any_ = true;
        auto id = queue_.push(s);

        if (target.size() > state_->opts.max_uri)
            return respond(id, http_detail::render_problem(http_detail::uri_too_long()));
        auto parts = http_detail::split_target(target);
        if (!parts) return respond(id, http_detail::render_problem(parts.error()));
        queue_.find(id)->path = parts->path;

        auto match = state_->router.match(req.method_string(), parts->path);
        queue_.find(id)->route = match.route;
        if (late_ && match.kind != http_detail::route_kind::health &&
            match.kind != http_detail::route_kind::ready)
            return respond(id, shutting_down());

        using http_detail::route_kind;
        switch (match.kind) {
            case route_kind::health: {
                // Liveness: the process serves. Still 200 while the storage is full or away
                // ("degraded", and why); readiness (/health/ready) is what turns 503 then.
                const bool draining = state_->draining.load();
                const auto storage = state_->a.db().condition();
                json::object body{{"status", draining ? "draining" : storage == "ok" ? "ok" : "degraded"}};
                if (storage != "ok") body["storage"] = storage;
                auto parts = http_detail::render_json(draining ? 503 : 200, body);
                if (draining) {
                    parts.headers.emplace_back("Retry-After", "1");
                    close_after(id);
                }
                return respond(id, std::move(parts));
            }
            case route_kind::ready: {
                // Readiness: 503 while draining or while the database cannot be reached.
                const bool draining = state_->draining.load();
                const auto storage = state_->a.db().condition();
                const bool away = storage == "unavailable";
                json::object body{{"status", draining ? "draining" : away ? "unavailable" : "ok"}};
                if (storage != "ok") body["storage"] = storage;
                auto parts = http_detail::render_json(draining || away ? 503 : 200, body);
                if (draining || away) parts.headers.emplace_back("Retry-After", draining ? "1" : "5");
                if (draining) close_after(id);
                return respond(id, std::move(parts));
            }
            case route_kind::metrics: {
                if (!state_->opts.metrics_token.empty() &&
                    !http_detail::token_matches(
                        http_detail::bearer_token(req[bhttp::field::authorization]),
                        state_->opts.metrics_token))
                    return respond(id, http_detail::render_problem(problem::unauthorized(
                                           "The metrics need the server's metrics token.")));
                http_detail::response_parts r;
                r.content_type = "text/plain; version=0.0.4; charset=utf-8";
                r.body = state_->m.render();
                return respond(id, std::move(r));
            }
            case route_kind::schema:
            case route_kind::schema_realtime:
                return respond(id, api_document(match.kind == route_kind::schema_realtime));
            case route_kind::not_found:
                return respond(id, http_detail::render_problem(problem::not_found()));
            case route_kind::method_not_allowed: {
                auto r = http_detail::render_problem(problem::method_not_allowed());
                r.headers.emplace_back("Allow", match.allow);
                return respond(id, std::move(r));
            }
            case route_kind::websocket:
                return on_upgrade_request(id, std::move(req));
            case route_kind::console: {
                queue_.find(id)->head = req.method() == bhttp::verb::head;
                std::optional<std::string_view> inm;
                if (auto it = req.find(bhttp::field::if_none_match); it != req.end())
                    inm = it->value();
                return respond(id, state_->console.serve(match.rest, inm));
            }
            case route_kind::events:
            case route_kind::records:
                break;
        }

        // Credentials: a Bearer token, else the session cookie.
        const http_auth_options& au = state_->auth;
        http_detail::request_credentials cred;
        if (au.auth)
            cred = http_detail::credentials_of(req[bhttp::field::authorization], req[bhttp::field::cookie]);
        const std::string& token = cred.token;
        const bool by_cookie = cred.by_cookie;
        if (token.empty())
            return serve(id, std::move(req), std::move(match), std::move(*parts), principal{}, false);
        // The usual case costs a hash and a map lookup here, on the strand.
        if (auto hit = au.auth->resolve_cached(token))
            return on_credentials(id, std::move(req), std::move(match), std::move(*parts),
                                  std::move(*hit), by_cookie);
        auto held = std::make_shared<std::tuple<bhttp::request<bhttp::string_body>,
                                                http_detail::route_match, http_detail::target_parts>>(
            std::move(req), std::move(match), std::move(*parts));
        au.auth->resolve(token, [self = shared_from_this(), id, held, by_cookie](result<principal> r) {
            net::post(self->ex_, [self, id, held, by_cookie, r = std::move(r)]() mutable {
                if (self->closed_) return;
                auto& [rq, m, pt] = *held;
                self->on_credentials(id, std::move(rq), std::move(m), std::move(pt), std::move(r),
                                     by_cookie);
            });
        });
    }

    void on_credentials(response_queue_id id, bhttp::request<bhttp::string_body> req,
                        http_detail::route_match match, http_detail::target_parts parts,
                        result<principal> who, bool by_cookie) {
        if (who) return serve(id, std::move(req), std::move(match), std::move(parts), std::move(*who), by_cookie);
        if (!by_cookie) {
            auto r = http_detail::render_problem(
                problem::unauthorized("Invalid or expired token."));
            return respond(id, std::move(r));
        }
        // A stale session cookie is dropped rather than failing every page the browser loads:
        // the caller continues anonymously and the response clears the cookie.
        queue_.find(id)->clear_cookie = true;
        serve(id, std::move(req), std::move(match), std::move(parts), principal{}, false);
    }

    /// The request with its caller known: CSRF and throttling checks, then the door.
    void serve(response_queue_id id, bhttp::request<bhttp::string_body> req,
               http_detail::route_match match, http_detail::target_parts target, principal who,
               bool by_cookie) {
        auto* parts = &target;
        // The resolved client address (trusted proxies): anonymous callers are known by it.
        who.address = queue_.find(id)->client;
        const http_auth_options& au = state_->auth;
        const auto method = req.method();
        const bool unsafe = method != bhttp::verb::get && method != bhttp::verb::head &&
                            method != bhttp::verb::options;
        if (by_cookie && unsafe) {
            // A browser attaches the cookie to cross-site requests too: an unsafe request
            // authenticated by it must come from an allowed origin (http.md section 5).
            auto it = req.find(bhttp::field::origin);
            if (it == req.end() ||
                !http_detail::origin_allowed(it->value(), req[bhttp::field::host],
                                             state_->opts.cors_origins, request_scheme(id)))
                return respond(id, http_detail::render_problem(problem::forbidden(
                                       "Origin check failed: a cookie-authenticated request must "
                                       "come from an allowed origin.")));
        }
        if (au.limiter) {
            const rate& r = who.authenticated() ? au.user : au.anonymous;
            if (auto wait = au.limiter->take(throttle_key(who, queue_.find(id)->client), r))
                return respond(id, throttled(*wait));
        }
        if (match.kind == http_detail::route_kind::events)
            return start_events(id, req, match.op.collection, parts->query, std::move(who));

        operation op = std::move(match.op);
        op.who = std::move(who);
        op.client_ip = queue_.find(id)->client;
        op.request_id = queue_.find(id)->request_id;
        op.path = parts->path;
        http_detail::request_view view;
        view.method = req.method_string();
        view.content_type = req[bhttp::field::content_type];
        if (auto it = req.find(bhttp::field::if_match); it != req.end())
            view.if_match = it->value();
        if (auto it = req.find("Prefer"); it != req.end()) view.prefer = it->value();
        if (auto it = req.find("Idempotency-Key"); it != req.end()) view.idempotency_key = it->value();
        view.body = req.body();
        if (auto decoded = http_detail::decode_request(op, view, parts->query); !decoded)
            return respond(id, http_detail::render_problem(decoded.error()));
        if (by_cookie && !unsafe && state_->a.has_effects(op) && !same_site_request(req, id))
            // A SameSite=Lax cookie rides along on another site's links and redirects: a GET
            // that starts work needs the site's own page or a Bearer token.
            return respond(id, http_detail::render_problem(problem::forbidden(
                                   "This request starts work: with the session cookie it must "
                                   "come from this site (or use a Bearer token).")));

        if (op.kind == op_kind::list) {
            auto observe = http_detail::observe_param(op.params);
            if (!observe) return respond(id, http_detail::render_problem(observe.error()));
            if (*observe) return start_observe(id, std::move(**observe), std::move(op));
        }

        // The session cookie follows the token a login returns, and a logout ends it.
        int cookie = 0;  // 0 untouched, 1 set from the login's token, 2 cleared
        if (op.collection == "auth" && op.kind == op_kind::action)
            cookie = op.action == "login" ? 1 : op.action == "logout" ? 2 : 0;

        if (http_detail::is_task_stream_request(view.method, op) &&
            http_detail::accepts_event_stream(req[bhttp::field::accept])) {
            // The stream is the connection's last response, whatever the task lookup answers.
            slot* sp = queue_.find(id);
            sp->close = true;
            sp->route = state_->router.base_path() + "/tasks/{id}";
            closing_ = true;
            op.prefer_wait.reset();  // a long poll would delay the first snapshot
            operation again = op;
            state_->a.execute(std::move(op), [self = shared_from_this(), id,
                                              again = std::move(again)](outcome o) mutable {
                net::post(self->ex_, [self, id, again = std::move(again),
                                      o = std::move(o)]() mutable {
                    self->start_stream(id, std::move(again), std::move(o));
                });
            });
            return;
        }

        std::optional<std::string> if_none_match;
        if (op.kind == op_kind::retrieve)
            if (auto it = req.find(bhttp::field::if_none_match); it != req.end())
                if_none_match = std::string(it->value());

        // `done` may run on any thread (a store thread, or inline): hop back to the strand.
        state_->a.execute(std::move(op), [self = shared_from_this(), id, cookie,
                                          inm = std::move(if_none_match)](outcome o) {
            net::post(self->ex_, [self, id, inm, cookie, o = std::move(o)]() mutable {
                auto parts = inm ? http_detail::render_outcome(o, std::string_view(*inm))
                                 : http_detail::render_outcome(o);
                if (cookie == 1 && o.status == 200 && o.body.is_object())
                    self->set_session_cookie(id, parts, get_string(o.body.get_object(), "token"));
                else if (cookie == 2 && o.status == 204)
                    self->queue_.find(id) ? void(self->queue_.find(id)->clear_cookie = true) : void();
                self->respond(id, std::move(parts));
            });
        });
    }

    /// GET {base}/schema (OpenAPI) or {base}/schema/realtime (AsyncAPI).
    http_detail::response_parts api_document(bool realtime) const {
        auto& st = *state_;
        std::shared_ptr<const std::string> doc;
        {
            std::lock_guard lock(st.docs_mu);
            auto& slot = realtime ? st.asyncapi : st.openapi;
            if (!slot) {
                http_detail::schema_doc_options o;
                o.base_path = st.router.base_path();
                o.websocket_path = st.websocket_path;
                o.auth = st.auth.auth != nullptr;
                o.tasks = true;  // /api/tasks answers 404 on an api without tasks; the app has them
                slot = std::make_shared<const std::string>(to_json_text(
                    realtime ? http_detail::asyncapi_document(st.a.reg(), o)
                             : http_detail::openapi_document(st.a.reg(), o)));
            }
            doc = slot;
        }
        http_detail::response_parts r;
        r.content_type = "application/json";
        r.body = *doc;
        r.headers.emplace_back("Cache-Control", "no-cache");
        return r;
    }

    /// `Set-Cookie` of a new session: HttpOnly, SameSite=Lax (http.md section 5), for the whole
    /// site, expiring with the token.
    void set_session_cookie(response_queue_id id, http_detail::response_parts& parts,
                            std::string_view token) {
        if (token.empty()) return;
        const auto max_age = std::chrono::duration_cast<std::chrono::seconds>(state_->auth.token_ttl).count();
        parts.headers.emplace_back(
            "Set-Cookie", std::string(http_detail::k_session_cookie) + "=" + std::string(token) +
                              "; Path=/; Max-Age=" + std::to_string(max_age) +
                              "; HttpOnly; SameSite=Lax" + (request_scheme(id) == "https" ? "; Secure" : ""));
    }

    /// The client's address and scheme for slot `s`: X-Forwarded-For and X-Forwarded-Proto are
    /// believed only from server.trusted_proxies (resolve_client_address).
    void resolve_client(const bhttp::request<bhttp::string_body>& req, slot& s) const {
        const auto& trusted = state_->trusted;
        if (trusted.empty() || !trusted.contains(peer_ip_)) {
            s.client = peer_ip_;
            return;
        }
        std::vector<std::string_view> xff;
        std::string_view proto;
        for (const auto& f : req) {
            if (beast::iequals(f.name_string(), "X-Forwarded-For"))
                xff.push_back(f.value());
            else if (beast::iequals(f.name_string(), "X-Forwarded-Proto"))
                proto = f.value();  // the last one: the nearest proxy's
        }
        s.client = resolve_client_address(peer_ip_, xff, trusted);
        if (auto comma = proto.rfind(','); comma != std::string_view::npos)
            proto = proto.substr(comma + 1);
        while (!proto.empty() && (proto.front() == ' ' || proto.front() == '\t')) proto.remove_prefix(1);
        while (!proto.empty() && (proto.back() == ' ' || proto.back() == '\t')) proto.remove_suffix(1);
        s.https = beast::iequals(proto, "https");
    }

    /// Whether a (cookie-authenticated) request comes from this site: its Origin, when sent,
    /// passes the Origin check; else Sec-Fetch-Site, when sent, says same-origin or none (the
    /// user typed the address). A request with neither (an old browser, a non-browser client)
    /// is not judged.
    bool same_site_request(const bhttp::request<bhttp::string_body>& req, response_queue_id id) {
        if (auto it = req.find(bhttp::field::origin); it != req.end())
            return http_detail::origin_allowed(it->value(), req[bhttp::field::host],
                                               state_->opts.cors_origins, request_scheme(id));
        if (auto it = req.find("Sec-Fetch-Site"); it != req.end())
            return beast::iequals(it->value(), "same-origin") || beast::iequals(it->value(), "none");
        return true;
    }

    /// "https" when the client reached us (or a trusted proxy) over TLS, or when the server is
    /// configured as served over https (secure_cookie); else "http".
    std::string_view request_scheme(response_queue_id id) {
        const slot* s = queue_.find(id);
        return state_->opts.secure_cookie || (s && s->https) ? "https" : "http";
    }

    static http_detail::response_parts throttled(std::chrono::milliseconds wait) {
        const auto seconds = std::to_string(retry_after_seconds(wait));
        auto parts = http_detail::render_problem(problem::too_many_requests(
            "Request was throttled. Expected available in " + seconds + " seconds."));
        parts.headers.emplace_back("Retry-After", seconds);
        return parts;
    }

    /// Fills slot `id` with its response and writes whatever is ready at the front.
    void respond(response_queue_id id, http_detail::response_parts parts) {
        slot* s = queue_.find(id);
        if (!s) return;
        if (s->clear_cookie)
            parts.headers.emplace_back(
                "Set-Cookie", std::string(http_detail::k_session_cookie) +
                                  "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" +
                                  (state_->opts.secure_cookie || s->https ? "; Secure" : ""));
        s->res = make_response(*s, std::move(parts));
        if (s->head && s->res->has_content_length()) {
            // HEAD: the headers of the GET, Content-Length included, and no body.
            const auto length = s->res->body().size();
            s->res->body().clear();
            s->res->content_length(length);
        }
        queue_.set_ready(id);
        do_write();
    }

    static std::shared_ptr<bhttp::response<bhttp::string_body>> make_response(
        const slot& s, http_detail::response_parts parts) {
        auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
            static_cast<bhttp::status>(parts.status), s.version);
        res->set(bhttp::field::server, "livebase");
        res->set("X-Request-Id", s.request_id);
        for (auto& [name, value] : parts.headers) res->insert(name, value);
        const bool bodiless = parts.status == 204 || parts.status == 304 || parts.status < 200;
        if (!bodiless) {
            if (!parts.content_type.empty())
                res->set(bhttp::field::content_type, parts.content_type);
            res->body() = std::move(parts.body);
            res->content_length(res->body().size());
        }
        return res;
    }

    static http_detail::response_parts shutting_down() {
        // problem::unavailable carries retry_after 1: render_problem writes Retry-After.
        return http_detail::render_problem(problem::unavailable("The server is shutting down."));
    }

    // ---- WebSocket upgrades ----

    void on_upgrade_request(response_queue_id id, bhttp::request<bhttp::string_body> req) {
        if (!beast::websocket::is_upgrade(req)) {
            auto parts = http_detail::render_problem(
                problem::make(426, "/problems/upgrade-required", "Upgrade required",
                              "This path serves WebSocket connections: send an upgrade request."));
            parts.headers.emplace_back("Upgrade", "websocket");
            return respond(id, std::move(parts));
        }
        if (state_->draining.load()) return respond(id, shutting_down());
        // The bytes after an upgrade request are the WebSocket's: read no further requests.
        closing_ = true;
        queue_.find(id)->upgrade =
            std::make_shared<bhttp::request<bhttp::string_body>>(std::move(req));
        queue_.set_ready(id);
        do_write();
    }

    /// The upgrade's slot reached the front: every earlier response is written. Moves the
    /// connection to the WebSocket door; this session then only winds down.
    void hand_off() {
        slot& s = queue_.front();
        if (state_->draining.load() || state_->stopped.load() || !state_->on_upgrade ||
            phase_ != read_phase::none) {
            // Drained while earlier responses were written (a pending read cannot occur: the
            // upgrade stopped reading, but never hand over a socket with a read on it).
            s.upgrade.reset();
            s.close = true;
            s.res = make_response(s, shutting_down());
            return do_write();
        }
        const auto elapsed =
            std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - s.start);
        state_->m.observe_request(s.route, s.method, 101, elapsed);
        state_->log.info("request", {{"request_id", s.request_id},
                                     {"method", s.method},
                                     {"path", s.path},
                                     {"status", 101},
                                     {"ms", static_cast<double>(elapsed.count()) / 1000.0},
                                     {"bytes", 0}});
        websocket_upgrade up{std::move(stream_), std::move(*s.upgrade), std::move(buffer_),
                             std::move(s.request_id), s.client,
                             state_->opts.secure_cookie || s.https};
        queue_.pop();
        closed_ = true;  // every later handler of this session returns at once
        armed_ = false;
        timer_.cancel();
        poll_timer_.cancel();
        if (counted_) state_->closed(this);
        state_->on_upgrade(std::move(up));
    }

    // ---- change streams and live queries (hub) ----

    /// The collection `name` as the hub streams it (records of the registry, or tasks); null
    /// when unknown. The hub's own lookup has the last word (it also answers 404).
    const collection_def* find_streamable(std::string_view name) const {
        if (name == tasks_collection().name) return &tasks_collection();
        return state_->a.reg().find(name);
    }

    /// A feed of a whole collection (change stream, live query) is a list that keeps going:
    /// the list rule answers it (401, 403); rows are then filtered per event by what the
    /// caller may retrieve (the hub's may_see). Tasks have their own visibility, by submitter,
    /// which may_see applies per event.
    static std::optional<problem> feed_refusal(const collection_def& c, const principal& who) {
        if (&c == &tasks_collection()) return std::nullopt;
        const auto d = check_rule(c.rule_for("list"), who);
        if (d == decision::allow) return std::nullopt;
        return refusal_problem(d);
    }

    void start_events(response_queue_id id, const bhttp::request<bhttp::string_body>& req,
                      const std::string& name, const std::string& encoded_query, principal who) {
        // The stream is the connection's last response, whatever the subscription answers.
        queue_.find(id)->close = true;
        closing_ = true;
        hub* h = state_->realtime;
        const collection_def* c = find_streamable(name);
        if (!h || !c) return respond(id, http_detail::render_problem(problem::not_found()));
        if (auto refused = feed_refusal(*c, who))
            return respond(id, http_detail::render_problem(*refused));
        auto params = http_detail::decode_query(encoded_query);
        if (!params) return respond(id, http_detail::render_problem(params.error()));
        std::optional<std::string_view> last_event_id;
        if (auto it = req.find("Last-Event-ID"); it != req.end() && !it->value().empty())
            last_event_id = it->value();
        auto decoded = http_detail::decode_events_request(*c, *params, last_event_id);
        if (!decoded) return respond(id, http_detail::render_problem(decoded.error()));

        subscribe_request sub;
        sub.collection = name;
        sub.filter = std::move(decoded->filter);
        sub.since = decoded->since;
        auto sink = std::make_shared<hub_sink>(
            weak_from_this(), ex_, static_cast<std::size_t>(state_->opts.sse_max_pending));
        auto client = h->attach(sink, std::move(who), event_encoding::sse);
        // `done` runs on the hub thread before any frame of the subscription is delivered, and
        // both are posted to this strand, so the stream exists before its first frame arrives.
        h->subscribe(client, std::move(sub),
                     [self = shared_from_this(), id, client, sink](result<subscribed> r) mutable {
                         net::post(self->ex_, [self, id, client = std::move(client),
                                               sink = std::move(sink),
                                               r = std::move(r)]() mutable {
                             self->on_events_subscribed(id, std::move(client), std::move(sink),
                                                        std::move(r));
                         });
                     });
    }

    void on_events_subscribed(response_queue_id id, std::string client,
                              std::shared_ptr<hub_sink> sink, result<subscribed> r) {
        hub& h = *state_->realtime;
        slot* s = queue_.find(id);
        if (closed_ || !s) return h.detach(client);
        if (!r) {
            h.detach(client);
            return respond(id, http_detail::render_problem(r.error()));
        }
        auto& st = begin_sse(id, *s);
        st.sink = std::move(sink);
        st.client = std::move(client);
        if (state_->draining.load()) st.ending = true;  // the head, then close
        queue_.set_ready(id);
        if (phase_ == read_phase::none) do_discard();  // notices the peer going away
        do_write();
        if (sse_ && !sse_->ending && !closed_) schedule_keep_alive();
        update_deadline();
    }

    void schedule_keep_alive() {
        poll_timer_.expires_at(sse_->last_output + keep_alive_interval());
        poll_timer_.async_wait(
            beast::bind_front_handler(&session::on_keep_alive_timer, shared_from_this()));
    }

    void on_keep_alive_timer(error_code ec) {
        if (ec || closed_ || !sse_ || sse_->ending || sse_->done) return;
        if (steady::now() - sse_->last_output >= keep_alive_interval()) {
            add_output(http_detail::format_sse_comment("keep-alive"));
            if (closed_) return;
            pump();
        }
        schedule_keep_alive();
    }

    std::chrono::milliseconds keep_alive_interval() const {
        // A zero interval would spin the timer.
        return std::max(state_->opts.sse_keep_alive, std::chrono::milliseconds(10));
    }

    /// Ends this connection's hub client (idempotent).
    void release_hub() noexcept {
        if (!sse_ || sse_->client.empty() || !state_->realtime) return;
        state_->realtime->detach(sse_->client);
        sse_->client.clear();
    }

    void start_observe(response_queue_id id, std::string subscriber, operation op) {
        hub* h = state_->realtime;
        if (!h)
            return respond(id,
                           http_detail::render_problem(problem::not_found("Unknown subscriber.")));
        const collection_def* c = find_streamable(op.collection);
        if (!c) return respond(id, http_detail::render_problem(problem::not_found()));
        // The caller must be allowed the list; the window itself is what the socket's user may
        // retrieve (the hub narrows it with that principal).
        if (auto refused = feed_refusal(*c, op.who))
            return respond(id, http_detail::render_problem(*refused));
        auto q = http_detail::decode_observe_query(*c, op.params);
        if (!q) return respond(id, http_detail::render_problem(q.error()));
        // GET /api/tasks lists the newest first unless told otherwise: so does its live query.
        if (c == &tasks_collection()) {
            auto& ordering = (*q)["ordering"];
            if (ordering.is_array() && ordering.get_array().empty())
                ordering.get_array().emplace_back("-created");
        }
        // The page's links (limit and offset as the plain list reads them).
        auto window = parse_query_params(*c, op.params);
        if (!window) return respond(id, http_detail::render_problem(window.error()));
        observe_request req;
        req.collection = op.collection;
        req.query = std::move(*q);
        req.caller = op.who;
        h->observe(subscriber, std::move(req), [self = shared_from_this(), id, op = std::move(op),
                                                window = std::move(*window)](result<observed> r) {
            net::post(self->ex_, [self, id, op = std::move(op), window = std::move(window),
                                  r = std::move(r)]() mutable {
                if (!r) return self->respond(id, http_detail::render_problem(r.error()));
                // The list's page shape, plus what the socket's diffs refer to.
                json::object body = api::list_page(op, window, r->count);
                body["results"] = std::move(r->items);
                body["observer"] = r->observer;
                body["seq"] = r->seq;
                self->respond(id, http_detail::render_json(200, body));
            });
        });
    }

    // ---- task streams (SSE) ----

    /// The first lookup of a stream answered: a task starts the stream, anything else (404)
    /// is the normal response.
    void start_stream(response_queue_id id, operation op, outcome o) {
        slot* s = queue_.find(id);
        if (!s || closed_) return;
        if (o.is_problem || !o.body.is_object() || (o.status != 200 && o.status != 303))
            return respond(id, http_detail::render_outcome(o));
        auto& st = begin_sse(id, *s);
        st.op = std::move(op);
        // A hub client without subscriptions, so that the end of the credentials (logout,
        // revocation, password change, a disabled user; from any process) ends this stream as
        // it ends change streams: the retrieve it repeats would keep its old identity.
        if (st.op.who.authenticated() && state_->realtime) {
            auto sink = std::make_shared<hub_sink>(weak_from_this(), ex_,
                                                   static_cast<std::size_t>(state_->opts.sse_max_pending));
            st.client = state_->realtime->attach(sink, st.op.who, event_encoding::sse);
            st.sink = std::move(sink);
        }
        if (state_->draining.load()) st.ending = true;  // one snapshot, then close
        add_snapshot(o.body);
        if (closed_) return;
        queue_.set_ready(id);
        if (phase_ == read_phase::none) do_discard();  // notices the peer going away
        do_write();
        // The first lookup ran before the watch: look once more, so no change falls between.
        if (sse_ && !sse_->ending) watch_and_look();
        update_deadline();
    }

    /// Turns slot `id` into an SSE stream: the response head, not yet written.
    sse_stream& begin_sse(response_queue_id id, slot& s) {
        s.stream = true;
        auto& st = sse_.emplace();
        st.slot_id = id;
        st.chunked = s.version >= 11;  // HTTP/1.0 has no chunking: the close delimits the body
        st.header = std::make_unique<bhttp::response<bhttp::empty_body>>(bhttp::status::ok,
                                                                         s.version);
        auto& h = *st.header;
        h.set(bhttp::field::server, "livebase");
        h.set("X-Request-Id", s.request_id);
        h.set(bhttp::field::content_type, "text/event-stream");
        h.set(bhttp::field::cache_control, "no-cache");
        h.keep_alive(false);
        if (st.chunked) h.chunked(true);
        st.serializer = std::make_unique<bhttp::response_serializer<bhttp::empty_body>>(h);
        return st;
    }

    /// Queues `task` as an event unless it equals the last one sent.
    void add_snapshot(const json::value& task) {
        auto& st = *sse_;
        auto text = to_json_text(task);
        if (text == st.last) return;
        st.last = std::move(text);
        if (http_detail::task_snapshot_finished(task)) st.ending = true;
        add_output(http_detail::format_sse_event(++st.seq, "task", st.last));
    }

    void add_output(std::string_view bytes) {
        auto& st = *sse_;
        const bool waiting = !st.out.empty();  // the reader has not taken the previous output
        st.out += st.chunked ? http_detail::frame_chunk(bytes) : std::string(bytes);
        st.last_output = steady::now();
        if (waiting && st.out.size() > state_->opts.sse_max_pending) {
            state_->log.debug("stream reader too slow", {{"pending", st.out.size()}});
            close_socket();
        }
    }

    /// Waits for the task's next change (the change log reports it: api::watch_task) or the
    /// keep-alive interval, then looks the task up again. Watching first, then looking, leaves
    /// no gap where a change could slip by unseen.
    void watch_and_look() {
        const bool watching = state_->a.watch_task(sse_->op.id, sse_->last_output + keep_alive_interval(),
                                                   [self = shared_from_this()] {
                                                       net::post(self->ex_, [self] { self->on_task_change(); });
                                                   });
        // Not watching (shutting down, or too many watchers): this look is the last.
        state_->a.execute(sse_->op, [self = shared_from_this(), last = !watching](outcome o) {
            net::post(self->ex_, [self, last, o = std::move(o)]() mutable { self->on_poll(std::move(o), last); });
        });
    }

    void on_task_change() {
        if (closed_ || !sse_ || sse_->ending) return;
        if (steady::now() - sse_->last_output >= keep_alive_interval()) {
            add_output(http_detail::format_sse_comment("keep-alive"));
            if (closed_) return;
            pump();
        }
        watch_and_look();
    }

    void on_poll(outcome o, bool last) {
        if (closed_ || !sse_ || sse_->ending) return;
        if (o.is_problem || !o.body.is_object()) {
            // Purged, no longer visible, or the api is failing: end the stream (clients
            // reconnect and get the answer as a normal response).
            state_->log.debug("task stream ended by a problem", {{"status", o.status}});
            sse_->ending = true;
        } else {
            add_snapshot(o.body);
            if (closed_) return;
            if (last) sse_->ending = true;
        }
        pump();
    }

    /// Writes the stream's header, then its queued output; ends the response once `ending`
    /// and everything is written. Only when the stream's slot is at the front of the queue.
    void pump() {
        if (writing_ || closed_ || !sse_ || sse_->done) return;
        auto& st = *sse_;
        slot* front = queue_.ready_front();
        if (!front || front != queue_.find(st.slot_id)) return;
        if (!st.header_sent) {
            st.header_sent = true;
            begin_stream_write();
            return bhttp::async_write_header(
                stream_, *st.serializer,
                beast::bind_front_handler(&session::on_stream_write, shared_from_this()));
        }
        if (st.ending && st.chunked && !st.terminated) {
            st.terminated = true;
            st.out += "0\r\n\r\n";
        }
        if (!st.out.empty()) {
            st.inflight.clear();
            st.inflight.swap(st.out);
            begin_stream_write();
            return net::async_write(
                stream_, net::buffer(st.inflight),
                beast::bind_front_handler(&session::on_stream_write, shared_from_this()));
        }
        if (st.ending) end_stream();
    }

    void begin_stream_write() {
        writing_ = true;
        write_since_ = steady::now();
        update_deadline();
    }

    void on_stream_write(error_code ec, std::size_t bytes) {
        writing_ = false;
        if (sse_) sse_->bytes += bytes;
        if (closed_) return;
        if (ec) {
            fail(ec, "write");
            return close_socket();
        }
        pump();
        if (!closed_ && sse_) notify_ready();
        update_deadline();
    }

    /// Gives the hub its when_ready() notice once what the stream holds (posted, framed, being
    /// written) is down to a quarter of sse_max_pending: a resume's replay is paced by the
    /// reader and counted against the stream's bound.
    void notify_ready() {
        auto& st = *sse_;
        if (!st.ready) return;
        const std::size_t pending =
            st.out.size() + (writing_ ? st.inflight.size() : 0) + (st.sink ? st.sink->backlog() : 0);
        if (pending > state_->opts.sse_max_pending / 4) return;
        auto ready = std::exchange(st.ready, nullptr);
        ready();  // only queues a hub command
    }

    /// The response is complete: log it and close the connection like any last response.
    void end_stream() {
        sse_->done = true;
        release_hub();
        log_stream();
        queue_.pop();
        poll_timer_.cancel();
        finish();
    }

    void log_stream() {
        auto& st = *sse_;
        slot* s = queue_.find(st.slot_id);
        if (st.logged || !s) return;
        st.logged = true;
        const auto elapsed =
            std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - s->start);
        state_->m.observe_request(s->route, s->method, 200, elapsed);
        state_->log.info("request", {{"request_id", s->request_id},
                                     {"method", s->method},
                                     {"path", s->path},
                                     {"status", 200},
                                     {"ms", static_cast<double>(elapsed.count()) / 1000.0},
                                     {"bytes", st.bytes},
                                     {"events", st.seq}});
    }

    // ---- writing ----

    void do_write() {
        if (writing_ || closed_) return;
        slot* s = queue_.ready_front();
        if (!s) return;
        if (s->stream) return pump();
        if (s->upgrade) return hand_off();
        // When the connection is closing, the response that empties the queue is its last.
        if (closing_ && queue_.size() == 1 && phase_ != read_phase::partial) s->close = true;
        s->res->keep_alive(!s->close);
        writing_ = true;
        write_since_ = steady::now();
        update_deadline();
        bhttp::async_write(stream_, *s->res,
                           beast::bind_front_handler(&session::on_write, shared_from_this()));
    }

    void on_write(error_code ec, std::size_t bytes) {
        writing_ = false;
        {
            slot& s = queue_.front();
            const auto elapsed =
                std::chrono::duration_cast<std::chrono::microseconds>(steady::now() - s.start);
            const int status = static_cast<int>(s.res->result_int());
            state_->m.observe_request(s.route, s.method, status, elapsed);
            state_->log.info("request", {{"request_id", s.request_id},
                                         {"method", s.method},
                                         {"path", s.path},
                                         {"status", status},
                                         {"ms", static_cast<double>(elapsed.count()) / 1000.0},
                                         {"bytes", bytes}});
            if (s.close) closing_ = true;
        }
        const bool last = queue_.front().close;
        queue_.pop();
        if (closed_) return;
        if (ec) {
            fail(ec, "write");
            return close_socket();
        }
        if (last || (closing_ && queue_.empty() && phase_ != read_phase::partial)) return finish();
        if (queue_.empty()) idle_since_ = steady::now();
        do_write();
        do_read();
        update_deadline();
    }

    /// After the last response: half-close, then linger (discarding) until the peer closes.
    void finish() {
        error_code ec;
        stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
        if (ec || peer_eof_) return close_socket();
        lingering_ = true;
        linger_until_ = steady::now() + k_linger;
        update_deadline();
        if (phase_ == read_phase::none) do_discard();
        // An awaiting or discarding read already pending turns into the discard loop.
    }

    // ---- deadlines ----

    /// One timer per connection holds the earliest deadline of the current state. (tcp_stream's
    /// per-operation expiry does not fit: a read stays pending while pipelined responses are
    /// outstanding, and it must not time the connection out under a slow api call.)
    void update_deadline() {
        if (closed_) return;
        const auto& o = state_->opts;
        std::optional<steady::time_point> d;
        auto consider = [&](steady::time_point t) {
            if (!d || t < *d) d = t;
        };
        if (lingering_) consider(linger_until_);
        if (phase_ == read_phase::partial) consider(request_since_ + o.read_timeout);
        if (phase_ == read_phase::awaiting && queue_.empty() && !writing_) {
            // The first request must arrive within read_timeout; later ones within idle_timeout.
            consider(idle_since_ +
                     (served_any_ ? o.idle_timeout : std::min(o.idle_timeout, o.read_timeout)));
            if (drain_until_) consider(*drain_until_);  // draining: idle connections close then
        }
        if (writing_) consider(write_since_ + std::max(o.idle_timeout, o.read_timeout));
        if (!d) {
            if (armed_) timer_.cancel();
            armed_ = false;
            return;
        }
        if (armed_ && timer_.expiry() == *d) return;
        timer_.expires_at(*d);  // cancels a pending wait (its handler sees operation_aborted)
        armed_ = true;
        timer_.async_wait(beast::bind_front_handler(&session::on_timer, shared_from_this()));
    }

    void on_timer(error_code ec) {
        if (ec == net::error::operation_aborted || closed_) return;
        if (timer_.expiry() > steady::now()) return;  // re-armed after this wait completed
        armed_ = false;
        state_->log.debug("connection timeout", {{"phase", static_cast<int>(phase_)}});
        close_socket();
    }

    // ---- closing ----

    void close_socket() {
        if (closed_) return;
        closed_ = true;
        error_code ec;
        timer_.cancel();
        poll_timer_.cancel();
        if (sse_ && sse_->header_sent && !sse_->done) log_stream();  // the stream ends here
        release_hub();
        stream_.socket().close(ec);
        if (counted_) state_->closed(this);
    }

    void fail(error_code ec, const char* what) {
        if (ec == net::error::operation_aborted || ec == beast::error::timeout ||
            ec == net::error::connection_reset || ec == net::error::eof ||
            ec == net::error::broken_pipe || ec == net::error::bad_descriptor)
            return;
        state_->log.debug("connection error", {{"what", what}, {"error", ec.message()}});
    }

    beast::tcp_stream stream_;
    const net::any_io_executor ex_;  // the connection's strand
    net::steady_timer timer_;
    net::steady_timer poll_timer_;  // a task stream's polls and keep-alives
    std::optional<sse_stream> sse_;
    beast::flat_buffer buffer_;
    std::optional<bhttp::request_parser<bhttp::string_body>> parser_;
    http_detail::response_queue<slot> queue_;
    std::shared_ptr<server_state> state_;

    std::string peer_ip_;  // the client's address: anonymous throttling, login attempts
    read_phase phase_ = read_phase::none;
    bool writing_ = false;
    bool closing_ = false;  // read no further requests; close after the queued responses
    bool closed_ = false;
    bool lingering_ = false;
    bool peer_eof_ = false;
    bool armed_ = false;
    bool counted_ = false;  // in server_state::open (not for rejected connections)
    bool served_any_ = false;
    bool late_ = false;  // accepted while draining: requests answer 503 draining
    std::optional<steady::time_point> drain_until_;  // draining: an idle connection closes then
    steady::time_point idle_since_ = steady::now();
    steady::time_point request_since_;
    steady::time_point write_since_;
    steady::time_point linger_until_;
};

void hub_sink::deliver(std::vector<std::shared_ptr<const std::string>> frames) {
    if (overflowed_ || frames.empty()) return;
    std::size_t bytes = 0;
    for (const auto& f : frames)
        if (f) bytes += f->size();
    const std::size_t before = backlog_.fetch_add(bytes);
    if (before > 0 && before + bytes > limit_) {
        overflowed_ = true;
        backlog_.fetch_sub(bytes);
        net::post(ex_, [w = session_] {
            if (auto s = w.lock()) s->on_hub_overflow();
        });
        return;
    }
    net::post(ex_, [w = session_, frames = std::move(frames), bytes]() mutable {
        if (auto s = w.lock()) s->on_hub_frames(std::move(frames), bytes);
    });
}

void hub_sink::revoked() {
    net::post(ex_, [w = session_] {
        if (auto s = w.lock()) s->on_hub_revoked();
    });
}

void hub_sink::when_ready(std::function<void()> ready) {
    net::post(ex_, [w = session_, ready = std::move(ready)]() mutable {
        if (auto s = w.lock()) s->on_hub_when_ready(std::move(ready));
    });
}

void hub_sink::resync() {
    net::post(ex_, [w = session_] {
        if (auto s = w.lock()) s->on_hub_resync();
    });
}

//------------------------------------------------------------------------------

/// Accepts connections; each gets its own strand.
class listener : public std::enable_shared_from_this<listener> {
public:
    explicit listener(std::shared_ptr<server_state> state)
        : state_(std::move(state)),
          ex_(net::make_strand(state_->ioc)),
          acceptor_(ex_),
          retry_(ex_) {}

    result<void> listen() {
        const auto& o = state_->opts;
        error_code ec;
        tcp::endpoint ep;
        if (o.host.empty()) {
            ep = tcp::endpoint(net::ip::address_v4::any(), o.port);  // "" = every IPv4 interface
        } else if (auto addr = net::ip::make_address(o.host, ec); !ec) {
            ep = tcp::endpoint(addr, o.port);
        } else {
            tcp::resolver resolver(state_->ioc);
            auto results = resolver.resolve(o.host, std::to_string(o.port), ec);
            if (ec || results.empty()) return listen_problem("cannot resolve host", ec);
            ep = results.begin()->endpoint();
        }
        acceptor_.open(ep.protocol(), ec);
        if (ec) return listen_problem("open", ec);
        acceptor_.set_option(net::socket_base::reuse_address(true), ec);
        acceptor_.bind(ep, ec);
        if (ec) return listen_problem("bind", ec);
        acceptor_.listen(net::socket_base::max_listen_connections, ec);
        if (ec) return listen_problem("listen", ec);
        port_.store(acceptor_.local_endpoint(ec).port());
        net::dispatch(ex_, beast::bind_front_handler(&listener::do_accept, shared_from_this()));
        return {};
    }

    std::uint16_t port() const noexcept { return port_.load(); }

    void stop() {
        net::dispatch(ex_, [self = shared_from_this()] {
            error_code ec;
            self->stopped_ = true;
            self->acceptor_.close(ec);
            self->retry_.cancel();
        });
    }

private:
    problem listen_problem(const char* step, error_code ec) const {
        problem p = problem::internal();
        p.detail = "Cannot listen on " + state_->opts.host + ":" +
                   std::to_string(state_->opts.port) + " (" + step + "): " + ec.message();
        return p;
    }

    void do_accept() {
        if (stopped_) return;
        acceptor_.async_accept(net::make_strand(state_->ioc),
                               beast::bind_front_handler(&listener::on_accept, shared_from_this()));
    }

    void on_accept(error_code ec, tcp::socket socket) {
        if (stopped_ || ec == net::error::operation_aborted) return;
        if (ec) {
            state_->log.warn("accept failed", {{"error", ec.message()}});
            retry_.expires_after(k_accept_retry);
            retry_.async_wait([self = shared_from_this()](error_code e) {
                if (!e) self->do_accept();
            });
            return;
        }
        if (state_->stopped.load()) {
            error_code ignored;
            socket.close(ignored);
        } else {
            auto s = std::make_shared<session>(std::move(socket), state_);
            if (state_->open.load() >= state_->opts.max_connections)
                s->reject();
            else
                s->start();
        }
        do_accept();
    }

    std::shared_ptr<server_state> state_;
    strand_type ex_;
    tcp::acceptor acceptor_;
    net::steady_timer retry_;
    std::atomic<std::uint16_t> port_{0};
    bool stopped_ = false;
};

}  // namespace

//------------------------------------------------------------------------------

struct http_server::impl {
    std::shared_ptr<server_state> state;
    std::shared_ptr<listener> acceptor;
};

http_server::http_server(boost::asio::io_context& ioc, api& a, const server_options& opts,
                         logger& log, metrics& m)
    : impl_(std::make_shared<impl>()) {
    impl_->state = std::make_shared<server_state>(ioc, a, opts, log, m);
    impl_->acceptor = std::make_shared<listener>(impl_->state);
}

http_server::~http_server() { close_all(); }

void http_server::set_hub(hub& h) { impl_->state->realtime = &h; }

void http_server::set_auth(const http_auth_options& a) { impl_->state->auth = a; }

void http_server::set_upgrade_handler(std::string path,
                                      std::function<void(websocket_upgrade&&)> h) {
    auto& st = *impl_->state;
    st.on_upgrade = std::move(h);
    st.websocket_path = st.on_upgrade ? path : std::string();
    st.router = http_detail::router(st.opts.base_path, st.on_upgrade ? path : std::string());
}

result<void> http_server::listen() { return impl_->acceptor->listen(); }

std::uint16_t http_server::port() const noexcept { return impl_->acceptor->port(); }

void http_server::drain(std::chrono::milliseconds accept_for) {
    impl_->state->draining.store(true);
    if (accept_for.count() <= 0) impl_->acceptor->stop();
    const auto idle_until = steady::now() + accept_for + k_drain_idle_grace;
    for (auto& s : impl_->state->snapshot()) s->drain(idle_until);
}

void http_server::stop_accepting() {
    impl_->acceptor->stop();
    // Connections accepted during the drain period get the same short grace.
    const auto idle_until = steady::now() + k_drain_idle_grace;
    for (auto& s : impl_->state->snapshot()) s->drain(idle_until);
}

void http_server::close_all() {
    impl_->state->stopped.store(true);
    impl_->acceptor->stop();
    for (auto& s : impl_->state->snapshot()) s->force_close();
}

std::size_t http_server::connections() const noexcept { return impl_->state->open.load(); }

}  // namespace livebase
