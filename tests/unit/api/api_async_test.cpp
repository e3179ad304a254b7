// Rules on the asynchronous path: what is refused at submission (no task is created), what
// is judged again when a worker runs the stored request, and who sees which task.
#include "unit/api/api_fixture.hpp"

using namespace livebase;
using namespace livebase::api_test_support;

namespace {

class api_async : public api_fixture {
protected:
    void SetUp() override {
        auto notes = notes_collection(access_rule::owner);
        action_def touch;
        touch.name = "touch";
        touch.detail = true;
        touch.rule = access_rule::owner;
        action_def stats;
        stats.name = "stats";
        stats.rule = access_rule::admin;
        action_def build;
        build.name = "build";
        build.detail = true;
        build.task = "build_kind";
        build.rule = access_rule::owner;
        notes.actions = {{"touch", touch}, {"stats", stats}, {"build", build}};
        ASSERT_EQ(finalize(notes), "");
        reg_.add_collection(notes);
        auto ok = [](action_call&) -> result<outcome> {
            return outcome::json_body(200, json::object{{"ok", true}});
        };
        reg_.add_action_handler("notes", "touch", ok);
        reg_.add_action_handler("notes", "stats", ok);
        endpoint_binding e;
        e.name = "double";
        e.path = "/api/double";
        e.method = "GET";
        e.task = "double";
        e.rule = access_rule::admin;
        reg_.add_endpoint(e);
        start(/*tasks=*/true, /*auth=*/true, /*signup=*/false, /*start_workers=*/false);
        auto done = [](task_context&) -> result<outcome> {
            return outcome::json_body(200, json::object{{"done", true}});
        };
        workers_->register_handler("build_kind", done);
        workers_->register_handler("double", done);
        alice_ = make_user("alice", "alice password");
        bob_ = make_user("bob", "bob password");
        root_ = make_user("root", "root password", true);
    }
    const collection_def& notes() { return *reg_.find("notes"); }

    operation async(operation op) {
        op.prefer_async = true;
        return op;
    }
    std::int64_t task_count() {
        auto pg = db_->list_sync(tasks_collection(), query{});
        EXPECT_TRUE(pg);
        return pg ? pg->count : -1;
    }
    static std::string task_id(const outcome& o) {
        return o.body.is_object() ? std::string(get_string(o.body.get_object(), "id")) : "";
    }
    static int error_status(const json::object& task) {
        auto it = task.find("error");
        if (it == task.end() || !it->value().is_object()) return 0;
        return static_cast<int>(get_int(it->value().get_object(), "status").value_or(0));
    }

    principal alice_, bob_, root_;
};

TEST_F(api_async, refusals_at_submission_create_no_task) {
    auto note = insert(notes(), alice_.user_id, {{"title", "t"}});
    auto missing = make_ulid(now_ms());
    json::object body{{"title", "x"}};

    EXPECT_EQ(run(async(make_op(op_kind::create, "notes", "", anonymous(), body))).status, 401);
    EXPECT_EQ(
        run(async(make_op(op_kind::create, "notes", "", alice_, json::object{{"nope", 1}}))).status,
        400);
    EXPECT_EQ(run(async(make_op(op_kind::retrieve, "notes", note, anonymous()))).status, 401);
    // Bob cannot see Alice's note: the same 404 as a missing one, at once, not as a task.
    auto hidden = run(async(make_op(op_kind::patch, "notes", note, bob_, body)));
    auto absent = run(async(make_op(op_kind::patch, "notes", missing, bob_, body)));
    EXPECT_EQ(hidden.status, 404);
    EXPECT_EQ(json::serialize(hidden.body), json::serialize(absent.body));
    EXPECT_EQ(run(async(make_op(op_kind::remove, "notes", note, bob_))).status, 404);
    EXPECT_EQ(run(async(make_op(op_kind::retrieve, "notes", note, bob_))).status, 404);
    EXPECT_EQ(run(async(action_op("notes", note, "touch", bob_))).status, 404);
    // A task action always runs as a task: still judged on its record first.
    EXPECT_EQ(run(action_op("notes", note, "build", bob_)).status, 404);
    EXPECT_EQ(run(action_op("notes", note, "build", anonymous())).status, 401);
    EXPECT_EQ(run(action_op("notes", missing, "build", alice_)).status, 404);
    EXPECT_EQ(run(async(action_op("notes", "", "stats", alice_))).status, 403);
    EXPECT_EQ(run(async(action_op("notes", "", "stats", anonymous()))).status, 401);

    auto endpoint = [](principal who) {
        operation op;
        op.method = "GET";
        op.path = "/api/double";
        op.who = std::move(who);
        return op;
    };
    EXPECT_EQ(run(endpoint(anonymous())).status, 401);
    EXPECT_EQ(run(endpoint(alice_)).status, 403);
    EXPECT_EQ(task_count(), 0);
    EXPECT_EQ(run(endpoint(root_)).status, 202);
    EXPECT_EQ(task_count(), 1);
}

TEST_F(api_async, allowed_submissions_run) {
    auto note = insert(notes(), alice_.user_id, {{"title", "t"}});
    auto patch = run(
        async(make_op(op_kind::patch, "notes", note, alice_, json::object{{"title", "async"}})));
    ASSERT_EQ(patch.status, 202) << json::serialize(patch.body);
    auto build = run(action_op("notes", note, "build", alice_));
    ASSERT_EQ(build.status, 202) << json::serialize(build.body);
    auto create =
        run(async(make_op(op_kind::create, "notes", "", bob_, json::object{{"title", "b"}})));
    ASSERT_EQ(create.status, 202);
    workers_->start();
    EXPECT_EQ(get_string(wait_task(task_id(patch)), "state"), "succeeded");
    EXPECT_EQ(get_string(wait_task(task_id(build)), "state"), "succeeded");
    auto created = wait_task(task_id(create));
    EXPECT_EQ(get_string(created, "state"), "succeeded");
    EXPECT_EQ((*stored(notes(), note))["title"], "async");
    // The task's create is owned by its submitter.
    auto loc = std::string(get_string(created, "location"));
    auto id = loc.substr(loc.rfind('/') + 1);
    auto rec = stored(notes(), id);
    ASSERT_TRUE(rec);
    EXPECT_EQ((*rec)["owner"], json::value(bob_.user_id));
}

TEST_F(api_async, a_disabled_submitters_task_fails_with_401_and_writes_nothing) {
    auto note = insert(notes(), alice_.user_id, {{"title", "t"}});
    auto patch =
        run(async(make_op(op_kind::patch, "notes", note, alice_, json::object{{"title", "late"}})));
    ASSERT_EQ(patch.status, 202);
    ASSERT_TRUE(auth_->disable_sync("alice"));
    workers_->start();
    auto task = wait_task(task_id(patch));
    EXPECT_EQ(get_string(task, "state"), "failed");
    EXPECT_EQ(error_status(task), 401);
    EXPECT_EQ((*stored(notes(), note))["title"], "t");
}

TEST_F(api_async, rules_are_judged_again_when_the_task_runs) {
    // Submitted as an admin, demoted before it runs: the stored request is refused.
    auto list = run(async(make_op(op_kind::list, "users", "", root_)));
    ASSERT_EQ(list.status, 202) << json::serialize(list.body);
    auto demote =
        run(make_op(op_kind::patch, "users", root_.user_id,
                    make_user("boss", "boss password", true), json::object{{"admin", false}}));
    ASSERT_EQ(demote.status, 200);
    // Deleted before it runs: the owner's delete finds nothing.
    auto note = insert(notes(), alice_.user_id);
    auto remove = run(async(make_op(op_kind::remove, "notes", note, alice_)));
    ASSERT_EQ(remove.status, 202);
    ASSERT_EQ(run(make_op(op_kind::remove, "notes", note, alice_)).status, 204);
    workers_->start();
    auto t1 = wait_task(task_id(list));
    EXPECT_EQ(get_string(t1, "state"), "failed");
    EXPECT_EQ(error_status(t1), 403);
    auto t2 = wait_task(task_id(remove));
    EXPECT_EQ(get_string(t2, "state"), "failed");
    EXPECT_EQ(error_status(t2), 404);
}

TEST_F(api_async, another_users_task_is_invisible) {
    auto note = insert(notes(), alice_.user_id);
    auto sub = run(async(make_op(op_kind::retrieve, "notes", note, alice_)));
    ASSERT_EQ(sub.status, 202);
    auto id = task_id(sub);
    auto task_op = [&](op_kind k, principal who, std::string subresource = {}) {
        auto op = make_op(k, "tasks", k == op_kind::list ? "" : id, std::move(who));
        op.subresource = std::move(subresource);
        return run(std::move(op));
    };
    auto missing_id = make_ulid(now_ms());
    for (const auto& who : {bob_, anonymous()}) {
        auto seen = task_op(op_kind::retrieve, who);
        EXPECT_EQ(seen.status, 404);
        auto none = make_op(op_kind::retrieve, "tasks", missing_id, who);
        EXPECT_EQ(json::serialize(seen.body), json::serialize(run(none).body));
        EXPECT_EQ(task_op(op_kind::retrieve, who, "result").status, 404);
        EXPECT_EQ(task_op(op_kind::remove, who).status, 404);
        EXPECT_EQ(task_op(op_kind::list, who).body.at("count"), 0);
    }
    EXPECT_EQ(task_op(op_kind::list, alice_).body.at("count"), 1);
    EXPECT_EQ(task_op(op_kind::list, root_).body.at("count"), 1);
    EXPECT_EQ(task_op(op_kind::retrieve, alice_).status, 200);  // pending: the workers are stopped
    EXPECT_EQ(task_op(op_kind::remove, alice_).status, 200);    // cancelled
}

}  // namespace

namespace livebase {
namespace {

// Task visibility: by id, an anonymous task is anyone anonymous's (the id is the capability);
// in lists and feeds, only its own address's. The address never leaves the server.
TEST(task_visibility, anonymous_callers_are_told_apart_by_address) {
    principal here;
    here.address = "192.0.2.1";
    principal there;
    there.address = "192.0.2.2";
    principal unknown;  // no address (an in-process call)
    principal ann;
    ann.user_id = "u-ann";
    ann.address = "192.0.2.1";
    principal root;
    root.user_id = "u-root";
    root.admin = true;
    EXPECT_EQ(here.owner_key(), "anon:192.0.2.1");
    EXPECT_EQ(ann.owner_key(), "u-ann");
    EXPECT_EQ(unknown.owner_key(), "");

    const json::object anon_task{{"id", "t1"}, {"owner", "anon:192.0.2.1"}};
    const json::object legacy{{"id", "t2"}, {"owner", nullptr}};
    const json::object anns{{"id", "t3"}, {"owner", "u-ann"}};
    for (const auto* t : {&anon_task, &legacy}) {
        EXPECT_TRUE(may_see_task(here, *t));
        EXPECT_TRUE(may_see_task(there, *t));
        EXPECT_FALSE(may_see_task(ann, *t));
        EXPECT_TRUE(may_see_task(root, *t));
    }
    EXPECT_TRUE(may_list_task(here, anon_task));
    EXPECT_FALSE(may_list_task(there, anon_task));
    EXPECT_FALSE(may_list_task(unknown, legacy));
    EXPECT_FALSE(may_list_task(here, anns));
    EXPECT_TRUE(may_list_task(ann, anns));
    EXPECT_FALSE(may_list_task(ann, anon_task));
    EXPECT_TRUE(may_list_task(root, anon_task));

    query q;
    ASSERT_TRUE(narrow_task_query(here, q));
    ASSERT_EQ(q.filters.size(), 1u);
    EXPECT_EQ(q.filters[0].field, "owner");
    EXPECT_EQ(q.filters[0].value, json::value("anon:192.0.2.1"));
    query none;
    EXPECT_FALSE(narrow_task_query(unknown, none));
    query all;
    EXPECT_TRUE(narrow_task_query(root, all));
    EXPECT_TRUE(all.filters.empty());

    auto shown = present_task(anon_task, "/api/tasks");
    EXPECT_TRUE(shown.at("owner").is_null());
    EXPECT_EQ(present_task(anns, "/api/tasks").at("owner"), json::value("u-ann"));
}

}  // namespace
}  // namespace livebase
