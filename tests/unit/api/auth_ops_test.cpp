// The auth operations of the api (login, logout, me, register, login throttling), the users
// collection's "password" member, and the re-check of a task submitter at execution.
#include <livebase/auth/rules.hpp>

#include "unit/api/api_fixture.hpp"

using namespace livebase;
using namespace livebase::api_test_support;

namespace {

class auth_ops : public api_fixture {
protected:
    void SetUp() override {
        auto notes = notes_collection(access_rule::public_);
        ASSERT_EQ(finalize(notes), "");
        reg_.add_collection(notes);
        start(/*tasks=*/false, /*auth=*/true, /*signup=*/signup_);
    }

    outcome login(std::string username, std::string password, std::string ip = "192.0.2.1") {
        auto op =
            auth_op("login", {}, json::object{{"username", username}, {"password", password}});
        op.client_ip = std::move(ip);
        return run(std::move(op));
    }
    /// The principal a door would resolve from a login's token (with token_id).
    principal resolve(const outcome& login_outcome) {
        std::string token(login_outcome.body.at("token").as_string());
        auto r = await<principal>([&](auto done) { auth_->resolve(token, std::move(done)); });
        EXPECT_TRUE(r) << (r ? "" : r.error().detail);
        return r ? *r : principal{};
    }
    std::size_t tokens_of(const std::string& user_id) {
        query q;
        q.filters.push_back({"user", lookup::exact, json::value(user_id)});
        auto pg = db_->list_sync(tokens_collection(), q);
        EXPECT_TRUE(pg);
        return pg ? pg->items.size() : 0;
    }

    bool signup_ = false;
};

class auth_ops_signup : public auth_ops {
protected:
    void SetUp() override {
        signup_ = true;
        auth_ops::SetUp();
    }
};

class no_auth : public api_fixture {
protected:
    void SetUp() override { start(); }
};

TEST_F(no_auth, auth_operations_are_404) {
    EXPECT_EQ(run(auth_op("login", {}, json::object{{"username", "a"}, {"password", "b"}})).status,
              404);
    EXPECT_EQ(run(auth_op("me", user("u1"), nullptr, "GET")).status, 404);
}

TEST_F(auth_ops, login_returns_a_token_its_expiry_and_the_user) {
    auto alice = make_user("alice", "correct horse");
    auto o = login("alice", "correct horse");
    ASSERT_EQ(o.status, 200) << json::serialize(o.body);
    const auto& body = o.body.as_object();
    ASSERT_TRUE(body.at("token").is_string());
    EXPECT_FALSE(body.at("token").as_string().empty());
    auto expires = parse_timestamp(body.at("expires").as_string());
    ASSERT_TRUE(expires);
    EXPECT_GT(*expires, now_ms());
    EXPECT_EQ(body.at("user").at("username"), "alice");
    EXPECT_EQ(body.at("user").at("id"), json::value(alice.user_id));
    EXPECT_FALSE(body.at("user").as_object().contains("password_hash"));
    auto who = resolve(o);
    EXPECT_EQ(who.user_id, alice.user_id);
    EXPECT_FALSE(who.token_id.empty());
}

TEST_F(auth_ops, bad_logins) {
    make_user("alice", "correct horse");
    EXPECT_EQ(login("alice", "wrong horse").status, 401);
    EXPECT_EQ(login("nobody", "correct horse").status, 401);
    auto missing = run(auth_op("login", {}, json::object{{"username", "alice"}}));
    EXPECT_EQ(missing.status, 400);
    EXPECT_TRUE(field_errors_of(missing).contains("password"));
    auto typed = run(auth_op("login", {}, json::object{{"username", 7}, {"password", "x"}}));
    EXPECT_EQ(typed.status, 400);
    EXPECT_EQ(field_errors_of(typed).at("username").at(0), "Must be a string.");
    EXPECT_EQ(run(auth_op("login", {}, json::array{})).status, 400);
}

TEST_F(auth_ops, methods_and_unknown_actions) {
    auto get_login = run(auth_op("login", {}, nullptr, "GET"));
    EXPECT_EQ(get_login.status, 405);
    EXPECT_EQ(header(get_login, "Allow"), "POST");
    auto post_me = run(auth_op("me", user("u1"), nullptr, "POST"));
    EXPECT_EQ(post_me.status, 405);
    EXPECT_EQ(header(post_me, "Allow"), "GET");
    EXPECT_EQ(run(auth_op("whoami", user("u1"))).status, 404);
    // Sign-up is off: "register" does not exist.
    EXPECT_EQ(
        run(auth_op("register", {}, json::object{{"username", "x"}, {"password", "long enough"}}))
            .status,
        404);
}

TEST_F(auth_ops, login_attempts_are_throttled_per_address_and_username) {
    // The default counts, refilled per hour so that a slow machine cannot refill a bucket
    // during the test.
    api_->set_login_limits(rate{k_login_rate.count, std::chrono::hours(1)},
                           rate{k_login_address_rate.count, std::chrono::hours(1)});
    make_user("alice", "correct horse");
    for (std::uint64_t i = 0; i < k_login_rate.count; ++i)
        ASSERT_EQ(login("alice", "guess " + std::to_string(i), "198.51.100.1").status, 401) << i;
    auto o = login("alice", "correct horse", "198.51.100.1");
    EXPECT_EQ(o.status, 429);
    EXPECT_TRUE(o.is_problem);
    auto retry = header(o, "Retry-After");
    ASSERT_FALSE(retry.empty());
    auto seconds = std::stoll(retry);
    EXPECT_GE(seconds, 1);
    EXPECT_LE(seconds, 3600 / static_cast<long long>(k_login_rate.count));  // one token's refill
    // Case does not make a new bucket.
    EXPECT_EQ(login("ALICE", "correct horse", "198.51.100.1").status, 429);
    // Guesses from one address never lock the owner out elsewhere.
    EXPECT_EQ(login("alice", "correct horse", "198.51.100.2").status, 200);
    // The first address may still try other usernames (its own bucket is not empty yet).
    EXPECT_EQ(login("bob", "whatever", "198.51.100.1").status, 401);
}

TEST_F(auth_ops, guesses_from_many_addresses_leave_the_owner_alone) {
    make_user("alice", "correct horse");
    for (int i = 0; i < static_cast<int>(k_login_rate.count) + 2; ++i)
        ASSERT_EQ(login("alice", "guess", "198.51.100." + std::to_string(10 + i)).status, 401) << i;
    EXPECT_EQ(login("alice", "correct horse", "203.0.113.1").status, 200);
}

TEST_F(auth_ops, one_address_is_limited_whatever_the_usernames) {
    api_->set_login_limits(k_login_rate, rate{5, std::chrono::hours(1)});
    for (int i = 0; i < 5; ++i)
        ASSERT_EQ(login("user" + std::to_string(i), "whatever", "198.51.100.7").status, 401) << i;
    EXPECT_EQ(login("user9", "whatever", "198.51.100.7").status, 429);
    EXPECT_EQ(login("user9", "whatever", "198.51.100.8").status, 401);
}

TEST_F(auth_ops, a_login_is_never_remembered_for_idempotency) {
    make_user("alice", "correct horse");
    auto op =
        auth_op("login", {}, json::object{{"username", "alice"}, {"password", "correct horse"}});
    op.idempotency_key = "k1";
    auto first = run(op);
    ASSERT_EQ(first.status, 200);
    auto second = run(op);
    ASSERT_EQ(second.status, 200);
    EXPECT_NE(first.body.at("token"), second.body.at("token"));  // two logins, not a replay
    auto rows = db_->list_sync(idempotency_collection(), query{});
    ASSERT_TRUE(rows);
    EXPECT_EQ(rows->count, 0);
}

TEST_F(auth_ops, logout_revokes_the_token) {
    make_user("alice", "correct horse");
    EXPECT_EQ(run(auth_op("logout")).status, 401);
    // An identity without a token (e.g. rebuilt for a task) has nothing to log out of.
    EXPECT_EQ(run(auth_op("logout", user("u1"))).status, 401);
    auto o = login("alice", "correct horse");
    auto who = resolve(o);
    EXPECT_EQ(tokens_of(who.user_id), 1u);
    EXPECT_EQ(run(auth_op("logout", who)).status, 204);
    EXPECT_EQ(tokens_of(who.user_id), 0u);
    std::string token(o.body.at("token").as_string());
    auto again = await<principal>([&](auto done) { auth_->resolve(token, std::move(done)); });
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().status, 401);
}

TEST_F(auth_ops, me) {
    auto alice = make_user("alice", "correct horse");
    EXPECT_EQ(run(auth_op("me", {}, nullptr, "GET")).status, 401);
    auto o = run(auth_op("me", alice, nullptr, "GET"));
    ASSERT_EQ(o.status, 200) << json::serialize(o.body);
    EXPECT_EQ(o.body.at("username"), "alice");
    EXPECT_FALSE(o.body.as_object().contains("password_hash"));
}

TEST_F(auth_ops_signup, register_creates_a_user_who_can_log_in) {
    auto o = run(
        auth_op("register", {}, json::object{{"username", "carol"}, {"password", "long enough"}}));
    ASSERT_EQ(o.status, 201) << json::serialize(o.body);
    EXPECT_EQ(o.body.at("username"), "carol");
    EXPECT_EQ(o.body.at("admin"), false);
    EXPECT_EQ(o.location, "/api/users/" + std::string(o.body.at("id").as_string()));
    EXPECT_EQ(login("carol", "long enough").status, 200);
    auto taken = run(
        auth_op("register", {}, json::object{{"username", "carol"}, {"password", "long enough"}}));
    EXPECT_EQ(taken.status, 400);
    auto short_pw =
        run(auth_op("register", {}, json::object{{"username", "dave"}, {"password", "x"}}));
    EXPECT_EQ(short_pw.status, 400);
    EXPECT_TRUE(field_errors_of(short_pw).contains("password"));
}

// ---------------------------------------------------------------------------------------------
// The users collection through the api.

TEST_F(auth_ops, only_admins_manage_users) {
    auto root = make_user("root", "root password", true);
    auto alice = make_user("alice", "correct horse");
    json::object body{{"username", "eve"}, {"password", "long enough"}};
    EXPECT_EQ(run(make_op(op_kind::create, "users", "", anonymous(), body)).status, 401);
    EXPECT_EQ(run(make_op(op_kind::create, "users", "", alice, body)).status, 403);
    EXPECT_EQ(run(make_op(op_kind::list, "users", "", alice)).status, 403);
    // Another user's record is invisible to a non-admin: 404, like a missing one.
    EXPECT_EQ(run(make_op(op_kind::retrieve, "users", root.user_id, alice)).status, 404);
    EXPECT_EQ(
        run(make_op(op_kind::patch, "users", root.user_id, alice, json::object{{"admin", false}}))
            .status,
        404);
    auto list = run(make_op(op_kind::list, "users", "", root));
    ASSERT_EQ(list.status, 200);
    EXPECT_EQ(list.body.at("count"), 2);
    for (const auto& u : list.body.at("results").as_array())
        EXPECT_FALSE(u.as_object().contains("password_hash"));
}

TEST_F(auth_ops, an_admin_creates_a_user_with_a_password) {
    auto root = make_user("root", "root password", true);
    auto o = run(make_op(op_kind::create, "users", "", root,
                         json::object{{"username", "eve"}, {"password", "long enough"}}));
    ASSERT_EQ(o.status, 201) << json::serialize(o.body);
    EXPECT_FALSE(o.body.as_object().contains("password_hash"));
    EXPECT_FALSE(o.body.as_object().contains("password"));
    EXPECT_EQ(login("eve", "long enough").status, 200);

    auto bad = run(make_op(op_kind::create, "users", "", root,
                           json::object{{"username", "f"}, {"password", "x"}}));
    EXPECT_EQ(bad.status, 400);
    EXPECT_TRUE(field_errors_of(bad).contains("password"));
    auto typed = run(make_op(op_kind::create, "users", "", root,
                             json::object{{"username", "f"}, {"password", 5}}));
    EXPECT_EQ(typed.status, 400);
    // The hash itself is never accepted from a client.
    auto hash =
        run(make_op(op_kind::create, "users", "", root,
                    json::object{{"username", "g"}, {"password_hash", "$argon2id$forged"}}));
    ASSERT_EQ(hash.status, 201);
    auto stored_g = stored(users_collection(), std::string(hash.body.at("id").as_string()));
    ASSERT_TRUE(stored_g);
    EXPECT_NE(get_string(*stored_g, "password_hash"), "$argon2id$forged");
}

TEST_F(auth_ops, password_is_a_field_of_users_only) {
    auto o = run(make_op(op_kind::create, "notes", "", user("u1"),
                         json::object{{"title", "t"}, {"password", "long enough"}}));
    EXPECT_EQ(o.status, 400);
    EXPECT_TRUE(field_errors_of(o).contains("password"));
}

TEST_F(auth_ops, a_password_change_through_the_api_ends_the_users_sessions) {
    auto root = make_user("root", "root password", true);
    auto alice = make_user("alice", "correct horse");
    ASSERT_EQ(login("alice", "correct horse").status, 200);
    ASSERT_EQ(login("alice", "correct horse").status, 200);
    EXPECT_EQ(tokens_of(alice.user_id), 2u);

    // A change without a password keeps the password and the sessions.
    auto renamed =
        run(make_op(op_kind::patch, "users", alice.user_id, root, json::object{{"admin", false}}));
    ASSERT_EQ(renamed.status, 200) << json::serialize(renamed.body);
    EXPECT_EQ(tokens_of(alice.user_id), 2u);

    auto seq = db_->last_seq();
    auto o = run(make_op(op_kind::patch, "users", alice.user_id, root,
                         json::object{{"password", "battery staple"}}));
    ASSERT_EQ(o.status, 200) << json::serialize(o.body);
    EXPECT_FALSE(o.body.as_object().contains("password_hash"));
    EXPECT_EQ(tokens_of(alice.user_id), 0u);
    // One transaction: the user's update and both token deletions, in one commit.
    std::promise<std::vector<change>> p;
    db_->read([&](read_txn& t) { p.set_value(t.changes_after(seq, 100).value()); });
    auto changes = p.get_future().get();
    ASSERT_EQ(changes.size(), 3u);
    EXPECT_EQ(login("alice", "correct horse").status, 401);
    EXPECT_EQ(login("alice", "battery staple").status, 200);

    // A refused change hashes nothing and changes nothing.
    auto before = stored(users_collection(), alice.user_id);
    EXPECT_EQ(run(make_op(op_kind::patch, "users", alice.user_id, alice,
                          json::object{{"password", "my own choice"}}))
                  .status,
              404);
    EXPECT_EQ(run(make_op(op_kind::patch, "users", alice.user_id, anonymous(),
                          json::object{{"password", "x"}}))
                  .status,
              401);
    EXPECT_EQ(stored(users_collection(), alice.user_id), before);
    auto short_pw = run(make_op(op_kind::replace, "users", alice.user_id, root,
                                json::object{{"username", "alice"}, {"password", "x"}}));
    EXPECT_EQ(short_pw.status, 400);
}

TEST_F(auth_ops, deleting_a_user_deletes_their_tokens) {
    auto root = make_user("root", "root password", true);
    auto alice = make_user("alice", "correct horse");
    ASSERT_EQ(login("alice", "correct horse").status, 200);
    EXPECT_EQ(tokens_of(alice.user_id), 1u);
    EXPECT_EQ(run(make_op(op_kind::remove, "users", alice.user_id, root)).status, 204);
    EXPECT_EQ(tokens_of(alice.user_id), 0u);
}

// ---------------------------------------------------------------------------------------------
// A task runs its request again as its submitter is now.

TEST_F(auth_ops, a_task_of_a_disabled_user_fails_with_401) {
    auto alice = make_user("alice", "correct horse");
    auto note = insert(*reg_.find("notes"), alice.user_id, {{"title", "t"}});
    auto op = make_op(op_kind::patch, "notes", note, alice, json::object{{"title", "by task"}});
    op.from_task = true;
    EXPECT_EQ(run(op).status, 200);
    ASSERT_TRUE(auth_->disable_sync("alice"));
    auto seq = db_->last_seq();
    op.input = json::object{{"title", "after disable"}};
    auto o = run(op);
    EXPECT_EQ(o.status, 401);
    EXPECT_EQ(db_->last_seq(), seq);
    // The same operation from a door is judged on the principal the door resolved.
    op.from_task = false;
    EXPECT_EQ(run(op).status, 200);
}

TEST_F(auth_ops, a_task_of_a_deleted_user_fails_with_401) {
    auto op = make_op(op_kind::create, "notes", "", user("01JZZZZZZZZZZZZZZZZZZZZZZZ"),
                      json::object{{"title", "t"}});
    op.from_task = true;
    EXPECT_EQ(run(op).status, 401);
}

TEST_F(auth_ops, an_admin_flag_removed_since_submission_no_longer_applies) {
    auto root = make_user("root", "root password", true);
    auto alice = make_user("alice", "correct horse");
    auto op = make_op(op_kind::list, "users", "", root);
    op.from_task = true;
    EXPECT_EQ(run(op).status, 200);
    // Demoted by another admin.
    auto demote =
        run(make_op(op_kind::patch, "users", root.user_id, make_user("boss", "boss password", true),
                    json::object{{"admin", false}}));
    ASSERT_EQ(demote.status, 200);
    EXPECT_EQ(run(op).status, 403);
    // And the reverse: a stored "admin": true from a forged or stale request grants nothing.
    auto forged = make_op(op_kind::list, "users", "", admin(alice.user_id));
    forged.from_task = true;
    EXPECT_EQ(run(forged).status, 403);
}

}  // namespace
