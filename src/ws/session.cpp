// A WebSocket session's life: the handshake (Origin, credentials through the gate), the
// hub's calls, closing, pings and deadlines.
#include "ws/session.hpp"

namespace livebase::ws_detail {

session::session(beast::tcp_stream&& stream, ws_lane& lane, std::shared_ptr<server_state> state,
                 std::string request_id, std::string client_address, bool https)
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

session::~session() {
    // Only when destroyed unfinished (its handlers dropped with a stopped io_context).
    if (closed_) return;
    if (attached_) st_->h.detach(subscriber_);
    st_->remove(this);
    if (counted_) st_->closed();
}

void session::run(bhttp::request<bhttp::string_body> req, bool pipelined) {
    st_->add(shared_from_this());
    net::dispatch(ex_, [self = shared_from_this(), req = std::move(req), pipelined]() mutable {
        self->do_accept(std::move(req), pipelined);
    });
}

void session::drain() {
    net::dispatch(ex_, [self = shared_from_this()] {
        if (!self->open_) return self->finish();
        self->start_close(websocket::close_code::going_away, "going away");
    });
}

void session::force_close() {
    net::dispatch(ex_, [self = shared_from_this()] { self->finish(); });
}

void session::revoked() {
    net::post(ex_, [self = shared_from_this()] { self->on_revoked(); });
}

void session::when_ready(std::function<void()> ready) {
    {
        std::lock_guard lock(in_mu_);
        if (in_closed_) return;
        if (!has_room()) {
            ready_ = std::move(ready);
            return;
        }
    }
    ready();
}

void session::resync() {
    net::post(ex_, [self = shared_from_this()] { self->slow_consumer(); });
}

void session::do_accept(bhttp::request<bhttp::string_body> req, bool pipelined) {
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
        !st_->door.origin_allowed(it->value(), req[bhttp::field::host], https_)) {
        origin_refused_ = true;
        return handshake(std::move(req));
    }
    const gate& door = st_->door;
    const auto cred = door.credentials(req[bhttp::field::authorization], req[bhttp::field::cookie]);
    if (auto now = door.admit_now(cred)) return on_admitted(std::move(req), std::move(*now));
    auto held = std::make_shared<bhttp::request<bhttp::string_body>>(std::move(req));
    door.admit(cred, [self = shared_from_this(), held](admission a) {
        net::post(self->ex_, [self, held, a = std::move(a)]() mutable {
            self->on_admitted(std::move(*held), std::move(a));
        });
    });
}

void session::on_admitted(bhttp::request<bhttp::string_body> req, admission a) {
    if (closed_) return;
    if (a.refused) return reject(*a.refused, {{"WWW-Authenticate", "Bearer"}});
    if (a.clear_cookie) clear_cookie_ = true;
    else if (a.who.authenticated()) set_identity(std::move(a.who));
    handshake(std::move(req));
}

void session::handshake(bhttp::request<bhttp::string_body> req) {
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
            if (clear) res.set(bhttp::field::set_cookie, gate::cleared_cookie(https));
        }));
    ws_->write_buffer_bytes(k_write_buffer_bytes);
    // The websocket stream has its own timeouts; the TCP layer's would cut long sessions.
    beast::get_lowest_layer(*ws_).expires_never();
    ws_->async_accept(req, beast::bind_front_handler(&session::on_accept, shared_from_this()));
}

void session::reject(const problem& p,
                     std::initializer_list<std::pair<const char*, const char*>> headers) {
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

void session::on_accept(error_code ec) {
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

void session::set_identity(principal who) {
    who.address = peer_ip_;
    who_ = std::move(who);
}

void session::start_close(std::uint16_t code, const char* reason) {
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

void session::on_peer_close(std::uint16_t code, const std::string& reason) {
    if (close_started_) return finish();
    close_code_ = code;
    close_reason_ = reason;
    close_by_peer_ = true;
    close_now(code == 1005 ? ws_detail::control_frame(opcode::close, {})
                           : ws_detail::close_frame(code, {}));
}

void session::protocol_close(std::uint16_t code, const char* reason) {
    if (close_started_) return finish();
    close_code_ = code;
    close_reason_ = reason;
    protocol_error_ = true;
    close_now(ws_detail::close_frame(code, reason));
}

void session::close_now(std::string close) {
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

void session::drop_outgoing() {
    {
        std::lock_guard lock(in_mu_);
        in_closed_ = true;
        in_.clear();
        queued_frames_ = inflight_frames_;
        queued_bytes_ = inflight_bytes_;
    }
    out_.clear();
}

void session::finish() {
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

void session::fail(error_code ec, const char* what) {
    if (ec == net::error::operation_aborted || ec == websocket::error::closed ||
        ec == beast::error::timeout || ec == net::error::connection_reset ||
        ec == net::error::eof || ec == net::error::broken_pipe ||
        ec == net::error::bad_descriptor)
        return;
    st_->log.debug("ws error",
                   {{"what", what}, {"error", ec.message()}, {"request_id", request_id_}});
}

void session::arm_timer() {
    if (closed_) return;
    const auto& o = st_->opts;
    steady::time_point next =
        closing_ ? close_deadline_
                 : std::min(last_ping_ + o.ping_interval, last_heard_ + o.idle_timeout);
    timer_.expires_at(next);
    timer_.async_wait(beast::bind_front_handler(&session::on_timer, shared_from_this()));
}

void session::on_timer(error_code ec) {
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

}  // namespace livebase::ws_detail
