#pragma once
/// ULIDs: 26-char Crockford base32, 48-bit millisecond time + 80 random bits.
#include <cstdint>
#include <string>
#include <string_view>

namespace livebase {

/// A new ULID for time `ms`. Monotonic per thread: within one millisecond a thread's ids
/// increase. Random bits come from libsodium. Thread-safe.
std::string make_ulid(std::int64_t ms);

/// A new ULID for the current time.
std::string make_ulid();

/// A new ULID for time `ms` whose 80 random bits are all fresh: never derived from another id
/// (make_ulid's ids of one millisecond are consecutive, so each gives away its neighbours). For
/// ids that are capabilities, such as tasks'. Not monotonic within a millisecond. Thread-safe.
std::string make_unguessable_ulid(std::int64_t ms);

/// True when `s` has the shape of a ULID (26 Crockford base32 chars, first <= '7').
bool is_ulid(std::string_view s) noexcept;

}  // namespace livebase
