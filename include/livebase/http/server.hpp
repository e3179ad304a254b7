#pragma once
/// The HTTP/1.1 server (Boost.Beast): REST door, SSE streams, health, metrics, and the hand-off
/// of WebSocket upgrades. Beast stays out of this header.
#include <livebase/api/api.hpp>
#include <livebase/core/log.hpp>
#include <livebase/core/result.hpp>
#include <livebase/core/units.hpp>
#include <livebase/core/metrics.hpp>
#include <livebase/gate/gate.hpp>
#include <livebase/http/options.hpp>

#include <cstdint>
#include <functional>
#include <memory>
#include <string>

namespace boost::asio {
class io_context;
}

namespace livebase {

class authenticator;
class hub;
class throttle;
struct websocket_upgrade;  // livebase/gate/upgrade.hpp

/// What the API documents describe of the server that serves them (set_api_documents).
struct api_document_context {
    std::string base_path;       ///< server.base_path, as routed
    std::string websocket_path;  ///< "" without a WebSocket door
    bool auth = false;           ///< credentials are resolved (set_gate with an authenticator)
};

/// Accepts connections on the io_context and serves them. Thread-safe to call drain()/port()
/// from any thread. The io_context, api, logger and metrics must outlive it.
class http_server {
public:
    http_server(boost::asio::io_context& ioc, api& a, const server_options& opts, logger& log,
                metrics& m);
    ~http_server();

    /// Serves realtime over HTTP through `h` (http.md section 4): `GET {base}/{c}/events` SSE
    /// change streams and `?observe=<subscriber>` live queries on lists. Without a hub both
    /// answer 404. REQUIRES: before listen(); `h` outlives the server (and is stopped after it).
    void set_hub(hub& h);

    /// The gate of both doors (http.md section 5, config.md [auth]): credentials, throttling,
    /// the cookie, Origin and trusted proxies; the app hands the same options to the WebSocket
    /// door (ws_options::gate). Without it, every caller is anonymous and unthrottled, and
    /// server_options' cors_origins, secure_cookie and trusted_proxies apply. REQUIRES: before
    /// listen(); what `g` points to outlives the server.
    void set_gate(gate_options g);

    /// Hands WebSocket upgrades of `GET <path>` (outside the base path, e.g. "/ws") to `h`:
    /// once every earlier pipelined response on the connection is written, the connection,
    /// the request, the bytes read past it and its request id move into a websocket_upgrade
    /// and `h` is called on the connection's strand; the HTTP session then ends without
    /// closing the socket (it no longer counts in connections(), and drain()/close_all() no
    /// longer reach it: the WebSocket door owns it). The access log shows status 101. A GET of
    /// `path` that is not an upgrade -> 426 problem with `Upgrade: websocket`; an upgrade
    /// while draining -> 503. Without a handler the path is an ordinary unknown path (404).
    /// REQUIRES: before listen(); whatever `h` refers to outlives the server.
    void set_upgrade_handler(std::string path, std::function<void(websocket_upgrade&&)> h);

    /// Serves `GET {base}/schema` (OpenAPI) and `{base}/schema/realtime` (AsyncAPI): `make`
    /// builds a document's JSON text (realtime: the AsyncAPI one) once, at its first request;
    /// the registry no longer changes once serving. Without it both paths answer 404.
    /// REQUIRES: before listen().
    void set_api_documents(
        std::function<std::string(bool realtime, const api_document_context&)> make);

    /// Binds and starts accepting. Problem when the address is unusable.
    result<void> listen();
    /// The bound port (useful with port 0).
    std::uint16_t port() const noexcept;

    /// Begins the drain: /api/health and /api/health/ready answer 503 draining; every response
    /// carries `Connection: close`; busy connections close after their in-flight response.
    /// With `accept_for` > 0 new connections are still accepted (each request answers 503
    /// draining) until stop_accepting(); otherwise accepting stops now. Idle keep-alive
    /// connections stay open until accept_for + 0.5 s from now, then close. Returns at once.
    void drain(std::chrono::milliseconds accept_for = std::chrono::milliseconds(0));
    /// Stops accepting (the end of the drain period); idle connections close within 0.5 s.
    void stop_accepting();
    /// Force-closes every connection (after the grace period).
    void close_all();
    /// Connections currently open.
    std::size_t connections() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace livebase
