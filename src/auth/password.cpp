// Argon2id password hashes and opaque tokens, all through libsodium.
#include <livebase/auth/auth.hpp>

#include <sodium.h>

#include <cstdlib>

namespace livebase {

namespace {

constexpr std::size_t k_min_password = 8;
constexpr std::size_t k_max_password = 1024;
constexpr std::size_t k_token_bytes = 32;

// sodium_init() picks the fastest implementations and seeds the RNG; a function-local static
// runs it exactly once even when the first callers race.
void ensure_sodium() {
    static const bool ok = [] { return sodium_init() >= 0; }();
    if (!ok) std::abort();  // no usable RNG: issuing tokens or hashes would be unsafe
}

}  // namespace

result<std::string> hash_password(std::string_view password) {
    ensure_sodium();
    char out[crypto_pwhash_STRBYTES];
    if (crypto_pwhash_str(out, password.data(), password.size(), crypto_pwhash_OPSLIMIT_INTERACTIVE,
                          crypto_pwhash_MEMLIMIT_INTERACTIVE) != 0)
        return problem::internal("Could not hash the password.");
    return std::string(out);
}

bool verify_password(std::string_view hash, std::string_view password) noexcept {
    ensure_sodium();
    // crypto_pwhash_str_verify reads a NUL-terminated string of at most STRBYTES - 1 chars.
    char buf[crypto_pwhash_STRBYTES] = {};
    if (hash.empty() || hash.size() >= sizeof buf) return false;
    for (std::size_t i = 0; i < hash.size(); ++i) {
        if (hash[i] == '\0') return false;
        buf[i] = hash[i];
    }
    return crypto_pwhash_str_verify(buf, password.data(), password.size()) == 0;
}

std::string password_problem(std::string_view password) {
    if (password.size() < k_min_password)
        return "This password is too short. It must contain at least 8 characters.";
    if (password.size() > k_max_password)
        return "This password is too long. It must contain at most 1024 characters.";
    // Only blanks (spaces, tabs, NULs, line breaks): a form that sent padding, not a secret.
    if (password.find_first_not_of(std::string_view(" \t\r\n\v\f\0", 7)) == std::string_view::npos)
        return "This password is blank. It must contain characters other than spaces.";
    return {};
}

std::string make_token() {
    ensure_sodium();
    unsigned char raw[k_token_bytes];
    randombytes_buf(raw, sizeof raw);
    char out[sodium_base64_ENCODED_LEN(k_token_bytes, sodium_base64_VARIANT_URLSAFE_NO_PADDING)];
    sodium_bin2base64(out, sizeof out, raw, sizeof raw, sodium_base64_VARIANT_URLSAFE_NO_PADDING);
    sodium_memzero(raw, sizeof raw);
    return std::string(out);
}

std::string token_hash(std::string_view token) {
    ensure_sodium();
    unsigned char hash[32];
    crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(token.data()), token.size(),
                       nullptr, 0);
    char hex[sizeof hash * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    return std::string(hex);
}

}  // namespace livebase
