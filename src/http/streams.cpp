// Server-Sent Events on a session: change streams and live queries through the hub, task
// streams that follow one task until it finishes.
#include "http/session.hpp"

namespace livebase::http_detail {

void session::on_hub_frames(std::vector<std::shared_ptr<const std::string>> frames, std::size_t bytes) {
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

void session::on_hub_when_ready(std::function<void()> ready) {
    if (closed_ || !sse_ || sse_->ending || sse_->client.empty()) return;
    sse_->ready = std::move(ready);
    notify_ready();
}

void session::end_stream(std::string_view why) {
    if (closed_ || !sse_ || sse_->ending || sse_->client.empty()) return;
    state_->log.info(why, {{"client", sse_->client}});
    sse_->ending = true;
    poll_timer_.cancel();
    pump();
}

void session::on_hub_overflow() {
    if (closed_) return;
    state_->log.debug("stream reader too slow", {{"pending", "hub backlog"}});
    close_socket();
}

const collection_def* session::find_streamable(std::string_view name) const {
    if (name == tasks_collection().name) return &tasks_collection();
    return state_->a.reg().find(name);
}

std::optional<problem> session::feed_refusal(const collection_def& c, const principal& who) {
    if (&c == &tasks_collection()) return std::nullopt;
    const auto d = check_rule(c.rule_for("list"), who);
    if (d == decision::allow) return std::nullopt;
    return refusal_problem(d);
}

void session::start_events(response_queue_id id, const bhttp::request<bhttp::string_body>& req,
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

void session::on_events_subscribed(response_queue_id id, std::string client,
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

void session::schedule_keep_alive() {
    poll_timer_.expires_at(sse_->last_output + keep_alive_interval());
    poll_timer_.async_wait(
        beast::bind_front_handler(&session::on_keep_alive_timer, shared_from_this()));
}

void session::on_keep_alive_timer(error_code ec) {
    if (ec || closed_ || !sse_ || sse_->ending || sse_->done) return;
    if (steady::now() - sse_->last_output >= keep_alive_interval()) {
        add_output(http_detail::format_sse_comment("keep-alive"));
        if (closed_) return;
        pump();
    }
    schedule_keep_alive();
}

std::chrono::milliseconds session::keep_alive_interval() const {
    // A zero interval would spin the timer.
    return std::max(state_->opts.sse_keep_alive, std::chrono::milliseconds(10));
}

void session::release_hub() noexcept {
    if (!sse_ || sse_->client.empty() || !state_->realtime) return;
    state_->realtime->detach(sse_->client);
    sse_->client.clear();
}

void session::start_observe(response_queue_id id, std::string subscriber, operation op) {
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

void session::start_stream(response_queue_id id, operation op, outcome o) {
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

sse_stream& session::begin_sse(response_queue_id id, slot& s) {
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

void session::add_snapshot(const json::value& task) {
    auto& st = *sse_;
    auto text = to_json_text(task);
    if (text == st.last) return;
    st.last = std::move(text);
    if (http_detail::task_snapshot_finished(task)) st.ending = true;
    add_output(http_detail::format_sse_event(++st.seq, "task", st.last));
}

void session::add_output(std::string_view bytes) {
    auto& st = *sse_;
    const bool waiting = !st.out.empty();  // the reader has not taken the previous output
    st.out += st.chunked ? http_detail::frame_chunk(bytes) : std::string(bytes);
    st.last_output = steady::now();
    if (waiting && st.out.size() > state_->opts.sse_max_pending) {
        state_->log.debug("stream reader too slow", {{"pending", st.out.size()}});
        close_socket();
    }
}

void session::watch_and_look() {
    const bool watching = state_->a.watch_task(sse_->op.id, sse_->last_output + keep_alive_interval(),
                                               [self = shared_from_this()] {
                                                   net::post(self->ex_, [self] { self->on_task_change(); });
                                               });
    // Not watching (shutting down, or too many watchers): this look is the last.
    state_->a.execute(sse_->op, [self = shared_from_this(), last = !watching](outcome o) {
        net::post(self->ex_, [self, last, o = std::move(o)]() mutable { self->on_poll(std::move(o), last); });
    });
}

void session::on_task_change() {
    if (closed_ || !sse_ || sse_->ending) return;
    if (steady::now() - sse_->last_output >= keep_alive_interval()) {
        add_output(http_detail::format_sse_comment("keep-alive"));
        if (closed_) return;
        pump();
    }
    watch_and_look();
}

void session::on_poll(outcome o, bool last) {
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

void session::pump() {
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

void session::begin_stream_write() {
    writing_ = true;
    write_since_ = steady::now();
    update_deadline();
}

void session::on_stream_write(error_code ec, std::size_t bytes) {
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

void session::notify_ready() {
    auto& st = *sse_;
    if (!st.ready) return;
    const std::size_t pending =
        st.out.size() + (writing_ ? st.inflight.size() : 0) + (st.sink ? st.sink->backlog() : 0);
    if (pending > state_->opts.sse_max_pending / 4) return;
    auto ready = std::exchange(st.ready, nullptr);
    ready();  // only queues a hub command
}

void session::end_stream() {
    sse_->done = true;
    release_hub();
    log_stream();
    queue_.pop();
    poll_timer_.cancel();
    finish();
}

void session::log_stream() {
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

}  // namespace livebase::http_detail
