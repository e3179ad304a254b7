#include "support/http_client.hpp"

#include <algorithm>
#include <boost/asio/connect.hpp>
#include <boost/asio/io_context.hpp>
#include <boost/asio/ip/tcp.hpp>
#include <boost/asio/write.hpp>
#include <boost/beast/core/flat_buffer.hpp>
#include <boost/beast/http/empty_body.hpp>
#include <boost/beast/http/read.hpp>
#include <boost/beast/http/string_body.hpp>
#include <boost/beast/http/write.hpp>
#include <cctype>
#include <optional>
#include <stdexcept>

namespace livebase::testing {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;
using error_code = boost::system::error_code;

bool iless::operator()(std::string_view a, std::string_view b) const noexcept {
    return std::lexicographical_compare(a.begin(), a.end(), b.begin(), b.end(), [](char x, char y) {
        return std::tolower(static_cast<unsigned char>(x)) <
               std::tolower(static_cast<unsigned char>(y));
    });
}

std::string http_response::header(std::string_view name) const {
    auto it = headers.find(name);
    return it == headers.end() ? std::string() : it->second;
}

json::value http_response::json() const {
    auto v = parse_json(body);
    return v ? std::move(*v) : json::value();
}

struct http_client::impl {
    net::io_context ioc;
    tcp::socket socket{ioc};
    beast::flat_buffer buffer;
    std::string host;
    std::uint16_t port;

    // The stream of start_stream().
    std::string raw;   // body bytes not yet de-chunked
    std::string text;  // event-stream text not yet parsed into events
    bool chunked = false;
    bool ended = true;
    std::size_t comments = 0;

    /// Moves complete chunks from `raw` to `text`; sets `ended` on the terminating chunk.
    /// Throws on malformed framing.
    void dechunk() {
        for (;;) {
            auto eol = raw.find("\r\n");
            if (eol == std::string::npos) return;
            std::size_t size = std::stoul(raw.substr(0, eol), nullptr, 16);
            if (size == 0) {
                if (raw.find("\r\n\r\n", eol) == std::string::npos) return;
                ended = true;
                raw.clear();
                return;
            }
            if (raw.size() < eol + 2 + size + 2) return;
            if (raw.compare(eol + 2 + size, 2, "\r\n") != 0)
                throw std::runtime_error("http_client: bad chunk framing");
            text.append(raw, eol + 2, size);
            raw.erase(0, eol + 2 + size + 2);
        }
    }

    /// Takes one complete event block off `text`; comment-only blocks are counted and skipped.
    std::optional<sse_event> take_event() {
        for (;;) {
            auto end = text.find("\n\n");
            if (end == std::string::npos) return std::nullopt;
            std::string block = text.substr(0, end + 1);
            text.erase(0, end + 2);
            sse_event e;
            bool any = false;
            bool has_data = false;
            for (std::size_t pos = 0; pos < block.size();) {
                auto nl = block.find('\n', pos);
                std::string line = block.substr(pos, nl - pos);
                pos = nl + 1;
                if (!line.empty() && line[0] == ':') {
                    ++comments;
                    continue;
                }
                auto colon = line.find(':');
                std::string field = line.substr(0, colon);
                std::string value = colon == std::string::npos ? "" : line.substr(colon + 1);
                if (!value.empty() && value[0] == ' ') value.erase(0, 1);
                any = true;
                if (field == "id") e.id = value;
                else if (field == "event") e.event = value;
                else if (field == "data") {
                    if (has_data) e.data += '\n';
                    e.data += value;
                    has_data = true;
                }
            }
            if (any) return e;
        }
    }

    /// Runs the io_context until `done` or the deadline; on timeout cancels the operation,
    /// lets it finish and returns false.
    bool run(const bool& done, std::chrono::milliseconds timeout) {
        ioc.restart();
        ioc.run_for(timeout);
        if (done) return true;
        error_code ec;
        socket.cancel(ec);
        ioc.restart();
        ioc.run();
        return false;
    }
};

http_client::http_client(std::uint16_t port, std::chrono::milliseconds timeout, std::string host)
    : impl_(std::make_unique<impl>()), timeout_(timeout) {
    impl_->host = std::move(host);
    impl_->port = port;
}

http_client::~http_client() { close(); }

bool http_client::is_open() const noexcept { return impl_->socket.is_open(); }

void http_client::close() noexcept {
    error_code ec;
    impl_->socket.shutdown(tcp::socket::shutdown_both, ec);
    impl_->socket.close(ec);
    impl_->buffer.clear();
}

bool http_client::try_connect() {
    close();
    tcp::endpoint ep(net::ip::make_address(impl_->host), impl_->port);
    if (!source_.empty()) {
        error_code ec;
        impl_->socket.open(ep.protocol(), ec);
        if (!ec) impl_->socket.bind(tcp::endpoint(net::ip::make_address(source_), 0), ec);
        if (ec) {
            close();
            return false;
        }
    }
    bool done = false;
    error_code result;
    impl_->socket.async_connect(ep, [&](error_code ec) {
        result = ec;
        done = true;
    });
    if (!impl_->run(done, timeout_) || result) {
        close();
        return false;
    }
    impl_->socket.set_option(tcp::no_delay(true));
    return true;
}

void http_client::connect() {
    if (!try_connect())
        throw std::runtime_error("http_client: cannot connect to port " +
                                 std::to_string(impl_->port));
}

void http_client::send_raw(std::string_view bytes) {
    if (!is_open()) connect();
    bool done = false;
    error_code result;
    net::async_write(impl_->socket, net::buffer(bytes.data(), bytes.size()),
                     [&](error_code ec, std::size_t) {
                         result = ec;
                         done = true;
                     });
    if (!impl_->run(done, timeout_)) throw std::runtime_error("http_client: write timed out");
    if (result) throw std::runtime_error("http_client: write failed: " + result.message());
}

http_response http_client::read_response() {
    bhttp::response_parser<bhttp::string_body> parser;
    parser.body_limit(boost::none);
    parser.header_limit(1u << 20);
    bool done = false;
    error_code result;
    bhttp::async_read(impl_->socket, impl_->buffer, parser, [&](error_code ec, std::size_t) {
        result = ec;
        done = true;
    });
    if (!impl_->run(done, timeout_)) throw std::runtime_error("http_client: read timed out");
    if (result) throw std::runtime_error("http_client: read failed: " + result.message());

    auto msg = parser.release();
    http_response r;
    r.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
        std::string name(f.name_string());
        std::string value(f.value());
        auto [it, inserted] = r.headers.emplace(name, value);
        if (!inserted) it->second += ", " + value;
    }
    r.body = std::move(msg.body());
    if (!msg.keep_alive()) close();
    return r;
}

http_response http_client::request(std::string_view method, std::string_view target,
                                   std::string_view body, const header_list& headers) {
    if (!is_open()) connect();
    bhttp::request<bhttp::string_body> req;
    req.method_string(method);
    req.target(target);
    req.version(11);
    req.set(bhttp::field::host, impl_->host + ":" + std::to_string(impl_->port));
    bool has_content_type = false;
    for (const auto& [name, value] : headers) {
        if (iless{}(name, "content-type") == false && iless{}("content-type", name) == false)
            has_content_type = true;
        req.insert(name, value);
    }
    if (!body.empty() && !has_content_type) req.set(bhttp::field::content_type, "application/json");
    req.body() = std::string(body);
    req.prepare_payload();

    bool done = false;
    error_code result;
    bhttp::async_write(impl_->socket, req, [&](error_code ec, std::size_t) {
        result = ec;
        done = true;
    });
    if (!impl_->run(done, timeout_)) throw std::runtime_error("http_client: write timed out");
    if (result) throw std::runtime_error("http_client: write failed: " + result.message());
    return read_response();
}

http_client::drained http_client::read_until_close(std::chrono::milliseconds timeout) {
    drained out;
    auto& b = impl_->buffer;
    out.bytes.assign(static_cast<const char*>(b.data().data()), b.size());
    b.consume(b.size());
    if (!is_open()) {
        out.closed = true;
        return out;
    }
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    char chunk[8192];
    for (;;) {
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return out;
        bool done = false;
        error_code result;
        std::size_t n = 0;
        impl_->socket.async_read_some(net::buffer(chunk), [&](error_code ec, std::size_t k) {
            result = ec;
            n = k;
            done = true;
        });
        if (!impl_->run(done, left)) return out;
        out.bytes.append(chunk, n);
        if (result) {  // eof, or a reset: either way the server closed
            out.closed = true;
            close();
            return out;
        }
    }
}

}  // namespace livebase::testing

namespace livebase::testing {

http_response http_client::start_stream(std::string_view target, const header_list& headers) {
    if (!is_open()) connect();
    auto& d = *impl_;
    bhttp::request<bhttp::empty_body> req{bhttp::verb::get, target, 11};
    req.set(bhttp::field::host, d.host + ":" + std::to_string(d.port));
    for (const auto& [name, value] : headers) req.insert(name, value);

    bool done = false;
    error_code result;
    bhttp::async_write(d.socket, req, [&](error_code ec, std::size_t) {
        result = ec;
        done = true;
    });
    if (!d.run(done, timeout_)) throw std::runtime_error("http_client: write timed out");
    if (result) throw std::runtime_error("http_client: write failed: " + result.message());

    bhttp::response_parser<bhttp::empty_body> parser;
    parser.header_limit(1u << 20);
    done = false;
    bhttp::async_read_header(d.socket, d.buffer, parser, [&](error_code ec, std::size_t) {
        result = ec;
        done = true;
    });
    if (!d.run(done, timeout_)) throw std::runtime_error("http_client: read timed out");
    if (result) throw std::runtime_error("http_client: read failed: " + result.message());

    const auto& msg = parser.get();
    http_response r;
    r.status = static_cast<int>(msg.result_int());
    for (const auto& f : msg) {
        std::string value(f.value());
        auto [it, inserted] = r.headers.emplace(std::string(f.name_string()), value);
        if (!inserted) it->second += ", " + value;
    }
    d.raw.assign(static_cast<const char*>(d.buffer.data().data()), d.buffer.size());
    d.buffer.consume(d.buffer.size());
    d.text.clear();
    d.comments = 0;
    d.chunked = parser.chunked();
    d.ended = false;
    if (auto len = parser.content_length()) {  // not a stream: read the whole body
        while (d.raw.size() < *len) {
            char chunk[8192];
            std::size_t n = 0;
            done = false;
            d.socket.async_read_some(net::buffer(chunk), [&](error_code ec, std::size_t k) {
                result = ec;
                n = k;
                done = true;
            });
            if (!d.run(done, timeout_)) throw std::runtime_error("http_client: read timed out");
            if (result) throw std::runtime_error("http_client: read failed: " + result.message());
            d.raw.append(chunk, n);
        }
        r.body = d.raw.substr(0, *len);
        d.raw.clear();
        d.ended = true;
        if (!msg.keep_alive()) close();
    }
    return r;
}

std::optional<sse_event> http_client::next_event(std::chrono::milliseconds timeout) {
    auto& d = *impl_;
    const auto deadline = std::chrono::steady_clock::now() + timeout;
    for (;;) {
        if (d.chunked) {
            d.dechunk();
        } else {
            d.text += d.raw;
            d.raw.clear();
        }
        if (auto e = d.take_event()) return e;
        if (d.ended || !is_open()) {
            d.ended = true;
            return std::nullopt;
        }
        auto left = std::chrono::duration_cast<std::chrono::milliseconds>(
            deadline - std::chrono::steady_clock::now());
        if (left.count() <= 0) return std::nullopt;
        char chunk[8192];
        std::size_t n = 0;
        bool done = false;
        error_code result;
        d.socket.async_read_some(net::buffer(chunk), [&](error_code ec, std::size_t k) {
            result = ec;
            n = k;
            done = true;
        });
        if (!d.run(done, left)) return std::nullopt;
        d.raw.append(chunk, n);
        if (result) {  // the server closed: a close-delimited body ends here
            if (d.chunked)
                d.dechunk();
            else
                d.text += d.raw;
            d.raw.clear();
            d.ended = true;
            close();
        }
    }
}

bool http_client::stream_ended() const noexcept { return impl_->ended; }

std::size_t http_client::stream_comments() const noexcept { return impl_->comments; }

}  // namespace livebase::testing
