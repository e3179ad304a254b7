#pragma once
/// The WebSocket wire format (RFC 6455 section 5, RFC 7692) as the server speaks it once the
/// handshake is done: headers of the frames it sends (unmasked, never fragmented) and an
/// incremental parser of the frames clients send (masked, maybe fragmented, maybe compressed).
/// Policy only, no I/O: the session writes a header in front of a shared payload buffer and
/// feeds whatever the socket read to the parser.
#include <cstddef>
#include <cstdint>
#include <memory>
#include <optional>
#include <string>
#include <string_view>

namespace livebase::ws_detail {

enum class opcode : std::uint8_t {
    continuation = 0,
    text = 1,
    binary = 2,
    close = 8,
    ping = 9,
    pong = 10,
};

/// The longest header a server frame has (2 bytes + a 64-bit length; no mask).
inline constexpr std::size_t k_max_header = 10;
/// The longest payload of a control frame.
inline constexpr std::size_t k_max_control = 125;

/// Writes the header of one whole (FIN) server frame carrying `size` payload bytes into `out`
/// and returns its length (2, 4 or 10). `compressed` sets RSV1 (permessage-deflate).
/// REQUIRES: out has k_max_header bytes.
std::size_t write_header(unsigned char* out, opcode op, std::uint64_t size,
                         bool compressed = false) noexcept;

/// A whole control frame (ping, pong or close); the payload is cut to 125 bytes.
std::string control_frame(opcode op, std::string_view payload);
/// A close frame with `code` (big-endian) and `reason` (cut to fit 125 bytes).
std::string close_frame(std::uint16_t code, std::string_view reason);

/// Incremental parser of client frames. Not thread-safe. Enforces RFC 6455: frames must be
/// masked, reserved bits clear (RSV1 only on the first frame of a data message and only when
/// permessage-deflate was negotiated), control frames whole and at most 125 bytes, no unknown
/// opcodes, continuation frames only inside a fragmented message; and the message size limit
/// (counting the bytes as sent, i.e. compressed). An error is final: next() keeps answering it.
/// Memory: the unparsed bytes (at most one frame plus what followed it in a read) and the
/// message being assembled; both are released when empty.
class frame_parser {
public:
    enum class kind { text, binary, ping, pong, close, error };

    struct event {
        kind what = kind::error;
        std::string payload;       ///< message (text/binary), ping/pong data, or close reason
        bool compressed = false;   ///< text/binary: RSV1 was set (permessage-deflate)
        /// close: the peer's code (1005 when it sent none). error: the close code to answer
        /// with (1002 protocol error, 1009 too big).
        std::uint16_t code = 0;
    };

    /// `max_message`: largest message (the sum of its frames' payloads); larger -> 1009.
    /// `deflate`: permessage-deflate was negotiated (RSV1 allowed).
    explicit frame_parser(std::uint64_t max_message, bool deflate = false) noexcept
        : max_message_(max_message), deflate_(deflate) {}

    /// Appends bytes read from the socket.
    void feed(std::string_view bytes);
    /// The next complete message or control frame, an error, or nullopt when more bytes are
    /// needed.
    std::optional<event> next();
    /// True once next() returned an error.
    bool failed() const noexcept { return error_ != 0; }
    /// Bytes held (unparsed input plus the message being assembled).
    std::size_t buffered() const noexcept { return buf_.size() - pos_ + message_.size(); }

private:
    std::optional<event> fail(std::uint16_t code);
    void compact();

    std::uint64_t max_message_;
    bool deflate_;
    std::string buf_;       // bytes fed, parsed up to pos_
    std::size_t pos_ = 0;
    std::string message_;   // the fragmented message so far
    bool in_message_ = false;
    bool message_binary_ = false;
    bool message_compressed_ = false;
    std::uint16_t error_ = 0;
};

/// permessage-deflate parameters as negotiated (RFC 7692 section 7). The server always takes
/// no context takeover in both directions, so every message is compressed on its own and one
/// compressed payload serves every socket with the same window and level.
struct deflate_params {
    int window_bits = 15;  ///< server_max_window_bits (9..15; zlib cannot do raw 8)
    int level = 6;         ///< zlib level 1..9
    bool operator==(const deflate_params&) const = default;
};

/// The client's Sec-WebSocket-Extensions offer, judged: the response header value and the
/// parameters, or nullopt when no permessage-deflate offer is acceptable. `level` is the
/// server's compression level.
struct deflate_agreement {
    std::string response;  ///< e.g. "permessage-deflate; server_no_context_takeover; ..."
    deflate_params params;
};
std::optional<deflate_agreement> negotiate_deflate(std::string_view offer, int level);

/// Compresses one message payload (raw deflate, the trailing 00 00 ff ff removed: RFC 7692
/// section 7.2.1).
std::string deflate_message(std::string_view payload, const deflate_params& p);
/// Decompresses one message payload sent with RSV1; nullopt when it is not valid deflate data
/// or inflates to more than `max_bytes` (then `*too_big` is set, when given).
std::optional<std::string> inflate_message(std::string_view payload, std::uint64_t max_bytes,
                                           bool* too_big = nullptr);

}  // namespace livebase::ws_detail
