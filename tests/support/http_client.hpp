#pragma once
/// A small synchronous HTTP/1.1 client for loopback tests (WebSocket: support/ws_client.hpp).
/// Every operation has a deadline, so a test never hangs on a silent server: a timeout throws
/// std::runtime_error (gtest reports it as a failure). Not thread-safe; one per test thread.
#include <chrono>
#include <cstdint>
#include <livebase/core/json.hpp>
#include <map>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <utility>
#include <vector>

namespace livebase::testing {

/// Case-insensitive ordering for header names.
struct iless {
    using is_transparent = void;
    bool operator()(std::string_view a, std::string_view b) const noexcept;
};

struct http_response {
    int status = 0;
    /// Header name -> value; repeated headers are joined with ", ". Lookup ignores case.
    std::map<std::string, std::string, iless> headers;
    std::string body;

    /// The header's value, or "" when absent.
    std::string header(std::string_view name) const;
    bool has_header(std::string_view name) const { return headers.find(name) != headers.end(); }
    /// The body parsed as JSON; null when it is not JSON.
    json::value json() const;
};

using header_list = std::vector<std::pair<std::string, std::string>>;

/// One Server-Sent Event (fields joined as the SSE spec says: data lines with '\n').
struct sse_event {
    std::string id;
    std::string event;
    std::string data;
};

class http_client {
public:
    /// Does not connect yet; the first request (or connect()) does.
    explicit http_client(std::uint16_t port,
                         std::chrono::milliseconds timeout = std::chrono::seconds(5),
                         std::string host = "127.0.0.1");
    ~http_client();
    http_client(const http_client&) = delete;
    http_client& operator=(const http_client&) = delete;

    /// Opens the connection. Throws when refused or on timeout.
    void connect();
    /// Non-throwing connect: false when the server refuses or does not answer in time.
    bool try_connect();
    bool is_open() const noexcept;
    void close() noexcept;
    void set_timeout(std::chrono::milliseconds t) noexcept { timeout_ = t; }
    /// Connects from this local address (e.g. "127.0.0.2": another loopback client as the
    /// server sees it); "" lets the system choose. Applies to the next connect.
    void set_source_address(std::string address) { source_ = std::move(address); }

    /// Sends one request on the (kept-alive) connection and reads its response. A non-empty
    /// body gets `Content-Type: application/json` unless `headers` sets one; Host and
    /// Content-Length are always set.
    http_response request(std::string_view method, std::string_view target,
                          std::string_view body = {}, const header_list& headers = {});
    http_response get(std::string_view target, const header_list& headers = {}) {
        return request("GET", target, {}, headers);
    }
    http_response post(std::string_view target, const json::value& body,
                       const header_list& headers = {}) {
        return request("POST", target, json::serialize(body), headers);
    }

    /// Writes bytes as they are (malformed input, pipelining).
    void send_raw(std::string_view bytes);
    /// Reads the next response from the connection (after send_raw).
    http_response read_response();
    /// Reads until the server closes the connection or `timeout` passes. `closed` tells which.
    struct drained {
        std::string bytes;
        bool closed = false;
    };
    drained read_until_close(std::chrono::milliseconds timeout);
    drained read_until_close() { return read_until_close(timeout_); }

    /// Sends `GET target` and reads the response head only. A response with a Content-Length
    /// (an error, or a server that does not stream) is read whole into the body and the stream
    /// counts as ended; otherwise the body (chunked or close-delimited) is read by next_event().
    http_response start_stream(std::string_view target, const header_list& headers = {});
    /// The next event of the stream started by start_stream(); nullopt when the stream ended
    /// (see stream_ended()) or when `timeout` passed first. Comment lines are skipped and counted.
    std::optional<sse_event> next_event(std::chrono::milliseconds timeout);
    /// True once the streamed body is complete (terminating chunk, or the server closed).
    bool stream_ended() const noexcept;
    /// Comment lines (": ...") seen on the stream so far.
    std::size_t stream_comments() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
    std::chrono::milliseconds timeout_;
    std::string source_;
};

}  // namespace livebase::testing
