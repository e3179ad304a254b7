#include "ws/wire.hpp"
#include <livebase/core/text.hpp>

#include <zlib.h>

#include <algorithm>
#include <cstring>

namespace livebase::ws_detail {

std::size_t write_header(unsigned char* out, opcode op, std::uint64_t size, bool compressed) noexcept {
    out[0] = static_cast<unsigned char>(0x80 | (compressed ? 0x40 : 0) | static_cast<unsigned>(op));
    if (size < 126) {
        out[1] = static_cast<unsigned char>(size);
        return 2;
    }
    if (size <= 0xffff) {
        out[1] = 126;
        out[2] = static_cast<unsigned char>(size >> 8);
        out[3] = static_cast<unsigned char>(size);
        return 4;
    }
    out[1] = 127;
    for (int i = 0; i < 8; ++i) out[2 + i] = static_cast<unsigned char>(size >> (56 - 8 * i));
    return 10;
}

std::string control_frame(opcode op, std::string_view payload) {
    payload = payload.substr(0, k_max_control);
    unsigned char h[k_max_header];
    const auto n = write_header(h, op, payload.size());
    std::string out(reinterpret_cast<const char*>(h), n);
    out += payload;
    return out;
}

std::string close_frame(std::uint16_t code, std::string_view reason) {
    std::string body;
    body += static_cast<char>(code >> 8);
    body += static_cast<char>(code & 0xff);
    body += reason.substr(0, k_max_control - 2);
    return control_frame(opcode::close, body);
}

// ---- the parser ----

void frame_parser::feed(std::string_view bytes) {
    if (error_ || bytes.empty()) return;
    compact();
    buf_.append(bytes);
}

void frame_parser::compact() {
    if (pos_ == 0) return;
    if (pos_ == buf_.size()) {
        buf_.clear();
        if (buf_.capacity() > 4096) buf_.shrink_to_fit();
    } else {
        buf_.erase(0, pos_);
    }
    pos_ = 0;
}

std::optional<frame_parser::event> frame_parser::fail(std::uint16_t code) {
    error_ = code;
    std::string().swap(buf_);
    std::string().swap(message_);
    pos_ = 0;
    event e;
    e.what = kind::error;
    e.code = code;
    return e;
}

namespace {

// As ws_detail::valid_close_code (codec.cpp): 1005, 1006, 1014 and 5000 and up are codes no
// endpoint may send.
bool valid_close_code(std::uint16_t c) {
    if (c >= 1000 && c <= 1003) return true;
    if (c >= 1007 && c <= 1013) return true;
    return c >= 3000 && c <= 4999;
}

void unmask(char* p, std::size_t n, const unsigned char key[4]) {
    for (std::size_t i = 0; i < n; ++i) p[i] = static_cast<char>(p[i] ^ key[i & 3]);
}

}  // namespace

std::optional<frame_parser::event> frame_parser::next() {
    if (error_) {
        event e;
        e.code = error_;
        return e;
    }
    for (;;) {
        const std::size_t avail = buf_.size() - pos_;
        if (avail < 2) return std::nullopt;
        const auto* p = reinterpret_cast<const unsigned char*>(buf_.data() + pos_);
        const bool fin = p[0] & 0x80;
        const bool rsv1 = p[0] & 0x40;
        const unsigned op = p[0] & 0x0f;
        if (p[0] & 0x30) return fail(1002);
        if (!(p[1] & 0x80)) return fail(1002);  // clients must mask
        std::uint64_t len = p[1] & 0x7f;
        std::size_t header = 2;
        if (len == 126) {
            if (avail < 4) return std::nullopt;
            len = (std::uint64_t{p[2]} << 8) | p[3];
            header = 4;
            if (len < 126) return fail(1002);  // not the minimal encoding
        } else if (len == 127) {
            if (avail < 10) return std::nullopt;
            len = 0;
            for (int i = 0; i < 8; ++i) len = (len << 8) | p[2 + i];
            header = 10;
            if (len >> 63) return fail(1002);
            if (len <= 0xffff) return fail(1002);
        }
        const bool control = op >= 8;
        if (control) {
            if (op != 8 && op != 9 && op != 10) return fail(1002);
            if (!fin || rsv1 || len > k_max_control) return fail(1002);
        } else {
            if (op > 2) return fail(1002);
            if (op == 0 && !in_message_) return fail(1002);
            if (op != 0 && in_message_) return fail(1002);
            if (rsv1 && (op == 0 || !deflate_)) return fail(1002);
            // Checked before the payload is buffered, so a huge frame costs nothing.
            if (len > max_message_ || message_.size() + len > max_message_) return fail(1009);
        }
        if (avail < header + 4 + len) {
            // Room for the rest of this frame; what the socket delivers goes after it.
            buf_.reserve(pos_ + header + 4 + static_cast<std::size_t>(len));
            return std::nullopt;
        }
        unsigned char key[4];
        std::memcpy(key, p + header, 4);
        char* payload = buf_.data() + pos_ + header + 4;
        const std::size_t n = static_cast<std::size_t>(len);
        unmask(payload, n, key);
        pos_ += header + 4 + n;

        if (control) {
            event e;
            if (op == 8) {
                e.what = kind::close;
                if (n == 1) return fail(1002);
                if (n >= 2) {
                    e.code = static_cast<std::uint16_t>((static_cast<unsigned char>(payload[0]) << 8) |
                                                        static_cast<unsigned char>(payload[1]));
                    if (!valid_close_code(e.code)) return fail(1002);
                    e.payload.assign(payload + 2, n - 2);
                } else {
                    e.code = 1005;
                }
            } else {
                e.what = op == 9 ? kind::ping : kind::pong;
                e.payload.assign(payload, n);
            }
            if (pos_ == buf_.size()) compact();
            return e;
        }

        if (op != 0) {
            in_message_ = true;
            message_binary_ = op == 2;
            message_compressed_ = rsv1;
        }
        if (!fin) {
            message_.append(payload, n);
            continue;
        }
        event e;
        e.what = message_binary_ ? kind::binary : kind::text;
        e.compressed = message_compressed_;
        if (message_.empty()) {
            e.payload.assign(payload, n);
        } else {
            message_.append(payload, n);
            e.payload = std::move(message_);
            message_ = std::string();
        }
        in_message_ = false;
        if (pos_ == buf_.size()) compact();
        return e;
    }
}

// ---- permessage-deflate ----

namespace {

// One offer's parameters ("server_no_context_takeover; server_max_window_bits=10"), or nullopt
// when a parameter is unknown, repeated or out of range (the offer is then declined).
std::optional<deflate_agreement> judge_offer(std::string_view params, int level) {
    deflate_agreement a;
    a.params.level = level;
    bool seen_snct = false, seen_cnct = false, seen_smwb = false, seen_cmwb = false;
    int server_bits = 0;
    while (!params.empty()) {
        auto semi = params.find(';');
        auto param = trim_ows(params.substr(0, semi));
        params = semi == std::string_view::npos ? std::string_view{} : params.substr(semi + 1);
        if (param.empty()) return std::nullopt;
        auto eq = param.find('=');
        auto name = trim_ows(param.substr(0, eq));
        std::optional<std::string_view> value;
        if (eq != std::string_view::npos) {
            auto v = trim_ows(param.substr(eq + 1));
            if (v.size() >= 2 && v.front() == '"' && v.back() == '"') v = v.substr(1, v.size() - 2);
            value = v;
        }
        auto bits = [&]() -> int {
            if (!value || value->empty() || value->size() > 2) return -1;
            int b = 0;
            for (char c : *value) {
                if (c < '0' || c > '9') return -1;
                b = b * 10 + (c - '0');
            }
            return b >= 8 && b <= 15 ? b : -1;
        };
        if (name == "server_no_context_takeover") {
            if (seen_snct || value) return std::nullopt;
            seen_snct = true;
        } else if (name == "client_no_context_takeover") {
            if (seen_cnct || value) return std::nullopt;
            seen_cnct = true;
        } else if (name == "server_max_window_bits") {
            if (seen_smwb) return std::nullopt;
            seen_smwb = true;
            server_bits = bits();
            if (server_bits < 0) return std::nullopt;
        } else if (name == "client_max_window_bits") {
            if (seen_cmwb) return std::nullopt;
            seen_cmwb = true;
            if (value && bits() < 0) return std::nullopt;
        } else {
            return std::nullopt;
        }
    }
    // zlib's raw deflate cannot keep to a 256-byte window.
    if (seen_smwb && server_bits < 9) return std::nullopt;
    a.params.window_bits = seen_smwb ? server_bits : 15;
    a.response = "permessage-deflate; server_no_context_takeover; client_no_context_takeover";
    if (seen_smwb) a.response += "; server_max_window_bits=" + std::to_string(server_bits);
    return a;
}

}  // namespace

std::optional<deflate_agreement> negotiate_deflate(std::string_view offer, int level) {
    while (!offer.empty()) {
        auto comma = offer.find(',');
        auto ext = trim_ows(offer.substr(0, comma));
        offer = comma == std::string_view::npos ? std::string_view{} : offer.substr(comma + 1);
        auto semi = ext.find(';');
        if (trim_ows(ext.substr(0, semi)) != "permessage-deflate") continue;
        auto params = semi == std::string_view::npos ? std::string_view{} : ext.substr(semi + 1);
        if (auto a = judge_offer(params, level)) return a;
    }
    return std::nullopt;
}

std::string deflate_message(std::string_view payload, const deflate_params& p) {
    z_stream z{};
    if (deflateInit2(&z, std::clamp(p.level, 1, 9), Z_DEFLATED, -std::clamp(p.window_bits, 9, 15), 8,
                     Z_DEFAULT_STRATEGY) != Z_OK)
        return {};
    std::string out;
    out.resize(deflateBound(&z, static_cast<uLong>(payload.size())) + 16);
    z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(payload.data()));
    z.avail_in = static_cast<uInt>(payload.size());
    z.next_out = reinterpret_cast<Bytef*>(out.data());
    z.avail_out = static_cast<uInt>(out.size());
    // A sync flush ends on an empty stored block (00 00 ff ff) that the receiver appends back.
    const int rc = deflate(&z, Z_SYNC_FLUSH);
    out.resize(out.size() - z.avail_out);
    deflateEnd(&z);
    if (rc != Z_OK || out.size() < 4) return {};
    out.resize(out.size() - 4);
    return out;
}

std::optional<std::string> inflate_message(std::string_view payload, std::uint64_t max_bytes,
                                           bool* too_big) {
    z_stream z{};
    if (inflateInit2(&z, -15) != Z_OK) return std::nullopt;
    static const unsigned char tail[4] = {0x00, 0x00, 0xff, 0xff};
    std::string out;
    char chunk[16384];
    bool ok = true;
    for (int part = 0; part < 2 && ok; ++part) {
        if (part == 0) {
            z.next_in = reinterpret_cast<Bytef*>(const_cast<char*>(payload.data()));
            z.avail_in = static_cast<uInt>(payload.size());
        } else {
            z.next_in = const_cast<Bytef*>(tail);
            z.avail_in = sizeof tail;
        }
        for (;;) {
            z.next_out = reinterpret_cast<Bytef*>(chunk);
            z.avail_out = sizeof chunk;
            const int rc = inflate(&z, Z_SYNC_FLUSH);
            const std::size_t got = sizeof chunk - z.avail_out;
            if (rc == Z_BUF_ERROR && got == 0) break;  // nothing more to do with this input
            if (rc != Z_OK && rc != Z_STREAM_END && rc != Z_BUF_ERROR) {
                ok = false;
                break;
            }
            if (out.size() + got > max_bytes) {
                if (too_big) *too_big = true;
                ok = false;
                break;
            }
            out.append(chunk, got);
            if (rc == Z_STREAM_END) {
                // A final block ends the stream: nothing may follow it in this message.
                if (part == 0 && z.avail_in > 0) ok = false;
                part = 2;
                break;
            }
            if (z.avail_in == 0 && z.avail_out > 0) break;
        }
    }
    inflateEnd(&z);
    if (!ok) return std::nullopt;
    return out;
}

}  // namespace livebase::ws_detail
