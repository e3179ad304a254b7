// A WebSocket session's requests: frames read and parsed, executed one at a time in arrival
// order through the api or the hub, throttled, and the auth stream.
#include "ws/session.hpp"

namespace livebase::ws_detail {

void session::do_read() {
    if (reading_ || closed_ || !open_) return;
    if (!closing_ && pending_.size() >= st_->opts.max_inflight) return;
    reading_ = true;
    sock_.async_wait(tcp::socket::wait_read,
                     beast::bind_front_handler(&session::on_readable, shared_from_this()));
}

void session::on_readable(error_code ec) {
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

void session::process_input() {
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

void session::start_next() {
    if (busy_ || pending_.empty() || closing_ || closed_) return;
    busy_ = true;
    auto f = std::move(pending_.front());
    pending_.erase(pending_.begin());
    handle(std::move(f));
}

void session::handle(pending_frame f) {
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
                                        st_->door.options().auth != nullptr);
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

std::optional<problem> session::list_refusal(const std::string& collection) const {
    const collection_def* c = st_->a.reg().find(collection);
    if (!c) return std::nullopt;
    const auto d = check_rule(c->rule_for("list"), who_);
    if (d == decision::allow) return std::nullopt;
    return refusal_problem(d);
}

std::optional<std::chrono::milliseconds> session::take_token() {
    return st_->door.take(who_, peer_ip_);
}

void session::refuse_throttled(const ws_detail::decoded_frame& f, std::chrono::milliseconds wait) {
    const auto& r = f.request;
    const std::string_view stream =
        f.error || r.stream.empty() ? ws_detail::k_error_stream : std::string_view(r.stream);
    const json::value action = r.action.empty() ? json::value(nullptr) : json::value(r.action);
    enqueue_one(make_frame(ws_detail::encode_error(stream, action, r.request_id, gate::throttled(wait))));
    if (++throttled_in_row_ >= std::max<std::size_t>(1, st_->opts.max_throttled))
        return request_done(k_close_throttled, "too many messages");
    request_done(0);
}

void session::reply_now(const ws_detail::ws_request& r, int status, const json::value& data) {
    enqueue_one(make_frame(
        ws_detail::encode_reply(r.stream, json::value(r.action), r.request_id, status, data)));
}

void session::login(std::shared_ptr<const ws_detail::ws_request> req, ws_detail::request_plan plan) {
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

void session::resolve_login(std::shared_ptr<const ws_detail::ws_request> req, std::string token,
                   json::object grant) {
    authenticator* auth = st_->door.options().auth;
    if (auto hit = auth->resolve_cached(token))
        return on_login(*req, std::move(*hit), std::move(grant));
    auth->resolve(token, [self = shared_from_this(), req,
                          grant = std::move(grant)](result<principal> r) mutable {
        net::post(self->ex_, [self, req, grant = std::move(grant), r = std::move(r)]() mutable {
            self->on_login(*req, std::move(r), std::move(grant));
        });
    });
}

void session::on_login(const ws_detail::ws_request& req, result<principal> who, json::object grant) {
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

void session::logout(std::shared_ptr<const ws_detail::ws_request> req, ws_detail::request_plan plan) {
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

void session::on_revoked() {
    if (closed_) return;
    set_identity(principal{});
    // A logout of this socket is answered first; its completion closes.
    if (logging_out_) {
        revoked_pending_ = true;
        return;
    }
    start_close(k_close_revoked, "credentials no longer valid");
}

void session::reply_ok(const ws_detail::ws_request& r, int status, const json::value& data) {
    enqueue_one(make_frame(
        ws_detail::encode_reply(r.stream, json::value(r.action), r.request_id, status, data)));
    post_done(0);
}

void session::reply_problem(const ws_detail::ws_request& r, const problem& p) {
    enqueue_one(
        make_frame(ws_detail::encode_error(r.stream, json::value(r.action), r.request_id, p)));
    if (p.status == 429) return post_done(k_close_throttled, "too many subscriptions");
    post_done(0);
}

void session::post_done(std::uint16_t close_code, const char* reason) {
    net::post(ex_, [self = shared_from_this(), close_code, reason] {
        self->request_done(close_code, reason);
    });
}

void session::request_done(std::uint16_t close_code, const char* reason) {
    busy_ = false;
    if (closed_) return;
    if (close_code) return start_close(close_code, reason);
    start_next();
    process_input();  // requests the parser holds beyond the read-ahead
    do_read();
}

}  // namespace livebase::ws_detail
