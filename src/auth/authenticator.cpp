// Logins, token resolution with an in-memory cache, revocation and user administration
// (http.md section 5). Argon2id runs on a small bounded pool of the authenticator's own: it takes
// ~100 ms and 64 MiB per hash, which must never stall an I/O or store thread.
#include <livebase/auth/auth.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/schema/validate.hpp>

#include <sodium.h>

#include <algorithm>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <mutex>
#include <thread>
#include <unordered_map>
#include <unordered_set>
#include <utility>

namespace livebase {

namespace {

using steady = std::chrono::steady_clock;

constexpr std::size_t k_pool_threads = 2;
constexpr std::size_t k_pool_queue = 256;
constexpr std::size_t k_purge_every = 256;  // logins between purges of expired token rows
constexpr std::size_t k_purge_batch = 200;
constexpr std::size_t k_scan_batch = 500;   // rows per list() when walking a whole collection
// A token is 43 characters; anything far longer is not one and is not worth hashing.
constexpr std::size_t k_max_token_length = 512;
constexpr std::size_t k_max_password = 1024;
constexpr std::size_t k_max_username = 150;

const std::string k_bad_login = "Invalid username or password.";
const std::string k_bad_token = "Invalid or expired token.";
const std::string k_user_gone = "The user no longer exists or is disabled.";
const std::string k_user_taken = "A user with that username already exists.";
const std::string k_busy = "Too many password checks in progress; try again shortly.";

/// Argon2id jobs. A job is called once: with true on a pool thread, or with false (on the
/// posting thread when the queue is full, or on the stopping thread for jobs still queued)
/// so that every caller gets an answer.
class hash_pool {
public:
    using job = std::function<void(bool run)>;

    hash_pool(std::size_t threads, std::size_t max_queue) : max_queue_(max_queue) {
        for (std::size_t i = 0; i < threads; ++i) threads_.emplace_back([this] { loop(); });
    }
    ~hash_pool() { stop(); }

    void post(job j) {
        {
            std::lock_guard lock(mu_);
            if (!stopping_ && queue_.size() < max_queue_) {
                queue_.push_back(std::move(j));
                cv_.notify_one();
                return;
            }
        }
        j(false);
    }

    /// Joins the threads; queued jobs are refused. Idempotent. REQUIRES: not on a pool thread.
    void stop() {
        std::deque<job> left;
        {
            std::lock_guard lock(mu_);
            if (stopping_ && threads_.empty()) return;
            stopping_ = true;
            left.swap(queue_);
        }
        cv_.notify_all();
        for (auto& t : threads_) t.join();
        threads_.clear();
        for (auto& j : left) j(false);
    }

private:
    void loop() {
        for (;;) {
            job j;
            {
                std::unique_lock lock(mu_);
                cv_.wait(lock, [this] { return stopping_ || !queue_.empty(); });
                if (stopping_) return;
                j = std::move(queue_.front());
                queue_.pop_front();
            }
            j(true);
        }
    }

    std::size_t max_queue_;
    std::mutex mu_;
    std::condition_variable cv_;
    std::deque<job> queue_;
    bool stopping_ = false;
    std::vector<std::thread> threads_;
};

bool is_true(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    return it != o.end() && it->value().is_bool() && it->value().get_bool();
}

json::value field_or_null(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    return it == o.end() ? json::value(nullptr) : it->value();
}

principal principal_of(const json::object& user) {
    principal who;
    who.user_id = std::string(get_string(user, "id"));
    who.admin = is_true(user, "admin");
    who.username = std::string(get_string(user, "username"));
    return who;
}

query by_field(std::string field, std::string value, std::size_t limit = 1) {
    query q;
    q.filters.push_back({std::move(field), lookup::exact, json::value(value)});
    q.limit = limit;
    q.with_count = false;
    return q;
}

/// Overwrites a password held in memory once it is no longer needed.
void wipe(std::string& s) noexcept {
    if (!s.empty()) sodium_memzero(s.data(), s.size());
    s.clear();
}

/// The stored user row of `username`, nullopt when there is none.
result<std::optional<json::object>> find_user(read_txn& t, const std::string& username) {
    auto pg = t.list(users_collection(), by_field("username", username));
    if (!pg) return std::move(pg).error();
    if (pg->items.empty()) return std::optional<json::object>();
    return std::optional<json::object>(std::move(pg->items.front()));
}

}  // namespace

std::optional<problem> username_conflict(read_txn& t, std::string_view username,
                                         std::string_view except_id) {
    if (username.empty()) return std::nullopt;
    query q;
    q.filters.push_back({"username", lookup::iexact, json::value(std::string(username))});
    q.limit = 2;
    q.with_count = false;
    auto pg = t.list(users_collection(), q);
    if (!pg) return std::move(pg).error();
    for (const auto& u : pg->items)
        if (get_string(u, "id") != except_id) return problem::validation({{"username", {k_user_taken}}});
    return std::nullopt;
}

namespace {

/// Deletes every token row of `user_id` (each delete lands in the change log, so every node
/// drops the cached credentials and closes the sockets).
result<void> delete_user_tokens(write_txn& t, const std::string& user_id) {
    const auto& tc = tokens_collection();
    for (;;) {
        auto pg = t.list(tc, by_field("user", user_id, k_scan_batch));
        if (!pg) return std::move(pg).error();
        for (const auto& row : pg->items)
            if (auto r = t.remove(tc, row); !r) return r;
        if (pg->items.size() < k_scan_batch) return {};
    }
}

/// The declared fields of a new user (username checked like a client body would be) and the
/// password's problems, merged into one validation problem.
result<json::object> new_user_fields(const std::string& username, const std::string& password, bool admin) {
    field_errors errors;
    auto fields = validate_write(users_collection(), json::object{{"username", username}}, write_mode::create);
    if (!fields) {
        auto it = fields.error().extra.find("errors");
        if (fields.error().status != 400 || it == fields.error().extra.end() || !it->value().is_object())
            return std::move(fields).error();
        for (const auto& [field, msgs] : it->value().get_object())
            if (msgs.is_array())
                for (const auto& m : msgs.get_array())
                    if (m.is_string()) errors[std::string(field)].emplace_back(m.get_string());
    }
    if (auto m = password_problem(password); !m.empty()) errors["password"].push_back(std::move(m));
    if (!errors.empty()) return problem::validation(std::move(errors));
    (*fields)["admin"] = admin;
    return std::move(fields).value();
}

json::object new_user_record(json::object fields, std::string hash) {
    auto now = now_ms();
    json::object rec{{"id", make_ulid(now)}, {"created", format_timestamp(now)},
                     {"updated", format_timestamp(now)}, {"version", 1}};
    for (auto& [k, v] : fields) rec[k] = std::move(v);
    rec["password_hash"] = std::move(hash);
    return rec;
}

/// A unique violation on insert is a taken username: a field error like any other (the unique
/// index makes concurrent sign-ups with one name safe).
problem insert_problem(problem p) {
    auto errors = p.extra.find("errors");
    bool username = errors != p.extra.end() && errors->value().is_object() &&
                    errors->value().get_object().contains("username");
    if (p.status != 409 || !username) return p;
    return problem::validation({{"username", {k_user_taken}}});
}

/// The same record, a new version: the bookkeeping api.cpp does for every update.
json::object bumped(json::object rec) {
    rec["version"] = get_int(rec, "version").value_or(0) + 1;
    rec["updated"] = format_timestamp(now_ms());
    return rec;
}

}  // namespace

/// What outlives the authenticator object while store callbacks are in flight (they hold a
/// shared_ptr): the cache, the settings, the pool.
struct auth_core {
    auth_core(store& d, auth_settings st, logger& l)
        : db(d), s(st), log(l), pool(k_pool_threads, k_pool_queue) {}

    struct entry {
        principal who;                ///< token_id set
        std::int64_t expires = 0;     ///< ms since the epoch
        steady::time_point cached_at;
    };

    store& db;
    auth_settings s;
    logger& log;
    hash_pool pool;
    std::atomic<std::size_t> logins{0};

    std::once_flag dummy_once;
    std::string dummy_hash;

    std::mutex mu;
    std::unordered_map<std::string, entry> by_hash;  // token hash -> entry
    std::unordered_map<std::string, std::string> hash_by_token_id;
    std::unordered_map<std::string, std::unordered_set<std::string>> hashes_by_user;
    // Bumped by every revocation. A store read that began before a revocation may have seen the
    // revoked credentials; its answer is not cached (see put()).
    std::uint64_t generation = 0;

    /// A hash of a random password, so that an unknown username costs the same Argon2id work as
    /// a known one. Computed once, on a pool thread (posted by the constructor).
    const std::string& dummy() {
        std::call_once(dummy_once, [this] {
            auto h = hash_password(make_token());
            dummy_hash = h ? std::move(h).value() : std::string();
        });
        return dummy_hash;
    }

    std::uint64_t current_generation() {
        std::lock_guard lock(mu);
        return generation;
    }

    void erase_locked(std::unordered_map<std::string, entry>::iterator it) {
        hash_by_token_id.erase(it->second.who.token_id);
        if (auto u = hashes_by_user.find(it->second.who.user_id); u != hashes_by_user.end()) {
            u->second.erase(it->first);
            if (u->second.empty()) hashes_by_user.erase(u);
        }
        by_hash.erase(it);
    }

    /// Caches `e` unless a revocation happened since `gen` was read. When full: drops stale
    /// entries, then arbitrary ones, an eighth of the capacity at once (amortizes the sweep).
    void put(const std::string& hash, entry e, std::uint64_t gen) {
        if (s.max_cached_tokens == 0) return;
        std::lock_guard lock(mu);
        if (gen != generation) return;
        if (auto it = by_hash.find(hash); it != by_hash.end()) erase_locked(it);
        if (by_hash.size() >= s.max_cached_tokens) {
            auto now = now_ms();
            auto fresh_after = steady::now() - s.cache_ttl;
            for (auto it = by_hash.begin(); it != by_hash.end();) {
                auto next = std::next(it);
                if (it->second.expires <= now || it->second.cached_at < fresh_after) erase_locked(it);
                it = next;
            }
            auto target = s.max_cached_tokens - std::max<std::size_t>(1, s.max_cached_tokens / 8);
            while (by_hash.size() > target) erase_locked(by_hash.begin());
        }
        hash_by_token_id[e.who.token_id] = hash;
        hashes_by_user[e.who.user_id].insert(hash);
        by_hash.emplace(hash, std::move(e));
    }

    /// The cache's answer for a token hash: a principal, a 401 for an expired token, or
    /// nullopt (absent or older than cache_ttl: the store must be asked).
    std::optional<result<principal>> lookup(const std::string& hash) {
        std::lock_guard lock(mu);
        auto it = by_hash.find(hash);
        if (it == by_hash.end()) return std::nullopt;
        if (it->second.expires <= now_ms()) {
            erase_locked(it);
            return result<principal>(problem::unauthorized(k_bad_token));
        }
        if (steady::now() - it->second.cached_at >= s.cache_ttl) {
            erase_locked(it);
            return std::nullopt;
        }
        return result<principal>(it->second.who);
    }

    void drop_token(const std::string& token_id) {
        std::lock_guard lock(mu);
        ++generation;
        if (auto t = hash_by_token_id.find(token_id); t != hash_by_token_id.end())
            if (auto it = by_hash.find(t->second); it != by_hash.end()) erase_locked(it);
    }

    void drop_user(const std::string& user_id) {
        std::lock_guard lock(mu);
        ++generation;
        auto u = hashes_by_user.find(user_id);
        if (u == hashes_by_user.end()) return;
        auto hashes = u->second;  // erase_locked() edits the set
        for (const auto& h : hashes)
            if (auto it = by_hash.find(h); it != by_hash.end()) erase_locked(it);
    }

    /// Token hash -> principal, read from the store (token row, then its user) in one snapshot.
    result<entry> read_token(read_txn& t, const std::string& hash) {
        auto pg = t.list(tokens_collection(), by_field("token_hash", hash));
        if (!pg) return std::move(pg).error();
        if (pg->items.empty()) return problem::unauthorized(k_bad_token);
        const auto& row = pg->items.front();
        auto expires = get_int(row, "expires").value_or(0);
        if (expires <= now_ms()) return problem::unauthorized(k_bad_token);
        auto user = t.get(users_collection(), get_string(row, "user"));
        if (!user) return std::move(user).error();
        if (!user.value() || is_true(**user, "disabled")) return problem::unauthorized(k_bad_token);
        entry e;
        e.who = principal_of(**user);
        e.who.token_id = std::string(get_string(row, "id"));
        e.expires = expires;
        e.cached_at = steady::now();
        return e;
    }

    /// Stores a new token for `user` (its stored row, whose password was just verified) and
    /// answers with the grant. The write re-reads the user: a disable or password change that
    /// committed since the check wins, and the login fails like a wrong password.
    void issue_token(json::object user, std::function<void(result<login_grant>)> done,
                     const std::shared_ptr<auth_core>& self) {
        auto token = make_token();
        auto hash = token_hash(token);
        auto now = now_ms();
        auto expires = now + s.token_ttl.count();
        json::object row{{"id", make_ulid(now)}, {"created", format_timestamp(now)},
                         {"updated", format_timestamp(now)}, {"version", 1},
                         {"token_hash", hash}, {"user", get_string(user, "id")}, {"expires", expires}};
        bool purge = logins.fetch_add(1) % k_purge_every == 0;
        auto gen = current_generation();
        db.write(
            [row, now, purge, user = std::move(user)](write_txn& t) -> result<json::value> {
                const auto& tc = tokens_collection();
                if (purge) {
                    query old;
                    old.filters.push_back({"expires", lookup::lte, json::value(now)});
                    old.limit = k_purge_batch;
                    old.with_count = false;
                    auto pg = t.list(tc, old);
                    if (!pg) return std::move(pg).error();
                    for (const auto& r : pg->items)
                        if (auto rm = t.remove(tc, r); !rm) return std::move(rm).error();
                }
                auto current = t.get(users_collection(), get_string(user, "id"));
                if (!current) return std::move(current).error();
                if (!current.value() || is_true(**current, "disabled") ||
                    field_or_null(**current, "password_hash") != field_or_null(user, "password_hash"))
                    return problem::unauthorized(k_bad_login);
                if (auto r = t.insert(tc, row); !r) return std::move(r).error();
                return json::value(std::move(**current));
            },
            [self, token = std::move(token), hash, expires, id = std::string(get_string(row, "id")), gen,
             done = std::move(done)](result<json::value> r) mutable {
                if (!r) return done(std::move(r).error());
                const auto& stored = r->get_object();
                login_grant g;
                g.who = principal_of(stored);
                g.who.token_id = id;
                g.expires = expires;
                g.user = present_record(users_collection(), stored);
                self->put(hash, entry{g.who, expires, steady::now()}, gen);
                g.token = std::move(token);
                done(std::move(g));
            });
    }
};

struct authenticator::impl {
    std::shared_ptr<auth_core> core;
};

authenticator::authenticator(store& db, auth_settings s, logger& log)
    : impl_(std::make_unique<impl>(impl{std::make_shared<auth_core>(db, s, log)})) {
    // The dummy hash now, in the background: else the first unknown username would take twice
    // the time of a known one.
    auto* core = impl_->core.get();
    core->pool.post([core](bool run) {
        if (run) (void)core->dummy();
    });
}

authenticator::~authenticator() {
    // Queued Argon2id jobs answer 503; store callbacks still in flight keep the core alive.
    impl_->core->pool.stop();
}

void authenticator::login(std::string username, std::string password,
                          std::function<void(result<login_grant>)> done) {
    field_errors missing;
    if (username.empty()) missing["username"].emplace_back("This field is required.");
    if (password.empty()) missing["password"].emplace_back("This field is required.");
    if (!missing.empty()) {
        wipe(password);
        return done(problem::validation(std::move(missing)));
    }
    // No such user can exist and no such password can be set: answer without the work (the
    // lengths are the caller's own, so the early answer tells them nothing).
    if (username.size() > k_max_username || password.size() > k_max_password) {
        wipe(password);
        return done(problem::unauthorized(k_bad_login));
    }
    auto core = impl_->core;
    core->db.read([core, username = std::move(username), password = std::move(password),
                   done = std::move(done)](read_txn& t) mutable {
        auto user = find_user(t, username);
        if (!user) {
            wipe(password);
            return done(std::move(user).error());
        }
        core->pool.post([core, user = std::move(user).value(), password = std::move(password),
                         done = std::move(done)](bool run) mutable {
            if (!run) {
                wipe(password);
                return done(problem::unavailable(k_busy));
            }
            std::string stored = user ? std::string(get_string(*user, "password_hash")) : std::string();
            // Unknown users, users without a password and disabled users pay the same work.
            bool ok = verify_password(stored.empty() ? core->dummy() : stored, password);
            wipe(password);
            if (!user || stored.empty() || is_true(*user, "disabled")) ok = false;
            if (!ok) return done(problem::unauthorized(k_bad_login));
            core->issue_token(std::move(*user), std::move(done), core);
        });
    });
}

void authenticator::resolve(std::string_view token, std::function<void(result<principal>)> done) {
    if (token.empty() || token.size() > k_max_token_length) return done(problem::unauthorized(k_bad_token));
    auto hash = token_hash(token);
    auto& core = impl_->core;
    if (auto hit = core->lookup(hash)) return done(std::move(*hit));
    auto gen = core->current_generation();
    core->db.read([core, hash = std::move(hash), gen, done = std::move(done)](read_txn& t) {
        auto e = core->read_token(t, hash);
        if (!e) return done(std::move(e).error());
        auto who = e->who;
        core->put(hash, std::move(e).value(), gen);
        done(std::move(who));
    });
}

std::optional<result<principal>> authenticator::resolve_cached(std::string_view token) {
    if (token.empty() || token.size() > k_max_token_length) return result<principal>(problem::unauthorized(k_bad_token));
    return impl_->core->lookup(token_hash(token));
}

void authenticator::revoke(std::string token_id, std::function<void(result<void>)> done) {
    auto core = impl_->core;
    core->db.write(
        [token_id](write_txn& t) -> result<json::value> {
            auto got = t.get(tokens_collection(), token_id);
            if (!got) return std::move(got).error();
            if (!got.value()) return json::value(nullptr);  // already gone: logout is idempotent
            if (auto r = t.remove(tokens_collection(), **got); !r) return std::move(r).error();
            return json::value(nullptr);
        },
        [core, token_id, done = std::move(done)](result<json::value> r) {
            // Dropped here too, not only when the change reaches on_change(): this node must not
            // answer from the cache after the logout was acknowledged.
            if (r) core->drop_token(token_id);
            if (!r) return done(std::move(r).error());
            done({});
        });
}

void authenticator::register_user(std::string username, std::string password,
                                  std::function<void(result<json::object>)> done) {
    auto fields = new_user_fields(username, password, /*admin=*/false);
    if (!fields) {
        wipe(password);
        return done(std::move(fields).error());
    }
    auto core = impl_->core;
    core->pool.post([core, fields = std::move(fields).value(), password = std::move(password),
                     done = std::move(done)](bool run) mutable {
        if (!run) {
            wipe(password);
            return done(problem::unavailable(k_busy));
        }
        auto hash = hash_password(password);
        wipe(password);
        if (!hash) return done(std::move(hash).error());
        auto rec = new_user_record(std::move(fields), std::move(hash).value());
        core->db.write(
            [rec](write_txn& t) -> result<json::value> {
                if (auto p = username_conflict(t, get_string(rec, "username"))) return std::move(*p);
                if (auto r = t.insert(users_collection(), rec); !r) return insert_problem(std::move(r).error());
                return json::value(rec);
            },
            [done = std::move(done)](result<json::value> r) {
                if (!r) return done(std::move(r).error());
                done(present_record(users_collection(), r->get_object()));
            });
    });
}

void authenticator::me(const principal& who, std::function<void(result<json::object>)> done) {
    if (!who.authenticated()) return done(problem::unauthorized());
    impl_->core->db.read([id = who.user_id, done = std::move(done)](read_txn& t) {
        auto user = t.get(users_collection(), id);
        if (!user) return done(std::move(user).error());
        if (!user.value() || is_true(**user, "disabled")) return done(problem::unauthorized(k_user_gone));
        done(present_record(users_collection(), **user));
    });
}

result<principal> authenticator::principal_of_sync(const std::string& user_id) {
    if (user_id.empty()) return problem::unauthorized(k_user_gone);
    auto user = impl_->core->db.get_sync(users_collection(), user_id);
    if (!user) return std::move(user).error();
    if (!user.value() || is_true(**user, "disabled")) return problem::unauthorized(k_user_gone);
    return principal_of(**user);
}

result<json::object> authenticator::create_user_sync(const std::string& username, const std::string& password,
                                                     bool admin) {
    auto fields = new_user_fields(username, password, admin);
    if (!fields) return std::move(fields).error();
    auto hash = hash_password(password);
    if (!hash) return std::move(hash).error();
    auto rec = new_user_record(std::move(fields).value(), std::move(hash).value());
    auto r = impl_->core->db.write_sync([&rec](write_txn& t) -> result<json::value> {
        if (auto p = username_conflict(t, get_string(rec, "username"))) return std::move(*p);
        if (auto r = t.insert(users_collection(), rec); !r) return insert_problem(std::move(r).error());
        return json::value(nullptr);
    });
    if (!r) return std::move(r).error();
    return present_record(users_collection(), rec);
}

namespace {
/// Updates user `username` with `edit` and (unless told not to) deletes all of its tokens, in
/// one transaction.
/// Returns the user's id.
result<std::string> edit_user_sync(store& db, const std::string& username,
                                   const std::function<void(json::object&)>& edit, bool revoke_tokens = true) {
    auto r = db.write_sync([&](write_txn& t) -> result<json::value> {
        auto user = find_user(t, username);
        if (!user) return std::move(user).error();
        if (!user.value()) return problem::not_found("No user named \"" + username + "\".");
        const auto& stored = **user;
        auto rec = bumped(stored);
        edit(rec);
        if (auto u = t.update(users_collection(), rec, &stored); !u) return std::move(u).error();
        std::string id(get_string(stored, "id"));
        if (revoke_tokens)
            if (auto d = delete_user_tokens(t, id); !d) return std::move(d).error();
        return json::value(id);
    });
    if (!r) return std::move(r).error();
    return std::string(r->get_string());
}
}  // namespace

result<void> authenticator::set_password_sync(const std::string& username, const std::string& password) {
    if (auto m = password_problem(password); !m.empty()) return problem::validation({{"password", {m}}});
    auto hash = hash_password(password);
    if (!hash) return std::move(hash).error();
    auto id = edit_user_sync(impl_->core->db, username,
                             [&hash](json::object& rec) { rec["password_hash"] = *hash; });
    if (!id) return std::move(id).error();
    impl_->core->drop_user(*id);
    return {};
}

result<void> authenticator::disable_sync(const std::string& username) {
    auto id = edit_user_sync(impl_->core->db, username, [](json::object& rec) { rec["disabled"] = true; });
    if (!id) return std::move(id).error();
    impl_->core->drop_user(*id);
    return {};
}

result<void> authenticator::enable_sync(const std::string& username) {
    auto id = edit_user_sync(impl_->core->db, username, [](json::object& rec) { rec["disabled"] = false; });
    if (!id) return std::move(id).error();
    impl_->core->drop_user(*id);
    return {};
}

result<void> authenticator::set_admin_sync(const std::string& username, bool admin) {
    auto id = edit_user_sync(
        impl_->core->db, username, [admin](json::object& rec) { rec["admin"] = admin; }, /*revoke_tokens=*/false);
    if (!id) return std::move(id).error();
    impl_->core->drop_user(*id);
    return {};
}

result<void> authenticator::delete_user_sync(const std::string& username) {
    auto r = impl_->core->db.write_sync([&](write_txn& t) -> result<json::value> {
        auto user = find_user(t, username);
        if (!user) return std::move(user).error();
        if (!user.value()) return problem::not_found("No user named \"" + username + "\".");
        std::string id(get_string(**user, "id"));
        if (auto d = delete_user_tokens(t, id); !d) return std::move(d).error();
        if (auto d = t.remove(users_collection(), **user); !d) return std::move(d).error();
        return json::value(id);
    });
    if (!r) return std::move(r).error();
    impl_->core->drop_user(std::string(r->get_string()));
    return {};
}

result<std::vector<json::object>> authenticator::list_users_sync() {
    std::vector<json::object> out;
    query q;
    q.ordering = {{"username", false}};
    q.limit = k_scan_batch;
    q.with_count = false;
    for (;;) {
        auto pg = impl_->core->db.list_sync(users_collection(), q);
        if (!pg) return std::move(pg).error();
        for (const auto& rec : pg->items) out.push_back(present_record(users_collection(), rec));
        if (pg->items.size() < q.limit) return out;
        q.offset += q.limit;
    }
}

std::optional<revocation> authenticator::on_change(const change& ch) {
    // The hub calls this for every change of every collection: unrelated ones must cost only
    // the name comparisons.
    try {
        auto& core = *impl_->core;
        if (ch.collection == "auth_tokens") {
            if (ch.op != "delete") return std::nullopt;
            core.drop_token(ch.id);
            return revocation{"", ch.id};
        }
        if (ch.collection != "users") return std::nullopt;
        if (ch.op == "delete") {
            core.drop_user(ch.id);
            return revocation{ch.id, ""};
        }
        if (ch.op != "update") return std::nullopt;
        // Any update may rename the user: cached principals are re-read either way.
        core.drop_user(ch.id);
        if (!ch.before) return revocation{ch.id, ""};  // cannot tell what changed: end them
        const auto& before = *ch.before;
        const auto& after = ch.record;
        bool disabled = !is_true(before, "disabled") && is_true(after, "disabled");
        bool password = field_or_null(before, "password_hash") != field_or_null(after, "password_hash");
        bool admin = is_true(before, "admin") != is_true(after, "admin");
        if (disabled || password || admin) return revocation{ch.id, ""};
        return std::nullopt;
    } catch (...) {
        // Out of memory while dropping: the sockets still have to close, if it can be said.
        try {
            if (ch.collection == "auth_tokens") return revocation{"", ch.id};
            return revocation{ch.id, ""};
        } catch (...) {
            return std::nullopt;
        }
    }
}

}  // namespace livebase
