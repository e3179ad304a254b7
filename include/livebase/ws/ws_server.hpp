#pragma once
/// The WebSocket door (realtime.md): sessions on Beast, the channels-api envelope, requests
/// through the api, subscriptions and live queries through the hub, bounded send queues.
#include <livebase/api/api.hpp>
#include <livebase/auth/auth.hpp>
#include <livebase/core/log.hpp>
#include <livebase/core/metrics.hpp>
#include <livebase/gate/gate.hpp>
#include <livebase/gate/upgrade.hpp>
#include <livebase/realtime/hub.hpp>

#include <chrono>
#include <cstdint>
#include <memory>
#include <string>
#include <vector>

namespace livebase {

struct ws_options {
    std::uint64_t max_message = 1u << 20;       ///< realtime.max_message; larger frames -> 1009
    /// realtime.send_queue: a delivery (a reply, or what the hub hands over at once) that finds
    /// more than this many bytes queued for the socket closes it with 4008. A delivery is taken
    /// whole otherwise, so a resume's replay larger than this still goes out.
    std::uint64_t send_queue = 4u << 20;
    std::size_t send_queue_messages = 100000;   ///< the same bound in frames
    std::chrono::milliseconds ping_interval{20000};  ///< server pings
    /// server.idle_timeout: a peer from which nothing (data, pong) arrived for this long while
    /// the session was reading is dropped (no close frame: it is not listening)
    std::chrono::milliseconds idle_timeout{60000};
    /// the opening handshake, and the closing one: a peer that does not finish it in time is
    /// dropped
    std::chrono::milliseconds handshake_timeout{10000};
    std::size_t max_inflight = 64;              ///< requests read ahead of their replies; beyond,
                                                ///< the session stops reading (TCP backpressure)

    /// The gate the HTTP door uses (http_server::set_gate; realtime.md "auth" stream, http.md
    /// section 5). Without an authenticator every socket is anonymous, credentials at the
    /// upgrade are ignored and the `auth` stream answers 404 like any unknown stream. Otherwise
    /// an upgrade's `Authorization: Bearer` token (or else its session cookie) is resolved: an
    /// invalid or expired bearer token refuses the upgrade with 401; a stale cookie is cleared
    /// and the socket is anonymous, as on REST. Each request frame takes one token of the
    /// caller's bucket (the limiter is the HTTP door's, so both doors drain one bucket). A
    /// browser upgrade (one with an Origin header) whose origin is neither allowed nor the
    /// server's own host is accepted and closed at once with 1008 ("origin not allowed").
    /// What it points to must outlive the server.
    gate_options gate;
    /// Throttled requests in a row (no allowed request in between) after which the socket is
    /// closed with 4429; each one is answered 429 with "retry_after" before that.
    std::size_t max_throttled = 20;

    /// I/O lanes the sockets are spread over (each a strand running all its sockets' handlers;
    /// the hub hands each lane one batch of events per pass). 0: one per hardware thread. The
    /// composition root passes server.threads.
    std::size_t lanes = 0;
    /// realtime.deflate: accept permessage-deflate (RFC 7692) when a client offers it, with no
    /// context takeover either way (no compression state per socket). Off by default.
    bool deflate = false;
    /// realtime.deflate_threshold: frames smaller than this many bytes go uncompressed.
    std::uint64_t deflate_threshold = 1024;
    /// realtime.deflate_level: zlib level 1 (fastest) to 9 (smallest).
    int deflate_level = 6;
};

/// Serves WebSocket connections handed over by the HTTP server. Thread-safe. The api, hub,
/// logger, metrics (and what options.gate points to) must outlive it (and every session:
/// sessions hold a shared state). A socket whose credentials end (the hub's
/// event_sink::revoked(): logout, revocation, password change, disabled user) is closed with
/// 4401.
class ws_server {
public:
    ws_server(api& a, hub& h, ws_options options, logger& log, metrics& m);
    ~ws_server();  ///< close_all()
    ws_server(const ws_server&) = delete;
    ws_server& operator=(const ws_server&) = delete;

    /// Performs the handshake on the connection and serves it (subprotocol `livebase.v1` is
    /// chosen when offered). Upgrades that are not for a WebSocket, or that arrive with frames
    /// already behind them (a client must wait for the 101), are answered 400 and closed; after
    /// drain() or close_all(), 503. Never blocks; call on the connection's strand.
    void accept(websocket_upgrade&& upgrade);
    /// Closes every socket with 1001 (going away) after what is already queued for it, and
    /// refuses new ones. Returns at once; sockets() reaches 0 when the close handshakes end
    /// (or time out).
    void drain();
    /// Force-closes every socket now (no close frame) and refuses new ones. Returns at once.
    void close_all();
    /// Open sockets (handshake done, not yet closed). Also the gauge livebase_ws_sockets.
    std::size_t sockets() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace livebase
