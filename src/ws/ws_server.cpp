// The WebSocket door: sessions in the shape of Beast's websocket chat-multi / advanced server.
// Policy lives next to this file (codec: the envelope; request_plan: request -> operation or
// hub command; outbox: the bounded send queue); sessions only adapt them to sockets.
//
// Behaviour where realtime.md is silent:
// - Requests of one socket run one at a time, in arrival order, so replies are in request
//   order (across streams too). Up to max_inflight frames are read ahead; beyond that the
//   session stops reading and TCP pushes back.
// - Sockets are spread over lanes (one per I/O thread): a lane is a strand that runs every
//   handler of its sockets. The hub hands a lane one batch of live events per pass (no
//   hand-off per socket); on the strand each socket takes its frames into its outbox.
// - Everything else a socket sends (hello, replies, replays) goes through one ordered ingress:
//   request completions and the hub's deliver() append to it from any thread and the strand
//   moves it to the outbox (a lane batch takes the ingress first). Replies to
//   subscribe/observe are appended from inside the hub's `done`, which the hub runs before the
//   first event of that subscription, so a subscription's reply always precedes its events.
// - Beast does the opening handshake only. Then the session speaks RFC 6455 on the raw socket
//   (ws/wire.hpp): everything queued goes out in one gathered write (control frames, then up
//   to k_max_frames_per_write frames, each a small header in front of its shared payload);
//   reads wait for readability and parse into the read-ahead, answering pings with pongs
//   through the same write path, so reads and writes never interleave bytes.
// - permessage-deflate (ws_options::deflate) with no context takeover: frames at or over the
//   threshold are compressed once per lane and parameters and shared; requests are inflated.
// - Frames come in deliveries (a reply; what the hub hands over at once). A delivery that
//   finds the socket's queue (ingress + outbox + the frame being written) over send_queue
//   bytes or send_queue_messages frames closes the socket with 4008 and everything queued is
//   dropped at once (the client resumes with `since`). A delivery is otherwise taken whole, so
//   the queue exceeds the limit by at most one delivery: a resume's replay, which the hub
//   delivers at once and which after a 4008 is larger than the limit by construction, is not
//   refused for its size.
// - Pings every ping_interval; a peer from which nothing (data, pong, ping) arrived for
//   idle_timeout while the session was reading is dropped without a close frame (it is not
//   listening). While the session itself stops reading (read-ahead full) the peer is not
//   idle.
// - A close we start (4008, 4429, 1001) flushes what was queued before it (except for 4008),
//   then runs the close handshake; a peer that does not complete it within handshake_timeout
//   is dropped.
// - Frames over max_message close with 1009 (before their payload is read), frames that break
//   RFC 6455 with 1002; both end the session once the close frame is out and the peer closed
//   or the close deadline passed. Binary frames and bad JSON get a 400 reply on stream "error"
//   and the socket stays open.
// - An upgrade request that is not a WebSocket handshake gets 400; one with bytes pipelined
//   behind it (a client must wait for the 101 before sending frames, RFC 6455 4.1) gets 400
//   too; during drain() new upgrades get 503.
// - Auth (when ws_options::auth is set): credentials are taken at the upgrade (Bearer, else the
//   session cookie) or by `login` on the auth stream. A bad bearer token refuses the upgrade
//   with 401 (a client that sent one expects to be someone); a stale cookie is cleared in the
//   101 and the socket is anonymous, as on REST, so a browser is never locked out of /ws. A
//   browser upgrade from a foreign Origin is accepted and closed at once with 1008 (before the
//   hello, unauthenticated, attached to nothing): realtime.md names 1008 for it, and a refused
//   handshake would tell a page nothing. After `logout` (204) the socket closes with 4401; the
//   hub's revoked() closes every other socket of the token or user the same way.
// - Throttling: every frame takes one token from the shared throttle (the HTTP door's, so
//   REST and WebSocket requests of one caller drain one bucket). A refused frame gets a 429
//   reply with "retry_after"; max_throttled refusals in a row close the socket with 4429.
// - Logs: "ws open" / "ws close" (code, reason, subscriber, request_id) at debug. Metrics:
//   gauges livebase_ws_sockets (open sockets) and livebase_ws_slow_consumer_closes (4008
//   closes since start).
#include <atomic>
#include <boost/asio/dispatch.hpp>
#include <boost/asio/io_context.hpp>
#include <thread>
#include <unistd.h>
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/asio/strand.hpp>
#include <boost/asio/write.hpp>
#include <array>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/write.hpp>
#include <boost/beast/websocket/rfc6455.hpp>
#include <boost/beast/websocket/stream.hpp>
#include <livebase/auth/rules.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/ws/ws_server.hpp>
#include <optional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "http/origin.hpp"
#include "ws/codec.hpp"
#include "ws/outbox.hpp"
#include "ws/request_plan.hpp"
#include "ws/wire.hpp"

namespace livebase {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace bhttp = beast::http;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;
using tcp = net::ip::tcp;
using ws_detail::frame_ptr;
using ws_detail::opcode;
// Beast does the opening handshake only; frames go through ws/wire.hpp on the raw socket.
// permessage-deflate is negotiated by the session itself (no context takeover, so no
// compression state per socket).
using ws_stream = websocket::stream<beast::tcp_stream, false>;

constexpr std::string_view k_subprotocol = "livebase.v1";
constexpr std::uint16_t k_close_slow_consumer = 4008;
constexpr std::uint16_t k_close_throttled = 4429;
constexpr std::uint16_t k_close_revoked = 4401;
/// Beast's frame-assembly buffer, used by nothing but the handshake.
constexpr std::size_t k_write_buffer_bytes = 256;
/// Frames gathered into one write (two iovecs each; IOV_MAX is 1024).
constexpr std::size_t k_max_frames_per_write = 500;
/// Bytes read from a socket per wake-up before its parsed requests are served.
constexpr std::size_t k_read_chunk = 64 * 1024;
constexpr int k_max_reads_per_wake = 4;
/// Compressed payloads a lane keeps for its sockets (one per recent event and shape).
constexpr std::size_t k_deflate_cache = 4096;

class session;

/// One I/O lane: a strand that runs every handler of its sockets. The hub hands a lane one
/// batch per pass (event_lane), which it posts to the strand once; there each socket queues its
/// frames and starts its gathered write. The lane also keeps the compressed payloads it made,
/// so one event is compressed once per lane and deflate parameters, not once per socket.
class ws_lane final : public event_lane {
public:
    explicit ws_lane(net::any_io_executor strand) : strand_(std::move(strand)) {}
    const net::any_io_executor& executor() const noexcept { return strand_; }

    void deliver(std::vector<lane_delivery> batch) override;

    /// On the strand: `f` compressed with `p`, made at most once while cached.
    frame_ptr compressed(const frame_ptr& f, const ws_detail::deflate_params& p) {
        key k{f.get(), p.window_bits, p.level};
        auto it = cache_.find(k);
        if (it != cache_.end()) return it->second.second;
        if (cache_.size() >= k_deflate_cache) cache_.clear();
        auto c = std::make_shared<const std::string>(ws_detail::deflate_message(*f, p));
        // The entry holds the source too, so its address cannot be reused while cached.
        cache_.emplace(k, std::make_pair(f, c));
        return c;
    }

private:
    struct key {
        const std::string* frame;
        int bits;
        int level;
        bool operator==(const key&) const = default;
    };
    struct key_hash {
        std::size_t operator()(const key& k) const noexcept {
            return std::hash<const void*>()(k.frame) ^ (static_cast<std::size_t>(k.bits) << 4) ^
                   static_cast<std::size_t>(k.level);
        }
    };
    net::any_io_executor strand_;
    std::unordered_map<key, std::pair<frame_ptr, frame_ptr>, key_hash> cache_;
};

/// The frame of a text message; shared so a pending write keeps it alive.
frame_ptr make_frame(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

/// The user as hello and login replies present it (realtime.md "hello"): null when anonymous.
json::value user_json(const principal& who) {
    if (!who.authenticated()) return nullptr;
    return json::object{{"id", who.user_id}, {"username", who.username}, {"admin", who.admin}};
}

/// The 429 of a throttled request: "retry_after" in whole seconds (at least 1), as REST's
/// Retry-After.
problem throttled_problem(std::chrono::milliseconds wait) {
    const auto seconds = retry_after_seconds(wait);
    auto p = problem::too_many_requests("Request was throttled. Expected available in " +
                                        std::to_string(seconds) + " seconds.");
    p.extra["retry_after"] = seconds;
    return p;
}

/// True when the comma-separated Sec-WebSocket-Protocol list offers `k_subprotocol`.
bool offers_subprotocol(std::string_view header) {
    while (!header.empty()) {
        auto comma = header.find(',');
        auto token = header.substr(0, comma);
        while (!token.empty() && (token.front() == ' ' || token.front() == '\t'))
            token.remove_prefix(1);
        while (!token.empty() && (token.back() == ' ' || token.back() == '\t'))
            token.remove_suffix(1);
        if (token == k_subprotocol) return true;
        if (comma == std::string_view::npos) break;
        header.remove_prefix(comma + 1);
    }
    return false;
}

//------------------------------------------------------------------------------

/// State shared by ws_server and every session; outlives them all (each holds a shared_ptr).
struct server_state {
    server_state(api& a, hub& h, ws_options o, logger& log, metrics& m)
        : a(a), h(h), opts(o), log(log), m(m) {}

    api& a;
    hub& h;
    const ws_options opts;
    logger& log;
    metrics& m;

    std::atomic<bool> draining{false};
    std::atomic<bool> stopped{false};
    std::atomic<std::size_t> open{0};

    std::mutex mu;  // guards sessions and the gauges' order
    std::unordered_map<const session*, std::weak_ptr<session>> sessions;
    std::uint64_t slow_closes = 0;  // guarded by mu

    void add(const std::shared_ptr<session>& s) {
        std::lock_guard lock(mu);
        sessions.emplace(s.get(), s);
    }
    void remove(const session* s) {
        std::lock_guard lock(mu);
        sessions.erase(s);
    }
    // The gauge is set under the lock so concurrent opens/closes cannot publish out of order.
    void opened() {
        std::lock_guard lock(mu);
        m.set_gauge("livebase_ws_sockets", static_cast<double>(open.fetch_add(1) + 1));
    }
    void closed() {
        std::lock_guard lock(mu);
        m.set_gauge("livebase_ws_sockets", static_cast<double>(open.fetch_sub(1) - 1));
    }
    void slow_consumer_closed() {
        std::lock_guard lock(mu);
        m.set_gauge("livebase_ws_slow_consumer_closes", static_cast<double>(++slow_closes));
    }
    // Lanes, made at the first socket from its I/O context; sockets take them in turn.
    std::mutex lanes_mu;
    std::vector<std::unique_ptr<ws_lane>> lanes;  // never shrinks while the server lives
    std::atomic<std::size_t> next_lane{0};

    ws_lane& pick_lane(const net::any_io_executor& ex) {
        std::lock_guard lock(lanes_mu);
        if (lanes.empty()) {
            std::size_t n = opts.lanes ? opts.lanes : std::max(1u, std::thread::hardware_concurrency());
            // Strands of the connection's I/O context (the HTTP server gives each connection a
            // strand of it); any other executor is wrapped as it is.
            using io_strand = net::strand<net::io_context::executor_type>;
            for (std::size_t i = 0; i < n; ++i) {
                net::any_io_executor lane;
                if (auto* st = ex.target<io_strand>())
                    lane = net::make_strand(st->get_inner_executor());
                else if (auto* io = ex.target<net::io_context::executor_type>())
                    lane = net::make_strand(*io);
                else
                    lane = net::make_strand(ex);
                lanes.push_back(std::make_unique<ws_lane>(std::move(lane)));
            }
        }
        return *lanes[next_lane.fetch_add(1) % lanes.size()];
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

//------------------------------------------------------------------------------

/// One WebSocket connection. Members are touched only on the connection's strand, except the
/// ingress (guarded by in_mu_), which deliver() and request completions fill from any thread.
class session : public event_sink, public std::enable_shared_from_this<session> {
public:
    /// `stream` runs on `lane`'s strand.
    session(beast::tcp_stream&& stream, ws_lane& lane, std::shared_ptr<server_state> state,
            std::string request_id, std::string client_address = {}, bool https = false)
        : ex_(lane.executor()),
          ws_(std::in_place, std::move(stream)),
          sock_(ex_),
          timer_(ex_),
          lane_(&lane),
          st_(std::move(state)),
          request_id_(std::move(request_id)),
          out_({st_->opts.send_queue, st_->opts.send_queue_messages}),
          parser_(st_->opts.max_message) {
        error_code ec;
        auto peer = beast::get_lowest_layer(*ws_).socket().remote_endpoint(ec);
        if (!ec) peer_ip_ = peer.address().to_string();
        if (!client_address.empty()) peer_ip_ = std::move(client_address);
        https_ = https;
        who_.address = peer_ip_;
    }

    ~session() override {
        // Only when destroyed unfinished (its handlers dropped with a stopped io_context).
        if (closed_) return;
        if (attached_) st_->h.detach(subscriber_);
        st_->remove(this);
        if (counted_) st_->closed();
    }

    /// Starts the handshake. `pipelined`: the peer sent bytes after the upgrade request.
    void run(bhttp::request<bhttp::string_body> req, bool pipelined) {
        st_->add(shared_from_this());
        net::dispatch(ex_, [self = shared_from_this(), req = std::move(req), pipelined]() mutable {
            self->do_accept(std::move(req), pipelined);
        });
    }

    /// Graceful close with 1001; a handshake in progress is dropped.
    void drain() {
        net::dispatch(ex_, [self = shared_from_this()] {
            if (!self->open_) return self->finish();
            self->start_close(websocket::close_code::going_away, "going away");
        });
    }

    void force_close() {
        net::dispatch(ex_, [self = shared_from_this()] { self->finish(); });
    }

    /// event_sink: called on the hub thread; never blocks (a short lock, pointer moves).
    void deliver(std::vector<frame_ptr> frames) override { enqueue(std::move(frames)); }

    /// event_sink: the credentials of this socket ended. Called on the hub thread.
    void revoked() override {
        net::post(ex_, [self = shared_from_this()] { self->on_revoked(); });
    }

    /// event_sink: events of this socket were trimmed from the log before the hub read them.
    /// Called on the hub thread.
    void history_lost() override {
        net::post(ex_, [self = shared_from_this()] { self->on_history_lost(); });
    }

    /// event_sink: live events come through the lane, in one batch per pass.
    event_lane* lane() noexcept override { return lane_; }

    /// On the lane's strand: one pass's frames for this socket. Takes whatever the ingress
    /// holds first (it was queued earlier), then the frames, and starts a write.
    void take_live(std::vector<frame_ptr>&& frames) {
        std::vector<std::vector<frame_ptr>> earlier;
        bool overflow = false;
        {
            std::lock_guard lock(in_mu_);
            if (in_closed_) return;
            earlier.swap(in_);
            if (!out_.limit().admit(queued_bytes_, queued_frames_)) {
                overflow_ = true;
                in_closed_ = true;
            } else {
                for (const auto& f : frames) queued_bytes_ += f->size();
                queued_frames_ += frames.size();
            }
            overflow = overflow_;
        }
        if (closed_) return;
        if (overflow) return slow_consumer();
        for (auto& d : earlier)
            if (!out_.push(std::move(d))) return slow_consumer();
        if (!out_.push(std::move(frames))) return slow_consumer();
        do_write();
    }

private:
    // ---- handshake ----

    void do_accept(bhttp::request<bhttp::string_body> req, bool pipelined) {
        if (closed_) return;
        if (st_->draining.load() || st_->stopped.load())
            return reject(problem::unavailable("The server is shutting down."));
        if (!websocket::is_upgrade(req))
            return reject(problem::bad_request("Expected a WebSocket upgrade request."));
        if (pipelined)
            return reject(problem::bad_request(
                "Frames were sent before the handshake completed (RFC 6455 section 4.1)."));

        // A foreign page may not use the browser's cookie here (cross-site WebSocket
        // hijacking): its socket learns nothing and is closed once open.
        if (auto it = req.find(bhttp::field::origin);
            it != req.end() &&
            !http_detail::origin_allowed(it->value(), req[bhttp::field::host],
                                         st_->opts.allowed_origins, https_ ? "https" : "http")) {
            origin_refused_ = true;
            return handshake(std::move(req));
        }
        authenticator* auth = st_->opts.auth;
        if (!auth) return handshake(std::move(req));
        const auto cred =
            http_detail::credentials_of(req[bhttp::field::authorization], req[bhttp::field::cookie]);
        const std::string& token = cred.token;
        const bool by_cookie = cred.by_cookie;
        if (token.empty()) return handshake(std::move(req));
        // The usual case costs a hash and a map lookup, on the strand.
        if (auto hit = auth->resolve_cached(token))
            return on_credentials(std::move(req), std::move(*hit), by_cookie);
        auto held = std::make_shared<bhttp::request<bhttp::string_body>>(std::move(req));
        auth->resolve(token, [self = shared_from_this(), held, by_cookie](result<principal> r) {
            net::post(self->ex_, [self, held, by_cookie, r = std::move(r)]() mutable {
                self->on_credentials(std::move(*held), std::move(r), by_cookie);
            });
        });
    }

    void on_credentials(bhttp::request<bhttp::string_body> req, result<principal> who,
                        bool by_cookie) {
        if (closed_) return;
        if (who) {
            set_identity(std::move(*who));
            return handshake(std::move(req));
        }
        if (!by_cookie)
            return reject(problem::unauthorized("Invalid or expired token."),
                          {{"WWW-Authenticate", "Bearer"}});
        clear_cookie_ = true;
        handshake(std::move(req));
    }

    void handshake(bhttp::request<bhttp::string_body> req) {
        if (closed_) return;
        websocket::stream_base::timeout t;
        t.handshake_timeout = st_->opts.handshake_timeout;
        t.idle_timeout = websocket::stream_base::none();  // pings and idle: our timer
        t.keep_alive_pings = false;
        ws_->set_option(t);
        const bool subprotocol = offers_subprotocol(req[bhttp::field::sec_websocket_protocol]);
        std::string extensions;
        if (st_->opts.deflate)
            if (auto a = ws_detail::negotiate_deflate(req[bhttp::field::sec_websocket_extensions],
                                                      st_->opts.deflate_level)) {
                deflate_ = a->params;
                extensions = std::move(a->response);
            }
        ws_->set_option(websocket::stream_base::decorator(
            [subprotocol, rid = request_id_, clear = clear_cookie_,
             extensions = std::move(extensions), https = https_](websocket::response_type& res) {
                res.set(bhttp::field::server, "livebase");
                res.set("X-Request-Id", rid);
                if (subprotocol) res.set(bhttp::field::sec_websocket_protocol, k_subprotocol);
                if (!extensions.empty()) res.set(bhttp::field::sec_websocket_extensions, extensions);
                if (clear)
                    res.set(bhttp::field::set_cookie,
                            std::string(http_detail::k_session_cookie) +
                                "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax" +
                                (https ? "; Secure" : ""));
            }));
        ws_->write_buffer_bytes(k_write_buffer_bytes);
        // The websocket stream has its own timeouts; the TCP layer's would cut long sessions.
        beast::get_lowest_layer(*ws_).expires_never();
        ws_->async_accept(req, beast::bind_front_handler(&session::on_accept, shared_from_this()));
    }

    /// Answers a request that is not served as a WebSocket, then closes.
    void reject(const problem& p,
                std::initializer_list<std::pair<const char*, const char*>> headers = {}) {
        auto res = std::make_shared<bhttp::response<bhttp::string_body>>(
            static_cast<bhttp::status>(p.status), 11);
        res->set(bhttp::field::server, "livebase");
        for (const auto& [name, value] : headers) res->set(name, value);
        res->set("X-Request-Id", request_id_);
        res->set(bhttp::field::content_type, "application/problem+json");
        res->keep_alive(false);
        res->body() = to_json_text(p.to_json());
        res->prepare_payload();
        beast::get_lowest_layer(*ws_).expires_after(st_->opts.handshake_timeout);
        bhttp::async_write(
            ws_->next_layer(), *res,
            [self = shared_from_this(), res](error_code, std::size_t) { self->finish(); });
    }

    void on_accept(error_code ec) {
        if (closed_) return;
        if (ec) {
            fail(ec, "accept");
            return finish();
        }
        // From here on the session speaks the wire format itself on the raw socket; Beast's
        // stream (and its buffers) goes once its handler has returned.
        sock_ = beast::get_lowest_layer(*ws_).release_socket();
        net::post(ex_, [self = shared_from_this()] { self->ws_.reset(); });
        sock_.non_blocking(true, ec);
        // Writes are already gathered; Nagle would only hold a lone event back for an ACK
        // (up to the peer's delayed-ACK time).
        if (!ec) sock_.set_option(tcp::no_delay(true), ec);
        if (ec) {
            fail(ec, "accept");
            return finish();
        }
        parser_ = ws_detail::frame_parser(st_->opts.max_message, deflate_.has_value());
        open_ = true;
        counted_ = true;
        st_->opened();
        const auto now = steady::now();
        last_heard_ = now;
        last_ping_ = now;
        if (origin_refused_) {
            st_->log.debug("ws origin refused", {{"request_id", request_id_}});
            return start_close(websocket::close_code::policy_error, "origin not allowed");
        }
        std::weak_ptr<event_sink> sink = std::static_pointer_cast<event_sink>(shared_from_this());
        subscriber_ = st_->h.attach(std::move(sink), who_, event_encoding::websocket);
        attached_ = true;
        if (st_->log.enabled(log_level::debug))
            st_->log.debug("ws open", {{"subscriber", subscriber_},
                                       {"request_id", request_id_},
                                       {"user", who_.user_id}});
        enqueue_one(make_frame(ws_detail::encode_hello(subscriber_, user_json(who_))));
        if (st_->stopped.load()) return finish();
        if (st_->draining.load())
            return start_close(websocket::close_code::going_away, "going away");
        arm_timer();
        do_read();
    }

    // ---- reading and executing requests ----

    struct pending_frame {
        std::string text;
        bool binary = false;
    };

    /// Waits until the socket is readable (an idle socket holds no read buffer). Stops while
    /// the read-ahead is full (TCP pushes back); reads on while closing, for the peer's close.
    void do_read() {
        if (reading_ || closed_ || !open_) return;
        if (!closing_ && pending_.size() >= st_->opts.max_inflight) return;
        reading_ = true;
        sock_.async_wait(tcp::socket::wait_read,
                         beast::bind_front_handler(&session::on_readable, shared_from_this()));
    }

    void on_readable(error_code ec) {
        reading_ = false;
        if (closed_) return;
        if (ec) {
            fail(ec, "read");
            return finish();
        }
        // One buffer per thread: what a read brings is parsed (or kept by the parser) at once.
        thread_local std::array<char, k_read_chunk> chunk;
        bool eof = false;
        for (int i = 0; i < k_max_reads_per_wake; ++i) {
            const std::size_t n = sock_.read_some(net::buffer(chunk), ec);
            if (ec == net::error::would_block || ec == net::error::try_again) break;
            if (ec) {
                eof = true;
                break;
            }
            if (parser_.failed()) continue;  // after a protocol error only EOF matters
            parser_.feed(std::string_view(chunk.data(), n));
            if (n < chunk.size()) break;
        }
        last_heard_ = steady::now();
        process_input();
        if (closed_) return;
        if (eof) {
            // The peer is gone (or ended the close handshake by closing TCP).
            fail(ec, "read");
            return finish();
        }
        do_read();
    }

    /// Serves what the parser has: requests into the read-ahead (up to max_inflight), control
    /// frames at once. Not re-entered (a request answered on the spot comes back here).
    void process_input() {
        if (processing_) return;
        processing_ = true;
        while (!closed_) {
            if (!closing_ && pending_.size() >= st_->opts.max_inflight) break;
            auto ev = parser_.next();
            if (!ev) break;
            using kind = ws_detail::frame_parser::kind;
            switch (ev->what) {
                case kind::text:
                case kind::binary: {
                    if (closing_) break;  // a close is under way: requests are dropped
                    pending_frame f;
                    f.binary = ev->what == kind::binary;
                    if (ev->compressed) {
                        bool too_big = false;
                        auto text = ws_detail::inflate_message(ev->payload, st_->opts.max_message, &too_big);
                        if (!text) {
                            protocol_close(too_big ? websocket::close_code::too_big
                                                   : websocket::close_code::bad_payload,
                                           too_big ? "message too big" : "bad compressed data");
                            break;
                        }
                        ev->payload = std::move(*text);
                    }
                    if (!f.binary) f.text = std::move(ev->payload);
                    pending_.push_back(std::move(f));
                    start_next();
                    break;
                }
                case kind::ping:
                    if (!close_started_) {
                        control_ += ws_detail::control_frame(opcode::pong, ev->payload);
                        do_write();
                    }
                    break;
                case kind::pong: break;
                case kind::close: on_peer_close(ev->code, ev->payload); break;
                case kind::error:
                    protocol_close(ev->code, ev->code == websocket::close_code::too_big
                                                 ? "message too big"
                                                 : "protocol error");
                    break;
            }
            if (ev->what == kind::error) break;  // answered once; the parser stays failed
        }
        processing_ = false;
    }

    void start_next() {
        if (busy_ || pending_.empty() || closing_ || closed_) return;
        busy_ = true;
        auto f = std::move(pending_.front());
        pending_.erase(pending_.begin());
        handle(std::move(f));
    }

    void handle(pending_frame f) {
        ws_detail::decoded_frame decoded;
        if (f.binary) {
            decoded.error = problem::bad_request("Binary frames are not supported; send JSON text.");
        } else {
            decoded = ws_detail::decode_frame(f.text);
            f.text = std::string();
        }
        // Bad frames count too: a flood of garbage costs the server as much as requests do.
        if (auto wait = take_token()) return refuse_throttled(decoded, *wait);
        throttled_in_row_ = 0;
        if (decoded.error) {
            enqueue_one(make_frame(ws_detail::encode_bad_frame(decoded)));
            return request_done(0);
        }
        auto req = std::make_shared<const ws_detail::ws_request>(std::move(decoded.request));
        auto plan = ws_detail::plan_request(*req, st_->a.reg(), st_->a.base_path(),
                                            st_->opts.auth != nullptr);
        const json::value action(req->action);
        switch (plan.kind) {
            case ws_detail::plan_kind::refuse:
                enqueue_one(make_frame(
                    ws_detail::encode_error(req->stream, action, req->request_id, plan.refusal)));
                return request_done(0);
            case ws_detail::plan_kind::login: return login(req, std::move(plan));
            case ws_detail::plan_kind::logout: return logout(req, std::move(plan));
            case ws_detail::plan_kind::execute: {
                operation op = std::move(plan.op);
                op.who = who_;
                op.client_ip = peer_ip_;
                op.request_id = request_id_ + "." + std::to_string(++requests_);
                plan.op = operation{};
                // The plan only keeps what shapes the reply.
                st_->a.execute(std::move(op), [self = shared_from_this(), req,
                                               plan = std::move(plan)](outcome o) {
                    self->enqueue_one(make_frame(ws_detail::encode_plan_reply(plan, *req, o)));
                    self->post_done(0);
                });
                return;
            }
            case ws_detail::plan_kind::subscribe:
                if (plan.sub.pk.empty())
                    if (auto refused = list_refusal(plan.sub.collection)) {
                        enqueue_one(make_frame(ws_detail::encode_error(req->stream, action, req->request_id, *refused)));
                        return request_done(0);
                    }
                st_->h.subscribe(
                    subscriber_, std::move(plan.sub),
                    [self = shared_from_this(), req](result<subscribed> r) {
                        if (!r) return self->reply_problem(*req, r.error());
                        json::object data{{"subscription", r->subscription}, {"seq", r->seq}};
                        self->reply_ok(*req, 201, data);
                    });
                return;
            case ws_detail::plan_kind::observe:
                if (auto refused = list_refusal(plan.obs.collection)) {
                    enqueue_one(make_frame(ws_detail::encode_error(req->stream, action, req->request_id, *refused)));
                    return request_done(0);
                }
                st_->h.observe(subscriber_, std::move(plan.obs),
                               [self = shared_from_this(), req](result<observed> r) {
                                   if (!r) return self->reply_problem(*req, r.error());
                                   json::object data{{"observer", r->observer},
                                                     {"items", std::move(r->items)},
                                                     {"seq", r->seq},
                                                     {"count", r->count}};
                                   self->reply_ok(*req, 201, data);
                               });
                return;
            case ws_detail::plan_kind::unsubscribe:
                st_->h.unsubscribe(subscriber_, plan.handle,
                                   [self = shared_from_this(), req](result<void> r) {
                                       if (!r) return self->reply_problem(*req, r.error());
                                       self->reply_ok(*req, 204, nullptr);
                                   });
                return;
            case ws_detail::plan_kind::unobserve:
                st_->h.unobserve(subscriber_, plan.handle,
                                 [self = shared_from_this(), req](result<void> r) {
                                     if (!r) return self->reply_problem(*req, r.error());
                                     self->reply_ok(*req, 204, nullptr);
                                 });
                return;
        }
    }

    /// A feed of a whole collection (subscribe without pk, observe) is a list that keeps
    /// going: the collection's list rule answers it as it answers `list` (401, 403). Rows and
    /// events are then narrowed and filtered per record by the hub. Tasks are not in the
    /// registry: the hub alone judges them (visibility by submitter).
    std::optional<problem> list_refusal(const std::string& collection) const {
        const collection_def* c = st_->a.reg().find(collection);
        if (!c) return std::nullopt;
        const auto d = check_rule(c->rule_for("list"), who_);
        if (d == decision::allow) return std::nullopt;
        return refusal_problem(d);
    }

    // ---- throttling ----

    /// One token for the current frame: nullopt when allowed, else the wait.
    std::optional<std::chrono::milliseconds> take_token() {
        throttle* limiter = st_->opts.limiter;
        if (!limiter) return std::nullopt;
        const rate& r = who_.authenticated() ? st_->opts.user_rate : st_->opts.anonymous_rate;
        if (r.count == 0) return std::nullopt;
        return limiter->take(throttle_key(who_, peer_ip_), r);
    }

    /// Answers a throttled frame 429 on its stream (a bad frame's on "error"), and closes with
    /// 4429 once the peer keeps sending through max_throttled refusals.
    void refuse_throttled(const ws_detail::decoded_frame& f, std::chrono::milliseconds wait) {
        const auto& r = f.request;
        const std::string_view stream =
            f.error || r.stream.empty() ? ws_detail::k_error_stream : std::string_view(r.stream);
        const json::value action = r.action.empty() ? json::value(nullptr) : json::value(r.action);
        enqueue_one(make_frame(ws_detail::encode_error(stream, action, r.request_id, throttled_problem(wait))));
        if (++throttled_in_row_ >= std::max<std::size_t>(1, st_->opts.max_throttled))
            return request_done(k_close_throttled, "too many messages");
        request_done(0);
    }

    // ---- the auth stream ----

    /// The socket's identity, with the peer's address (anonymous sockets are known by it).
    void set_identity(principal who) {
        who.address = peer_ip_;
        who_ = std::move(who);
    }

    /// Reply to an auth request; on the strand.
    void reply_now(const ws_detail::ws_request& r, int status, const json::value& data) {
        enqueue_one(make_frame(
            ws_detail::encode_reply(r.stream, json::value(r.action), r.request_id, status, data)));
    }

    void login(std::shared_ptr<const ws_detail::ws_request> req, ws_detail::request_plan plan) {
        if (!plan.token.empty()) return resolve_login(std::move(req), std::move(plan.token), {});
        // Username and password go through the api, which throttles attempts per address and
        // per username exactly as for REST; the granted token is then resolved to the identity
        // (with its token id, which logout and revocations need).
        operation op = std::move(plan.op);
        op.who = who_;
        op.client_ip = peer_ip_;
        op.request_id = request_id_ + "." + std::to_string(++requests_);
        st_->a.execute(std::move(op), [self = shared_from_this(), req](outcome o) {
            if (o.is_problem || o.status != 200 || !o.body.is_object() ||
                get_string(o.body.get_object(), "token").empty()) {
                self->enqueue_one(make_frame(
                    ws_detail::encode_outcome(req->stream, json::value(req->action), req->request_id, o)));
                return self->post_done(0);
            }
            net::post(self->ex_, [self, req, grant = std::move(o.body.get_object())]() mutable {
                std::string token(get_string(grant, "token"));
                self->resolve_login(std::move(req), std::move(token), std::move(grant));
            });
        });
    }

    /// On the strand: resolves `token` and makes it the socket's identity. `grant`: the api's
    /// login reply ({token, expires, user}), sent as the reply's data; {} for a token login,
    /// whose reply is {"user"}.
    void resolve_login(std::shared_ptr<const ws_detail::ws_request> req, std::string token,
                       json::object grant) {
        authenticator* auth = st_->opts.auth;
        if (auto hit = auth->resolve_cached(token))
            return on_login(*req, std::move(*hit), std::move(grant));
        auth->resolve(token, [self = shared_from_this(), req,
                              grant = std::move(grant)](result<principal> r) mutable {
            net::post(self->ex_, [self, req, grant = std::move(grant), r = std::move(r)]() mutable {
                self->on_login(*req, std::move(r), std::move(grant));
            });
        });
    }

    void on_login(const ws_detail::ws_request& req, result<principal> who, json::object grant) {
        if (closed_) return request_done(0);
        // Wrong credentials leave the socket as it was: open, with its previous identity.
        if (!who) {
            enqueue_one(make_frame(
                ws_detail::encode_error(req.stream, json::value(req.action), req.request_id, who.error())));
            return request_done(0);
        }
        set_identity(std::move(*who));
        // Queued to the hub before the next request is planned, so every later subscribe or
        // observe, and every later event, is authorized against the new identity.
        if (attached_) st_->h.set_principal(subscriber_, who_);
        if (st_->log.enabled(log_level::debug))
            st_->log.debug("ws login", {{"subscriber", subscriber_}, {"user", who_.user_id}});
        if (grant.empty()) grant["user"] = user_json(who_);
        reply_now(req, 200, grant);
        request_done(0);
    }

    void logout(std::shared_ptr<const ws_detail::ws_request> req, ws_detail::request_plan plan) {
        if (!who_.authenticated()) {
            enqueue_one(make_frame(ws_detail::encode_error(
                req->stream, json::value(req->action), req->request_id, problem::unauthorized())));
            return request_done(0);
        }
        operation op = std::move(plan.op);
        op.who = who_;
        op.client_ip = peer_ip_;
        op.request_id = request_id_ + "." + std::to_string(++requests_);
        logging_out_ = true;
        st_->a.execute(std::move(op), [self = shared_from_this(), req](outcome o) {
            self->enqueue_one(make_frame(
                ws_detail::encode_outcome(req->stream, json::value(req->action), req->request_id, o)));
            net::post(self->ex_, [self, ok = !o.is_problem && o.status < 300] {
                self->logging_out_ = false;
                // The token is gone: this socket closes like every other one opened with it
                // (the hub's revoked() may already have asked for it, held back until here so
                // that the 204 goes out first).
                if (ok || self->revoked_pending_) {
                    self->set_identity(principal{});
                    return self->request_done(k_close_revoked, "credentials no longer valid");
                }
                self->request_done(0);
            });
        });
    }

    /// On the strand: the hub says this socket's credentials ended (it already treats the
    /// socket as anonymous).
    void on_revoked() {
        if (closed_) return;
        set_identity(principal{});
        // A logout of this socket is answered first; its completion closes.
        if (logging_out_) {
            revoked_pending_ = true;
            return;
        }
        start_close(k_close_revoked, "credentials no longer valid");
    }

    // Reply helpers for hub commands; called on the hub thread (inside `done`), so the reply
    // enters the ingress before any event of the new subscription.
    void reply_ok(const ws_detail::ws_request& r, int status, const json::value& data) {
        enqueue_one(make_frame(
            ws_detail::encode_reply(r.stream, json::value(r.action), r.request_id, status, data)));
        post_done(0);
    }
    void reply_problem(const ws_detail::ws_request& r, const problem& p) {
        enqueue_one(
            make_frame(ws_detail::encode_error(r.stream, json::value(r.action), r.request_id, p)));
        if (p.status == 429) return post_done(k_close_throttled, "too many subscriptions");
        post_done(0);
    }

    /// Any thread: the current request's reply is queued; continue on the strand.
    void post_done(std::uint16_t close_code, const char* reason = "") {
        net::post(ex_, [self = shared_from_this(), close_code, reason] {
            self->request_done(close_code, reason);
        });
    }

    /// On the strand: the current request is answered (its reply is in the ingress); a
    /// `close_code` closes the socket after it.
    void request_done(std::uint16_t close_code, const char* reason = "") {
        busy_ = false;
        if (closed_) return;
        if (close_code) return start_close(close_code, reason);
        start_next();
        process_input();  // requests the parser holds beyond the read-ahead
        do_read();
    }

    // ---- the send path ----

    void enqueue_one(frame_ptr f) {
        std::vector<frame_ptr> v;
        v.push_back(std::move(f));
        enqueue(std::move(v));
    }

    /// Any thread. Appends one delivery to the ingress, or marks the peer slow (then drops the
    /// frames: the socket is closing with 4008) when its queue is already over a limit.
    void enqueue(std::vector<frame_ptr>&& frames) {
        bool post = false;
        {
            std::lock_guard lock(in_mu_);
            if (in_closed_) return;
            // out_.limit() never changes, so reading it off the strand is safe.
            if (!out_.limit().admit(queued_bytes_, queued_frames_)) {
                overflow_ = true;
                in_closed_ = true;
            } else {
                for (const auto& f : frames) queued_bytes_ += f->size();
                queued_frames_ += frames.size();
                in_.push_back(std::move(frames));
            }
            if (!drain_posted_) post = drain_posted_ = true;
        }
        if (post) net::post(ex_, [self = shared_from_this()] { self->on_ingress(); });
    }

    /// On the strand: moves the ingress into the outbox and writes.
    void on_ingress() {
        std::vector<std::vector<frame_ptr>> batch;
        bool overflow = false;
        {
            std::lock_guard lock(in_mu_);
            batch.swap(in_);
            drain_posted_ = false;
            overflow = overflow_;
        }
        if (closed_) return;
        if (overflow) return slow_consumer();
        // The ingress admitted each delivery against everything queued, which includes what
        // the outbox holds, so the outbox admits them too; it stays the guard all the same.
        for (auto& d : batch)
            if (!out_.push(std::move(d))) return slow_consumer();
        do_write();
    }

    /// Everything queued (control frames first, then up to k_max_frames_per_write frames) in
    /// one gathered write: a header per frame in front of its shared payload. A closing
    /// session's close frame follows the last frame. Loops (through on_write) until the queue
    /// is empty or the socket is full.
    void do_write() {
        if (writing_ || closed_ || !open_) return;
        if (closing_ && !close_started_ && out_.empty()) {
            control_ += ws_detail::close_frame(close_code_, close_reason_);
            close_started_ = true;
            close_queued_ = true;
        }
        if (out_.empty() && control_.empty()) return;
        const std::size_t n = std::min(out_.size(), k_max_frames_per_write);
        headers_.resize(n * ws_detail::k_max_header);  // not resized again until the write ends
        iov_.clear();
        iov_.reserve(2 * n + 1);
        control_inflight_ = std::move(control_);
        control_ = std::string();
        close_in_flight_ = std::exchange(close_queued_, false);
        if (!control_inflight_.empty()) iov_.push_back(net::buffer(control_inflight_));
        inflight_.reserve(n);
        for (std::size_t i = 0; i < n; ++i) {
            frame_ptr f = out_.front();
            out_.pop();
            inflight_bytes_ += f->size();
            ++inflight_frames_;
            bool compressed = false;
            if (deflate_ && f->size() >= st_->opts.deflate_threshold) {
                frame_ptr c = lane_->compressed(f, *deflate_);
                if (!c->empty() && c->size() < f->size()) {
                    inflight_.push_back(std::move(f));  // counted by its own size
                    f = std::move(c);
                    compressed = true;
                }
            }
            auto* h = reinterpret_cast<unsigned char*>(headers_.data()) + i * ws_detail::k_max_header;
            const std::size_t hn = ws_detail::write_header(h, opcode::text, f->size(), compressed);
            iov_.push_back(net::const_buffer(h, hn));
            iov_.push_back(net::buffer(*f));
            inflight_.push_back(std::move(f));
        }
        writing_ = true;
        // Usually the socket takes it all at once: write now, on the strand, and skip the
        // asynchronous operation and its completion handler. What does not fit goes async.
        error_code ec;
        std::size_t done = sock_.write_some(iov_, ec);
        if (ec == net::error::would_block || ec == net::error::try_again) {
            ec = {};
            done = 0;
        }
        if (ec) return on_write(ec, 0);
        if (done == net::buffer_size(iov_)) return on_write({}, done);
        std::size_t first = 0;
        while (done >= iov_[first].size()) done -= iov_[first++].size();
        iov_[first] += done;
        iov_.erase(iov_.begin(), iov_.begin() + static_cast<std::ptrdiff_t>(first));
        net::async_write(sock_, iov_, beast::bind_front_handler(&session::on_write, shared_from_this()));
    }

    void on_write(error_code ec, std::size_t) {
        writing_ = false;
        {
            std::lock_guard lock(in_mu_);
            queued_bytes_ -= inflight_bytes_;
            queued_frames_ -= inflight_frames_;
        }
        inflight_bytes_ = 0;
        inflight_frames_ = 0;
        inflight_.clear();
        const bool wrote_control = !control_inflight_.empty();
        control_inflight_.clear();
        if (out_.empty()) {
            // An idle socket keeps no write buffers.
            std::vector<frame_ptr>().swap(inflight_);
            std::vector<net::const_buffer>().swap(iov_);
            std::string().swap(headers_);
            std::string().swap(control_inflight_);
        }
        if (closed_) return;
        if (ec) {
            fail(ec, "write");
            return finish();
        }
        if (wrote_control && control_.empty()) ping_inflight_ = false;
        if (std::exchange(close_in_flight_, false)) {
            close_sent_ = true;
            // The peer's close was answered: done. Otherwise the peer's close (or, after a
            // protocol error, its EOF) ends the handshake; the deadline bounds the wait. Reading
            // on rather than closing at once keeps unread bytes from turning into a reset that
            // would destroy the close frame before the peer reads it.
            if (close_by_peer_) return finish();
            do_read();
        }
        do_write();
    }

    /// On the strand: closes with 4008 like a slow consumer (realtime.md: the client resumes
    /// with `since`, which is below the history floor now: 410, it lists again).
    void on_history_lost() {
        if (closed_) return;
        drop_outgoing();
        if (closing_) return;
        start_close(k_close_slow_consumer, "history lost; resume");
    }

    /// The peer does not read fast enough: drop what is queued and close with 4008.
    void slow_consumer() {
        if (closed_) return;
        drop_outgoing();
        if (closing_) return;  // a close is already under way; nothing more is queued
        st_->slow_consumer_closed();
        start_close(k_close_slow_consumer, "slow consumer");
    }

    // ---- closing ----

    /// Stops reading requests and accepting frames; flushes the outbox, then closes with
    /// `code`. The first close wins (except slow_consumer(), which clears the queue first).
    void start_close(std::uint16_t code, const char* reason) {
        if (closed_ || closing_) return;
        if (!open_) return finish();
        closing_ = true;
        close_code_ = code;
        close_reason_ = reason;
        std::vector<std::vector<frame_ptr>> rest;
        bool overflow = false;
        {
            std::lock_guard lock(in_mu_);
            in_closed_ = true;
            rest.swap(in_);
            overflow = overflow_;
        }
        // Frames queued before the decision (e.g. the 429 reply) still go out first.
        if (code != k_close_slow_consumer && !overflow)
            for (auto& d : rest)
                if (!out_.push(std::move(d))) break;
        close_deadline_ = steady::now() + st_->opts.handshake_timeout;
        arm_timer();
        do_write();
    }

    /// The peer sent a close frame: answer it (echoing its code) and end, dropping what is
    /// queued; or, when ours was already under way, the handshake is complete.
    void on_peer_close(std::uint16_t code, const std::string& reason) {
        if (close_started_) return finish();
        close_code_ = code;
        close_reason_ = reason;
        close_by_peer_ = true;
        close_now(code == 1005 ? ws_detail::control_frame(opcode::close, {})
                               : ws_detail::close_frame(code, {}));
    }

    /// The peer's frames broke the protocol or a limit (1002, 1007, 1009): close with `code`
    /// at once, dropping what is queued, and end once the close frame is out.
    void protocol_close(std::uint16_t code, const char* reason) {
        if (close_started_) return finish();
        close_code_ = code;
        close_reason_ = reason;
        protocol_error_ = true;
        close_now(ws_detail::close_frame(code, reason));
    }

    /// Drops what is queued (and the requests read ahead) and sends `close` ahead of anything
    /// else; the session ends once it is out (or at the close deadline).
    void close_now(std::string close) {
        drop_outgoing();
        pending_.clear();
        closing_ = true;
        control_ += close;
        close_started_ = true;
        close_queued_ = true;
        close_deadline_ = steady::now() + st_->opts.handshake_timeout;
        arm_timer();
        do_write();
    }

    /// No more frames in: the ingress closes; what waits to be written is dropped (what is
    /// being written stays counted until its write completes).
    void drop_outgoing() {
        {
            std::lock_guard lock(in_mu_);
            in_closed_ = true;
            in_.clear();
            queued_frames_ = inflight_frames_;
            queued_bytes_ = inflight_bytes_;
        }
        out_.clear();
    }

    /// The end: detaches from the hub, closes the socket, forgets everything queued.
    /// Idempotent; pending operations complete with errors and find closed_.
    void finish() {
        if (closed_) return;
        closed_ = true;
        timer_.cancel();
        {
            std::lock_guard lock(in_mu_);
            in_closed_ = true;
            in_.clear();
        }
        out_.clear();
        pending_.clear();
        if (attached_) st_->h.detach(subscriber_);
        error_code ignored;
        if (ws_) beast::get_lowest_layer(*ws_).socket().close(ignored);
        sock_.close(ignored);
        st_->remove(this);
        if (counted_) {
            st_->closed();
            if (st_->log.enabled(log_level::debug))
                st_->log.debug("ws close", {{"subscriber", subscriber_},
                                            {"request_id", request_id_},
                                            {"code", close_code_},
                                            {"reason", close_reason_},
                                            {"by", close_by_peer_ ? "peer" : "server"}});
        }
    }

    void fail(error_code ec, const char* what) {
        if (ec == net::error::operation_aborted || ec == websocket::error::closed ||
            ec == beast::error::timeout || ec == net::error::connection_reset ||
            ec == net::error::eof || ec == net::error::broken_pipe ||
            ec == net::error::bad_descriptor)
            return;
        st_->log.debug("ws error",
                       {{"what", what}, {"error", ec.message()}, {"request_id", request_id_}});
    }

    // ---- pings, idle peers, close deadline ----

    /// One timer: the next ping, the idle deadline, or (closing) the close deadline.
    void arm_timer() {
        if (closed_) return;
        const auto& o = st_->opts;
        steady::time_point next =
            closing_ ? close_deadline_
                     : std::min(last_ping_ + o.ping_interval, last_heard_ + o.idle_timeout);
        timer_.expires_at(next);
        timer_.async_wait(beast::bind_front_handler(&session::on_timer, shared_from_this()));
    }

    void on_timer(error_code ec) {
        if (ec == net::error::operation_aborted || closed_) return;
        const auto now = steady::now();
        if (timer_.expiry() > now) return;  // re-armed after this wait completed
        if (closing_) {
            if (now < close_deadline_) return arm_timer();
            st_->log.debug("ws close timeout", {{"subscriber", subscriber_}});
            return finish();
        }
        const auto& o = st_->opts;
        // Not reading (read-ahead full) means we are not listening: the peer is not silent.
        if (!reading_) last_heard_ = now;
        if (now - last_heard_ >= o.idle_timeout) {
            close_reason_ = "idle timeout";
            st_->log.debug("ws idle", {{"subscriber", subscriber_}});
            return finish();
        }
        if (now - last_ping_ >= o.ping_interval) {
            // A ping stuck behind a slow write is not sent twice; the interval restarts.
            last_ping_ = now;
            if (!ping_inflight_) {
                ping_inflight_ = true;
                control_ += ws_detail::control_frame(opcode::ping, {});
                do_write();
            }
        }
        arm_timer();
    }

    const net::any_io_executor ex_;  // the lane's strand; safe to read from any thread
    std::optional<ws_stream> ws_;    // the handshake; gone once open
    tcp::socket sock_;               // the connection once open (frames: ws/wire.hpp)
    net::steady_timer timer_;
    ws_lane* lane_;
    std::shared_ptr<server_state> st_;
    std::string request_id_;  // X-Request-Id of the upgrade; prefixes the requests' ids
    std::string subscriber_;  // the hub's client id
    principal who_;           // the socket's identity: from the upgrade, then login/logout
    std::string peer_ip_;     // the client's address (as the HTTP door resolved it): the
                              // throttle's key for anonymous sockets, and op.client_ip
    bool https_ = false;      // the client came over https (the Origin check's scheme)
    std::vector<pending_frame> pending_;  // read ahead, not yet executed (<= max_inflight)
    ws_detail::outbox out_;
    ws_detail::frame_parser parser_;
    std::optional<ws_detail::deflate_params> deflate_;  // negotiated permessage-deflate
    // The write in flight: its frames (and compressed payloads), their headers and iovecs,
    // and the control frames in front of them. Released when the socket falls idle.
    std::vector<frame_ptr> inflight_;
    std::string headers_;
    std::vector<net::const_buffer> iov_;
    std::string control_inflight_;
    std::uint64_t inflight_bytes_ = 0;  // queued_bytes_ of the frames in flight
    std::size_t inflight_frames_ = 0;
    std::string control_;  // control frames (pong, ping, close) waiting for the next write
    std::uint64_t requests_ = 0;

    // The ingress: filled from any thread, emptied on the strand.
    std::mutex in_mu_;
    std::vector<std::vector<frame_ptr>> in_;  // deliveries, in order
    std::uint64_t queued_bytes_ = 0;          // ingress + outbox + in flight
    std::size_t queued_frames_ = 0;
    bool drain_posted_ = false;
    bool in_closed_ = false;  // closing: frames are dropped
    bool overflow_ = false;   // the limits were hit: close with 4008

    steady::time_point last_heard_;
    steady::time_point last_ping_;
    steady::time_point close_deadline_;
    std::string close_reason_;
    std::uint16_t close_code_ = 0;
    bool open_ = false;      // handshake done
    bool counted_ = false;   // in impl::open
    bool attached_ = false;  // to the hub
    bool reading_ = false;
    bool busy_ = false;  // a request is executing
    bool writing_ = false;
    bool ping_inflight_ = false;
    bool closing_ = false;
    bool close_started_ = false;    // our close frame is queued or sent
    bool close_queued_ = false;     // ... queued in control_
    bool close_in_flight_ = false;  // ... in the write in flight
    bool close_sent_ = false;
    bool protocol_error_ = false;
    bool processing_ = false;       // in process_input()
    bool close_by_peer_ = false;
    bool closed_ = false;
    bool origin_refused_ = false;   // closes with 1008 once open
    bool clear_cookie_ = false;     // the upgrade's session cookie was stale
    bool logging_out_ = false;      // a logout is executing
    bool revoked_pending_ = false;  // revoked() arrived during it
    std::size_t throttled_in_row_ = 0;
};

void ws_lane::deliver(std::vector<lane_delivery> batch) {
    net::post(strand_, [batch = std::move(batch)]() mutable {
        for (auto& d : batch) static_cast<session&>(*d.sink).take_live(std::move(d.frames));
    });
}

/// `in`'s connection, moved onto `ex` (a lane's strand), so that every handler of the socket
/// runs on its lane.
beast::tcp_stream onto(beast::tcp_stream&& in, const net::any_io_executor& ex, error_code& ec) {
    tcp::socket sock = in.release_socket();
    const auto local = sock.local_endpoint(ec);
    if (ec) return beast::tcp_stream(ex);
    const auto fd = sock.release(ec);
    beast::tcp_stream out(ex);
    if (ec) return out;
    out.socket().assign(local.protocol(), fd, ec);
    if (ec) ::close(fd);  // released from one socket and taken by none
    return out;
}

}  // namespace

//------------------------------------------------------------------------------

struct ws_server::impl {
    std::shared_ptr<server_state> state;
};

ws_server::ws_server(api& a, hub& h, ws_options options, logger& log, metrics& m)
    : impl_(std::make_shared<impl>()) {
    impl_->state = std::make_shared<server_state>(a, h, options, log, m);
    m.set_gauge("livebase_ws_sockets", 0);
    m.set_gauge("livebase_ws_slow_consumer_closes", 0);
}

ws_server::~ws_server() { close_all(); }

void ws_server::accept(websocket_upgrade&& upgrade) {
    const bool pipelined = upgrade.buffer.size() > 0;
    ws_lane& lane = impl_->state->pick_lane(upgrade.stream.get_executor());
    error_code ec;
    beast::tcp_stream stream = onto(std::move(upgrade.stream), lane.executor(), ec);
    if (ec) {
        impl_->state->log.warn("ws: could not move a connection to its lane", {{"error", ec.message()}});
        return;
    }
    auto s = std::make_shared<session>(
        std::move(stream), lane, impl_->state,
        upgrade.request_id.empty() ? make_ulid() : std::move(upgrade.request_id),
        std::move(upgrade.client_address), upgrade.https);
    s->run(std::move(upgrade.request), pipelined);
}

void ws_server::drain() {
    impl_->state->draining.store(true);
    for (auto& s : impl_->state->snapshot()) s->drain();
}

void ws_server::close_all() {
    impl_->state->stopped.store(true);
    for (auto& s : impl_->state->snapshot()) s->force_close();
}

std::size_t ws_server::sockets() const noexcept { return impl_->state->open.load(); }

}  // namespace livebase
