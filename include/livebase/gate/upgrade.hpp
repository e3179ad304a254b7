#pragma once
/// The hand-over of a WebSocket upgrade from the HTTP server to the WebSocket door. Includes
/// Beast: only the two doors include this header.
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/core/tcp_stream.hpp>
#include <boost/beast/http/message.hpp>
#include <boost/beast/http/string_body.hpp>

#include <functional>
#include <string>

namespace livebase {

/// An upgrade request read by an HTTP session, with its connection. The stream's executor is the
/// connection's strand. Nothing has been written to the stream for this request yet.
struct websocket_upgrade {
    boost::beast::tcp_stream stream;
    boost::beast::http::request<boost::beast::http::string_body> request;
    boost::beast::flat_buffer buffer;  ///< bytes read past the request (usually empty)
    std::string request_id;            ///< X-Request-Id echoed or generated
    /// The client's address as the HTTP door resolved it (trusted proxies' X-Forwarded-For);
    /// "" = the socket's peer.
    std::string client_address;
    bool https = false;  ///< the client reached the server (or a trusted proxy) over https
};

/// Takes ownership of an upgrade. Called on the connection's strand; must not block.
using upgrade_handler = std::function<void(websocket_upgrade&&)>;

}  // namespace livebase
