#pragma once
/// Structured logging: one JSON object per line on stderr (or a human text form).
#include <livebase/core/json.hpp>

#include <atomic>
#include <cstdio>
#include <mutex>
#include <string_view>

namespace livebase {

enum class log_level { debug = 0, info = 1, warn = 2, error = 3, off = 4 };
enum class log_format { json, text };

/// Writes whole lines atomically to a FILE*. Thread-safe. Owned by the composition root and
/// passed by reference to the components that log; it must outlive them.
class logger {
public:
    explicit logger(std::FILE* out = stderr, log_format format = log_format::json,
                    log_level min_level = log_level::info) noexcept;

    void set_format(log_format f) noexcept { format_ = f; }
    void set_level(log_level l) noexcept { level_.store(l); }
    bool enabled(log_level l) const noexcept { return l >= level_.load(); }

    /// Writes {"ts","level","msg", ...fields}. Fields named ts/level/msg are overwritten.
    void log(log_level level, std::string_view msg, const json::object& fields = {});
    void debug(std::string_view msg, const json::object& fields = {}) { log(log_level::debug, msg, fields); }
    void info(std::string_view msg, const json::object& fields = {}) { log(log_level::info, msg, fields); }
    void warn(std::string_view msg, const json::object& fields = {}) { log(log_level::warn, msg, fields); }
    void error(std::string_view msg, const json::object& fields = {}) { log(log_level::error, msg, fields); }

private:
    std::FILE* out_;
    log_format format_;
    std::atomic<log_level> level_;
    std::mutex mu_;
};

}  // namespace livebase
