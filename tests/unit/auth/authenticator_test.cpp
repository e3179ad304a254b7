// The authenticator against a real SQLite store in a temp dir.
#include "support/test_backend.hpp"
#include "unit/store/store_test_support.hpp"
#include "support/wait.hpp"

#include <livebase/auth/auth.hpp>

#include <gtest/gtest.h>

#include <cstdio>
#include <future>
#include <thread>

namespace livebase {
namespace {

using namespace std::chrono_literals;
using test::temp_dir;

using test::await;
using test::eventually;
using test::k_wait;

std::vector<std::string> field_messages(const problem& p, std::string_view field) {
    std::vector<std::string> out;
    auto it = p.extra.find("errors");
    if (it == p.extra.end() || !it->value().is_object()) return out;
    auto f = it->value().get_object().find(field);
    if (f == it->value().get_object().end() || !f->value().is_array()) return out;
    for (const auto& m : f->value().get_array())
        if (m.is_string()) out.emplace_back(m.get_string());
    return out;
}

/// Where the tests' loggers write: storage errors of the closed-store test are expected.
std::FILE* quiet_sink() {
    static std::FILE* f = std::fopen("/dev/null", "w");
    return f ? f : stderr;
}

class Auth : public ::testing::Test {
protected:
    void SetUp() override {
        LIVEBASE_REQUIRE_BACKEND();
        auto opened = open_store(test::storage_url(dir.file("data/auth.db")), &log);
        ASSERT_TRUE(opened.has_value()) << opened.error().detail;
        db = std::move(opened).value();
        auto plan = db->migrate({&users_collection(), &tokens_collection()}, false, false);
        ASSERT_TRUE(plan.has_value()) << plan.error().detail;
        auth = make(settings);
    }
    void TearDown() override {
        others.clear();
        auth.reset();
        if (db) db->close();
    }

    std::unique_ptr<authenticator> make(auth_settings s) { return std::make_unique<authenticator>(*db, s, log); }
    /// A second authenticator on the same store: another node, with its own (empty) cache.
    authenticator& other_node(auth_settings s = {}) {
        others.push_back(make(s));
        return *others.back();
    }

    result<login_grant> login(authenticator& a, std::string user, std::string pw) {
        return await<login_grant>([&](auto done) { a.login(std::move(user), std::move(pw), std::move(done)); });
    }
    result<login_grant> login(std::string user, std::string pw) { return login(*auth, std::move(user), std::move(pw)); }
    result<principal> resolve(authenticator& a, const std::string& token) {
        return await<principal>([&](auto done) { a.resolve(token, std::move(done)); });
    }
    result<principal> resolve(const std::string& token) { return resolve(*auth, token); }
    result<json::object> register_user(std::string user, std::string pw) {
        return await<json::object>(
            [&](auto done) { auth->register_user(std::move(user), std::move(pw), std::move(done)); });
    }
    result<json::object> me(const principal& who) {
        return await<json::object>([&](auto done) { auth->me(who, std::move(done)); });
    }
    result<void> revoke(const std::string& token_id) {
        auto p = std::make_shared<std::promise<result<void>>>();
        auto f = p->get_future();
        auth->revoke(token_id, [p](result<void> r) { p->set_value(std::move(r)); });
        if (f.wait_for(k_wait) != std::future_status::ready) return problem::internal("timed out");
        return f.get();
    }
    std::size_t token_rows(const std::string& user_id) {
        query q;
        q.filters.push_back({"user", lookup::exact, json::value(user_id)});
        q.limit = 1000;
        auto pg = db->list_sync(tokens_collection(), q);
        EXPECT_TRUE(pg.has_value());
        return pg ? pg->items.size() : 0;
    }
    std::vector<change> changes_since(std::int64_t after) {
        auto r = await<std::vector<change>>([&](auto done) {
            db->read([after, done = std::move(done)](read_txn& t) { done(t.changes_after(after, 10000)); });
        });
        EXPECT_TRUE(r.has_value());
        return r ? std::move(r).value() : std::vector<change>{};
    }
    std::string create(const std::string& name, const std::string& pw, bool admin = false) {
        auto u = auth->create_user_sync(name, pw, admin);
        EXPECT_TRUE(u.has_value()) << u.error().detail;
        return u ? std::string(get_string(*u, "id")) : std::string();
    }

    temp_dir dir;
    logger log{quiet_sink(), log_format::json, log_level::error};
    std::unique_ptr<store> db;
    auth_settings settings;
    std::unique_ptr<authenticator> auth;
    std::vector<std::unique_ptr<authenticator>> others;
};

TEST(AuthCollections, Definitions) {
    const auto& u = users_collection();
    EXPECT_EQ(u.name, "users");
    EXPECT_FALSE(u.owned);
    const auto* username = u.find_field("username");
    ASSERT_NE(username, nullptr);
    EXPECT_TRUE(username->required);
    EXPECT_TRUE(username->unique);
    EXPECT_EQ(username->max_length, 150u);
    EXPECT_NE(username->pattern_re, nullptr) << "finalized";
    const auto* hash = u.find_field("password_hash");
    ASSERT_NE(hash, nullptr);
    EXPECT_TRUE(hash->read_only);
    EXPECT_TRUE(hash->write_only);
    for (const char* a : {"list", "retrieve", "create", "update", "delete"}) EXPECT_EQ(u.rule_for(a), access_rule::admin);
    // The definition passes finalize() apart from the server-only pair it cannot express.
    auto copy = u;
    for (auto& f : copy.fields) f.read_only = false;
    EXPECT_EQ(finalize(copy), "");

    const auto& t = tokens_collection();
    EXPECT_EQ(t.name, "auth_tokens");
    ASSERT_NE(t.find_field("token_hash"), nullptr);
    EXPECT_TRUE(t.find_field("token_hash")->unique);
    for (const char* a : {"list", "retrieve", "create", "update", "delete"}) EXPECT_EQ(t.rule_for(a), access_rule::nobody);
    auto tcopy = t;
    EXPECT_EQ(finalize(tcopy), "");
}

TEST_F(Auth, CreateLoginResolve) {
    auto u = auth->create_user_sync("alice", "correct horse", false);
    ASSERT_TRUE(u.has_value()) << u.error().detail;
    EXPECT_EQ(get_string(*u, "username"), "alice");
    EXPECT_FALSE(u->contains("password_hash"));
    EXPECT_EQ(u->at("admin"), json::value(false));
    EXPECT_EQ(u->at("disabled"), json::value(false));
    std::string id(get_string(*u, "id"));

    auto g = login("alice", "correct horse");
    ASSERT_TRUE(g.has_value()) << g.error().detail;
    EXPECT_EQ(g->token.size(), 43u);
    EXPECT_GT(g->expires, 0);
    EXPECT_FALSE(g->user.contains("password_hash"));
    EXPECT_EQ(get_string(g->user, "username"), "alice");
    EXPECT_EQ(g->who.user_id, id);
    EXPECT_EQ(g->who.username, "alice");
    EXPECT_FALSE(g->who.admin);
    EXPECT_FALSE(g->who.token_id.empty());
    EXPECT_EQ(token_rows(id), 1u);

    // Only the hash is stored.
    auto rows = db->list_sync(tokens_collection(), query{});
    ASSERT_TRUE(rows && rows->items.size() == 1);
    EXPECT_EQ(get_string(rows->items[0], "token_hash"), token_hash(g->token));
    EXPECT_EQ(get_string(rows->items[0], "id"), g->who.token_id);
    for (const auto& kv : rows->items[0]) {
        if (kv.value().is_string()) {
            EXPECT_EQ(kv.value().get_string().find(g->token), std::string::npos);
        }
    }

    auto cached = auth->resolve_cached(g->token);
    ASSERT_TRUE(cached.has_value()) << "login fills the cache";
    ASSERT_TRUE(cached->has_value());
    EXPECT_EQ((*cached)->token_id, g->who.token_id);

    auto who = resolve(g->token);
    ASSERT_TRUE(who.has_value()) << who.error().detail;
    EXPECT_EQ(who->user_id, id);
    EXPECT_EQ(who->username, "alice");
    EXPECT_EQ(who->token_id, g->who.token_id);
    EXPECT_FALSE(who->admin);

    // Another node: a cache miss, read from the store, then cached.
    auto& b = other_node();
    EXPECT_FALSE(b.resolve_cached(g->token).has_value());
    auto who2 = resolve(b, g->token);
    ASSERT_TRUE(who2.has_value()) << who2.error().detail;
    EXPECT_EQ(who2->user_id, id);
    EXPECT_EQ(who2->token_id, g->who.token_id);
    EXPECT_EQ(who2->username, "alice");
    EXPECT_TRUE(b.resolve_cached(g->token).has_value());
}

TEST_F(Auth, AdminPrincipal) {
    create("root", "rootpassword", true);
    auto g = login("root", "rootpassword");
    ASSERT_TRUE(g.has_value()) << g.error().detail;
    EXPECT_TRUE(g->who.admin);
    auto who = resolve(other_node(), g->token);
    ASSERT_TRUE(who.has_value());
    EXPECT_TRUE(who->admin);
}

TEST_F(Auth, FailedLoginsAreAlike) {
    create("alice", "correct horse");
    create("mallory", "mallory's password");
    ASSERT_TRUE(auth->disable_sync("mallory"));

    auto wrong = login("alice", "wrong password");
    auto unknown = login("nobody", "correct horse");
    auto disabled = login("mallory", "mallory's password");
    auto too_long = login("alice", std::string(2000, 'x'));
    for (const auto* r : {&wrong, &unknown, &disabled, &too_long}) {
        ASSERT_FALSE(r->has_value());
        EXPECT_EQ(r->error().status, 401);
        EXPECT_EQ(r->error().type, wrong.error().type);
        EXPECT_EQ(r->error().title, wrong.error().title);
        EXPECT_EQ(r->error().detail, "Invalid username or password.");
    }
    auto missing = login("", "");
    ASSERT_FALSE(missing.has_value());
    EXPECT_EQ(missing.error().status, 400);
    EXPECT_EQ(field_messages(missing.error(), "username").size(), 1u);
    EXPECT_EQ(field_messages(missing.error(), "password").size(), 1u);
}

TEST_F(Auth, UserWithoutPasswordCannotLogIn) {
    // A user created through REST by an admin has no password hash until `users passwd`.
    json::object rec{{"id", "01J0000000000000000000USER"}, {"created", "2026-01-01T00:00:00.000Z"},
                     {"updated", "2026-01-01T00:00:00.000Z"}, {"version", 1}, {"username", "nopw"},
                     {"admin", false}, {"disabled", false}, {"password_hash", nullptr}};
    ASSERT_TRUE(db->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.insert(users_collection(), rec); !r) return std::move(r).error();
        return json::value(nullptr);
    }));
    auto r = login("nopw", "anything at all");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 401);
    ASSERT_TRUE(auth->set_password_sync("nopw", "now it has one"));
    EXPECT_TRUE(login("nopw", "now it has one").has_value());
}

TEST_F(Auth, ResolveUnknownToken) {
    for (std::string t : {std::string(), make_token(), std::string("short"), std::string(5000, 'a')}) {
        auto r = resolve(t);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().status, 401);
    }
    EXPECT_FALSE(auth->resolve_cached(make_token()).has_value());
}

TEST_F(Auth, ExpiredToken) {
    create("alice", "correct horse");
    auth_settings s;
    s.token_ttl = 50ms;
    auto& short_lived = other_node(s);
    auto g = login(short_lived, "alice", "correct horse");
    ASSERT_TRUE(g.has_value()) << g.error().detail;
    // The cache and the store both refuse it once the time has passed.
    EXPECT_TRUE(eventually([&] {
        auto r = resolve(short_lived, g->token);
        return !r.has_value() && r.error().status == 401;
    }));
    auto fresh = resolve(other_node(), g->token);
    ASSERT_FALSE(fresh.has_value());
    EXPECT_EQ(fresh.error().status, 401);
}

TEST_F(Auth, RevokeThenResolve) {
    create("alice", "correct horse");
    auto g = login("alice", "correct horse");
    ASSERT_TRUE(g.has_value());
    ASSERT_TRUE(resolve(g->token).has_value());
    ASSERT_TRUE(revoke(g->who.token_id));
    auto r = resolve(g->token);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 401);
    EXPECT_TRUE(revoke(g->who.token_id)) << "already gone is fine";
    EXPECT_TRUE(revoke("no-such-token"));
    EXPECT_EQ(token_rows(g->who.user_id), 0u);
}

TEST_F(Auth, SetPasswordDeletesTokens) {
    auto id = create("alice", "correct horse");
    auto g1 = login("alice", "correct horse");
    auto g2 = login("alice", "correct horse");
    ASSERT_TRUE(g1 && g2);
    EXPECT_NE(g1->token, g2->token);
    auto other_id = create("bob", "bob's password");
    auto gb = login("bob", "bob's password");
    ASSERT_TRUE(gb);
    EXPECT_EQ(token_rows(id), 2u);

    ASSERT_TRUE(auth->set_password_sync("alice", "battery staple"));
    EXPECT_EQ(token_rows(id), 0u);
    EXPECT_EQ(token_rows(other_id), 1u);
    for (const auto* g : {&g1, &g2}) {
        EXPECT_FALSE((*g)->token.empty());
        auto r = resolve((*g)->token);
        ASSERT_FALSE(r.has_value());
        EXPECT_EQ(r.error().status, 401);
    }
    EXPECT_TRUE(resolve(gb->token).has_value());
    EXPECT_FALSE(login("alice", "correct horse").has_value());
    EXPECT_TRUE(login("alice", "battery staple").has_value());

    auto bad = auth->set_password_sync("alice", "short");
    ASSERT_FALSE(bad);
    EXPECT_EQ(bad.error().status, 400);
    EXPECT_EQ(field_messages(bad.error(), "password").size(), 1u);
    auto missing = auth->set_password_sync("nobody", "long enough password");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().status, 404);
}

TEST_F(Auth, Disable) {
    auto id = create("alice", "correct horse");
    auto g = login("alice", "correct horse");
    ASSERT_TRUE(g);
    ASSERT_TRUE(auth->principal_of_sync(id).has_value());
    ASSERT_TRUE(auth->disable_sync("alice"));
    EXPECT_EQ(token_rows(id), 0u);
    auto r = resolve(g->token);
    ASSERT_FALSE(r);
    EXPECT_EQ(r.error().status, 401);
    EXPECT_FALSE(login("alice", "correct horse"));
    auto p = auth->principal_of_sync(id);
    ASSERT_FALSE(p);
    EXPECT_EQ(p.error().status, 401);
    auto m = me(g->who);
    ASSERT_FALSE(m);
    EXPECT_EQ(m.error().status, 401);
    auto missing = auth->disable_sync("nobody");
    ASSERT_FALSE(missing);
    EXPECT_EQ(missing.error().status, 404);
}

TEST_F(Auth, PrincipalOfSync) {
    auto id = create("root", "rootpassword", true);
    auto p = auth->principal_of_sync(id);
    ASSERT_TRUE(p.has_value()) << p.error().detail;
    EXPECT_EQ(p->user_id, id);
    EXPECT_EQ(p->username, "root");
    EXPECT_TRUE(p->admin);
    EXPECT_TRUE(p->token_id.empty());
    for (std::string unknown : {std::string("01J00000000000000000000000"), std::string()}) {
        auto q = auth->principal_of_sync(unknown);
        ASSERT_FALSE(q);
        EXPECT_EQ(q.error().status, 401);
    }
}

TEST_F(Auth, Me) {
    auto id = create("alice", "correct horse");
    auto g = login("alice", "correct horse");
    ASSERT_TRUE(g);
    auto m = me(g->who);
    ASSERT_TRUE(m.has_value()) << m.error().detail;
    EXPECT_EQ(get_string(*m, "id"), id);
    EXPECT_EQ(get_string(*m, "username"), "alice");
    EXPECT_FALSE(m->contains("password_hash"));
    auto anon = me(principal{});
    ASSERT_FALSE(anon);
    EXPECT_EQ(anon.error().status, 401);
}

TEST_F(Auth, RegisterAndDuplicates) {
    auto u = register_user("bob", "password123");
    ASSERT_TRUE(u.has_value()) << u.error().detail;
    EXPECT_EQ(get_string(*u, "username"), "bob");
    EXPECT_EQ(u->at("admin"), json::value(false));
    EXPECT_FALSE(u->contains("password_hash"));
    EXPECT_TRUE(login("bob", "password123").has_value());

    auto dup = register_user("bob", "another password");
    ASSERT_FALSE(dup.has_value());
    EXPECT_EQ(dup.error().status, 400);
    EXPECT_EQ(field_messages(dup.error(), "username"),
              std::vector<std::string>{"A user with that username already exists."});

    auto dup_sync = auth->create_user_sync("bob", "another password", true);
    ASSERT_FALSE(dup_sync.has_value());
    EXPECT_EQ(dup_sync.error().status, 400);
    EXPECT_EQ(field_messages(dup_sync.error(), "username"),
              std::vector<std::string>{"A user with that username already exists."});

    auto bad = register_user("not a name!", "short");
    ASSERT_FALSE(bad.has_value());
    EXPECT_EQ(bad.error().status, 400);
    EXPECT_EQ(field_messages(bad.error(), "username").size(), 1u);
    EXPECT_EQ(field_messages(bad.error(), "password").size(), 1u);

    auto empty = register_user("", "password123");
    ASSERT_FALSE(empty.has_value());
    EXPECT_EQ(empty.error().status, 400);
    EXPECT_FALSE(field_messages(empty.error(), "username").empty());

    auto long_name = register_user(std::string(151, 'a'), "password123");
    ASSERT_FALSE(long_name.has_value());
    EXPECT_FALSE(field_messages(long_name.error(), "username").empty());
    EXPECT_TRUE(register_user(std::string(150, 'a'), "password123").has_value());
}

TEST_F(Auth, ConcurrentRegistrationsOfOneName) {
    constexpr int n = 6;
    std::vector<std::shared_ptr<std::promise<result<json::object>>>> ps;
    for (int i = 0; i < n; ++i) {
        auto p = std::make_shared<std::promise<result<json::object>>>();
        ps.push_back(p);
        auth->register_user("carol", "password" + std::to_string(i),
                            [p](result<json::object> r) { p->set_value(std::move(r)); });
    }
    int ok = 0, taken = 0;
    for (auto& p : ps) {
        auto f = p->get_future();
        ASSERT_EQ(f.wait_for(k_wait), std::future_status::ready);
        auto r = f.get();
        if (r) {
            ++ok;
        } else if (r.error().status == 400 && !field_messages(r.error(), "username").empty()) {
            ++taken;
        } else {
            ADD_FAILURE() << r.error().status << " " << r.error().detail;
        }
    }
    EXPECT_EQ(ok, 1);
    EXPECT_EQ(taken, n - 1);
}

TEST_F(Auth, ListUsersOrdered) {
    create("charlie", "password123");
    create("alice", "password123", true);
    create("bob", "password123");
    auto l = auth->list_users_sync();
    ASSERT_TRUE(l.has_value());
    ASSERT_EQ(l->size(), 3u);
    EXPECT_EQ(get_string((*l)[0], "username"), "alice");
    EXPECT_EQ(get_string((*l)[1], "username"), "bob");
    EXPECT_EQ(get_string((*l)[2], "username"), "charlie");
    for (const auto& u : *l) EXPECT_FALSE(u.contains("password_hash"));
}

TEST_F(Auth, OnChangeHandBuilt) {
    change tok;
    tok.collection = "auth_tokens";
    tok.op = "delete";
    tok.id = "T1";
    auto r = auth->on_change(tok);
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(r->token_id, "T1");
    EXPECT_EQ(r->user_id, "");
    tok.op = "create";
    EXPECT_FALSE(auth->on_change(tok).has_value());

    json::object before{{"id", "U1"}, {"username", "alice"}, {"admin", false}, {"disabled", false},
                        {"password_hash", "$argon2id$old"}};
    auto update = [&](const char* key, json::value v) {
        change ch;
        ch.collection = "users";
        ch.op = "update";
        ch.id = "U1";
        ch.before = before;
        ch.record = before;
        ch.record[key] = std::move(v);
        return ch;
    };
    for (auto ch : {update("disabled", true), update("password_hash", "$argon2id$new"), update("admin", true)}) {
        auto rv = auth->on_change(ch);
        ASSERT_TRUE(rv.has_value());
        EXPECT_EQ(rv->user_id, "U1");
        EXPECT_EQ(rv->token_id, "");
    }
    EXPECT_FALSE(auth->on_change(update("username", "alicia")).has_value());
    EXPECT_FALSE(auth->on_change(update("disabled", false)).has_value());
    auto reenabled = update("disabled", false);
    reenabled.before->at("disabled") = true;
    EXPECT_FALSE(auth->on_change(reenabled).has_value()) << "enabling ends nothing";

    change del;
    del.collection = "users";
    del.op = "delete";
    del.id = "U1";
    del.record = before;
    auto rd = auth->on_change(del);
    ASSERT_TRUE(rd.has_value());
    EXPECT_EQ(rd->user_id, "U1");
    del.op = "create";
    EXPECT_FALSE(auth->on_change(del).has_value());

    change cars;
    cars.collection = "cars";
    cars.op = "delete";
    cars.id = "C1";
    EXPECT_FALSE(auth->on_change(cars).has_value());
    cars.collection = "user";
    EXPECT_FALSE(auth->on_change(cars).has_value());
}

TEST_F(Auth, OnChangeDropsTheCache) {
    create("alice", "correct horse");
    auto g = login("alice", "correct horse");
    ASSERT_TRUE(g);
    ASSERT_TRUE(auth->resolve_cached(g->token).has_value());
    change ch;
    ch.collection = "auth_tokens";
    ch.op = "delete";
    ch.id = g->who.token_id;
    ASSERT_TRUE(auth->on_change(ch).has_value());
    EXPECT_FALSE(auth->resolve_cached(g->token).has_value());
    // The row is still there (the change was made up): a store read finds it again.
    EXPECT_TRUE(resolve(g->token).has_value());
}

TEST_F(Auth, OnChangeFromTheLog) {
    auto id = create("alice", "correct horse");
    auto g = login("alice", "correct horse");
    ASSERT_TRUE(g);
    // Node B caches the token; node A (auth) revokes it. B learns of it only from the log.
    auto& b = other_node();
    ASSERT_TRUE(resolve(b, g->token).has_value());
    auto seq = db->last_seq();
    ASSERT_TRUE(revoke(g->who.token_id));
    EXPECT_TRUE(b.resolve_cached(g->token).has_value()) << "still cached on the other node";
    auto changes = changes_since(seq);
    ASSERT_EQ(changes.size(), 1u);
    auto rv = b.on_change(changes[0]);
    ASSERT_TRUE(rv.has_value());
    EXPECT_EQ(rv->token_id, g->who.token_id);
    EXPECT_FALSE(b.resolve_cached(g->token).has_value());
    EXPECT_FALSE(resolve(b, g->token).has_value());

    // A password change: one users update (revokes the user) and the token deletes.
    auto g2 = login("alice", "correct horse");
    ASSERT_TRUE(g2);
    ASSERT_TRUE(resolve(b, g2->token).has_value());
    seq = db->last_seq();
    ASSERT_TRUE(auth->set_password_sync("alice", "battery staple"));
    bool user_revoked = false, token_revoked = false;
    for (const auto& ch : changes_since(seq)) {
        auto r = b.on_change(ch);
        ASSERT_TRUE(r.has_value()) << ch.collection << " " << ch.op;
        if (ch.collection == "users") {
            EXPECT_EQ(r->user_id, id);
            user_revoked = true;
        } else {
            EXPECT_EQ(r->token_id, g2->who.token_id);
            token_revoked = true;
        }
    }
    EXPECT_TRUE(user_revoked);
    EXPECT_TRUE(token_revoked);
    EXPECT_FALSE(b.resolve_cached(g2->token).has_value());

    // A disable, and unrelated changes (a new user, a login's token insert).
    seq = db->last_seq();
    create("bob", "bob's password");
    ASSERT_TRUE(login("bob", "bob's password"));
    auto unrelated = changes_since(seq);
    ASSERT_GE(unrelated.size(), 2u);
    for (const auto& ch : unrelated) EXPECT_FALSE(b.on_change(ch).has_value()) << ch.collection << " " << ch.op;
    seq = db->last_seq();
    ASSERT_TRUE(auth->disable_sync("bob"));
    auto disabled = changes_since(seq);
    ASSERT_FALSE(disabled.empty());
    EXPECT_EQ(disabled[0].collection, "users");
    auto r = b.on_change(disabled[0]);
    ASSERT_TRUE(r.has_value());
    EXPECT_FALSE(r->user_id.empty());
}

TEST_F(Auth, SmallCacheStillAnswers) {
    create("alice", "correct horse");
    auth_settings s;
    s.max_cached_tokens = 2;
    auto& small = other_node(s);
    std::vector<login_grant> grants;
    for (int i = 0; i < 6; ++i) {
        auto g = login(small, "alice", "correct horse");
        ASSERT_TRUE(g.has_value()) << g.error().detail;
        grants.push_back(std::move(g).value());
    }
    for (const auto& g : grants) {
        auto r = resolve(small, g.token);
        ASSERT_TRUE(r.has_value()) << r.error().detail;
        EXPECT_EQ(r->token_id, g.who.token_id);
    }
    std::size_t cached = 0;
    for (const auto& g : grants) cached += small.resolve_cached(g.token).has_value() ? 1 : 0;
    EXPECT_LE(cached, 2u);
}

TEST_F(Auth, CacheTtlRereads) {
    auto id = create("alice", "correct horse");
    auth_settings s;
    s.cache_ttl = 0ms;  // every resolve reads the store
    auto& uncached = other_node(s);
    auto g = login(uncached, "alice", "correct horse");
    ASSERT_TRUE(g);
    EXPECT_FALSE(uncached.resolve_cached(g->token).has_value());
    ASSERT_TRUE(resolve(uncached, g->token).has_value());
    // A revocation this node never hears of is still seen at the next read.
    ASSERT_TRUE(auth->disable_sync("alice"));
    EXPECT_FALSE(resolve(uncached, g->token).has_value());
    (void)id;
}

TEST_F(Auth, ClosedStoreAnswers) {
    create("alice", "correct horse");
    db->close();
    auto g = login("alice", "correct horse");
    ASSERT_FALSE(g.has_value());
    EXPECT_EQ(g.error().status, 503);
    auto r = resolve(make_token());
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 503);
}

}  // namespace
}  // namespace livebase
