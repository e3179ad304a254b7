// The WebSocket door: sessions in the shape of Beast's websocket chat-multi / advanced server.
// Policy lives next to this file (codec: the envelope; request_plan: request -> operation or
// hub command; outbox: the bounded send queue); sessions only adapt them to sockets.
//
// Behaviour where realtime.md is silent:
// - Requests of one socket run one at a time, in arrival order, so replies are in request
//   order (across streams too). Up to max_inflight frames are read ahead; beyond that the
//   session stops reading and TCP pushes back.
// - Everything a socket sends (hello, replies, events) goes through one ordered ingress: the
//   hub's deliver() and request completions append to it from any thread, the strand moves it
//   to the outbox and writes one frame at a time. Replies to subscribe/observe are appended
//   from inside the hub's `done`, which the hub runs before the first event of that
//   subscription, so a subscription's reply always precedes its events.
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
// - Frames over max_message: Beast answers the close handshake with 1009. Binary frames and
//   bad frames get a 400 reply on stream "error" and the socket stays open.
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
#include <boost/asio/post.hpp>
#include <boost/asio/steady_timer.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/core/buffers_to_string.hpp>
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

namespace livebase {

namespace {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace websocket = beast::websocket;
namespace bhttp = beast::http;
using error_code = boost::system::error_code;
using steady = std::chrono::steady_clock;
using ws_detail::frame_ptr;
// No permessage-deflate: its inflate/deflate state would cost far more per socket than the
// 8 KiB an idle socket may use, and the frames are small JSON.
using ws_stream = websocket::stream<beast::tcp_stream, false>;

constexpr std::string_view k_subprotocol = "livebase.v1";
constexpr std::uint16_t k_close_slow_consumer = 4008;
constexpr std::uint16_t k_close_throttled = 4429;
constexpr std::uint16_t k_close_revoked = 4401;
/// Beast's frame-assembly buffer. The server neither masks nor compresses nor fragments, so
/// the buffer is barely used; the default (4 KiB) would be most of an idle socket's budget.
constexpr std::size_t k_write_buffer_bytes = 256;

class session;

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
    session(beast::tcp_stream&& stream, std::shared_ptr<server_state> state, std::string request_id)
        : ws_(std::move(stream)),
          ex_(ws_.get_executor()),
          timer_(ex_),
          st_(std::move(state)),
          request_id_(std::move(request_id)),
          out_({st_->opts.send_queue, st_->opts.send_queue_messages}) {
        error_code ec;
        auto peer = beast::get_lowest_layer(ws_).socket().remote_endpoint(ec);
        if (!ec) peer_ip_ = peer.address().to_string();
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
            it != req.end() && !http_detail::origin_allowed(it->value(), req[bhttp::field::host],
                                                            st_->opts.allowed_origins)) {
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
        ws_.set_option(t);
        const bool subprotocol = offers_subprotocol(req[bhttp::field::sec_websocket_protocol]);
        ws_.set_option(websocket::stream_base::decorator(
            [subprotocol, rid = request_id_, clear = clear_cookie_](websocket::response_type& res) {
                res.set(bhttp::field::server, "livebase");
                res.set("X-Request-Id", rid);
                if (subprotocol) res.set(bhttp::field::sec_websocket_protocol, k_subprotocol);
                if (clear)
                    res.set(bhttp::field::set_cookie,
                            std::string(http_detail::k_session_cookie) +
                                "=; Path=/; Max-Age=0; HttpOnly; SameSite=Lax");
            }));
        ws_.read_message_max(st_->opts.max_message);
        ws_.auto_fragment(false);
        ws_.write_buffer_bytes(k_write_buffer_bytes);
        // `this` is safe: the callback lives in ws_, a member.
        ws_.control_callback(
            [this](websocket::frame_type, beast::string_view) { last_heard_ = steady::now(); });
        // The websocket stream has its own timeouts; the TCP layer's would cut long sessions.
        beast::get_lowest_layer(ws_).expires_never();
        ws_.async_accept(req, beast::bind_front_handler(&session::on_accept, shared_from_this()));
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
        beast::get_lowest_layer(ws_).expires_after(st_->opts.handshake_timeout);
        bhttp::async_write(
            ws_.next_layer(), *res,
            [self = shared_from_this(), res](error_code, std::size_t) { self->finish(); });
    }

    void on_accept(error_code ec) {
        if (closed_) return;
        if (ec) {
            fail(ec, "accept");
            return finish();
        }
        open_ = true;
        counted_ = true;
        // The handshake's decorator (with its copy of the request id) is never used again.
        ws_.set_option(websocket::stream_base::decorator([](websocket::response_type&) {}));
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

    void do_read() {
        if (reading_ || closing_ || closed_ || pending_.size() >= st_->opts.max_inflight) return;
        reading_ = true;
        ws_.async_read(rbuf_, beast::bind_front_handler(&session::on_read, shared_from_this()));
    }

    void on_read(error_code ec, std::size_t) {
        reading_ = false;
        if (closed_) return;
        if (ec) {
            if (ec == websocket::error::closed) {
                if (!closing_) {  // the peer started the close handshake (Beast answered it)
                    close_code_ = ws_.reason().code;
                    close_reason_ =
                        std::string(ws_.reason().reason.data(), ws_.reason().reason.size());
                    close_by_peer_ = true;
                }
                return finish();
            }
            if (ec == websocket::error::message_too_big) {
                // Beast has already sent the 1009 close frame.
                close_code_ = websocket::close_code::too_big;
                close_reason_ = "message too big";
                return finish();
            }
            if (closing_) return;  // our close handshake finishes the session
            fail(ec, "read");
            return finish();
        }
        last_heard_ = steady::now();
        pending_frame f;
        f.binary = !ws_.got_text();
        if (!f.binary) f.text = beast::buffers_to_string(rbuf_.data());
        rbuf_.consume(rbuf_.size());
        rbuf_.shrink_to_fit();  // an idle socket holds no read buffer
        pending_.push_back(std::move(f));
        start_next();
        do_read();
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

    void do_write() {
        if (writing_ || closed_) return;
        if (out_.empty()) {
            if (closing_ && !close_started_) do_close();
            return;
        }
        inflight_ = out_.front();
        out_.pop();
        writing_ = true;
        ws_.text(true);
        ws_.async_write(net::buffer(*inflight_),
                        beast::bind_front_handler(&session::on_write, shared_from_this()));
    }

    void on_write(error_code ec, std::size_t) {
        writing_ = false;
        {
            std::lock_guard lock(in_mu_);
            queued_bytes_ -= inflight_->size();
            --queued_frames_;
        }
        inflight_.reset();
        if (closed_) return;
        if (ec) {
            fail(ec, "write");
            return finish();
        }
        do_write();
    }

    /// The peer does not read fast enough: drop what is queued and close with 4008.
    void slow_consumer() {
        if (closed_) return;
        {
            std::lock_guard lock(in_mu_);
            in_closed_ = true;
            in_.clear();
            queued_frames_ = writing_ ? 1 : 0;
            queued_bytes_ = writing_ ? inflight_->size() : 0;
        }
        out_.clear();
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

    void do_close() {
        close_started_ = true;
        websocket::close_reason cr(static_cast<websocket::close_code>(close_code_), close_reason_);
        ws_.async_close(cr, beast::bind_front_handler(&session::on_close, shared_from_this()));
    }

    void on_close(error_code ec) {
        if (ec) fail(ec, "close");
        finish();
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
        beast::get_lowest_layer(ws_).socket().close(ignored);
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
                ws_.async_ping({},
                               beast::bind_front_handler(&session::on_ping, shared_from_this()));
            }
        }
        arm_timer();
    }

    void on_ping(error_code ec) {
        ping_inflight_ = false;
        if (ec && !closed_) fail(ec, "ping");
    }

    ws_stream ws_;
    const net::any_io_executor ex_;  // the connection's strand; safe to read from any thread
    net::steady_timer timer_;
    std::shared_ptr<server_state> st_;
    std::string request_id_;  // X-Request-Id of the upgrade; prefixes the requests' ids
    std::string subscriber_;  // the hub's client id
    principal who_;           // the socket's identity: from the upgrade, then login/logout
    std::string peer_ip_;     // the throttle's key for anonymous sockets, and op.client_ip
    beast::flat_buffer rbuf_;
    std::vector<pending_frame> pending_;  // read ahead, not yet executed (<= max_inflight)
    ws_detail::outbox out_;
    frame_ptr inflight_;  // the frame being written
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
    bool close_started_ = false;
    bool close_by_peer_ = false;
    bool closed_ = false;
    bool origin_refused_ = false;   // closes with 1008 once open
    bool clear_cookie_ = false;     // the upgrade's session cookie was stale
    bool logging_out_ = false;      // a logout is executing
    bool revoked_pending_ = false;  // revoked() arrived during it
    std::size_t throttled_in_row_ = 0;
};

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
    auto s = std::make_shared<session>(
        std::move(upgrade.stream), impl_->state,
        upgrade.request_id.empty() ? make_ulid() : std::move(upgrade.request_id));
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
