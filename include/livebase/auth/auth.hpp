#pragma once
/// Users, passwords (Argon2id), tokens and throttling: http.md section 5 and config.md [auth].
#include <livebase/core/log.hpp>
#include <livebase/core/principal.hpp>
#include <livebase/core/result.hpp>
#include <livebase/core/units.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/store/store.hpp>

#include <chrono>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <vector>

namespace livebase {

/// The built-in `users` collection, served at {base}/users like a declared collection and
/// admin-only for every action: `username` (required, unique, 1..150 characters of
/// [A-Za-z0-9_.@+-]), `admin` (boolean, default false), `disabled` (boolean, default false) and
/// `password_hash` (read_only and write_only: never accepted from a client, never returned).
const collection_def& users_collection();

/// The built-in `auth_tokens` collection (never served, never streamed): one row per live
/// token: `token_hash` (unique), `user` (user id), `expires` (ms since the epoch). Revoking a
/// token deletes its row.
const collection_def& tokens_collection();

/// Argon2id through libsodium's crypto_pwhash_str (interactive limits); 500 problem when
/// libsodium fails (out of memory).
result<std::string> hash_password(std::string_view password);
/// Constant-time check of `password` against a crypto_pwhash_str string.
bool verify_password(std::string_view hash, std::string_view password) noexcept;
/// "" when `password` is acceptable (8..1024 bytes, not only spaces, tabs, line breaks or
/// NULs), else the message for the field error.
std::string password_problem(std::string_view password);

/// Usernames are unique ignoring case ("Bob" and "bob" are one name: the login throttle and
/// people read them alike). Inside the transaction that stores user `except_id` (empty for a
/// new user) named `username`: a 400 validation problem on "username" when another user holds
/// the name in any case, else nullopt. Problems of the store pass through.
std::optional<problem> username_conflict(read_txn& t, std::string_view username,
                                         std::string_view except_id = {});

/// A fresh opaque token: 32 random bytes (libsodium), base64url without padding (43 chars).
std::string make_token();
/// The stored form of a token: lowercase hex of its BLAKE2b-256 hash.
std::string token_hash(std::string_view token);

struct auth_settings {
    std::chrono::milliseconds token_ttl = std::chrono::hours(24 * 30);
    /// How long a resolved token stays in the in-memory cache before the store is asked
    /// again. Revocations observed through on_change() (from any node) drop entries at once.
    std::chrono::milliseconds cache_ttl = std::chrono::seconds(60);
    std::size_t max_cached_tokens = 100000;
};

/// A successful login.
struct login_grant {
    std::string token;         ///< the only time the token exists outside the client
    std::int64_t expires = 0;  ///< ms since the epoch
    json::object user;         ///< the presented user (no password_hash)
    principal who;             ///< with token_id set
};

/// Whose live credentials a committed change ended (see authenticator::on_change).
struct revocation {
    std::string user_id;   ///< non-empty: every socket of this user closes (4401)
    std::string token_id;  ///< non-empty: the sockets that authenticated with this token close
};

/// Logs users in, resolves tokens to principals, revokes. Thread-safe. The store and logger
/// must outlive it. Argon2id work runs on the authenticator's own small thread pool (never on
/// I/O or store threads); a full pool answers 503.
class authenticator {
public:
    authenticator(store& db, auth_settings s, logger& log);
    ~authenticator();
    authenticator(const authenticator&) = delete;
    authenticator& operator=(const authenticator&) = delete;

    /// Username + password -> a new token (stored as its hash, expiring after token_ttl).
    /// Unknown user, wrong password and disabled user all answer the same 401 ("Invalid
    /// username or password.") after the same Argon2id work. Missing fields -> 400.
    void login(std::string username, std::string password, std::function<void(result<login_grant>)> done);

    /// Token -> principal (token_id set). 401 for an unknown, expired or revoked token or a
    /// disabled/deleted user. A cache hit costs one hash and a map lookup and calls `done`
    /// inline; a miss reads the store and calls `done` on a store thread.
    void resolve(std::string_view token, std::function<void(result<principal>)> done);
    /// The cache's answer only (no store read): nullopt on a miss.
    std::optional<result<principal>> resolve_cached(std::string_view token);

    /// Deletes token record `token_id` (logout). Succeeds when it is already gone.
    void revoke(std::string token_id, std::function<void(result<void>)> done);

    /// Sign-up: a new non-admin user -> the presented user. 400 with field errors for a bad
    /// or taken username ("A user with that username already exists.") or a bad password.
    void register_user(std::string username, std::string password, std::function<void(result<json::object>)> done);

    /// The presented user of `who` (GET {base}/auth/me); 401 when anonymous, gone or disabled.
    void me(const principal& who, std::function<void(result<json::object>)> done);

    /// The current identity of a user id, read from the store now (a task's submitter at
    /// execution time). 401 when the user is gone or disabled. Blocking: never on an I/O thread.
    result<principal> principal_of_sync(const std::string& user_id);

    // Administration (`livebase users ...`). Blocking: never on an I/O thread.
    result<json::object> create_user_sync(const std::string& username, const std::string& password, bool admin);
    /// Sets the password and deletes every token of the user (their sockets close).
    result<void> set_password_sync(const std::string& username, const std::string& password);
    /// Sets disabled = true and deletes every token of the user.
    result<void> disable_sync(const std::string& username);
    /// Sets disabled = false: the user may log in again (tokens were deleted when disabled).
    result<void> enable_sync(const std::string& username);
    /// Sets admin = `admin`. Tokens stay valid; every node re-reads the user's identity at once
    /// (the change drops cached credentials and closes the user's sockets).
    result<void> set_admin_sync(const std::string& username, bool admin);
    /// Deletes the user and every token of the user, in one transaction. Records the user
    /// owns keep their `owner` id.
    result<void> delete_user_sync(const std::string& username);
    /// Presented users, ordered by username.
    result<std::vector<json::object>> list_users_sync();

    /// Called with every committed change (the hub calls it on its thread, for changes from
    /// any node): drops cached credentials the change ends and says whose sockets must close:
    /// a deleted token; a user deleted, disabled, whose password or admin flag changed.
    /// nullopt for every other change. Never throws.
    std::optional<revocation> on_change(const change& ch);

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// Token buckets (throttle.anonymous / throttle.user, and login attempts). A bucket holds up
/// to `count` tokens and refills continuously at count per `per`; a rate with count 0 means
/// unlimited. Memory is bounded: at most max_keys buckets, the fullest dropped first.
/// Thread-safe.
class throttle {
public:
    explicit throttle(std::size_t max_keys = 100000);
    ~throttle();
    /// Takes one token from `key`'s bucket under rate `r`: nullopt when allowed, else how long
    /// until a token is available (the door's Retry-After, rounded up to whole seconds).
    std::optional<std::chrono::milliseconds> take(std::string_view key, const rate& r,
                                                  std::chrono::steady_clock::time_point now =
                                                      std::chrono::steady_clock::now());
    std::size_t size() const;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

/// A throttle wait as every door announces it (Retry-After, "retry_after"): whole seconds,
/// rounded up, at least 1.
std::int64_t retry_after_seconds(std::chrono::milliseconds wait) noexcept;

/// The bucket key of a caller: "u:<user id>" when authenticated, else "ip:<address>".
std::string throttle_key(const principal& who, std::string_view ip);

/// Login attempts allowed per client address and username (brute-force protection), by
/// default (auth.throttle.login).
inline constexpr rate k_login_rate{10, std::chrono::minutes(1)};
/// Login attempts allowed per client address, whatever the username, by default
/// (auth.throttle.login_address).
inline constexpr rate k_login_address_rate{60, std::chrono::minutes(1)};

}  // namespace livebase
