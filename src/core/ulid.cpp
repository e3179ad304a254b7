#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>

#include <sodium.h>

#include <algorithm>
#include <array>
#include <cstring>

namespace livebase {

namespace {
constexpr char k_alphabet[] = "0123456789ABCDEFGHJKMNPQRSTVWXYZ";

struct thread_state {
    std::int64_t last_ms = -1;
    std::array<unsigned char, 10> rnd{};
};

// Adds a random step of 1..2^64 to the 80-bit random part: ids made in one millisecond stay
// in order, but one id does not tell the next (ids are capabilities: an anonymous task is
// reachable by whoever holds its id). False on overflow.
bool increment(std::array<unsigned char, 10>& r) {
    std::array<unsigned char, 8> step{};
    randombytes_buf(step.data(), step.size());
    unsigned carry = 1;  // the step is 1 + a random 64-bit number
    for (int i = 9; i >= 0; --i) {
        unsigned sum = r[static_cast<std::size_t>(i)] + carry;
        if (i >= 2) sum += step[static_cast<std::size_t>(i - 2)];
        r[static_cast<std::size_t>(i)] = static_cast<unsigned char>(sum & 0xFF);
        carry = sum >> 8;
    }
    return carry == 0;
}

bool sodium_ready() {
    static const bool ok = sodium_init() >= 0;
    return ok;
}

// 128 bits: 48 time + 80 random, encoded as 26 base32 chars (first char holds 3 bits).
std::string encode(std::int64_t ms, const std::array<unsigned char, 10>& rnd) {
    std::array<unsigned char, 16> b{};
    auto t = static_cast<std::uint64_t>(ms);
    for (int i = 5; i >= 0; --i) {
        b[i] = static_cast<unsigned char>(t & 0xFF);
        t >>= 8;
    }
    std::memcpy(b.data() + 6, rnd.data(), 10);
    std::string out(26, '0');
    // Process as a big integer, 5 bits at a time from the least significant end.
    unsigned bitpos = 0;  // bits consumed from the end
    for (int c = 25; c >= 0; --c) {
        unsigned v = 0;
        for (unsigned k = 0; k < 5; ++k) {
            unsigned bit = bitpos + k;
            if (bit >= 128) break;
            unsigned byte = 15 - bit / 8;
            unsigned shift = bit % 8;
            v |= ((b[byte] >> shift) & 1u) << k;
        }
        bitpos += 5;
        out[static_cast<std::size_t>(c)] = k_alphabet[v];
    }
    return out;
}
}  // namespace

std::string make_ulid(std::int64_t ms) {
    thread_local thread_state st;
    (void)sodium_ready();
    if (ms <= st.last_ms) {
        ms = st.last_ms;
        if (!increment(st.rnd)) {
            ++ms;
            randombytes_buf(st.rnd.data(), st.rnd.size());
        }
    } else {
        randombytes_buf(st.rnd.data(), st.rnd.size());
    }
    st.last_ms = ms;
    return encode(ms, st.rnd);
}

std::string make_ulid() { return make_ulid(now_ms()); }

std::string make_unguessable_ulid(std::int64_t ms) {
    (void)sodium_ready();
    std::array<unsigned char, 10> rnd{};
    randombytes_buf(rnd.data(), rnd.size());
    return encode(std::max<std::int64_t>(ms, 0), rnd);
}

bool is_ulid(std::string_view s) noexcept {
    if (s.size() != 26 || s[0] > '7') return false;
    for (char c : s) {
        if (!std::strchr(k_alphabet, c) || c == '\0') return false;
    }
    return true;
}

}  // namespace livebase
