// Auth and permissions over real HTTP (http.md sections 2, 3 and 5): login, Bearer tokens, the
// rule matrix through REST, 404 sameness, rules re-checked when a task runs, login throttling.
#include <array>
#include <future>
#include <livebase/auth/auth.hpp>
#include <set>
#include <thread>

#include "support/test_app.hpp"

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {

// notes: everything "owner" (a user sees and changes only their own notes);
// posts: public reading, owner writing; vault: admins only. One worker, so a test can hold it.
const std::string k_extra = R"(
[tasks]
workers = 1

[collections.notes]
owned = true
fields.title = { type = "string", required = true }
rules = { list = "owner", retrieve = "owner", create = "owner", update = "owner", delete = "owner" }

[collections.posts]
owned = true
fields.title = { type = "string", required = true }
rules = { list = "public", retrieve = "public", create = "authenticated", update = "owner", delete = "owner" }

[collections.vault]
fields.title = { type = "string", required = true }
rules = { list = "admin", retrieve = "admin", create = "admin", update = "admin", delete = "admin" }

)" + endpoint_toml("hold", "POST", "hold", "public");

class auth_rest : public ::testing::Test {
protected:
    void SetUp() override {
        auto r =
            app_.load_config_string(test_config(dir_.path() / "auth.db", k_extra), "auth.toml");
        ASSERT_TRUE(r) << r.error().detail;
        app_.log().set_level(log_level::error);
        auto ok = [](action_call& call) -> result<outcome> {
            return outcome::json_body(
                200, json::object{{"ok", true}, {"record", call.record != nullptr}});
        };
        action_def touch;
        touch.name = "touch";
        touch.detail = true;
        touch.rule = access_rule::owner;
        ASSERT_TRUE(app_.add_action("notes", touch, ok));
        action_def stats;
        stats.name = "stats";
        stats.rule = access_rule::owner;
        ASSERT_TRUE(app_.add_action("notes", stats, ok));
        // Holds the only worker until the test releases it (bounded: never a hang).
        auto released = release_.get_future().share();
        ASSERT_TRUE(app_.add_task_kind("hold", [released](task_context&) -> result<outcome> {
            released.wait_for(std::chrono::seconds(30));
            return outcome::json_body(200, json::object{{"held", true}});
        }));
        auto s = app_.start();
        ASSERT_TRUE(s) << s.error().detail;
        alice_ = add_user("alice", "alice password");
        bob_ = add_user("bob", "bob password");
        root_ = add_user("root", "root password", true);
    }
    void TearDown() override {
        release();
        app_.stop();
    }
    void release() {
        if (!released_) {
            released_ = true;
            release_.set_value();
        }
    }

    struct account {
        std::string id;
        std::string name;
        std::string token;
    };

    /// A user stored the way `livebase users create` stores one, logged in over HTTP.
    account add_user(const std::string& name, const std::string& password, bool admin = false) {
        auto hash = hash_password(password);
        EXPECT_TRUE(hash);
        auto now = now_ms();
        std::string id = make_ulid(now);
        json::object rec{{"id", id},
                         {"created", format_timestamp(now)},
                         {"updated", format_timestamp(now)},
                         {"version", 1},
                         {"username", name},
                         {"admin", admin},
                         {"disabled", false},
                         {"password_hash", hash ? *hash : ""}};
        auto w = app_.store().write_sync([&](write_txn& t) -> result<json::value> {
            if (auto r = t.insert(users_collection(), rec); !r) return std::move(r).error();
            return json::value(nullptr);
        });
        EXPECT_TRUE(w) << (w ? "" : w.error().detail);
        auto c = client();
        auto r =
            c.post("/api/auth/login", json::object{{"username", name}, {"password", password}});
        EXPECT_EQ(r.status, 200) << r.body;
        return {id, name, str(obj(r.json())["token"])};
    }
    void set_user_field(const std::string& id, const char* field, json::value v) {
        auto w = app_.store().write_sync([&](write_txn& t) -> result<json::value> {
            auto got = t.get(users_collection(), id);
            if (!got) return std::move(got).error();
            auto rec = **got;
            rec[field] = v;
            rec["version"] = get_int(rec, "version").value_or(1) + 1;
            if (auto r = t.update(users_collection(), rec, &**got); !r) return std::move(r).error();
            return json::value(nullptr);
        });
        ASSERT_TRUE(w);
    }

    static header_list bearer(const account& a, header_list more = {}) {
        more.emplace_back("Authorization", "Bearer " + a.token);
        return more;
    }
    http_client client() { return http_client(app_.port(), std::chrono::seconds(15)); }

    /// A note of `a`, created over HTTP.
    std::string note_of(const account& a, const std::string& title = "note") {
        auto c = client();
        auto r = c.post("/api/notes", json::object{{"title", title}}, bearer(a));
        EXPECT_EQ(r.status, 201) << r.body;
        return str(obj(r.json())["id"]);
    }

    temp_dir dir_;
    livebase::app app_;
    std::promise<void> release_;
    bool released_ = false;
    account alice_, bob_, root_;
};

TEST_F(auth_rest, login_me_and_logout) {
    auto c = client();
    auto me = c.get("/api/auth/me", bearer(alice_));
    ASSERT_EQ(me.status, 200) << me.body;
    EXPECT_EQ(obj(me.json())["username"], "alice");
    EXPECT_FALSE(obj(me.json()).contains("password_hash"));

    auto anon = c.get("/api/auth/me");
    EXPECT_EQ(anon.status, 401);
    EXPECT_EQ(anon.header("WWW-Authenticate").rfind("Bearer", 0), 0u)
        << anon.header("WWW-Authenticate");
    EXPECT_EQ(anon.header("Content-Type"), "application/problem+json");

    auto wrong =
        c.post("/api/auth/login", json::object{{"username", "alice"}, {"password", "nope nope"}});
    EXPECT_EQ(wrong.status, 401);
    auto missing = c.post("/api/auth/login", json::object{{"username", "alice"}});
    EXPECT_EQ(missing.status, 400);
    EXPECT_TRUE(obj(obj(missing.json())["errors"]).contains("password"));

    auto login =
        c.post("/api/auth/login", json::object{{"username", "bob"}, {"password", "bob password"}});
    ASSERT_EQ(login.status, 200);
    auto body = obj(login.json());
    EXPECT_TRUE(parse_timestamp(str(body["expires"])));
    EXPECT_EQ(obj(body["user"])["username"], "bob");
    account session{bob_.id, "bob", str(body["token"])};
    EXPECT_EQ(c.request("POST", "/api/auth/logout", "", bearer(session)).status, 204);
    EXPECT_EQ(c.get("/api/auth/me", bearer(session)).status, 401);
    EXPECT_EQ(c.get("/api/auth/me", bearer(bob_)).status, 200);  // the other session lives on
    EXPECT_EQ(c.request("POST", "/api/auth/logout").status, 401);
}

TEST_F(auth_rest, rule_matrix_over_rest) {
    enum { anon, other, owner, admin };
    const std::array<const account*, 4> callers{nullptr, &bob_, &alice_, &root_};
    const std::array<const char*, 4> names{"anonymous", "bob", "alice (owner)", "root (admin)"};
    struct row {
        const char* what;
        std::array<int, 4> status;
    };
    // notes: every rule "owner"; the record belongs to alice.
    const std::array<row, 8> expected{{
        {"list", {401, 200, 200, 200}},
        {"retrieve", {401, 404, 200, 200}},
        {"create", {401, 201, 201, 201}},
        {"put", {401, 404, 200, 200}},
        {"patch", {401, 404, 200, 200}},
        {"delete", {401, 404, 204, 204}},
        {"list action", {401, 200, 200, 200}},
        {"detail action", {401, 404, 200, 200}},
    }};
    auto c = client();
    for (const auto& e : expected) {
        for (int k : {anon, other, owner, admin}) {
            SCOPED_TRACE(std::string(e.what) + " by " + names[k]);
            auto id = note_of(alice_, "original");
            header_list h = callers[k] ? bearer(*callers[k]) : header_list{};
            std::string what = e.what;
            http_response r;
            if (what == "list")
                r = c.get("/api/notes", h);
            else if (what == "retrieve")
                r = c.get("/api/notes/" + id, h);
            else if (what == "create")
                r = c.post("/api/notes", json::object{{"title", "new"}}, h);
            else if (what == "put")
                r = c.request("PUT", "/api/notes/" + id, R"({"title":"changed"})", h);
            else if (what == "patch")
                r = c.request("PATCH", "/api/notes/" + id, R"({"title":"changed"})", h);
            else if (what == "delete")
                r = c.request("DELETE", "/api/notes/" + id, "", h);
            else if (what == "list action")
                r = c.request("POST", "/api/notes:stats", "", h);
            else
                r = c.request("POST", "/api/notes/" + id + ":touch", "", h);
            EXPECT_EQ(r.status, e.status[k]) << r.body;
            if (r.status == 401) EXPECT_FALSE(r.header("WWW-Authenticate").empty());
            if (r.status >= 400) {
                // Refused: the note is as it was.
                auto now = c.get("/api/notes/" + id, bearer(alice_));
                ASSERT_EQ(now.status, 200) << now.body;
                EXPECT_EQ(obj(now.json())["title"], "original");
                EXPECT_EQ(obj(now.json())["version"], 1);
            }
        }
    }
}

TEST_F(auth_rest, lists_show_only_what_the_caller_may_see) {
    auto mine = note_of(alice_);
    auto theirs = note_of(bob_);
    auto c = client();
    auto ids = [&](const account& a) {
        auto r = c.get("/api/notes?limit=100", bearer(a));
        EXPECT_EQ(r.status, 200) << r.body;
        std::set<std::string> out;
        auto page = obj(r.json());
        for (const auto& row : page["results"].as_array()) out.insert(str(row.at("id")));
        EXPECT_EQ(page["count"], static_cast<std::int64_t>(out.size()));
        return out;
    };
    EXPECT_EQ(ids(alice_), (std::set<std::string>{mine}));
    EXPECT_EQ(ids(bob_), (std::set<std::string>{theirs}));
    EXPECT_EQ(ids(root_), (std::set<std::string>{mine, theirs}));
}

TEST_F(auth_rest, visible_but_not_allowed_is_403_and_invisible_is_404) {
    auto c = client();
    auto post = c.post("/api/posts", json::object{{"title", "hello"}}, bearer(alice_));
    ASSERT_EQ(post.status, 201) << post.body;
    auto path = "/api/posts/" + str(obj(post.json())["id"]);
    EXPECT_EQ(c.get(path).status, 200);  // public reading
    EXPECT_EQ(c.request("PATCH", path, R"({"title":"mine now"})", bearer(bob_)).status, 403);
    EXPECT_EQ(c.request("DELETE", path, "", bearer(bob_)).status, 403);
    auto anon = c.request("PATCH", path, R"({"title":"x"})");
    EXPECT_EQ(anon.status, 401);
    EXPECT_EQ(c.request("PATCH", path, R"({"title":"edited"})", bearer(alice_)).status, 200);
    // Admin-only collection: 401 without credentials, 403 for a user, fine for an admin.
    EXPECT_EQ(c.get("/api/vault").status, 401);
    EXPECT_EQ(c.get("/api/vault", bearer(bob_)).status, 403);
    EXPECT_EQ(c.post("/api/vault", json::object{{"title", "gold"}}, bearer(bob_)).status, 403);
    EXPECT_EQ(c.post("/api/vault", json::object{{"title", "gold"}}, bearer(root_)).status, 201);
    // A bad token is not an anonymous request: it is refused.
    account forged{alice_.id, "alice", "not-a-token"};
    EXPECT_EQ(c.get("/api/posts", bearer(forged)).status, 401);
}

TEST_F(auth_rest, a_hidden_record_answers_exactly_like_a_missing_one) {
    auto id = note_of(alice_);
    auto missing = make_ulid(now_ms());
    auto c = client();
    struct req {
        const char* method;
        std::string suffix;
        std::string body;
    };
    for (const auto& q :
         {req{"GET", "", ""}, req{"PATCH", "", R"({"title":"x"})"},
          req{"PUT", "", R"({"title":"x"})"}, req{"DELETE", "", ""}, req{"POST", ":touch", ""}}) {
        SCOPED_TRACE(std::string(q.method) + q.suffix);
        auto hidden = c.request(q.method, "/api/notes/" + id + q.suffix, q.body, bearer(bob_));
        auto absent = c.request(q.method, "/api/notes/" + missing + q.suffix, q.body, bearer(bob_));
        EXPECT_EQ(hidden.status, 404);
        EXPECT_EQ(hidden.status, absent.status);
        EXPECT_EQ(hidden.body, absent.body);
        EXPECT_EQ(hidden.header("Content-Type"), absent.header("Content-Type"));
        EXPECT_EQ(hidden.header("Content-Length"), absent.header("Content-Length"));
        EXPECT_FALSE(hidden.has_header("ETag"));
    }
    // Asynchronously too: an invisible record is a 404 at once, not a task.
    auto hidden = c.request("PATCH", "/api/notes/" + id, R"({"title":"x"})",
                            bearer(bob_, {{"Prefer", "respond-async"}}));
    auto absent = c.request("PATCH", "/api/notes/" + missing, R"({"title":"x"})",
                            bearer(bob_, {{"Prefer", "respond-async"}}));
    EXPECT_EQ(hidden.status, 404);
    EXPECT_EQ(hidden.body, absent.body);
    EXPECT_EQ(obj(c.get("/api/tasks", bearer(bob_)).json())["count"], 0);
}

TEST_F(auth_rest, async_requests_are_checked_at_submission_and_at_execution) {
    auto c = client();
    // Refusals that need no execution are synchronous.
    EXPECT_EQ(
        c.post("/api/notes", json::object{{"title", "x"}}, {{"Prefer", "respond-async"}}).status,
        401);
    EXPECT_EQ(c.post("/api/vault", json::object{{"title", "x"}},
                     bearer(bob_, {{"Prefer", "respond-async"}}))
                  .status,
              403);

    // An allowed submission runs as its submitter.
    auto sub = c.post("/api/notes", json::object{{"title", "async"}},
                      bearer(alice_, {{"Prefer", "respond-async"}}));
    ASSERT_EQ(sub.status, 202) << sub.body;
    auto task_path = sub.header("Location");
    auto done = c.get(task_path, bearer(alice_, {{"Prefer", "wait=10"}}));
    ASSERT_EQ(done.status, 303) << done.body;
    auto created = c.get(done.header("Location"), bearer(alice_));
    ASSERT_EQ(created.status, 200) << created.body;
    EXPECT_EQ(obj(created.json())["owner"], json::value(alice_.id));
    // Another user cannot see the task.
    EXPECT_EQ(c.get(task_path, bearer(bob_)).status, 404);
    EXPECT_EQ(c.get(task_path + "/result", bearer(bob_)).status, 404);
    EXPECT_EQ(c.request("DELETE", task_path, "", bearer(bob_)).status, 404);

    // Hold the only worker, queue Alice's change, disable Alice, let the worker go: the stored
    // request runs as Alice is now, and fails with 401 without writing.
    auto note = note_of(alice_, "original");
    auto hold = c.request("POST", "/api/hold", "{}");
    ASSERT_EQ(hold.status, 202) << hold.body;
    auto hold_path = hold.header("Location");
    bool running = false;
    for (int i = 0; i < 500 && !running; ++i) {  // bounded: at most ~10 s
        running = str(obj(c.get(hold_path).json())["state"]) == "running";
        if (!running) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    ASSERT_TRUE(running);
    auto queued = c.request("PATCH", "/api/notes/" + note, R"({"title":"too late"})",
                            bearer(alice_, {{"Prefer", "respond-async"}}));
    ASSERT_EQ(queued.status, 202) << queued.body;
    set_user_field(alice_.id, "disabled", true);
    release();
    auto failed = c.get(queued.header("Location"), bearer(root_, {{"Prefer", "wait=10"}}));
    ASSERT_EQ(failed.status, 200) << failed.body;
    auto task = obj(failed.json());
    EXPECT_EQ(task["state"], "failed");
    EXPECT_EQ(obj(task["error"])["status"], 401);
    auto now = c.get("/api/notes/" + note, bearer(root_));
    EXPECT_EQ(obj(now.json())["title"], "original");
    // Alice's token died with her account.
    EXPECT_EQ(c.get("/api/auth/me", bearer(alice_)).status, 401);
}

TEST_F(auth_rest, login_brute_force_is_throttled) {
    auto c = client();
    // Every login of this test comes from 127.0.0.1, the fixture's three included: the address's
    // bucket runs dry within k_login_rate.count guesses, and then stays dry. It refills one
    // token per period/count meanwhile: on a slow machine (Argon2id takes its time) a guess or
    // two more may pass, never more than the refill allows. The bucket may be full again when
    // the loop starts (a slow fixture), and never holds more than k_login_rate.count.
    const auto started = std::chrono::steady_clock::now();
    std::uint64_t answered = 0;
    for (; answered <= 2 * k_login_rate.count; ++answered) {
        auto r = c.post(
            "/api/auth/login",
            json::object{{"username", "alice"}, {"password", "guess " + std::to_string(answered)}});
        if (r.status == 429) break;
        EXPECT_EQ(r.status, 401) << r.body;
    }
    const auto refilled = static_cast<std::uint64_t>((std::chrono::steady_clock::now() - started) /
                                                     (k_login_rate.per / k_login_rate.count));
    EXPECT_GE(answered, k_login_rate.count - 3);
    EXPECT_LE(answered, k_login_rate.count + refilled);
    auto r = c.post("/api/auth/login",
                    json::object{{"username", "alice"}, {"password", "alice password"}});
    EXPECT_EQ(r.status, 429) << r.body;
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    auto retry = r.header("Retry-After");
    ASSERT_FALSE(retry.empty());
    EXPECT_GE(std::stoll(retry), 1);
    EXPECT_LE(std::stoll(retry), 60);
    // Existing sessions are unaffected.
    EXPECT_EQ(c.get("/api/auth/me", bearer(alice_)).status, 200);
}

TEST_F(auth_rest, admins_manage_users_over_rest) {
    auto c = client();
    EXPECT_EQ(c.get("/api/users").status, 401);
    EXPECT_EQ(c.get("/api/users", bearer(alice_)).status, 403);
    auto list = c.get("/api/users", bearer(root_));
    ASSERT_EQ(list.status, 200) << list.body;
    EXPECT_EQ(obj(list.json())["count"], 3);
    EXPECT_EQ(list.body.find("password_hash"), std::string::npos);

    auto created =
        c.post("/api/users", json::object{{"username", "carol"}, {"password", "carol password"}},
               bearer(root_));
    ASSERT_EQ(created.status, 201) << created.body;
    EXPECT_EQ(created.body.find("password"), std::string::npos);
    EXPECT_EQ(c.post("/api/auth/login",
                     json::object{{"username", "carol"}, {"password", "carol password"}})
                  .status,
              200);

    // A password change ends the user's sessions.
    auto path = "/api/users/" + alice_.id;
    auto changed = c.request("PATCH", path, R"({"password":"a new password"})", bearer(root_));
    ASSERT_EQ(changed.status, 200) << changed.body;
    // The tokens are deleted in the password's transaction; the server's token cache drops them
    // when the hub hands it that change (authenticator::on_change), just after the commit.
    int me = 0;
    for (int i = 0; i < 500 && me != 401; ++i) {  // bounded: at most ~10 s
        me = c.get("/api/auth/me", bearer(alice_)).status;
        if (me != 401) std::this_thread::sleep_for(std::chrono::milliseconds(20));
    }
    EXPECT_EQ(me, 401);
    EXPECT_EQ(c.post("/api/auth/login",
                     json::object{{"username", "alice"}, {"password", "a new password"}})
                  .status,
              200);
    auto weak = c.request("PATCH", path, R"({"password":"x"})", bearer(root_));
    EXPECT_EQ(weak.status, 400);
}

}  // namespace
