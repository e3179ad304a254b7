#pragma once
// One WebSocket connection (a session), its lane and the state it shares with ws_server. The
// session's work is spread over three files: session.cpp (handshake, lifetime, closing, pings
// and deadlines), requests.cpp (reading frames and executing requests: throttling, the auth
// stream, replies) and send_path.cpp (the ordered ingress, the outbox and gathered writes).
// Behaviour where realtime.md is silent: docs/websocket-server.md. Private to the ws component.
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
#include <livebase/gate/gate.hpp>
#include <livebase/gate/session_set.hpp>
#include <livebase/auth/rules.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/ws/ws_server.hpp>
#include <optional>
#include <mutex>
#include <unordered_map>
#include <vector>

#include "gate/net_names.hpp"
#include "ws/codec.hpp"
#include "ws/outbox.hpp"
#include "ws/request_plan.hpp"
#include "ws/wire.hpp"

namespace livebase::ws_detail {

using namespace net_names;
// Beast does the opening handshake only; frames go through ws/wire.hpp on the raw socket.
// permessage-deflate is negotiated by the session itself (no context takeover, so no
// compression state per socket).
using ws_stream = websocket::stream<beast::tcp_stream, false>;

inline constexpr std::string_view k_subprotocol = "livebase.v1";
inline constexpr std::uint16_t k_close_slow_consumer = 4008;
inline constexpr std::uint16_t k_close_throttled = 4429;
inline constexpr std::uint16_t k_close_revoked = 4401;
/// Beast's frame-assembly buffer, used by nothing but the handshake.
inline constexpr std::size_t k_write_buffer_bytes = 256;
/// Frames gathered into one write (two iovecs each; IOV_MAX is 1024).
inline constexpr std::size_t k_max_frames_per_write = 500;
/// Bytes read from a socket per wake-up before its parsed requests are served.
inline constexpr std::size_t k_read_chunk = 64 * 1024;
inline constexpr int k_max_reads_per_wake = 4;
/// Compressed payloads a lane keeps for its sockets (one per recent event and shape).
inline constexpr std::size_t k_deflate_cache = 4096;

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
inline frame_ptr make_frame(std::string s) { return std::make_shared<const std::string>(std::move(s)); }

/// The user as hello and login replies present it (realtime.md "hello"): null when anonymous.
inline json::value user_json(const principal& who) {
    if (!who.authenticated()) return nullptr;
    return json::object{{"id", who.user_id}, {"username", who.username}, {"admin", who.admin}};
}

/// True when the comma-separated Sec-WebSocket-Protocol list offers `k_subprotocol`.
inline bool offers_subprotocol(std::string_view header) {
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
        : a(a), h(h), opts(o), log(log), m(m), door(opts.gate) {}

    api& a;
    hub& h;
    const ws_options opts;
    logger& log;
    metrics& m;
    const gate door;

    std::atomic<bool> draining{false};
    std::atomic<bool> stopped{false};
    std::atomic<std::size_t> open{0};

    session_set<session> sessions;
    std::mutex mu;  // the gauges' order
    std::uint64_t slow_closes = 0;  // guarded by mu

    void add(const std::shared_ptr<session>& s) { sessions.add(s); }
    void remove(const session* s) { sessions.remove(s); }
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

    std::vector<std::shared_ptr<session>> snapshot() { return sessions.snapshot(); }
};

//------------------------------------------------------------------------------

/// One WebSocket connection. Members are touched only on the connection's strand, except the
/// ingress (guarded by in_mu_), which deliver() and request completions fill from any thread.

class session : public event_sink, public std::enable_shared_from_this<session> {
public:
    /// `stream` runs on `lane`'s strand.
    session(beast::tcp_stream&& stream, ws_lane& lane, std::shared_ptr<server_state> state,
            std::string request_id, std::string client_address = {}, bool https = false);

    ~session() override;

    /// Starts the handshake. `pipelined`: the peer sent bytes after the upgrade request.
    void run(bhttp::request<bhttp::string_body> req, bool pipelined);

    /// Graceful close with 1001; a handshake in progress is dropped.
    void drain();

    void force_close();

    /// event_sink: called on the hub thread; never blocks (a short lock, pointer moves).
    void deliver(std::vector<frame_ptr> frames) override { enqueue(std::move(frames)); }

    /// event_sink: the credentials of this socket ended. Called on the hub thread.
    void revoked() override;

    /// event_sink: live events come through the lane, in one batch per pass.
    event_lane* lane() noexcept override { return lane_; }

    /// event_sink: `ready` once the send queue (ingress + outbox + in flight) is at or below a
    /// quarter of send_queue and of send_queue_messages; at once when it already is. A closing
    /// socket drops it (the hub drops the replay when the socket detaches). Hub thread.
    void when_ready(std::function<void()> ready) override;

    /// event_sink: a resume cannot go on without a gap; the client resumes after a 4008.
    void resync() override;

    /// On the lane's strand: one pass's frames for this socket. Takes whatever the ingress
    /// holds first (it was queued earlier), then the frames, and starts a write.
    void take_live(std::vector<frame_ptr>&& frames);

private:
    // ---- handshake ----

    void do_accept(bhttp::request<bhttp::string_body> req, bool pipelined);

    void on_admitted(bhttp::request<bhttp::string_body> req, admission a);

    void handshake(bhttp::request<bhttp::string_body> req);

    /// Answers a request that is not served as a WebSocket, then closes.
    void reject(const problem& p,
                std::initializer_list<std::pair<const char*, const char*>> headers = {});

    void on_accept(error_code ec);

    // ---- reading and executing requests ----

    struct pending_frame {
        std::string text;
        bool binary = false;
    };

    /// Waits until the socket is readable (an idle socket holds no read buffer). Stops while
    /// the read-ahead is full (TCP pushes back); reads on while closing, for the peer's close.
    void do_read();

    void on_readable(error_code ec);

    /// Serves what the parser has: requests into the read-ahead (up to max_inflight), control
    /// frames at once. Not re-entered (a request answered on the spot comes back here).
    void process_input();

    void start_next();

    void handle(pending_frame f);

    /// A feed of a whole collection (subscribe without pk, observe) is a list that keeps
    /// going: the collection's list rule answers it as it answers `list` (401, 403). Rows and
    /// events are then narrowed and filtered per record by the hub. Tasks are not in the
    /// registry: the hub alone judges them (visibility by submitter).
    std::optional<problem> list_refusal(const std::string& collection) const;

    // ---- throttling ----

    /// One token for the current frame: nullopt when allowed, else the wait.
    std::optional<std::chrono::milliseconds> take_token();

    /// Answers a throttled frame 429 on its stream (a bad frame's on "error"), and closes with
    /// 4429 once the peer keeps sending through max_throttled refusals.
    void refuse_throttled(const ws_detail::decoded_frame& f, std::chrono::milliseconds wait);

    // ---- the auth stream ----

    /// The socket's identity, with the peer's address (anonymous sockets are known by it).
    void set_identity(principal who);

    /// Reply to an auth request; on the strand.
    void reply_now(const ws_detail::ws_request& r, int status, const json::value& data);

    void login(std::shared_ptr<const ws_detail::ws_request> req, ws_detail::request_plan plan);

    /// On the strand: resolves `token` and makes it the socket's identity. `grant`: the api's
    /// login reply ({token, expires, user}), sent as the reply's data; {} for a token login,
    /// whose reply is {"user"}.
    void resolve_login(std::shared_ptr<const ws_detail::ws_request> req, std::string token,
                       json::object grant);

    void on_login(const ws_detail::ws_request& req, result<principal> who, json::object grant);

    void logout(std::shared_ptr<const ws_detail::ws_request> req, ws_detail::request_plan plan);

    /// On the strand: the hub says this socket's credentials ended (it already treats the
    /// socket as anonymous).
    void on_revoked();

    // Reply helpers for hub commands; called on the hub thread (inside `done`), so the reply
    // enters the ingress before any event of the new subscription.
    void reply_ok(const ws_detail::ws_request& r, int status, const json::value& data);
    void reply_problem(const ws_detail::ws_request& r, const problem& p);

    /// Any thread: the current request's reply is queued; continue on the strand.
    void post_done(std::uint16_t close_code, const char* reason = "");

    /// On the strand: the current request is answered (its reply is in the ingress); a
    /// `close_code` closes the socket after it.
    void request_done(std::uint16_t close_code, const char* reason = "");

    // ---- the send path ----

    /// Counts a delivery against the socket's bounds (under in_mu_): false, and the socket
    /// marked for a 4008 close, when what is queued already exceeds them.
    bool admit_locked(const std::vector<frame_ptr>& frames);
    void enqueue_one(frame_ptr f);

    /// Any thread. Appends one delivery to the ingress, or marks the peer slow (then drops the
    /// frames: the socket is closing with 4008) when its queue is already over a limit.
    void enqueue(std::vector<frame_ptr>&& frames);

    /// On the strand: moves the ingress into the outbox and writes.
    void on_ingress();

    /// Everything queued (control frames first, then up to k_max_frames_per_write frames) in
    /// one gathered write: a header per frame in front of its shared payload. A closing
    /// session's close frame follows the last frame. Loops (through on_write) until the queue
    /// is empty or the socket is full.
    void do_write();

    void on_write(error_code ec, std::size_t);

    /// REQUIRES: in_mu_. The queue is down to a quarter of its bounds: a resume's next page
    /// may come (when_ready).
    bool has_room() const noexcept;

    /// The peer does not read fast enough: drop what is queued and close with 4008.
    void slow_consumer();

    // ---- closing ----

    /// Stops reading requests and accepting frames; flushes the outbox, then closes with
    /// `code`. The first close wins (except slow_consumer(), which clears the queue first).
    void start_close(std::uint16_t code, const char* reason);

    /// The peer sent a close frame: answer it (echoing its code) and end, dropping what is
    /// queued; or, when ours was already under way, the handshake is complete.
    void on_peer_close(std::uint16_t code, const std::string& reason);

    /// The peer's frames broke the protocol or a limit (1002, 1007, 1009): close with `code`
    /// at once, dropping what is queued, and end once the close frame is out.
    void protocol_close(std::uint16_t code, const char* reason);

    /// Drops what is queued (and the requests read ahead) and sends `close` ahead of anything
    /// else; the session ends once it is out (or at the close deadline).
    void close_now(std::string close);

    /// No more frames in: the ingress closes; what waits to be written is dropped (what is
    /// being written stays counted until its write completes).
    void drop_outgoing();

    /// The end: detaches from the hub, closes the socket, forgets everything queued.
    /// Idempotent; pending operations complete with errors and find closed_.
    void finish();

    void fail(error_code ec, const char* what);

    // ---- pings, idle peers, close deadline ----

    /// One timer: the next ping, the idle deadline, or (closing) the close deadline.
    void arm_timer();

    void on_timer(error_code ec);

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
    std::function<void()> ready_;  // the hub's when_ready() notice, waiting for room

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

}  // namespace livebase::ws_detail
