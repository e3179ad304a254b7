#include <livebase/core/json.hpp>

#include <boost/json/basic_parser_impl.hpp>
#include <boost/json/parser.hpp>

#include <charconv>
#include <cmath>
#include <deque>
#include <memory>
#include <unordered_set>
#include <vector>

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

namespace {

/// A SAX pass that only looks for an object repeating a key (json::parser keeps the last).
/// The keys of the open objects sit in one stack (a deque: references stay valid while it
/// grows); an object's first keys are compared one by one, a larger object's through a hash
/// set, so neither small nor huge objects cost much.
struct duplicate_finder {
    static constexpr std::size_t max_array_size = std::size_t(-1);
    static constexpr std::size_t max_object_size = std::size_t(-1);
    static constexpr std::size_t max_string_size = std::size_t(-1);
    static constexpr std::size_t max_key_size = std::size_t(-1);
    static constexpr std::size_t k_linear = 16;  ///< keys compared one by one before hashing

    struct open_object {
        std::size_t first;  ///< index of its first key in `keys`
        std::unique_ptr<std::unordered_set<std::string_view>> seen;  ///< past k_linear keys
    };
    std::deque<std::string> keys;
    std::vector<open_object> objects;
    std::string part;  ///< a key arriving in pieces
    std::optional<std::string> duplicate;

    using error_code = boost::system::error_code;
    using string_view = json::string_view;
    bool on_document_begin(error_code&) { return true; }
    bool on_document_end(error_code&) { return true; }
    bool on_array_begin(error_code&) { return true; }
    bool on_array_end(std::size_t, error_code&) { return true; }
    bool on_object_begin(error_code&) {
        objects.push_back({keys.size(), nullptr});
        return true;
    }
    bool on_object_end(std::size_t, error_code&) {
        keys.resize(objects.back().first);
        objects.pop_back();
        return true;
    }
    bool on_string_part(string_view, std::size_t, error_code&) { return true; }
    bool on_string(string_view, std::size_t, error_code&) { return true; }
    bool on_key_part(string_view s, std::size_t, error_code&) {
        part.append(s.data(), s.size());
        return true;
    }
    bool on_key(string_view s, std::size_t, error_code& ec) {
        std::string_view key(s.data(), s.size());
        if (!part.empty()) {
            part.append(s.data(), s.size());
            key = part;
        }
        auto& o = objects.back();
        bool repeated = false;
        if (o.seen) {
            repeated = o.seen->count(key) != 0;
        } else {
            for (std::size_t i = o.first; i < keys.size() && !repeated; ++i) repeated = keys[i] == key;
        }
        if (repeated) {
            duplicate = std::string(key);
            ec = json::error::syntax;  // stop: one is enough
            return false;
        }
        keys.emplace_back(key);
        part.clear();
        if (o.seen) {
            o.seen->insert(keys.back());
        } else if (keys.size() - o.first > k_linear) {
            o.seen = std::make_unique<std::unordered_set<std::string_view>>();
            for (std::size_t i = o.first; i < keys.size(); ++i) o.seen->insert(keys[i]);
        }
        return true;
    }
    bool on_number_part(string_view, error_code&) { return true; }
    bool on_int64(std::int64_t, string_view, error_code&) { return true; }
    bool on_uint64(std::uint64_t, string_view, error_code&) { return true; }
    bool on_double(double, string_view, error_code&) { return true; }
    bool on_bool(bool, error_code&) { return true; }
    bool on_null(error_code&) { return true; }
    bool on_comment_part(string_view, error_code&) { return true; }
    bool on_comment(string_view, error_code&) { return true; }
};

}  // namespace

std::optional<json::value> parse_json_input(std::string_view text, std::size_t max_depth,
                                            std::optional<std::string>* duplicate) noexcept {
    try {
        auto v = parse_json(text, max_depth);
        // Only objects can repeat a key; a text without '{' has none.
        if (!v || text.find('{') == std::string_view::npos) return v;
        json::parse_options opts;
        opts.max_depth = max_depth;
        json::basic_parser<duplicate_finder> p(opts);
        boost::system::error_code ec;
        p.write_some(false, text.data(), text.size(), ec);
        if (p.handler().duplicate) {
            if (duplicate) *duplicate = std::move(p.handler().duplicate);
            return std::nullopt;
        }
        return v;
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
        if (c >= 0x80) {
            if (auto len = utf8_sequence(s, i)) {
                i += len - 1;
                continue;
            }
            // Not UTF-8: the text would not be JSON. The byte becomes U+FFFD.
            out.append(s.data() + run, i - run);
            run = i + 1;
            out += "\\ufffd";
            continue;
        }
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

}  // namespace livebase
