#pragma once
/// Serves the built console (`GET /_/...`) from a directory: path mapping with traversal refused,
/// SPA fallback, content types, ETags and caching headers. No sockets: the session passes the
/// encoded path and If-None-Match and writes what serve() returns.
#include <cstdint>
#include <filesystem>
#include <map>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>

#include "http/rest_door.hpp"

namespace livebase::http_detail {

/// Thread-safe: serve() may run concurrently on every I/O thread (a mutex guards the cache).
/// Files are read on the calling thread, which is why they are capped at `max_file` bytes; their
/// contents are cached in memory (bounded by `max_cache` bytes in total) and re-read when the
/// file's size or modification time changes.
class static_files {
public:
    struct options {
        /// The directory served. It may not exist (yet): every request then answers 404 with a
        /// problem saying the console is not built, and the first request after it appears
        /// serves it. Resolved against the working directory once, at construction.
        std::filesystem::path root;
        std::uint64_t max_file = 8u << 20;    ///< larger files -> 404 problem (never read)
        std::uint64_t max_cache = 64u << 20;  ///< cached bytes; over it the cache starts afresh
        /// What the 404 for a missing directory tells the operator to do.
        std::string missing_hint = "Build it (npm run build in console/) or set server.console_dir.";
    };

    explicit static_files(options o);

    /// `rel` is the request path after the mount point ("/_"), still percent-encoded: "" or "/"
    /// for index.html, "/assets/app-1a2b.js". Every segment is percent-decoded; an empty, "." or
    /// ".." segment, one that starts with '.', or one whose decoding holds '/', '\\' or NUL, and
    /// any file whose real path (symlinks resolved) leaves the root -> 404. A path that names no
    /// file and whose last segment has no extension is the SPA's own route -> index.html.
    /// Responses: 200 (Content-Type by extension, ETag, Cache-Control: `public, max-age=31536000,
    /// immutable` under assets/, `no-cache` elsewhere), 304 when `if_none_match` hits, 404
    /// problem otherwise. Every response carries nosniff and the console's CSP.
    response_parts serve(std::string_view rel, std::optional<std::string_view> if_none_match) const;

    const std::filesystem::path& root() const noexcept { return opts_.root; }

    /// "text/javascript; charset=utf-8" for "app.js"; application/octet-stream when unknown.
    static std::string_view content_type_for(std::string_view file_name) noexcept;
    /// Weak comparison (RFC 9110 13.1.2) of an If-None-Match list against `etag`; `*` matches.
    static bool etag_matches(std::string_view if_none_match, std::string_view etag) noexcept;
    /// Headers every console response carries (nosniff, CSP, frame and referrer policies).
    static void add_security_headers(response_parts& r);

private:
    struct entry {
        std::filesystem::file_time_type mtime;
        std::uint64_t size = 0;
        std::shared_ptr<const std::string> body;
        std::string etag;
    };
    /// The cached or freshly read file at `real` (a canonical regular file under the root), or
    /// null with `why` set when it cannot be served.
    std::shared_ptr<const entry> load(const std::filesystem::path& real, std::string& why) const;

    options opts_;
    mutable std::mutex mu_;
    mutable std::map<std::string, std::shared_ptr<const entry>> cache_;
    mutable std::uint64_t cached_bytes_ = 0;
};

}  // namespace livebase::http_detail
