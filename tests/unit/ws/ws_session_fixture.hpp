#pragma once
// A ws_server on a real store, api and hub, fed by a minimal HTTP listener that reads the
// upgrade request and hands it over exactly as the HTTP server does (websocket_upgrade on the
// connection's strand). Lets session tests pick ws_options (short pings, tiny queues) that the
// app's configuration does not expose.
#include <gtest/gtest.h>

#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <chrono>
#include <livebase/api/api.hpp>
#include <livebase/auth/auth.hpp>
#include <livebase/core/metrics.hpp>
#include <livebase/gate/upgrade.hpp>
#include <livebase/realtime/hub.hpp>
#include <livebase/schema/validate.hpp>
#include <livebase/testing/ws_client.hpp>
#include <livebase/ws/ws_server.hpp>
#include <memory>
#include <optional>
#include <thread>
#include <vector>

#include "unit/store/store_test_support.hpp"
#include "support/wait.hpp"

namespace livebase::ws_test {

/// Generous: only a hang trips it, never a slow machine.
inline constexpr auto k_deadline = std::chrono::seconds(60);

class ws_session_test : public ::testing::Test {
protected:
    ws_session_test();
    ~ws_session_test() override;
    void TearDown() override { stop(); }

    /// Opens the store, starts the hub, the ws_server with `o`, and the listener. With
    /// `with_auth_` set, also the users and tokens collections and an authenticator (auth_),
    /// wired as the app wires it: o.auth, the api's auth operations, the hub's on_change.
    void start(ws_options o = {}, hub_options ho = {});
    void stop();

    std::uint16_t port() const { return port_; }
    /// A connected client (hello read); fails the test when it cannot connect.
    std::unique_ptr<testing::ws_client> connect(testing::ws_connect_options o = {});
    /// Creates a car through the api (a real write: the hub turns it into events).
    json::object create_car(json::object fields);
    /// The value of a gauge in the metrics exposition, or -1.
    double gauge(const std::string& name) const;
    /// Polls `cond` until it holds or k_deadline passes.
    static bool eventually(const std::function<bool()>& cond);

    test::temp_dir dir_;
    logger log_{stderr, log_format::text, log_level::warn};
    livebase::metrics metrics_;
    registry reg_;
    std::unique_ptr<store> db_;
    std::unique_ptr<livebase::api> api_;
    bool with_auth_ = false;
    std::unique_ptr<authenticator> auth_;
    std::unique_ptr<hub> hub_;
    boost::asio::io_context ioc_;
    std::unique_ptr<ws_server> ws_;

private:
    struct listener;
    std::shared_ptr<listener> listener_;
    std::vector<std::thread> threads_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::uint16_t port_ = 0;
    bool stopped_ = false;
};

}  // namespace livebase::ws_test
