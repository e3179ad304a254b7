#pragma once
/// Who the client is, by address, when proxies stand in front of the server: the one place the
/// HTTP and WebSocket doors resolve a caller's address (login throttle, anonymous throttling,
/// anonymous task owners), so every door sees the same address for the same caller.
#include <array>
#include <cstdint>
#include <livebase/core/result.hpp>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace livebase {

/// A set of IPv4/IPv6 addresses and CIDR ranges ("10.0.0.0/8", "::1", "fd00::/8"). IPv4-mapped
/// IPv6 addresses ("::ffff:10.1.2.3") match as their IPv4 address. Immutable once parsed;
/// thread-safe to read.
class address_set {
public:
    address_set() = default;
    /// Each entry an address or address/prefix-length. A malformed entry -> 400 problem naming it.
    static result<address_set> parse(const std::vector<std::string>& entries);

    /// Whether `address` (textual, as a socket or a header gives it) is in the set. Text that is
    /// not an address is never in it.
    bool contains(std::string_view address) const noexcept;
    bool empty() const noexcept { return ranges_.empty(); }

private:
    struct range {
        std::array<std::uint8_t, 16> bytes{};  ///< IPv4 as IPv4-mapped IPv6
        unsigned prefix = 128;                 ///< bits, counted in the IPv6 form
    };
    std::vector<range> ranges_;
};

/// The canonical text of an IP address ("::ffff:1.2.3.4" -> "1.2.3.4", "::0001" -> "::1"), or
/// nullopt when `text` is not one (surrounding spaces and an IPv6 literal's brackets allowed).
std::optional<std::string> canonical_address(std::string_view text);

/// The client's address. `peer` is the socket's peer. Unless `trusted` contains it, it is the
/// answer and `x_forwarded_for` is ignored (anyone can send the header). From a trusted proxy,
/// the X-Forwarded-For values (every field, in order) are read from the right: trusted
/// addresses are skipped (a chain of proxies), the first other address is the client's. A
/// malformed entry ends the walk at the last address trusted so far, so a client cannot
/// pick its own address by sending garbage through a proxy that appends.
std::string resolve_client_address(std::string_view peer,
                                   const std::vector<std::string_view>& x_forwarded_for,
                                   const address_set& trusted);

}  // namespace livebase
