#pragma once
/// The HTTP server's options ([server] in config.md): the http component's own settings, which
/// the app's configuration loader fills.
#include <chrono>
#include <cstddef>
#include <cstdint>
#include <string>
#include <vector>

namespace livebase {

struct server_options {
    std::string host = "127.0.0.1";          ///< from listen = "host:port"; "" = all interfaces
    std::uint16_t port = 8080;               ///< 0 = ephemeral (tests)
    std::size_t threads = 0;                 ///< I/O threads; 0 = number of cores
    std::string base_path = "/api";
    std::uint64_t max_body = 1u << 20;       ///< bytes; larger bodies -> 413
    std::size_t max_connections = 100000;    ///< beyond: 503 and close
    std::chrono::milliseconds idle_timeout = std::chrono::seconds(60);     ///< keep-alive idle -> close
    std::chrono::milliseconds shutdown_grace = std::chrono::seconds(10);   ///< drain time on SIGTERM
    /// After SIGTERM/SIGINT the server keeps accepting this long, answering new requests and
    /// /api/health/ready with 503 draining (so a balancer takes it out), then stops accepting.
    /// app::stop() does not wait for it.
    std::chrono::milliseconds drain_period = std::chrono::seconds(5);
    std::vector<std::string> cors_origins;
    // Limits not in the file's example but configurable under [server]:
    std::size_t max_header = 16 * 1024;      ///< request line + headers bytes -> 431
    std::size_t max_uri = 8 * 1024;          ///< request-target bytes -> 414
    std::chrono::milliseconds read_timeout = std::chrono::seconds(10);   ///< a request's header+body must arrive within
    std::size_t pipeline_limit = 16;         ///< queued pipelined responses per connection
    /// The built console served at /_/ (docs/console.md). "" = "console/dist" under the working
    /// directory. A directory without index.html answers 404 with a "console not built" problem.
    std::string console_dir;
    /// Addresses and CIDR ranges of the proxies in front of the server (load balancers). Only
    /// from these is X-Forwarded-For believed (the client's address: throttling, login attempts,
    /// anonymous task owners) and X-Forwarded-Proto (https: the session cookie is Secure).
    std::vector<std::string> trusted_proxies;
    /// The session cookie always carries `Secure` (for a server behind TLS that the proxy list
    /// does not describe). Without it, `Secure` is set when a trusted proxy says https.
    bool secure_cookie = false;
    /// When set, GET /metrics needs `Authorization: Bearer <metrics_token>` (else 401).
    std::string metrics_token;
    // Set in code only (not read from the file):
    std::chrono::milliseconds sse_keep_alive = std::chrono::seconds(15);  ///< SSE comment after this without output
    /// SSE output waiting for a slow reader beyond this closes the stream. Used as is by a bare
    /// http_server; the app replaces it with realtime.send_queue (the WebSocket door's bound).
    std::uint64_t sse_max_pending = 1u << 20;
};

}  // namespace livebase
