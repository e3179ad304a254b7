#pragma once
/// Text helpers every component uses: trimming, ASCII case, UTF-8 checks. ASCII only on
/// purpose: protocol tokens (header names, schemes, cookie names) are ASCII, and the C
/// locale's tolower must not make "I" equal to "ı".
#include <cstddef>
#include <string>
#include <string_view>

namespace livebase {

/// `s` without leading and trailing spaces and tabs (HTTP's optional whitespace).
std::string_view trim_ows(std::string_view s) noexcept;
/// `s` without leading and trailing ASCII whitespace (space, \t, \n, \v, \f, \r).
std::string_view trim_space(std::string_view s) noexcept;

/// `c` in lower case when it is an ASCII capital letter, else `c`.
constexpr char ascii_lower(char c) noexcept {
    return c >= 'A' && c <= 'Z' ? static_cast<char>(c - 'A' + 'a') : c;
}
/// Whether `a` and `b` are equal but for ASCII case.
bool iequals(std::string_view a, std::string_view b) noexcept;
/// `s` with ASCII capitals in lower case.
std::string lowercase(std::string_view s);

/// The length of the well-formed UTF-8 sequence (RFC 3629: no overlong forms, surrogates or
/// code points past U+10FFFF) that starts `s` at `i` where s[i] >= 0x80, or 0.
std::size_t utf8_sequence(std::string_view s, std::size_t i) noexcept;
/// Offset of the first byte that is not part of well-formed UTF-8, or npos.
std::size_t first_invalid_utf8(std::string_view s) noexcept;
/// True when `s` is well-formed UTF-8.
inline bool valid_utf8(std::string_view s) noexcept {
    return first_invalid_utf8(s) == std::string_view::npos;
}

}  // namespace livebase
