#pragma once
/// A WebSocket client for tests of livebase servers (yours and ours): connect to `/ws`, send
/// requests in the realtime.md envelope, and read replies and events with deadlines, like
/// Channels' WebsocketCommunicator. Beast stays out of this header.
///
/// Every wait has a deadline, so a test fails instead of hanging on a silent server. Frames are
/// queued as they arrive (a reader runs in the background), so a test can wait for one frame
/// while the others stay queued, in order.
///
/// Thread-safety: one test thread drives a client (connect, send, request, close); the queue
/// accessors (receive*, queue_*) may also be called from other threads.
#include <chrono>
#include <cstdint>
#include <functional>
#include <livebase/core/json.hpp>
#include <livebase/core/result.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace livebase::testing {

struct ws_connect_options {
    std::string host = "127.0.0.1";
    std::string path = "/ws";
    /// Extra headers of the upgrade request (e.g. Authorization, Cookie, Origin).
    std::vector<std::pair<std::string, std::string>> headers;
    /// Offered in Sec-WebSocket-Protocol when not empty.
    std::vector<std::string> subprotocols;
    /// Deadline for TCP connect + handshake + the hello frame.
    std::chrono::milliseconds timeout{10000};
    /// SO_RCVBUF set before connecting; 0 keeps the system's (autotuned) default. A small
    /// buffer makes a paused reader's backlog reach the server's send queue sooner.
    int receive_buffer = 0;
    /// Wait for the server's hello frame (and take it off the queue) before returning.
    bool expect_hello = true;
};

/// A close as the client saw it.
struct ws_close {
    std::uint16_t code = 0;  ///< the server's close code; 1006 when the connection dropped
                             ///< without a close frame
    std::string reason;
};

class ws_client {
public:
    ws_client();
    /// Drops the connection if still open (no close handshake) and stops the reader.
    ~ws_client();
    ws_client(const ws_client&) = delete;
    ws_client& operator=(const ws_client&) = delete;

    /// Connects to ws://host:port/path and completes the handshake; with expect_hello, also
    /// reads the hello frame (subscriber()). Problem (status = the HTTP status of a refused
    /// upgrade, else 503 for connect failures and timeouts) when any step fails.
    /// REQUIRES: not connected yet (one connection per client).
    result<void> connect(std::uint16_t port, ws_connect_options options = {});
    /// connect() with a path and extra headers.
    result<void> connect(std::uint16_t port, std::string path,
                         std::vector<std::pair<std::string, std::string>> headers = {});

    /// The hello frame's data.subscriber ("" before the hello arrived).
    const std::string& subscriber() const noexcept { return subscriber_; }
    /// The whole hello frame (null without expect_hello).
    const json::value& hello() const noexcept { return hello_; }
    /// The Sec-WebSocket-Protocol the server chose ("" when none).
    const std::string& subprotocol() const noexcept { return subprotocol_; }
    /// A header of the handshake response (the 101, or the refusal), "" when absent.
    std::string response_header(std::string_view name) const;

    /// Sends one text frame; false when the connection is closed or the write did not complete
    /// within `timeout`.
    bool send_text(std::string_view text,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
    bool send_json(const json::value& v,
                   std::chrono::milliseconds timeout = std::chrono::seconds(10));
    /// Sends one binary frame (the server answers them with a 400 on stream "error").
    bool send_binary(std::string_view bytes,
                     std::chrono::milliseconds timeout = std::chrono::seconds(10));

    /// Takes the oldest queued frame, waiting up to `timeout` for one. nullopt on timeout or
    /// when the connection closed with nothing queued. A text frame that is not JSON comes back
    /// as a JSON string holding the text.
    std::optional<json::value> receive(std::chrono::milliseconds timeout);
    /// Takes the oldest queued frame for which `pred` holds, waiting up to `timeout`; the other
    /// frames stay queued in their order.
    std::optional<json::value> receive_until(const std::function<bool(const json::value&)>& pred,
                                             std::chrono::milliseconds timeout);
    /// Sends `{"stream": stream, "payload": payload + {"request_id": <unique string>}}` (payload
    /// must not carry its own request_id) and returns the reply frame with that request_id;
    /// other frames stay queued. nullopt when no reply arrived within `timeout`.
    std::optional<json::value> request(
        std::string_view stream, json::object payload,
        std::chrono::milliseconds timeout = std::chrono::seconds(10));

    /// True when no frame is queued and none arrives within `wait`.
    bool queue_empty(std::chrono::milliseconds wait = std::chrono::milliseconds(100));
    /// Frames queued now.
    std::size_t queue_count() const;
    /// Drops every queued frame; returns how many.
    std::size_t clear_queue();

    /// Stops reading from the socket (after the message being read, if any): the server sees a
    /// peer that does not read, its send queue fills, and it should close with 4008.
    void pause_reading();
    /// Reads again.
    void resume_reading();

    /// Starts the close handshake with `code` and waits (up to `timeout`) for it to finish.
    /// Frames that arrived before the server's close frame stay queued.
    void close(std::uint16_t code = 1000,
               std::chrono::milliseconds timeout = std::chrono::seconds(5));
    /// Drops the TCP connection without a close frame (a crashed client).
    void abort();
    /// Waits for the connection to end and returns how; nullopt if it is still open after
    /// `timeout`. Resumes reading first (the close frame can only arrive through reads); frames
    /// before the close stay queued.
    std::optional<ws_close> wait_closed(std::chrono::milliseconds timeout);
    /// True until the connection ended.
    bool is_open() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::string subscriber_;
    std::string subprotocol_;
    json::value hello_;
    std::uint64_t next_request_ = 0;
};

/// Helpers for frames: `frame["payload"][key]` or null.
const json::value& payload_of(const json::value& frame, std::string_view key);
/// frame["stream"] as a string, "" when absent.
std::string stream_of(const json::value& frame);

}  // namespace livebase::testing
