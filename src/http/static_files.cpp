#include "http/static_files.hpp"

#include <array>
#include <boost/url/pct_string_view.hpp>
#include <cstdio>
#include <fstream>
#include <iterator>
#include <vector>

namespace livebase::http_detail {

namespace fs = std::filesystem;

namespace {

constexpr std::string_view k_index = "index.html";
constexpr std::string_view k_immutable = "public, max-age=31536000, immutable";
/// The console talks to its own origin only: REST with fetch, realtime over ws:/wss: (CSP
/// 'self' does not cover WebSocket schemes in every browser). Inline styles are allowed
/// because component libraries set style attributes; scripts must be files.
constexpr std::string_view k_csp =
    "default-src 'self'; script-src 'self'; connect-src 'self' ws: wss:; img-src 'self' data:; "
    "style-src 'self' 'unsafe-inline'; font-src 'self' data:; object-src 'none'; "
    "base-uri 'self'; form-action 'self'; frame-ancestors 'none'";

response_parts console_problem(const problem& p) {
    auto r = render_problem(p);
    static_files::add_security_headers(r);
    return r;
}

response_parts not_found() { return console_problem(problem::not_found()); }

/// Decodes one segment of the console path; nullopt for anything that could leave its folder
/// or name a hidden file.
std::optional<std::string> decode_segment(std::string_view encoded) {
    if (encoded.empty()) return std::nullopt;
    auto pct = boost::urls::make_pct_string_view(encoded);
    if (!pct) return std::nullopt;
    std::string out = pct->decode();
    if (out.empty() || out.front() == '.') return std::nullopt;  // ".", "..", dotfiles
    for (char ch : out)
        if (ch == '/' || ch == '\\' || ch == '\0') return std::nullopt;
    return out;
}

/// True when `p` (canonical) is `root` (canonical) or inside it.
bool inside(const fs::path& p, const fs::path& root) {
    auto pi = p.begin();
    for (auto ri = root.begin(); ri != root.end(); ++ri, ++pi) {
        if (ri->empty()) continue;  // a trailing separator of root
        if (pi == p.end() || *pi != *ri) return false;
    }
    return true;
}

std::string make_etag(std::string_view bytes) {
    std::uint64_t h = 1469598103934665603ull;  // FNV-1a 64
    for (unsigned char ch : bytes) {
        h ^= ch;
        h *= 1099511628211ull;
    }
    std::array<char, 48> buf{};
    std::snprintf(buf.data(), buf.size(), "\"%016llx-%llx\"", static_cast<unsigned long long>(h),
                  static_cast<unsigned long long>(bytes.size()));
    return buf.data();
}

std::string lower(std::string_view s) {
    std::string out(s);
    for (auto& ch : out)
        if (ch >= 'A' && ch <= 'Z') ch = static_cast<char>(ch - 'A' + 'a');
    return out;
}

}  // namespace

static_files::static_files(options o) : opts_(std::move(o)) {
    std::error_code ec;
    auto abs = fs::absolute(opts_.root, ec);
    if (!ec) opts_.root = abs.lexically_normal();
}

std::string_view static_files::content_type_for(std::string_view file_name) noexcept {
    auto dot = file_name.rfind('.');
    if (dot == std::string_view::npos) return "application/octet-stream";
    static const std::map<std::string, std::string_view, std::less<>> types = {
        {"html", "text/html; charset=utf-8"},
        {"htm", "text/html; charset=utf-8"},
        {"js", "text/javascript; charset=utf-8"},
        {"mjs", "text/javascript; charset=utf-8"},
        {"css", "text/css; charset=utf-8"},
        {"svg", "image/svg+xml"},
        {"png", "image/png"},
        {"jpg", "image/jpeg"},
        {"jpeg", "image/jpeg"},
        {"gif", "image/gif"},
        {"webp", "image/webp"},
        {"ico", "image/x-icon"},
        {"json", "application/json"},
        {"webmanifest", "application/manifest+json"},
        {"map", "application/json"},
        {"woff", "font/woff"},
        {"woff2", "font/woff2"},
        {"txt", "text/plain; charset=utf-8"},
        {"wasm", "application/wasm"},
    };
    auto it = types.find(lower(file_name.substr(dot + 1)));
    return it == types.end() ? std::string_view("application/octet-stream") : it->second;
}

bool static_files::etag_matches(std::string_view header, std::string_view etag) noexcept {
    auto strip_weak = [](std::string_view t) {
        if (t.size() >= 2 && (t[0] == 'W' || t[0] == 'w') && t[1] == '/') t.remove_prefix(2);
        return t;
    };
    const auto want = strip_weak(etag);
    while (!header.empty()) {
        auto comma = header.find(',');
        auto item = header.substr(0, comma);
        header = comma == std::string_view::npos ? std::string_view() : header.substr(comma + 1);
        while (!item.empty() && (item.front() == ' ' || item.front() == '\t')) item.remove_prefix(1);
        while (!item.empty() && (item.back() == ' ' || item.back() == '\t')) item.remove_suffix(1);
        if (item == "*") return true;
        if (!item.empty() && strip_weak(item) == want) return true;
    }
    return false;
}

void static_files::add_security_headers(response_parts& r) {
    r.headers.emplace_back("X-Content-Type-Options", "nosniff");
    r.headers.emplace_back("Content-Security-Policy", std::string(k_csp));
    r.headers.emplace_back("X-Frame-Options", "DENY");
    r.headers.emplace_back("Referrer-Policy", "no-referrer");
}

std::shared_ptr<const static_files::entry> static_files::load(const fs::path& real,
                                                              std::string& why) const {
    std::error_code ec;
    const auto size = fs::file_size(real, ec);
    if (ec) return why = "cannot stat", nullptr;
    const auto mtime = fs::last_write_time(real, ec);
    if (ec) return why = "cannot stat", nullptr;
    if (size > opts_.max_file) return why = "too large", nullptr;
    const std::string key = real.string();
    {
        std::lock_guard lock(mu_);
        auto it = cache_.find(key);
        if (it != cache_.end() && it->second->size == size && it->second->mtime == mtime)
            return it->second;
    }
    // Read outside the lock: other files stay servable meanwhile.
    std::ifstream in(real, std::ios::binary);
    if (!in) return why = "cannot open", nullptr;
    std::string bytes;
    bytes.reserve(static_cast<std::size_t>(size));
    bytes.assign(std::istreambuf_iterator<char>(in), std::istreambuf_iterator<char>());
    if (in.bad() || bytes.size() > opts_.max_file) return why = "cannot read", nullptr;
    auto e = std::make_shared<entry>();
    e->mtime = mtime;
    e->size = size;  // the stat's size: a file rewritten meanwhile is re-read next time
    e->etag = make_etag(bytes);
    e->body = std::make_shared<const std::string>(std::move(bytes));
    std::lock_guard lock(mu_);
    if (auto it = cache_.find(key); it != cache_.end()) {
        cached_bytes_ -= it->second->body->size();
        cache_.erase(it);
    }
    if (cached_bytes_ + e->body->size() > opts_.max_cache) {
        cache_.clear();
        cached_bytes_ = 0;
    }
    cached_bytes_ += e->body->size();
    cache_.emplace(key, e);
    return e;
}

response_parts static_files::serve(std::string_view rel,
                                   std::optional<std::string_view> if_none_match) const {
    std::error_code ec;
    const auto root = fs::canonical(opts_.root, ec);
    if (ec || !fs::is_directory(root, ec) || !fs::is_regular_file(root / k_index, ec))
        return console_problem(problem::make(
            404, "/problems/console-not-built", "Console not built",
            "The console is not built: its directory has no index.html. " + opts_.missing_hint));

    // Split and decode the path under the mount point; one trailing slash means the same.
    if (!rel.empty() && rel.front() == '/') rel.remove_prefix(1);
    if (!rel.empty() && rel.back() == '/') rel.remove_suffix(1);
    std::vector<std::string> segs;
    while (!rel.empty()) {
        auto slash = rel.find('/');
        auto seg = decode_segment(rel.substr(0, slash));
        if (!seg) return not_found();
        segs.push_back(std::move(*seg));
        rel = slash == std::string_view::npos ? std::string_view() : rel.substr(slash + 1);
        if (slash != std::string_view::npos && rel.empty()) return not_found();  // "a//"
    }

    fs::path wanted = root;
    for (const auto& s : segs) wanted /= s;
    const bool under_assets = !segs.empty() && segs.front() == "assets";
    bool index = segs.empty();
    if (!index && !fs::is_regular_file(wanted, ec)) {  // follows symlinks
        // An SPA route (no extension) is the app's to resolve; a missing asset is a 404.
        const bool has_extension = segs.back().find('.') != std::string::npos;
        if (has_extension || under_assets) return not_found();
        index = true;
    }
    if (index) wanted = root / k_index;

    const auto real = fs::canonical(wanted, ec);
    if (ec || !inside(real, root) || !fs::is_regular_file(real, ec)) return not_found();

    std::string why;
    auto e = load(real, why);
    if (!e) {
        if (why == "too large")
            return console_problem(problem::not_found("The file is larger than the console's limit."));
        return not_found();
    }

    response_parts r;
    r.headers.emplace_back("ETag", e->etag);
    r.headers.emplace_back("Cache-Control",
                           under_assets && !index ? std::string(k_immutable) : std::string("no-cache"));
    add_security_headers(r);
    if (if_none_match && etag_matches(*if_none_match, e->etag)) {
        r.status = 304;
        return r;
    }
    r.status = 200;
    r.content_type = std::string(content_type_for(real.filename().string()));
    r.body = *e->body;
    return r;
}

}  // namespace livebase::http_detail
