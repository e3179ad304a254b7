// The WebSocket door's public face: ws_server hands each upgraded connection to a session
// (session.hpp) on one of its lanes. Behaviour where realtime.md is silent:
// docs/websocket-server.md.
#include "ws/session.hpp"

#include <unistd.h>

namespace livebase {

namespace ws_detail {
namespace {

/// `in`'s connection, moved onto `ex` (a lane's strand), so that every handler of the socket
/// runs on its lane.
beast::tcp_stream onto(beast::tcp_stream&& in, const net::any_io_executor& ex, error_code& ec) {
    tcp::socket sock = in.release_socket();
    const auto local = sock.local_endpoint(ec);
    if (ec) return beast::tcp_stream(ex);
    const auto fd = sock.release(ec);
    beast::tcp_stream out(ex);
    if (ec) return out;
    out.socket().assign(local.protocol(), fd, ec);
    if (ec) ::close(fd);  // released from one socket and taken by none
    return out;
}

}  // namespace
}  // namespace ws_detail

using ws_detail::server_state;
using ws_detail::session;
using ws_detail::ws_lane;
using ws_detail::onto;
using ws_detail::error_code;
namespace beast = boost::beast;

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
    ws_lane& lane = impl_->state->pick_lane(upgrade.stream.get_executor());
    error_code ec;
    beast::tcp_stream stream = onto(std::move(upgrade.stream), lane.executor(), ec);
    if (ec) {
        impl_->state->log.warn("ws: could not move a connection to its lane", {{"error", ec.message()}});
        return;
    }
    auto s = std::make_shared<session>(
        std::move(stream), lane, impl_->state,
        upgrade.request_id.empty() ? make_ulid() : std::move(upgrade.request_id),
        std::move(upgrade.client_address), upgrade.https);
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
