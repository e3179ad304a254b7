#include <livebase/core/json.hpp>

#include <boost/json/parser.hpp>

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
