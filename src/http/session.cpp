// A session's life on its connection: reading requests, writing responses in order,
// deadlines, the lingering close.
#include "http/session.hpp"

namespace livebase::http_detail {

session::session(tcp::socket&& socket, std::shared_ptr<server_state> state)
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

session::~session() {
    if (counted_ && !closed_) state_->closed(this);
    release_hub();  // handlers destroyed unrun (the io_context stopped) end a stream too
}

void session::start() {
    counted_ = true;
    state_->opened(shared_from_this());
    net::dispatch(ex_, [self = shared_from_this()] {
        if (self->state_->stopped.load()) return self->close_socket();
        // Accepted during the drain period: every request answers 503 draining.
        self->late_ = self->state_->draining.load();
        self->do_read();
    });
}

void session::reject() {
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

void session::drain(steady::time_point idle_until) {
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

void session::force_close() {
    net::dispatch(ex_, [self = shared_from_this()] { self->close_socket(); });
}

void session::do_read() {
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

void session::on_first_bytes(error_code ec, std::size_t n) {
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

void session::start_request() {
    phase_ = read_phase::partial;
    request_since_ = steady::now();
    update_deadline();
    bhttp::async_read_header(
        stream_, buffer_, *parser_,
        beast::bind_front_handler(&session::on_header, shared_from_this()));
}

void session::on_header(error_code ec, std::size_t n) {
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

void session::on_read(error_code ec, std::size_t) {
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

void session::on_read_error(error_code ec, const char* what) {
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

void session::reply_and_close(http_detail::response_parts parts) {
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

void session::do_discard() {
    phase_ = read_phase::discarding;
    stream_.async_read_some(
        buffer_.prepare(k_read_chunk),
        beast::bind_front_handler(&session::on_discard, shared_from_this()));
}

void session::on_discard(error_code ec, std::size_t) {
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

void session::close_after(response_queue_id id) {
    if (auto* s = queue_.find(id)) s->close = true;
    closing_ = true;
}

void session::respond(response_queue_id id, http_detail::response_parts parts) {
    slot* s = queue_.find(id);
    if (!s) return;
    if (s->clear_cookie)
        parts.headers.emplace_back("Set-Cookie",
                                   gate::cleared_cookie(state_->door.https({{}, s->https})));
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

std::shared_ptr<bhttp::response<bhttp::string_body>> session::make_response(
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

http_detail::response_parts session::shutting_down() {
    // problem::unavailable carries retry_after 1: render_problem writes Retry-After.
    return http_detail::render_problem(problem::unavailable("The server is shutting down."));
}

void session::do_write() {
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

void session::on_write(error_code ec, std::size_t bytes) {
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

void session::finish() {
    error_code ec;
    stream_.socket().shutdown(tcp::socket::shutdown_send, ec);
    if (ec || peer_eof_) return close_socket();
    lingering_ = true;
    linger_until_ = steady::now() + k_linger;
    update_deadline();
    if (phase_ == read_phase::none) do_discard();
    // An awaiting or discarding read already pending turns into the discard loop.
}

void session::update_deadline() {
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

void session::on_timer(error_code ec) {
    if (ec == net::error::operation_aborted || closed_) return;
    if (timer_.expiry() > steady::now()) return;  // re-armed after this wait completed
    armed_ = false;
    state_->log.debug("connection timeout", {{"phase", static_cast<int>(phase_)}});
    close_socket();
}

void session::close_socket() {
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

void session::fail(error_code ec, const char* what) {
    if (ec == net::error::operation_aborted || ec == beast::error::timeout ||
        ec == net::error::connection_reset || ec == net::error::eof ||
        ec == net::error::broken_pipe || ec == net::error::bad_descriptor)
        return;
    state_->log.debug("connection error", {{"what", what}, {"error", ec.message()}});
}

}  // namespace livebase::http_detail
