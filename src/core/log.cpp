#include <livebase/core/clock.hpp>
#include <livebase/core/log.hpp>

#include <string>

namespace livebase {

namespace {
std::string_view level_name(log_level l) {
    switch (l) {
        case log_level::debug: return "debug";
        case log_level::info: return "info";
        case log_level::warn: return "warn";
        case log_level::error: return "error";
        default: return "off";
    }
}
}  // namespace

logger::logger(std::FILE* out, log_format format, log_level min_level) noexcept
    : out_(out), format_(format), level_(min_level) {}

void logger::log(log_level level, std::string_view msg, const json::object& fields) {
    if (!enabled(level) || !out_) return;
    std::string line;
    if (format_ == log_format::json) {
        json::object o;
        o["ts"] = format_timestamp(now_ms());
        o["level"] = level_name(level);
        o["msg"] = msg;
        for (const auto& kv : fields) {
            if (kv.key() != "ts" && kv.key() != "level" && kv.key() != "msg") o[kv.key()] = kv.value();
        }
        line = to_json_text(o);
    } else {
        line = format_timestamp(now_ms());
        line += ' ';
        line += level_name(level);
        line += ' ';
        line += msg;
        for (const auto& kv : fields) {
            line += ' ';
            line += kv.key();
            line += '=';
            if (kv.value().is_string()) {
                line += kv.value().get_string();
            } else {
                append_json_text(line, kv.value());
            }
        }
    }
    line += '\n';
    std::lock_guard<std::mutex> lock(mu_);
    std::fwrite(line.data(), 1, line.size(), out_);
    std::fflush(out_);
}

}  // namespace livebase
