// One request on a session: its route, who is asking (the gate), the doors' checks, then
// the api, the SSE streams or the WebSocket hand-off.
#include "http/session.hpp"

namespace livebase::http_detail {

void session::handle_request(bhttp::request<bhttp::string_body> req) {
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
                !token_matches(bearer_token(req[bhttp::field::authorization]),
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
            if (!state_->make_document)
                return respond(id, http_detail::render_problem(problem::not_found()));
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
    const gate& door = state_->door;
    const auto cred = door.credentials(req[bhttp::field::authorization], req[bhttp::field::cookie]);
    if (auto now = door.admit_now(cred))
        return on_admitted(id, std::move(req), std::move(match), std::move(*parts), std::move(*now));
    auto held = std::make_shared<std::tuple<bhttp::request<bhttp::string_body>,
                                            http_detail::route_match, http_detail::target_parts>>(
        std::move(req), std::move(match), std::move(*parts));
    door.admit(cred, [self = shared_from_this(), id, held](admission a) {
        net::post(self->ex_, [self, id, held, a = std::move(a)]() mutable {
            if (self->closed_) return;
            auto& [rq, m, pt] = *held;
            self->on_admitted(id, std::move(rq), std::move(m), std::move(pt), std::move(a));
        });
    });
}

void session::on_admitted(response_queue_id id, bhttp::request<bhttp::string_body> req,
                 http_detail::route_match match, http_detail::target_parts parts, admission a) {
    if (a.refused) return respond(id, http_detail::render_problem(*a.refused));
    if (a.clear_cookie) queue_.find(id)->clear_cookie = true;
    serve(id, std::move(req), std::move(match), std::move(parts), std::move(a.who), a.by_cookie);
}

void session::serve(response_queue_id id, bhttp::request<bhttp::string_body> req,
           http_detail::route_match match, http_detail::target_parts target, principal who,
           bool by_cookie) {
    auto* parts = &target;
    // The resolved client address (trusted proxies): anonymous callers are known by it.
    who.address = queue_.find(id)->client;
    const gate& door = state_->door;
    const auto method = req.method();
    const bool unsafe = method != bhttp::verb::get && method != bhttp::verb::head &&
                        method != bhttp::verb::options;
    if (by_cookie && unsafe) {
        // A browser attaches the cookie to cross-site requests too: an unsafe request
        // authenticated by it must come from an allowed origin (http.md section 5).
        auto it = req.find(bhttp::field::origin);
        if (it == req.end() ||
            !door.origin_allowed(it->value(), req[bhttp::field::host], https(id)))
            return respond(id, http_detail::render_problem(problem::forbidden(
                                   "Origin check failed: a cookie-authenticated request must "
                                   "come from an allowed origin.")));
    }
    if (auto wait = door.take(who, queue_.find(id)->client))
        return respond(id, http_detail::render_problem(gate::throttled(*wait)));
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

http_detail::response_parts session::api_document(bool realtime) const {
    auto& st = *state_;
    std::shared_ptr<const std::string> doc;
    {
        std::lock_guard lock(st.docs_mu);
        auto& slot = realtime ? st.asyncapi : st.openapi;
        if (!slot) {
            api_document_context ctx;
            ctx.base_path = st.router.base_path();
            ctx.websocket_path = st.websocket_path;
            ctx.auth = st.door.authenticates();
            slot = std::make_shared<const std::string>(st.make_document(realtime, ctx));
        }
        doc = slot;
    }
    http_detail::response_parts r;
    r.content_type = "application/json";
    r.body = *doc;
    r.headers.emplace_back("Cache-Control", "no-cache");
    return r;
}

void session::set_session_cookie(response_queue_id id, http_detail::response_parts& parts,
                        std::string_view token) {
    if (token.empty()) return;
    parts.headers.emplace_back("Set-Cookie", state_->door.session_cookie(token, https(id)));
}

void session::resolve_client(const bhttp::request<bhttp::string_body>& req, slot& s) const {
    std::vector<std::string_view> xff;
    std::string_view proto;
    if (state_->door.trusts(peer_ip_))
        for (const auto& f : req) {
            if (iequals(f.name_string(), "X-Forwarded-For"))
                xff.push_back(f.value());
            else if (iequals(f.name_string(), "X-Forwarded-Proto"))
                proto = f.value();  // the last one: the nearest proxy's
        }
    auto c = state_->door.client(peer_ip_, xff, proto);
    s.client = std::move(c.address);
    s.https = c.https;
}

bool session::same_site_request(const bhttp::request<bhttp::string_body>& req, response_queue_id id) {
    if (auto it = req.find(bhttp::field::origin); it != req.end())
        return state_->door.origin_allowed(it->value(), req[bhttp::field::host], https(id));
    if (auto it = req.find("Sec-Fetch-Site"); it != req.end())
        return iequals(it->value(), "same-origin") || iequals(it->value(), "none");
    return true;
}

bool session::https(response_queue_id id) {
    const slot* s = queue_.find(id);
    return s ? state_->door.https({{}, s->https}) : state_->opts.secure_cookie;
}

void session::on_upgrade_request(response_queue_id id, bhttp::request<bhttp::string_body> req) {
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

void session::hand_off() {
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

}  // namespace livebase::http_detail
