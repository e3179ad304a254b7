// Who may reach what, across doors, over real sockets: live queries attached only by the
// socket's own caller (?observe=), anonymous callers told apart by address (tasks, lists, change
// feeds, Idempotency-Keys), passwords and write_only values kept out of tasks and the change
// log, revocations (REST disable, another process's `livebase users`) reaching tokens, sockets
// and task streams, action handlers' inner operations free of the Idempotency-Key, and refs to
// records the caller may not see.
#include <livebase/auth/auth.hpp>
#include <livebase/tasks/task.hpp>
#include <support/ws_client.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>

#include <atomic>
#include <fstream>
#include <future>
#include <set>
#include <thread>

#include "support/test_app.hpp"

#include <array>
#include "support/child_process.hpp"

extern char** environ;

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;
using namespace std::chrono_literals;

namespace {

/// The ids of a list page's results, in order.
std::vector<std::string> ids_of(const json::value& page) {
    std::vector<std::string> out;
    auto results = obj(page)["results"];
    if (results.is_array())
        for (const auto& r : results.get_array()) out.push_back(field(r, "id"));
    return out;
}


/// `livebase users ...` as an administrator runs it (stdin from a file, never a terminal);
/// waits at most 60 s. Returns the exit status (-1 on a signal or a hang).
int run_cli(const temp_dir& d, const std::string& cfg, std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), {LIVEBASE_BINARY, "-c", cfg, "users"});
    return run_binary(d.path(), args, input).status;
}

struct signed_in {
    std::string id;
    std::string token;
};

class access : public ::testing::Test {
protected:
    void TearDown() override { app_.stop(); }

    void start() {
        const std::string extra = R"(
[auth]
throttle.anonymous = "unlimited"
throttle.user = "unlimited"

[collections.garages]
)" + std::string(k_owner_rules) + R"(
owned = true
fields.name = { type = "string" }

[collections.spots]
rules = { list = "authenticated", retrieve = "authenticated", create = "authenticated", update = "authenticated", delete = "authenticated" }
owned = true
fields.label = { type = "string" }
fields.garage = { type = "ref", to = "garages" }

[collections.jobs]
)" + std::string(k_public_rules) + R"(
fields.name = { type = "string" }
async.create = "always"

)" + action_toml("crawl", "slow", "owner") + R"(
)" + endpoint_toml("slowly", "POST", "slow") + R"(
[tasks]
workers = 2
)";
        auto r = app_.load_config_string(test_config(dir_.path() / "access.db", extra, k_owner_rules), "access.toml");
        ASSERT_TRUE(r) << r.error().detail;
        app_.log().set_level(log_level::error);
        // A detail action that patches its record through the api, as examples/cars :repaint.
        action_def repaint;
        repaint.name = "repaint";
        repaint.detail = true;
        repaint.rule = access_rule::owner;
        ASSERT_TRUE(app_.add_action("cars", repaint, [](action_call& call) -> result<outcome> {
            operation patch = call.op;
            patch.kind = op_kind::patch;
            patch.input = json::object{{"color", call.op.input.get_object().at("color")}};
            return call.self.execute_sync(std::move(patch));
        }));
        // A task that runs until released (bounded: 10 s), for streams that must stay open.
        ASSERT_TRUE(app_.add_task_kind("slow", [this](task_context& ctx) -> result<outcome> {
            for (int i = 0; i < 1000 && !release_; ++i) {
                ctx.throw_if_cancelled();
                ctx.progress(i % 100);
                std::this_thread::sleep_for(10ms);
            }
            return outcome::json_body(200, json::object{{"done", true}});
        }));
        auto s = app_.start();
        ASSERT_TRUE(s) << s.error().detail;
        rest_ = std::make_unique<http_client>(app_.port(), 30s);
    }

    std::string create_user(const std::string& name, bool admin = false) {
        auto u = app_.auth().create_user_sync(name, password_of(name), admin);
        EXPECT_TRUE(u) << (u ? "" : u.error().detail);
        return u ? std::string(get_string(*u, "id")) : "";
    }
    static std::string password_of(const std::string& name) { return "pw-" + name + "-secret"; }

    /// A fresh token of `name` (through the server's authenticator: REST logins are throttled
    /// per address, and the tests need many).
    /// ann and bob (users), created and signed in.
    std::array<signed_in, 2> ann_and_bob() {
        create_user("ann");
        create_user("bob");
        return {login("ann"), login("bob")};
    }

    /// ann and bob (users) and root (an administrator), created and signed in.
    std::array<signed_in, 3> ann_bob_root() {
        for (auto [name, admin] : {std::pair{"ann", false}, {"bob", false}, {"root", true}}) create_user(name, admin);
        return {login("ann"), login("bob"), login("root")};
    }

    signed_in login(const std::string& name) {
        std::promise<result<login_grant>> p;
        app_.auth().login(name, password_of(name), [&p](result<login_grant> r) { p.set_value(std::move(r)); });
        auto f = p.get_future();
        EXPECT_EQ(f.wait_for(30s), std::future_status::ready);
        auto g = f.get();
        EXPECT_TRUE(g) << (g ? "" : g.error().detail);
        if (!g) return {};
        return {g->who.user_id, g->token};
    }

    std::unique_ptr<ws_client> connect(header_list headers = {}) {
        auto c = std::make_unique<ws_client>();
        ws_connect_options o;
        o.headers = std::move(headers);
        auto r = c->connect(app_.port(), std::move(o));
        EXPECT_TRUE(r) << (r ? "" : r.error().detail);
        return c;
    }

    std::string create_car(const signed_in& u, const std::string& brand) {
        auto r = rest_->post("/api/cars", json::object{{"brand", brand}}, bearer(u.token));
        EXPECT_EQ(r.status, 201) << r.body;
        return field(r.json(), "id");
    }

    /// Starts a crawl of a new car of `u` and opens `u`'s stream of that task on `stream`;
    /// returns once its first snapshot arrived (a failed expectation when not).
    void follow_a_crawl(const signed_in& u, http_client& stream) {
        auto car = create_car(u, "Ford");
        auto sub = rest_->request("POST", "/api/cars/" + car + ":crawl", "{}", bearer(u.token));
        ASSERT_EQ(sub.status, 202) << sub.body;
        auto head = stream.start_stream("/api/tasks/" + field(sub.json(), "id"),
                                        with(bearer(u.token), {{"Accept", "text/event-stream"}}));
        ASSERT_EQ(head.status, 200) << head.body;
        ASSERT_TRUE(stream.next_event(k_wait));
    }

    /// Reads a task stream until it ends (at most 3 s); the snapshots read.
    static int snapshots_until_end(http_client& stream) {
        int after = 0;
        const auto until = std::chrono::steady_clock::now() + 3s;
        while (!stream.stream_ended() && std::chrono::steady_clock::now() < until)
            if (stream.next_event(200ms)) ++after;
        return after;
    }

    /// Waits (long poll, bounded) until task `path` is finished; its last answer.
    http_response finished(http_client& c, const std::string& path, const header_list& h = {}) {
        http_response r;
        for (int i = 0; i < 10; ++i) {
            r = c.get(path, with(h, {{"Prefer", "wait=5"}}));
            auto state = field(r.json(), "state");
            if (state == "succeeded" || state == "failed" || state == "cancelled") return r;
        }
        ADD_FAILURE() << "task not finished: " << r.body;
        return r;
    }

    /// Every change-log row's record and `before` (of `collection` only, when given),
    /// serialized: the whole log.
    std::string change_log_text(const std::string& collection = "") {
        std::promise<std::string> p;
        app_.store().read([&p, &collection](read_txn& t) {
            auto all = t.changes_after(0, 1000000);
            std::string text;
            if (all)
                for (const auto& ch : *all) {
                    if (!collection.empty() && ch.collection != collection) continue;
                    text += json::serialize(ch.record);
                    if (ch.before) text += json::serialize(*ch.before);
                    text += "\n";
                }
            p.set_value(std::move(text));
        });
        return p.get_future().get();
    }

    temp_dir dir_;
    livebase::app app_;
    std::unique_ptr<http_client> rest_;
    std::atomic<bool> release_{false};
};

// ---- ?observe= belongs to the socket's own caller ----

TEST_F(access, only_the_sockets_own_caller_attaches_a_live_query) {
    start();
    auto [ann, bob, root] = ann_bob_root();
    create_car(ann, "Ford");
    create_car(bob, "Opel");
    auto socket = connect(bearer(ann.token));
    const auto& sub = socket->subscriber();
    ASSERT_FALSE(sub.empty());

    // Another user, an admin, or an anonymous caller: the 404 of a socket that does not exist.
    auto missing = rest_->get("/api/cars?observe=no-such-subscriber", bearer(bob.token));
    ASSERT_EQ(missing.status, 404) << missing.body;
    for (const auto* who : {&bob, &root}) {
        auto r = rest_->get("/api/cars?observe=" + sub, bearer(who->token));
        EXPECT_EQ(r.status, 404) << r.body;
        EXPECT_EQ(obj(r.json())["detail"], obj(missing.json())["detail"]);
        EXPECT_EQ(obj(r.json())["title"], obj(missing.json())["title"]);
    }
    // Bob filled nothing: ann's socket still takes her own query, and only ann's rows show.
    auto mine = rest_->get("/api/cars?observe=" + sub, bearer(ann.token));
    ASSERT_EQ(mine.status, 200) << mine.body;
    auto page = obj(mine.json());
    EXPECT_EQ(page["count"], 1);
    for (const char* k : {"count", "next", "previous", "results", "observer", "seq"})
        EXPECT_TRUE(page.contains(k)) << k << " missing: " << mine.body;
    EXPECT_TRUE(page["next"].is_null());
    EXPECT_TRUE(page["previous"].is_null());
    EXPECT_EQ(ids_of(mine.json()).size(), 1u);

    // Page links as the plain list writes them.
    create_car(ann, "Fiat");
    auto first = rest_->get("/api/cars?limit=1&observe=" + sub, bearer(ann.token));
    ASSERT_EQ(first.status, 200) << first.body;
    auto plain = rest_->get("/api/cars?limit=1", bearer(ann.token));
    EXPECT_EQ(obj(first.json())["count"], obj(plain.json())["count"]);
    EXPECT_TRUE(obj(first.json())["next"].is_string()) << first.body;
    EXPECT_NE(str(obj(first.json())["next"]).find("limit=1&offset=1"), std::string::npos) << first.body;
}

TEST_F(access, an_anonymous_socket_takes_live_queries_only_from_its_own_address) {
    start();
    auto socket = connect();
    const auto& sub = socket->subscriber();
    http_client other(app_.port(), 30s);
    other.set_source_address("127.0.0.2");
    auto r = other.get("/api/things?observe=" + sub);
    EXPECT_EQ(r.status, 404) << r.body;
    EXPECT_EQ(rest_->get("/api/things?observe=" + sub).status, 200);
}

TEST_F(access, observing_tasks_gives_the_callers_own_page_and_its_diffs) {
    start();
    auto [ann, bob] = ann_and_bob();
    auto async = header_list{{"Prefer", "respond-async"}};
    for (int i = 0; i < 3; ++i)
        ASSERT_EQ(rest_->post("/api/cars", json::object{{"brand", "Bob"}}, with(bearer(bob.token), async)).status, 202);
    for (int i = 0; i < 2; ++i)
        ASSERT_EQ(rest_->post("/api/cars", json::object{{"brand", "Ann"}}, with(bearer(ann.token), async)).status, 202);

    auto socket = connect(bearer(ann.token));
    auto plain = rest_->get("/api/tasks?limit=10", bearer(ann.token));
    ASSERT_EQ(plain.status, 200);
    auto live = rest_->get("/api/tasks?limit=10&observe=" + socket->subscriber(), bearer(ann.token));
    ASSERT_EQ(live.status, 200) << live.body;
    EXPECT_EQ(obj(live.json())["count"], 2) << live.body;
    EXPECT_EQ(obj(live.json())["count"], obj(plain.json())["count"]);
    EXPECT_EQ(ids_of(live.json()), ids_of(plain.json()));
    auto observer = str(obj(live.json())["observer"]);

    // Ann's next task arrives as a diff of that observer; bob's never do.
    ASSERT_EQ(rest_->post("/api/cars", json::object{{"brand", "Bob"}}, with(bearer(bob.token), async)).status, 202);
    auto next = rest_->post("/api/cars", json::object{{"brand", "Ann"}}, with(bearer(ann.token), async));
    ASSERT_EQ(next.status, 202);
    auto task_id = field(next.json(), "id");
    auto diff = socket->receive_until(
        [&](const json::value& f) { return is_diff(f, observer) && field(data_of(f), "pk") == task_id; }, k_wait);
    ASSERT_TRUE(diff) << "no diff for the caller's new task";
    std::set<std::string> bobs;
    for (const auto& id : ids_of(rest_->get("/api/tasks?limit=100", bearer(bob.token)).json())) bobs.insert(id);
    while (auto f = socket->receive(200ms))
        if (is_diff(*f, observer)) EXPECT_FALSE(bobs.count(field(data_of(*f), "pk"))) << json::serialize(*f);
}

// ---- passwords and write_only values never reach a task's request or the change log ----

TEST_F(access, async_user_writes_keep_passwords_out_of_tasks_and_the_change_log) {
    start();
    create_user("root", true);
    auto root = login("root");
    auto h = with(bearer(root.token), {{"Prefer", "respond-async"}});
    const std::string first = "first-Plaintext-4711";
    auto sub = rest_->post("/api/users", json::object{{"username", "carol"}, {"password", first}}, h);
    ASSERT_EQ(sub.status, 202) << sub.body;
    EXPECT_EQ(sub.body.find(first), std::string::npos) << sub.body;
    auto task = finished(*rest_, str(obj(sub.json())["links"].get_object().at("self")), bearer(root.token));
    ASSERT_EQ(field(task.json(), "state"), "succeeded") << task.body;
    EXPECT_EQ(task.body.find(first), std::string::npos) << task.body;
    auto carol = field(obj(task.json())["result"], "id");
    ASSERT_FALSE(carol.empty()) << task.body;
    // The password works: the worker stored its hash.
    auto grant = rest_->post("/api/auth/login", json::object{{"username", "carol"}, {"password", first}});
    EXPECT_EQ(grant.status, 200) << grant.body;

    const std::string second = "second-Plaintext-0815";
    auto patch = rest_->request("PATCH", "/api/users/" + carol, json::serialize(json::object{{"password", second}}), h);
    ASSERT_EQ(patch.status, 202) << patch.body;
    task = finished(*rest_, str(obj(patch.json())["links"].get_object().at("self")), bearer(root.token));
    ASSERT_EQ(field(task.json(), "state"), "succeeded") << task.body;
    EXPECT_EQ(task.body.find(second), std::string::npos) << task.body;
    EXPECT_EQ(rest_->post("/api/auth/login", json::object{{"username", "carol"}, {"password", second}}).status, 200);
    // The old token of carol ended with the new password.
    EXPECT_EQ(rest_->get("/api/auth/me", bearer(field(grant.json(), "token"))).status, 401);

    auto log = change_log_text();
    EXPECT_EQ(log.find(first), std::string::npos);
    EXPECT_EQ(log.find(second), std::string::npos);
    auto listed = rest_->get("/api/tasks?limit=100", bearer(root.token));
    EXPECT_EQ(listed.body.find(first), std::string::npos);
    EXPECT_EQ(listed.body.find(second), std::string::npos);

    // An Idempotency-Key remembers that a password was sent, not a fast hash of it: a retry
    // with another password replays the first answer.
    auto key = with(bearer(root.token), {{"Idempotency-Key", "new-user-dave"}});
    auto dave = rest_->post("/api/users", json::object{{"username", "dave"}, {"password", first}}, key);
    ASSERT_EQ(dave.status, 201) << dave.body;
    auto retry = rest_->post("/api/users", json::object{{"username", "dave"}, {"password", second}}, key);
    EXPECT_EQ(retry.status, 201) << retry.body;
    EXPECT_EQ(retry.header("Idempotent-Replayed"), "true");
    EXPECT_EQ(rest_->post("/api/users", json::object{{"username", "erin"}, {"password", first}}, key).status, 422);
}

TEST_F(access, write_only_values_stay_out_of_a_tasks_request) {
    start();
    const std::string secret = "s3cret-Value-99";
    auto sub = rest_->request("POST", "/api/things", json::serialize(json::object{{"title", "A"}, {"secret", secret}}),
                              {{"Prefer", "respond-async"}});
    ASSERT_EQ(sub.status, 202) << sub.body;
    EXPECT_EQ(sub.body.find(secret), std::string::npos) << sub.body;
    auto id = field(sub.json(), "id");
    auto task = finished(*rest_, "/api/tasks/" + id);
    ASSERT_EQ(field(task.json(), "state"), "succeeded") << task.body;
    EXPECT_EQ(task.body.find(secret), std::string::npos) << task.body;
    EXPECT_EQ(field(obj(task.json())["request"].get_object().at("body"), "title"), "A");
    // Stored: the request echo has no secret; the record has it (the worker wrote it).
    auto stored = app_.store().get_sync(tasks_collection(), id);
    ASSERT_TRUE(stored && *stored);
    EXPECT_EQ(json::serialize((**stored).at("request")).find(secret), std::string::npos);
    EXPECT_NE(change_log_text("things").find(secret), std::string::npos);
}

// ---- disabling over REST ends the user's sessions for good ----

TEST_F(access, disabling_a_user_over_rest_deletes_their_tokens) {
    start();
    create_user("root", true);
    auto ann_id = create_user("ann");
    auto root = login("root");
    auto ann = login("ann");
    ASSERT_EQ(rest_->get("/api/auth/me", bearer(ann.token)).status, 200);
    auto socket = connect(bearer(ann.token));

    auto off = rest_->request("PATCH", "/api/users/" + ann_id, R"({"disabled": true})", bearer(root.token));
    ASSERT_EQ(off.status, 200) << off.body;
    auto closed = socket->wait_closed(k_wait);
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4401);
    query mine;
    mine.filters.push_back({"user", lookup::exact, json::value(ann_id)});
    auto rows = app_.store().list_sync(tokens_collection(), mine);
    ASSERT_TRUE(rows);
    EXPECT_EQ(rows->items.size(), 0u);

    auto on = rest_->request("PATCH", "/api/users/" + ann_id, R"({"disabled": false})", bearer(root.token));
    ASSERT_EQ(on.status, 200) << on.body;
    EXPECT_EQ(rest_->get("/api/auth/me", bearer(ann.token)).status, 401) << "an old session came back";
    auto again = login("ann");
    EXPECT_EQ(rest_->get("/api/auth/me", bearer(again.token)).status, 200);
}

// ---- revocations by another process reach an idle server ----

TEST_F(access, another_process_revoking_ends_tokens_sockets_and_streams_within_a_second) {
    start();
    auto [ann, bob] = ann_and_bob();
    auto cfg = (dir_.path() / "cli.toml").string();
    std::ofstream(cfg) << "[storage]\nurl = \"" << test::storage_url((dir_.path() / "access.db").string()) << "\"\n";

    // Cached tokens, open sockets, an open change stream and an open task stream.
    ASSERT_EQ(rest_->get("/api/auth/me", bearer(ann.token)).status, 200);
    ASSERT_EQ(rest_->get("/api/auth/me", bearer(bob.token)).status, 200);
    auto ann_socket = connect(bearer(ann.token));
    auto bob_socket = connect(bearer(bob.token));
    http_client feed(app_.port(), 30s);
    auto head = feed.start_stream("/api/cars/events", bearer(ann.token));
    ASSERT_EQ(head.status, 200) << head.body;
    http_client task_stream(app_.port(), 30s);
    ASSERT_NO_FATAL_FAILURE(follow_a_crawl(ann, task_stream));
    ASSERT_TRUE(feed.next_event(k_wait));  // the car's create event

    // Idle server, another process: `livebase users disable`. The close must come within a
    // second or so of the command's exit (its commit is before that).
    auto started = std::chrono::steady_clock::now();
    ASSERT_EQ(run_cli(dir_, cfg, {"disable", "ann"}), 0);
    auto t0 = std::chrono::steady_clock::now();
    auto closed = ann_socket->wait_closed(k_wait);
    auto latency = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(closed) << "the socket outlived the disable";
    EXPECT_EQ(closed->code, 4401);
    EXPECT_LT(latency, 1500ms);
    auto ms = [](auto d) { return std::chrono::duration_cast<std::chrono::milliseconds>(d).count(); };
    std::cout << "[ measured ] socket closed " << ms(std::chrono::steady_clock::now() - started)
              << " ms after the command started (" << ms(t0 - started) << " ms to run it), " << ms(latency)
              << " ms after it exited\n";
    EXPECT_EQ(rest_->get("/api/auth/me", bearer(ann.token)).status, 401) << "the token cache outlived the disable";
    // Both streams end, the task stream although its task still runs (it reports progress
    // every few ms and would send snapshots for 10 s): a few events at most before the end.
    for (int i = 0; i < 50 && !feed.stream_ended(); ++i) (void)feed.next_event(200ms);
    EXPECT_TRUE(feed.stream_ended());
    const int after = snapshots_until_end(task_stream);
    EXPECT_TRUE(task_stream.stream_ended()) << after << " snapshots after the disable";
    EXPECT_LT(after, 20);

    // `livebase users passwd` the same way.
    ASSERT_EQ(run_cli(dir_, cfg, {"passwd", "bob", "--password-stdin"}, "a-brand-new-password\n"), 0);
    t0 = std::chrono::steady_clock::now();
    closed = bob_socket->wait_closed(k_wait);
    latency = std::chrono::steady_clock::now() - t0;
    ASSERT_TRUE(closed);
    EXPECT_EQ(closed->code, 4401);
    EXPECT_LT(latency, 1500ms);
    EXPECT_EQ(rest_->get("/api/auth/me", bearer(bob.token)).status, 401);
    release_ = true;
}

// ---- a task stream ends when its token does ----

TEST_F(access, a_task_stream_ends_at_logout) {
    start();
    create_user("ann");
    auto ann = login("ann");
    http_client stream(app_.port(), 30s);
    ASSERT_NO_FATAL_FAILURE(follow_a_crawl(ann, stream));
    ASSERT_EQ(rest_->post("/api/auth/logout", json::object{}, bearer(ann.token)).status, 204);
    // The task keeps running (progress every few ms, for 10 s): only the end of the stream
    // stops its snapshots.
    const int after = snapshots_until_end(stream);
    EXPECT_TRUE(stream.stream_ended()) << after << " snapshots after the logout";
    EXPECT_LT(after, 20);
    release_ = true;
}

// ---- anonymous callers are told apart by address ----

TEST_F(access, anonymous_tasks_are_reachable_by_id_but_listed_only_to_their_address) {
    start();
    http_client other(app_.port(), 30s);
    other.set_source_address("127.0.0.2");
    auto sub = rest_->post("/api/jobs", json::object{{"name", "mine"}});
    ASSERT_EQ(sub.status, 202) << sub.body;
    auto id = field(sub.json(), "id");
    auto done = finished(*rest_, "/api/tasks/" + id);
    ASSERT_EQ(field(done.json(), "state"), "succeeded");
    EXPECT_TRUE(obj(done.json())["owner"].is_null()) << "the address stays on the server";
    auto stored = app_.store().get_sync(tasks_collection(), id);
    ASSERT_TRUE(stored && *stored);
    EXPECT_EQ(get_string(**stored, "owner"), "anon:127.0.0.1");

    // The submitter's address lists it (what a polling benchmark does)...
    auto own = rest_->get("/api/tasks?state=succeeded&limit=1");
    ASSERT_EQ(own.status, 200);
    EXPECT_EQ(obj(own.json())["count"], 1);
    EXPECT_EQ(ids_of(own.json()), std::vector<std::string>{id});
    // ...another address does not, but may use the id it was given.
    auto theirs = other.get("/api/tasks");
    ASSERT_EQ(theirs.status, 200);
    EXPECT_EQ(obj(theirs.json())["count"], 0) << theirs.body;
    auto by_id = other.get("/api/tasks/" + id);
    EXPECT_EQ(by_id.status, 303) << by_id.body;
    // An authenticated user does not reach anonymous tasks.
    create_user("ann");
    EXPECT_EQ(rest_->get("/api/tasks/" + id, bearer(login("ann").token)).status, 404);

    // Change feeds of tasks: only the caller's own address's tasks.
    http_client feed_other(app_.port(), 30s);
    feed_other.set_source_address("127.0.0.2");
    http_client feed_own(app_.port(), 30s);
    ASSERT_EQ(feed_other.start_stream("/api/tasks/events").status, 200);
    ASSERT_EQ(feed_own.start_stream("/api/tasks/events").status, 200);
    auto next = rest_->post("/api/jobs", json::object{{"name", "second"}});
    ASSERT_EQ(next.status, 202);
    auto next_id = field(next.json(), "id");
    auto theirs_made = other.post("/api/jobs", json::object{{"name", "theirs"}});
    ASSERT_EQ(theirs_made.status, 202);
    auto their_id = field(theirs_made.json(), "id");
    bool saw_own = false;
    for (int i = 0; i < 50 && !saw_own; ++i) {
        auto e = feed_own.next_event(200ms);
        if (!e) continue;
        auto pk = str(data_json(*e)["id"]);
        EXPECT_NE(pk, their_id);
        saw_own = pk == next_id;
    }
    EXPECT_TRUE(saw_own);
    bool saw_theirs = false;
    for (int i = 0; i < 50 && !saw_theirs; ++i) {
        auto e = feed_other.next_event(200ms);
        if (!e) continue;
        auto pk = str(data_json(*e)["id"]);
        EXPECT_NE(pk, next_id) << "another address's task reached the feed";
        EXPECT_NE(pk, id);
        saw_theirs = pk == their_id;
    }
    EXPECT_TRUE(saw_theirs);

    // Whoever holds the id may cancel it.
    auto slow = rest_->post("/api/slowly", json::object{});
    ASSERT_EQ(slow.status, 202) << slow.body;
    auto cancel = other.request("DELETE", "/api/tasks/" + field(slow.json(), "id"));
    EXPECT_TRUE(cancel.status == 200 || cancel.status == 202) << cancel.body;
    EXPECT_EQ(field(finished(other, "/api/tasks/" + field(slow.json(), "id")).json(), "state"), "cancelled");
}

TEST_F(access, anonymous_idempotency_keys_belong_to_the_address) {
    start();
    http_client other(app_.port(), 30s);
    other.set_source_address("127.0.0.2");
    header_list key{{"Idempotency-Key", "shared-key"}};
    // Squatting: another address uses the key first, with another body.
    auto squat = other.request("POST", "/api/things", R"({"title": "Theirs"})", key);
    ASSERT_EQ(squat.status, 201) << squat.body;
    auto mine = rest_->request("POST", "/api/things", R"({"title": "Mine"})", key);
    ASSERT_EQ(mine.status, 201) << mine.body;
    EXPECT_FALSE(mine.has_header("Idempotent-Replayed"));
    EXPECT_EQ(field(mine.json(), "title"), "Mine");
    // Replaying: the same request from another address is not answered from my key.
    http_client third(app_.port(), 30s);
    third.set_source_address("127.0.0.3");
    auto replay = third.request("POST", "/api/things", R"({"title": "Mine"})", key);
    ASSERT_EQ(replay.status, 201) << replay.body;
    EXPECT_FALSE(replay.has_header("Idempotent-Replayed"));
    EXPECT_NE(field(replay.json(), "id"), field(mine.json(), "id"));
    // The owner's own retry still replays.
    auto again = rest_->request("POST", "/api/things", R"({"title": "Mine"})", key);
    EXPECT_EQ(again.header("Idempotent-Replayed"), "true");
    EXPECT_EQ(field(again.json(), "id"), field(mine.json(), "id"));
}

// ---- an action's inner operations do not inherit the Idempotency-Key ----

TEST_F(access, an_action_calling_the_api_honours_its_idempotency_key) {
    start();
    create_user("ann");
    auto ann = login("ann");
    auto car = create_car(ann, "Ford");
    auto h = with(bearer(ann.token), {{"Idempotency-Key", "repaint-1"}});
    auto first = rest_->request("POST", "/api/cars/" + car + ":repaint", R"({"color": "Red"})", h);
    ASSERT_EQ(first.status, 200) << first.body;
    EXPECT_EQ(field(first.json(), "color"), "Red");
    auto again = rest_->request("POST", "/api/cars/" + car + ":repaint", R"({"color": "Red"})", h);
    EXPECT_EQ(again.status, 200) << again.body;
    EXPECT_EQ(again.header("Idempotent-Replayed"), "true");
}

// ---- refs: a record the caller may not see answers like a missing one ----

TEST_F(access, a_ref_to_a_hidden_record_is_refused_like_a_missing_one) {
    start();
    auto [ann, bob, root] = ann_bob_root();
    auto garage = rest_->post("/api/garages", json::object{{"name", "ann's"}}, bearer(ann.token));
    ASSERT_EQ(garage.status, 201) << garage.body;
    auto gid = field(garage.json(), "id");
    const std::string missing_id = "01JZZZZZZZZZZZZZZZZZZZZZZZ";

    auto hidden = rest_->post("/api/spots", json::object{{"garage", gid}}, bearer(bob.token));
    auto missing = rest_->post("/api/spots", json::object{{"garage", missing_id}}, bearer(bob.token));
    ASSERT_EQ(missing.status, 400) << missing.body;
    EXPECT_EQ(hidden.status, missing.status) << hidden.body;
    auto same = hidden.body;
    for (auto pos = same.find(gid); pos != std::string::npos; pos = same.find(gid)) same.replace(pos, gid.size(), missing_id);
    auto without_instance = [](std::string body) {
        auto v = parse_json(body);
        if (!v || !v->is_object()) return body;
        v->get_object().erase("instance");
        return json::serialize(*v);
    };
    EXPECT_EQ(without_instance(same), without_instance(missing.body));
    // Patching a ref in is refused the same way.
    auto spot = rest_->post("/api/spots", json::object{{"label", "b1"}}, bearer(bob.token));
    ASSERT_EQ(spot.status, 201);
    auto p = rest_->request("PATCH", "/api/spots/" + field(spot.json(), "id"),
                            json::serialize(json::object{{"garage", gid}}), bearer(bob.token));
    EXPECT_EQ(p.status, 400) << p.body;
    // The owner (and an admin) may.
    EXPECT_EQ(rest_->post("/api/spots", json::object{{"garage", gid}}, bearer(ann.token)).status, 201);
    auto by_root = rest_->post("/api/spots", json::object{{"garage", gid}, {"label", "r"}}, bearer(root.token));
    ASSERT_EQ(by_root.status, 201);
    // A ref left as it was is not judged again: bob may relabel a spot that points there.
    // (Spots are readable by every user; root's spot is bob's to edit under these rules.)
    auto relabel = rest_->request("PATCH", "/api/spots/" + field(by_root.json(), "id"),
                                  R"({"label": "relabelled"})", bearer(bob.token));
    EXPECT_EQ(relabel.status, 200) << relabel.body;

    // restrict still protects the referrers, without counting them.
    auto del = rest_->request("DELETE", "/api/garages/" + gid, "", bearer(ann.token));
    EXPECT_EQ(del.status, 409) << del.body;
    EXPECT_EQ(str(obj(del.json())["detail"]), "Cannot delete: records of spots refer to it through garage.");
}

}  // namespace
