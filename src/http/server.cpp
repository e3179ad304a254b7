// The HTTP/1.1 server: the listener, and http_server's public face. Each connection is a
// session (session.hpp) in the shape of Beast's advanced server; policy (routing, request
// decoding, rendering, request ids, the ordered response queue) lives in the plain classes
// next to it. Behaviour where http.md is silent: docs/http-server.md.
#include "http/session.hpp"

namespace livebase {

namespace http_detail {

//------------------------------------------------------------------------------

/// Accepts connections; each gets its own strand.
class listener : public std::enable_shared_from_this<listener> {
public:
    explicit listener(std::shared_ptr<server_state> state)
        : state_(std::move(state)),
          ex_(net::make_strand(state_->ioc)),
          acceptor_(ex_),
          retry_(ex_) {}

    result<void> listen() {
        const auto& o = state_->opts;
        error_code ec;
        tcp::endpoint ep;
        if (o.host.empty()) {
            ep = tcp::endpoint(net::ip::address_v4::any(), o.port);  // "" = every IPv4 interface
        } else if (auto addr = net::ip::make_address(o.host, ec); !ec) {
            ep = tcp::endpoint(addr, o.port);
        } else {
            tcp::resolver resolver(state_->ioc);
            auto results = resolver.resolve(o.host, std::to_string(o.port), ec);
            if (ec || results.empty()) return listen_problem("cannot resolve host", ec);
            ep = results.begin()->endpoint();
        }
        acceptor_.open(ep.protocol(), ec);
        if (ec) return listen_problem("open", ec);
        acceptor_.set_option(net::socket_base::reuse_address(true), ec);
        acceptor_.bind(ep, ec);
        if (ec) return listen_problem("bind", ec);
        acceptor_.listen(net::socket_base::max_listen_connections, ec);
        if (ec) return listen_problem("listen", ec);
        port_.store(acceptor_.local_endpoint(ec).port());
        net::dispatch(ex_, beast::bind_front_handler(&listener::do_accept, shared_from_this()));
        return {};
    }

    std::uint16_t port() const noexcept { return port_.load(); }

    void stop() {
        net::dispatch(ex_, [self = shared_from_this()] {
            error_code ec;
            self->stopped_ = true;
            self->acceptor_.close(ec);
            self->retry_.cancel();
        });
    }

private:
    problem listen_problem(const char* step, error_code ec) const {
        problem p = problem::internal();
        p.detail = "Cannot listen on " + state_->opts.host + ":" +
                   std::to_string(state_->opts.port) + " (" + step + "): " + ec.message();
        return p;
    }

    void do_accept() {
        if (stopped_) return;
        acceptor_.async_accept(net::make_strand(state_->ioc),
                               beast::bind_front_handler(&listener::on_accept, shared_from_this()));
    }

    void on_accept(error_code ec, tcp::socket socket) {
        if (stopped_ || ec == net::error::operation_aborted) return;
        if (ec) {
            state_->log.warn("accept failed", {{"error", ec.message()}});
            retry_.expires_after(k_accept_retry);
            retry_.async_wait([self = shared_from_this()](error_code e) {
                if (!e) self->do_accept();
            });
            return;
        }
        if (state_->stopped.load()) {
            error_code ignored;
            socket.close(ignored);
        } else {
            auto s = std::make_shared<session>(std::move(socket), state_);
            if (state_->open.load() >= state_->opts.max_connections)
                s->reject();
            else
                s->start();
        }
        do_accept();
    }

    std::shared_ptr<server_state> state_;
    strand_type ex_;
    tcp::acceptor acceptor_;
    net::steady_timer retry_;
    std::atomic<std::uint16_t> port_{0};
    bool stopped_ = false;
};

}  // namespace http_detail

using http_detail::listener;
using http_detail::server_state;
using http_detail::session;
using http_detail::steady;
using http_detail::k_drain_idle_grace;

//------------------------------------------------------------------------------

struct http_server::impl {
    std::shared_ptr<server_state> state;
    std::shared_ptr<listener> acceptor;
};

http_server::http_server(boost::asio::io_context& ioc, api& a, const server_options& opts,
                         logger& log, metrics& m)
    : impl_(std::make_shared<impl>()) {
    impl_->state = std::make_shared<server_state>(ioc, a, opts, log, m);
    impl_->acceptor = std::make_shared<listener>(impl_->state);
}

http_server::~http_server() { close_all(); }

void http_server::set_hub(hub& h) { impl_->state->realtime = &h; }

void http_server::set_gate(gate_options g) { impl_->state->door = gate(std::move(g)); }

void http_server::set_upgrade_handler(std::string path,
                                      std::function<void(websocket_upgrade&&)> h) {
    auto& st = *impl_->state;
    st.on_upgrade = std::move(h);
    st.websocket_path = st.on_upgrade ? path : std::string();
    st.router = http_detail::router(st.opts.base_path, st.on_upgrade ? path : std::string());
}

void http_server::set_api_documents(
    std::function<std::string(bool realtime, const api_document_context&)> make) {
    impl_->state->make_document = std::move(make);
}

result<void> http_server::listen() { return impl_->acceptor->listen(); }

std::uint16_t http_server::port() const noexcept { return impl_->acceptor->port(); }

void http_server::drain(std::chrono::milliseconds accept_for) {
    impl_->state->draining.store(true);
    if (accept_for.count() <= 0) impl_->acceptor->stop();
    const auto idle_until = steady::now() + accept_for + k_drain_idle_grace;
    for (auto& s : impl_->state->snapshot()) s->drain(idle_until);
}

void http_server::stop_accepting() {
    impl_->acceptor->stop();
    // Connections accepted during the drain period get the same short grace.
    const auto idle_until = steady::now() + k_drain_idle_grace;
    for (auto& s : impl_->state->snapshot()) s->drain(idle_until);
}

void http_server::close_all() {
    impl_->state->stopped.store(true);
    impl_->acceptor->stop();
    for (auto& s : impl_->state->snapshot()) s->force_close();
}

std::size_t http_server::connections() const noexcept { return impl_->state->open.load(); }

}  // namespace livebase
