#pragma once
/// The HTTP/1.1 server (Boost.Beast): REST door, health, metrics. Beast stays out of this header.
#include <livebase/api/api.hpp>
#include <livebase/app/config.hpp>
#include <livebase/core/log.hpp>
#include <livebase/core/result.hpp>
#include <livebase/http/metrics.hpp>

#include <cstdint>
#include <memory>

namespace boost::asio {
class io_context;
}

namespace livebase {

/// Accepts connections on the io_context and serves them. Thread-safe to call drain()/port()
/// from any thread. The io_context, api, logger and metrics must outlive it.
class http_server {
public:
    http_server(boost::asio::io_context& ioc, api& a, const server_options& opts, logger& log,
                metrics& m);
    ~http_server();

    /// Binds and starts accepting. Problem when the address is unusable.
    result<void> listen();
    /// The bound port (useful with port 0).
    std::uint16_t port() const noexcept;

    /// Stops accepting; /api/health answers 503; idle keep-alive connections are closed and
    /// busy ones close after their in-flight response. Returns at once.
    void drain();
    /// Force-closes every connection (after the grace period).
    void close_all();
    /// Connections currently open.
    std::size_t connections() const noexcept;

private:
    struct impl;
    std::shared_ptr<impl> impl_;
};

}  // namespace livebase
