#include <livebase/core/json.hpp>

#include <boost/json/parser.hpp>

#include <charconv>
#include <cmath>

namespace livebase {

std::optional<json::value> parse_json(std::string_view text, std::size_t max_depth) noexcept {
    try {
        json::parse_options opts;
        opts.max_depth = max_depth;
        json::parser p(json::storage_ptr(), opts);
        boost::system::error_code ec;
        p.write(text.data(), text.size(), ec);
        if (ec) return std::nullopt;  // also: trailing garbage, incomplete input
        return p.release();
    } catch (...) {
        return std::nullopt;
    }
}

std::string_view get_string(const json::object& o, std::string_view key) noexcept {
    auto it = o.find(key);
    if (it == o.end() || !it->value().is_string()) return {};
    const auto& s = it->value().get_string();
    return {s.data(), s.size()};
}

std::optional<std::int64_t> get_int(const json::object& o, std::string_view key) noexcept {
    auto it = o.find(key);
    if (it == o.end()) return std::nullopt;
    const auto& v = it->value();
    if (v.is_int64()) return v.get_int64();
    if (v.is_uint64() && v.get_uint64() <= static_cast<std::uint64_t>(INT64_MAX))
        return static_cast<std::int64_t>(v.get_uint64());
    return std::nullopt;
}

namespace {

void append_double(std::string& out, double d) {
    if (!std::isfinite(d)) {
        out += "null";
        return;
    }
    // The shortest digits that read back as `d`, placed as JavaScript places them: plain
    // decimals from 1e-6 up to 1e21 (43.333333333333336, 0.0005), an exponent beyond (1e+21,
    // 1e-7).
    char buf[400];
    const double a = std::fabs(d);
    const bool fixed = a == 0 || (a >= 1e-6 && a < 1e21);
    auto r = fixed ? std::to_chars(buf, buf + sizeof buf, d, std::chars_format::fixed)
                   : std::to_chars(buf, buf + sizeof buf, d, std::chars_format::scientific);
    std::string_view text(buf, static_cast<std::size_t>(r.ptr - buf));
    if (auto e = text.find('e'); e != std::string_view::npos) {
        // "1e-07" -> "1e-7"
        out += text.substr(0, e + 2);
        auto digits = text.substr(e + 2);
        while (digits.size() > 1 && digits.front() == '0') digits.remove_prefix(1);
        out += digits;
        return;
    }
    out += text;
    // "2" would parse back as an integer: keep the value a double.
    if (text.find('.') == std::string_view::npos) out += ".0";
}

void append_string(std::string& out, std::string_view s) {
    static constexpr char hex[] = "0123456789abcdef";
    out += '"';
    std::size_t run = 0;  // start of the pending run of bytes that need no escape
    for (std::size_t i = 0; i < s.size(); ++i) {
        auto c = static_cast<unsigned char>(s[i]);
        if (c >= 0x20 && c != '"' && c != '\\') continue;
        out.append(s.data() + run, i - run);
        run = i + 1;
        switch (c) {
            case '"': out += "\\\""; break;
            case '\\': out += "\\\\"; break;
            case '\b': out += "\\b"; break;
            case '\f': out += "\\f"; break;
            case '\n': out += "\\n"; break;
            case '\r': out += "\\r"; break;
            case '\t': out += "\\t"; break;
            default:
                out += "\\u00";
                out += hex[c >> 4];
                out += hex[c & 0xF];
        }
    }
    out.append(s.data() + run, s.size() - run);
    out += '"';
}

}  // namespace

void append_json_text(std::string& out, const json::value& v) {
    switch (v.kind()) {
        case json::kind::null: out += "null"; return;
        case json::kind::bool_: out += v.get_bool() ? "true" : "false"; return;
        case json::kind::int64: {
            char buf[24];
            auto r = std::to_chars(buf, buf + sizeof buf, v.get_int64());
            out.append(buf, r.ptr);
            return;
        }
        case json::kind::uint64: {
            char buf[24];
            auto r = std::to_chars(buf, buf + sizeof buf, v.get_uint64());
            out.append(buf, r.ptr);
            return;
        }
        case json::kind::double_: append_double(out, v.get_double()); return;
        case json::kind::string: {
            const auto& s = v.get_string();
            append_string(out, {s.data(), s.size()});
            return;
        }
        case json::kind::array: {
            out += '[';
            bool first = true;
            for (const auto& e : v.get_array()) {
                if (!first) out += ',';
                first = false;
                append_json_text(out, e);
            }
            out += ']';
            return;
        }
        case json::kind::object: {
            out += '{';
            bool first = true;
            for (const auto& kv : v.get_object()) {
                if (!first) out += ',';
                first = false;
                append_string(out, kv.key());
                out += ':';
                append_json_text(out, kv.value());
            }
            out += '}';
            return;
        }
    }
}

std::string to_json_text(const json::value& v) {
    std::string out;
    out.reserve(v.is_structured() ? 256 : 32);
    append_json_text(out, v);
    return out;
}

std::string json_number_text(double d) {
    std::string out;
    append_double(out, d);
    return out;
}

bool valid_utf8(std::string_view s) noexcept {
    const auto* p = reinterpret_cast<const unsigned char*>(s.data());
    std::size_t n = s.size(), i = 0;
    while (i < n) {
        unsigned char c = p[i];
        if (c < 0x80) { ++i; continue; }
        std::size_t len;
        std::uint32_t cp;
        if ((c & 0xE0) == 0xC0) { len = 2; cp = c & 0x1F; }
        else if ((c & 0xF0) == 0xE0) { len = 3; cp = c & 0x0F; }
        else if ((c & 0xF8) == 0xF0) { len = 4; cp = c & 0x07; }
        else return false;
        if (i + len > n) return false;
        for (std::size_t k = 1; k < len; ++k) {
            if ((p[i + k] & 0xC0) != 0x80) return false;
            cp = (cp << 6) | (p[i + k] & 0x3F);
        }
        if ((len == 2 && cp < 0x80) || (len == 3 && cp < 0x800) || (len == 4 && cp < 0x10000))
            return false;  // overlong
        if (cp > 0x10FFFF || (cp >= 0xD800 && cp <= 0xDFFF)) return false;
        i += len;
    }
    return true;
}

}  // namespace livebase
