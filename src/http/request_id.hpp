#pragma once
/// X-Request-Id policy. No I/O.
#include <string>
#include <string_view>

namespace livebase::http_detail {

/// Longest client-supplied request id that is echoed.
inline constexpr std::size_t k_max_request_id = 200;

/// True for 1..200 characters of [A-Za-z0-9._-]: safe to echo into headers and logs.
bool valid_request_id(std::string_view id) noexcept;

/// `given` when valid, else a new ULID (also when the client sent none).
std::string accept_request_id(std::string_view given);

}  // namespace livebase::http_detail
