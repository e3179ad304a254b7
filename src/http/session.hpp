#pragma once
// One HTTP connection (a session) and the state it shares with the listener. The session's
// work is spread over three files: session.cpp (reading, writing, deadlines, closing),
// dispatch.cpp (one request: route, caller, checks, then the api or the WebSocket hand-off)
// and streams.cpp (Server-Sent Events: change streams, live queries, task streams).
// Behaviour where http.md is silent: docs/http-server.md. Private to the http component.
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
#include <livebase/gate/gate.hpp>
#include <livebase/gate/session_set.hpp>
#include <livebase/gate/upgrade.hpp>
#include <livebase/http/server.hpp>
#include <livebase/realtime/hub.hpp>
#include <livebase/tasks/task.hpp>
#include <mutex>
#include <optional>
#include <unordered_map>
#include <vector>

#include "gate/net_names.hpp"
#include "http/events_door.hpp"
#include "http/framing.hpp"
#include "http/request_id.hpp"
#include "http/response_queue.hpp"
#include "http/rest_door.hpp"
#include "http/router.hpp"
#include "http/sse.hpp"
#include "http/static_files.hpp"

namespace livebase::http_detail {

using namespace net_names;
using strand_type = net::strand<net::io_context::executor_type>;

/// Bytes asked of the socket per read while waiting for a request or discarding.
inline constexpr std::size_t k_read_chunk = 8192;
/// After our last response on a connection we half-close and keep reading (and discarding) the
/// peer's unread bytes for at most this long before closing: closing a socket with unread data
/// sends a RST that can destroy the response (e.g. a 413) before the client has read it.
inline constexpr std::chrono::milliseconds k_linger{1500};
/// Back-off after a failed accept (e.g. EMFILE) so the loop does not spin.
inline constexpr std::chrono::milliseconds k_accept_retry{100};
// Draining: an idle keep-alive connection stays open this long after the server stops
// accepting, so that a request its client sent just before it saw the drain is answered
// (with Connection: close) instead of reset.
inline constexpr std::chrono::milliseconds k_drain_idle_grace{500};

class session;

/// State shared by the listener and every session. Outlives them all (each holds a shared_ptr).
struct server_state {
    server_state(net::io_context& ioc, api& a, const server_options& opts, logger& log, metrics& m)
        : ioc(ioc), a(a), opts(opts), log(log), m(m), router(opts.base_path),
          console(console_options(opts)) {
        // The app's configuration was validated on load; a bad list given in code trusts no one.
        address_set trusted;
        if (auto t = address_set::parse(opts.trusted_proxies))
            trusted = std::move(*t);
        else
            log.warn("trusted_proxies ignored", {{"error", t.error().detail}});
        door = make_gate(opts, std::move(trusted));
    }

    /// The gate of this server's options alone, until set_gate() replaces it: every caller
    /// anonymous and unthrottled.
    static gate make_gate(const server_options& o, address_set trusted) {
        gate_options g;
        g.allowed_origins = o.cors_origins;
        g.secure_cookie = o.secure_cookie;
        g.trusted_proxies = std::move(trusted);
        return gate(std::move(g));
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
    std::string websocket_path;  // "" without an upgrade handler
    const http_detail::static_files console;
    gate door;  // credentials, Origin, throttling, cookies (set before listen())

    /// The API documents, serialized once on first request (the registry no longer changes).
    std::mutex docs_mu;
    std::shared_ptr<const std::string> openapi, asyncapi;
    std::function<std::string(bool, const api_document_context&)> make_document;  // null: 404

    std::atomic<bool> draining{false};
    std::atomic<bool> stopped{false};  // close_all(): connections accepted late close at once
    std::atomic<std::size_t> open{0};

    session_set<session> sessions;

    void opened(const std::shared_ptr<session>& s) {
        open.fetch_add(1);
        m.connection_opened();
        sessions.add(s);
    }
    void closed(const session* s) noexcept {
        open.fetch_sub(1);
        m.connection_closed();
        sessions.remove(s);
    }
    std::vector<std::shared_ptr<session>> snapshot() { return sessions.snapshot(); }
};

/// The metrics label of a method: known verbs as themselves, anything else "OTHER" so a client
/// cannot grow the label set.
inline std::string method_label(const bhttp::request<bhttp::string_body>& req) {
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
    session(tcp::socket&& socket, std::shared_ptr<server_state> state);

    ~session();

    /// Starts serving; called once by the listener right after accept.
    void start();

    /// Answers 503 at once and closes, without reading a request (over max_connections).
    void reject();

    /// Graceful: every response from now on carries `Connection: close`, and a connection
    /// that is (or becomes) idle stays open until `idle_until`, so that a request the client
    /// sent just now, even right after a response written before the drain, is still answered
    /// rather than reset.
    void drain(steady::time_point idle_until);

    void force_close();

    /// Frames of this connection's change stream, posted by its hub_sink (on the strand).
    void on_hub_frames(std::vector<std::shared_ptr<const std::string>> frames, std::size_t bytes);

    /// The credentials of this connection's change stream ended (posted by hub_sink).
    void on_hub_revoked() { end_stream("stream credentials revoked"); }

    /// The hub waits for room to send a resume's next page (posted by hub_sink).
    void on_hub_when_ready(std::function<void()> ready);

    /// The hub cannot go on with this stream's resume without a gap (posted by hub_sink).
    void on_hub_resync() { end_stream("stream ended for a resync"); }

    /// The stream ends after what was delivered (the client reconnects or resumes).
    void end_stream(std::string_view why);

    /// The hub delivered faster than the strand took the frames (posted by hub_sink).
    void on_hub_overflow();

private:
    enum class read_phase {
        none,        // no read pending
        awaiting,    // waiting for the first bytes of a request
        partial,     // a request has started arriving
        discarding,  // closing: reading and dropping whatever the peer still sends
    };

    // ---- reading ----

    void do_read();

    void on_first_bytes(error_code ec, std::size_t n);

    void start_request();

    /// The header is parsed (`n` is its size in bytes) or reading it failed. The framing is
    /// checked before any of the body is read: a body whose length cannot be determined must
    /// not be read as the next request.
    void on_header(error_code ec, std::size_t n);

    void on_read(error_code ec, std::size_t);

    /// The peer closed or the socket failed while reading.
    void on_read_error(error_code ec, const char* what);

    /// Answers a request that could not be parsed (413, 431, 400) and closes: the rest of the
    /// byte stream cannot be trusted to start at a request boundary.
    void reply_and_close(http_detail::response_parts parts);

    void do_discard();

    void on_discard(error_code ec, std::size_t);

    // ---- handling ----

    // The drain began after this request was read (its slot said keep-alive): its draining
    // answer still closes the connection.
    void close_after(response_queue_id id);

    void handle_request(bhttp::request<bhttp::string_body> req);

    void on_admitted(response_queue_id id, bhttp::request<bhttp::string_body> req,
                     http_detail::route_match match, http_detail::target_parts parts, admission a);

    /// The request with its caller known: CSRF and throttling checks, then the door.
    void serve(response_queue_id id, bhttp::request<bhttp::string_body> req,
               http_detail::route_match match, http_detail::target_parts target, principal who,
               bool by_cookie);

    /// GET {base}/schema (OpenAPI) or {base}/schema/realtime (AsyncAPI).
    http_detail::response_parts api_document(bool realtime) const;

    /// `Set-Cookie` of a new session: HttpOnly, SameSite=Lax (http.md section 5), for the whole
    /// site, expiring with the token.
    void set_session_cookie(response_queue_id id, http_detail::response_parts& parts,
                            std::string_view token);

    /// The client's address and scheme for slot `s`: X-Forwarded-For and X-Forwarded-Proto are
    /// believed only from server.trusted_proxies (resolve_client_address).
    void resolve_client(const bhttp::request<bhttp::string_body>& req, slot& s) const;

    /// Whether a (cookie-authenticated) request comes from this site: its Origin, when sent,
    /// passes the Origin check; else Sec-Fetch-Site, when sent, says same-origin or none (the
    /// user typed the address). A request with neither (an old browser, a non-browser client)
    /// is not judged.
    bool same_site_request(const bhttp::request<bhttp::string_body>& req, response_queue_id id);

    /// Whether the client reached us (or a trusted proxy) over TLS, or the server is
    /// configured as served over https (secure_cookie).
    bool https(response_queue_id id);

    /// Fills slot `id` with its response and writes whatever is ready at the front.
    void respond(response_queue_id id, http_detail::response_parts parts);

    static std::shared_ptr<bhttp::response<bhttp::string_body>> make_response(
        const slot& s, http_detail::response_parts parts);

    static http_detail::response_parts shutting_down();

    // ---- WebSocket upgrades ----

    void on_upgrade_request(response_queue_id id, bhttp::request<bhttp::string_body> req);

    /// The upgrade's slot reached the front: every earlier response is written. Moves the
    /// connection to the WebSocket door; this session then only winds down.
    void hand_off();

    // ---- change streams and live queries (hub) ----

    /// The collection `name` as the hub streams it (records of the registry, or tasks); null
    /// when unknown. The hub's own lookup has the last word (it also answers 404).
    const collection_def* find_streamable(std::string_view name) const;

    /// A feed of a whole collection (change stream, live query) is a list that keeps going:
    /// the list rule answers it (401, 403); rows are then filtered per event by what the
    /// caller may retrieve (the hub's may_see). Tasks have their own visibility, by submitter,
    /// which may_see applies per event.
    static std::optional<problem> feed_refusal(const collection_def& c, const principal& who);

    void start_events(response_queue_id id, const bhttp::request<bhttp::string_body>& req,
                      const std::string& name, const std::string& encoded_query, principal who);

    void on_events_subscribed(response_queue_id id, std::string client,
                              std::shared_ptr<hub_sink> sink, result<subscribed> r);

    void schedule_keep_alive();

    void on_keep_alive_timer(error_code ec);

    std::chrono::milliseconds keep_alive_interval() const;

    /// Ends this connection's hub client (idempotent).
    void release_hub() noexcept;

    void start_observe(response_queue_id id, std::string subscriber, operation op);

    // ---- task streams (SSE) ----

    /// The first lookup of a stream answered: a task starts the stream, anything else (404)
    /// is the normal response.
    void start_stream(response_queue_id id, operation op, outcome o);

    /// Turns slot `id` into an SSE stream: the response head, not yet written.
    sse_stream& begin_sse(response_queue_id id, slot& s);

    /// Queues `task` as an event unless it equals the last one sent.
    void add_snapshot(const json::value& task);

    void add_output(std::string_view bytes);

    /// Waits for the task's next change (the change log reports it: api::watch_task) or the
    /// keep-alive interval, then looks the task up again. Watching first, then looking, leaves
    /// no gap where a change could slip by unseen.
    void watch_and_look();

    void on_task_change();

    void on_poll(outcome o, bool last);

    /// Writes the stream's header, then its queued output; ends the response once `ending`
    /// and everything is written. Only when the stream's slot is at the front of the queue.
    void pump();

    void begin_stream_write();

    void on_stream_write(error_code ec, std::size_t bytes);

    /// Gives the hub its when_ready() notice once what the stream holds (posted, framed, being
    /// written) is down to a quarter of sse_max_pending: a resume's replay is paced by the
    /// reader and counted against the stream's bound.
    void notify_ready();

    /// The response is complete: log it and close the connection like any last response.
    void end_stream();

    void log_stream();

    // ---- writing ----

    void do_write();

    void on_write(error_code ec, std::size_t bytes);

    /// After the last response: half-close, then linger (discarding) until the peer closes.
    void finish();

    // ---- deadlines ----

    /// One timer per connection holds the earliest deadline of the current state. (tcp_stream's
    /// per-operation expiry does not fit: a read stays pending while pipelined responses are
    /// outstanding, and it must not time the connection out under a slow api call.)
    void update_deadline();

    void on_timer(error_code ec);

    // ---- closing ----

    void close_socket();

    void fail(error_code ec, const char* what);

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

}  // namespace livebase::http_detail
