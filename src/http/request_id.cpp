#include "http/request_id.hpp"

#include <livebase/core/ulid.hpp>

namespace livebase::http_detail {

bool valid_request_id(std::string_view id) noexcept {
    if (id.empty() || id.size() > k_max_request_id) return false;
    for (char c : id) {
        const bool ok = (c >= 'A' && c <= 'Z') || (c >= 'a' && c <= 'z') ||
                        (c >= '0' && c <= '9') || c == '.' || c == '_' || c == '-';
        if (!ok) return false;
    }
    return true;
}

std::string accept_request_id(std::string_view given) {
    if (valid_request_id(given)) return std::string(given);
    return make_ulid();
}

}  // namespace livebase::http_detail
