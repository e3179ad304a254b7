#include <livebase/core/client_address.hpp>
#include <livebase/core/text.hpp>

#include <arpa/inet.h>

#include <charconv>
#include <cstring>

namespace livebase {

namespace {

/// The address as 16 bytes (IPv4 mapped into IPv6) and whether it was written as IPv4.
std::optional<std::pair<std::array<std::uint8_t, 16>, bool>> parse_ip(std::string_view text) {
    text = trim_ows(text);
    if (text.size() >= 2 && text.front() == '[' && text.back() == ']')
        text = text.substr(1, text.size() - 2);
    if (text.empty() || text.size() > 45) return std::nullopt;
    char buf[46];
    std::memcpy(buf, text.data(), text.size());
    buf[text.size()] = '\0';
    std::array<std::uint8_t, 16> out{};
    in_addr v4{};
    if (inet_pton(AF_INET, buf, &v4) == 1) {
        out[10] = out[11] = 0xff;
        std::memcpy(out.data() + 12, &v4, 4);
        return std::make_pair(out, true);
    }
    in6_addr v6{};
    if (inet_pton(AF_INET6, buf, &v6) == 1) {
        std::memcpy(out.data(), &v6, 16);
        return std::make_pair(out, false);
    }
    return std::nullopt;
}

bool is_mapped_v4(const std::array<std::uint8_t, 16>& b) {
    for (int i = 0; i < 10; ++i)
        if (b[i] != 0) return false;
    return b[10] == 0xff && b[11] == 0xff;
}

}  // namespace

result<address_set> address_set::parse(const std::vector<std::string>& entries) {
    address_set set;
    for (const auto& e : entries) {
        std::string_view text = trim_ows(e);
        auto bad = [&] {
            return problem::bad_request("\"" + e +
                                        "\" is not an IP address or CIDR range (e.g. \"10.0.0.0/8\").");
        };
        range r;
        auto slash = text.find('/');
        auto ip = parse_ip(text.substr(0, slash));
        if (!ip) return bad();
        r.bytes = ip->first;
        const bool v4 = ip->second;
        if (slash != std::string_view::npos) {
            auto bits_text = text.substr(slash + 1);
            unsigned bits = 0;
            auto [p, ec] = std::from_chars(bits_text.data(), bits_text.data() + bits_text.size(), bits);
            if (bits_text.empty() || ec != std::errc() || p != bits_text.data() + bits_text.size() ||
                bits > (v4 ? 32u : 128u))
                return bad();
            r.prefix = v4 ? bits + 96 : bits;
        }
        set.ranges_.push_back(r);
    }
    return set;
}

bool address_set::contains(std::string_view address) const noexcept {
    auto ip = parse_ip(address);
    if (!ip) return false;
    const auto& b = ip->first;
    for (const auto& r : ranges_) {
        unsigned full = r.prefix / 8, rest = r.prefix % 8;
        if (std::memcmp(b.data(), r.bytes.data(), full) != 0) continue;
        if (rest != 0) {
            const std::uint8_t mask = static_cast<std::uint8_t>(0xff << (8 - rest));
            if ((b[full] & mask) != (r.bytes[full] & mask)) continue;
        }
        return true;
    }
    return false;
}

std::optional<std::string> canonical_address(std::string_view text) {
    auto ip = parse_ip(text);
    if (!ip) return std::nullopt;
    char buf[INET6_ADDRSTRLEN];
    if (is_mapped_v4(ip->first)) {
        if (!inet_ntop(AF_INET, ip->first.data() + 12, buf, sizeof buf)) return std::nullopt;
    } else if (!inet_ntop(AF_INET6, ip->first.data(), buf, sizeof buf)) {
        return std::nullopt;
    }
    return std::string(buf);
}

std::string resolve_client_address(std::string_view peer,
                                   const std::vector<std::string_view>& x_forwarded_for,
                                   const address_set& trusted) {
    std::string client = canonical_address(peer).value_or(std::string(peer));
    if (trusted.empty() || !trusted.contains(peer)) return client;
    // Entries from the right: the nearest hop first.
    std::vector<std::string_view> hops;
    for (auto value : x_forwarded_for) {
        while (true) {
            auto comma = value.find(',');
            hops.push_back(trim_ows(value.substr(0, comma)));
            if (comma == std::string_view::npos) break;
            value.remove_prefix(comma + 1);
        }
    }
    for (auto it = hops.rbegin(); it != hops.rend(); ++it) {
        auto addr = canonical_address(*it);
        if (!addr) break;
        client = *addr;
        if (!trusted.contains(*addr)) break;
    }
    return client;
}

}  // namespace livebase
