// Rule enforcement in the one pipeline: every rule x every records operation and custom action x
// every kind of caller, with principals set directly on operations (no door involved).
#include <array>
#include <livebase/auth/rules.hpp>
#include <map>
#include <mutex>
#include <set>

#include "unit/api/api_fixture.hpp"

using namespace livebase;
using namespace livebase::api_test_support;

namespace {

enum caller { anon, other, owner_, admin_ };
constexpr std::array<caller, 4> k_callers{anon, other, owner_, admin_};
const char* caller_name(caller c) {
    static constexpr std::array<const char*, 4> names{"anonymous", "other user", "owner", "admin"};
    return names[c];
}
principal who(caller c) {
    switch (c) {
        case anon:
            return anonymous();
        case other:
            return user("u-other");
        case owner_:
            return user("u-owner");
        case admin_:
            return admin("u-admin");
    }
    return {};
}

enum class act { list, retrieve, create, update, patch, remove, list_action, detail_action };
constexpr std::array<act, 8> k_acts{act::list,        act::retrieve,     act::create,
                                    act::update,      act::patch,        act::remove,
                                    act::list_action, act::detail_action};
const char* act_name(act a) {
    static constexpr std::array<const char*, 8> names{
        "list", "retrieve", "create", "update", "patch", "delete", "list action", "detail action"};
    return names[static_cast<int>(a)];
}

using row = std::array<int, 4>;  // expected status per caller (k_callers order)

/// Family "all": every rule of the collection (list, retrieve, create, update, delete and both
/// actions' rules) is R. Family "write": list and retrieve are public, the rest is R.
enum class family { all, write };

struct expectation {
    access_rule rule;
    std::array<row, 8> by_act;  // k_acts order
};

// Hand-written from http.md (401 without credentials, 403 for a record the caller can see,
// 404 for one they cannot) and config.md's rule meanings.
const std::array<expectation, 5> k_all{{
    {access_rule::public_,
     {{{200, 200, 200, 200},
       {200, 200, 200, 200},
       {201, 201, 201, 201},
       {200, 200, 200, 200},
       {200, 200, 200, 200},
       {204, 204, 204, 204},
       {200, 200, 200, 200},
       {200, 200, 200, 200}}}},
    {access_rule::authenticated,
     {{{401, 200, 200, 200},
       {401, 200, 200, 200},
       {401, 201, 201, 201},
       {401, 200, 200, 200},
       {401, 200, 200, 200},
       {401, 204, 204, 204},
       {401, 200, 200, 200},
       {401, 200, 200, 200}}}},
    {access_rule::owner,
     {{{401, 200, 200, 200},
       {401, 404, 200, 200},
       {401, 201, 201, 201},
       {401, 404, 200, 200},
       {401, 404, 200, 200},
       {401, 404, 204, 204},
       {401, 200, 200, 200},
       {401, 404, 200, 200}}}},
    {access_rule::admin,
     {{{401, 403, 403, 200},
       {401, 404, 404, 200},
       {401, 403, 403, 201},
       {401, 404, 404, 200},
       {401, 404, 404, 200},
       {401, 404, 404, 204},
       {401, 403, 403, 200},
       {401, 404, 404, 200}}}},
    {access_rule::nobody,
     {{{403, 403, 403, 403},
       {404, 404, 404, 404},
       {403, 403, 403, 403},
       {404, 404, 404, 404},
       {404, 404, 404, 404},
       {404, 404, 404, 404},
       {403, 403, 403, 403},
       {404, 404, 404, 404}}}},
}};

const std::array<expectation, 5> k_write{{
    {access_rule::public_,
     {{{200, 200, 200, 200},
       {200, 200, 200, 200},
       {201, 201, 201, 201},
       {200, 200, 200, 200},
       {200, 200, 200, 200},
       {204, 204, 204, 204},
       {200, 200, 200, 200},
       {200, 200, 200, 200}}}},
    {access_rule::authenticated,
     {{{200, 200, 200, 200},
       {200, 200, 200, 200},
       {401, 201, 201, 201},
       {401, 200, 200, 200},
       {401, 200, 200, 200},
       {401, 204, 204, 204},
       {401, 200, 200, 200},
       {401, 200, 200, 200}}}},
    {access_rule::owner,
     {{{200, 200, 200, 200},
       {200, 200, 200, 200},
       {401, 201, 201, 201},
       {401, 403, 200, 200},
       {401, 403, 200, 200},
       {401, 403, 204, 204},
       {401, 200, 200, 200},
       {401, 403, 200, 200}}}},
    {access_rule::admin,
     {{{200, 200, 200, 200},
       {200, 200, 200, 200},
       {401, 403, 403, 201},
       {401, 403, 403, 200},
       {401, 403, 403, 200},
       {401, 403, 403, 204},
       {401, 403, 403, 200},
       {401, 403, 403, 200}}}},
    {access_rule::nobody,
     {{{200, 200, 200, 200},
       {200, 200, 200, 200},
       {403, 403, 403, 403},
       {403, 403, 403, 403},
       {403, 403, 403, 403},
       {403, 403, 403, 403},
       {403, 403, 403, 403},
       {403, 403, 403, 403}}}},
}};

/// Whether `c` may see a record owned by `record_owner` under retrieve rule `r` (config.md).
bool visible(access_rule r, caller c, const std::string& record_owner) {
    switch (r) {
        case access_rule::public_:
            return true;
        case access_rule::authenticated:
            return c != anon;
        case access_rule::owner:
            return c == admin_ || (c != anon && who(c).user_id == record_owner);
        case access_rule::admin:
            return c == admin_;
        case access_rule::nobody:
            return false;
    }
    return false;
}

struct matrix_param {
    family fam;
    access_rule rule;
};

std::string param_name(const ::testing::TestParamInfo<matrix_param>& info) {
    return std::string(info.param.fam == family::all ? "all_" : "writes_") +
           std::string(to_string(info.param.rule));
}

class rule_matrix : public api_fixture, public ::testing::WithParamInterface<matrix_param> {
protected:
    void SetUp() override {
        auto [fam, r] = GetParam();
        collection_def c;
        c.name = "notes";
        c.owned = true;
        c.fields = {string_field("title")};
        for (auto a : {"list", "retrieve", "create", "update", "delete"}) c.rules[a] = r;
        if (fam == family::write) c.rules["list"] = c.rules["retrieve"] = access_rule::public_;
        action_def stats;
        stats.name = "stats";
        stats.rule = r;
        action_def touch;
        touch.name = "touch";
        touch.detail = true;
        touch.rule = r;
        c.actions = {{"stats", stats}, {"touch", touch}};
        ASSERT_EQ(finalize(c), "");
        reg_.add_collection(c);
        auto ok = [](action_call& call) -> result<outcome> {
            return outcome::json_body(
                200, json::object{{"ok", true}, {"record", call.record != nullptr}});
        };
        reg_.add_action_handler("notes", "stats", ok);
        reg_.add_action_handler("notes", "touch", ok);
        start();
    }
    const collection_def& notes() { return *reg_.find("notes"); }
    const expectation& expected() {
        const auto& table = GetParam().fam == family::all ? k_all : k_write;
        for (const auto& e : table)
            if (e.rule == GetParam().rule) return e;
        throw std::logic_error("no expectation");
    }
    access_rule retrieve_rule() { return notes().rule_for("retrieve"); }

    operation op_for(act a, caller c, const std::string& id) {
        json::object body{{"title", "changed"}};
        switch (a) {
            case act::list: {
                auto op = make_op(op_kind::list, "notes", "", who(c));
                op.params = {{"limit", "500"}};
                return op;
            }
            case act::retrieve:
                return make_op(op_kind::retrieve, "notes", id, who(c));
            case act::create:
                return make_op(op_kind::create, "notes", "", who(c), body);
            case act::update:
                return make_op(op_kind::replace, "notes", id, who(c), body);
            case act::patch:
                return make_op(op_kind::patch, "notes", id, who(c), body);
            case act::remove:
                return make_op(op_kind::remove, "notes", id, who(c));
            case act::list_action:
                return action_op("notes", "", "stats", who(c));
            case act::detail_action:
                return action_op("notes", id, "touch", who(c));
        }
        return {};
    }
};

TEST_P(rule_matrix, status_of_every_action_for_every_caller) {
    const auto& e = expected();
    for (std::size_t i = 0; i < k_acts.size(); ++i) {
        auto a = k_acts[i];
        for (auto c : k_callers) {
            SCOPED_TRACE(std::string(act_name(a)) + " by " + caller_name(c));
            // A fresh record of the owner for every case: earlier cases update and delete.
            auto id = insert(notes(), "u-owner", {{"title", "original"}});
            auto seq_before = db_->last_seq();
            auto o = run(op_for(a, c, id));
            EXPECT_EQ(o.status, e.by_act[i][c]) << json::serialize(o.body);
            if (o.status >= 400) {
                EXPECT_TRUE(o.is_problem);
                // A refusal writes nothing: no change-log row, the record as it was.
                EXPECT_EQ(db_->last_seq(), seq_before);
                auto rec = stored(notes(), id);
                ASSERT_TRUE(rec);
                EXPECT_EQ((*rec)["title"], "original");
                EXPECT_EQ((*rec)["version"], 1);
            }
            if (a == act::create && o.status == 201) {
                // Owned by the caller (null for an anonymous caller of a public create).
                auto expect_owner = c == anon ? json::value(nullptr) : json::value(who(c).user_id);
                EXPECT_EQ(o.body.at("owner"), expect_owner);
            }
        }
    }
}

TEST_P(rule_matrix, list_rows_never_include_invisible_records) {
    std::map<std::string, std::string> owner_of{
        {insert(notes(), "u-owner", {{"title", "mine"}}), "u-owner"},
        {insert(notes(), "u-other", {{"title", "theirs"}}), "u-other"},
        {insert(notes(), "", {{"title", "nobody's"}}), ""},
    };
    for (auto c : k_callers) {
        SCOPED_TRACE(caller_name(c));
        auto o = run(op_for(act::list, c, ""));
        if (o.status != 200) continue;  // refusals are covered by the status matrix
        std::set<std::string> got;
        for (const auto& r : o.body.at("results").as_array())
            got.insert(std::string(r.at("id").as_string()));
        std::set<std::string> want;
        for (const auto& [id, owner] : owner_of)
            if (visible(retrieve_rule(), c, owner)) want.insert(id);
        EXPECT_EQ(got, want);
        EXPECT_EQ(o.body.at("count"), static_cast<std::int64_t>(want.size()));
    }
}

TEST_P(rule_matrix, a_hidden_record_answers_exactly_like_a_missing_one) {
    auto id = insert(notes(), "u-owner");
    auto missing = make_ulid(now_ms());
    for (auto c : k_callers) {
        if (visible(retrieve_rule(), c, "u-owner")) continue;
        SCOPED_TRACE(caller_name(c));
        for (auto a : {act::retrieve, act::update, act::patch, act::remove, act::detail_action}) {
            SCOPED_TRACE(act_name(a));
            auto hidden = run(op_for(a, c, id));
            auto absent = run(op_for(a, c, missing));
            EXPECT_EQ(hidden.status, absent.status);
            EXPECT_EQ(json::serialize(hidden.body), json::serialize(absent.body));
            EXPECT_EQ(hidden.headers, absent.headers);
        }
    }
}

std::vector<matrix_param> all_params() {
    std::vector<matrix_param> out;
    for (auto fam : {family::all, family::write})
        for (auto r : {access_rule::public_, access_rule::authenticated, access_rule::owner,
                       access_rule::admin, access_rule::nobody})
            out.push_back({fam, r});
    return out;
}

INSTANTIATE_TEST_SUITE_P(rules, rule_matrix, ::testing::ValuesIn(all_params()), param_name);

// ---------------------------------------------------------------------------------------------
// The C++ permission callback.

class callback_test : public api_fixture {
protected:
    void SetUp() override {
        auto c = titled("docs");
        test::open_to_everyone(c);
        action_def publish;
        publish.name = "publish";
        publish.detail = true;
        publish.rule = access_rule::public_;
        c.actions = {{"publish", publish}};
        // Non-admins cannot see "secret" documents nor touch "locked" ones; nobody creates a
        // "forbidden" one; the user "u-blind" may not list at all; "publish" is for admins.
        c.permission = [](const principal& p, std::string_view action, const json::object* rec) {
            std::string title = rec ? std::string(get_string(*rec, "title")) : "";
            if (action == "list") return rec == nullptr && p.user_id != "u-blind";
            if (action == "retrieve") return p.admin || title != "secret";
            if (action == "create") return title != "forbidden";
            if (action == "publish") return p.admin;
            return p.admin || title != "locked";
        };
        ASSERT_EQ(finalize(c), "");
        reg_.add_collection(c);
        reg_.add_action_handler("docs", "publish", [](action_call&) -> result<outcome> {
            return outcome::json_body(200, json::object{{"published", true}});
        });
        start();
    }
    const collection_def& docs() { return *reg_.find("docs"); }
};

TEST_F(callback_test, list_rows_pass_the_callback_and_list_itself_can_be_refused) {
    auto open = insert(docs(), "u1", {{"title", "open"}});
    auto secret = insert(docs(), "u1", {{"title", "secret"}});
    auto list = [&](principal p) {
        auto op = make_op(op_kind::list, "docs", "", std::move(p));
        return run(std::move(op));
    };
    auto o = list(user("u1"));
    ASSERT_EQ(o.status, 200);
    const auto& rows = o.body.at("results").as_array();
    ASSERT_EQ(rows.size(), 1u);
    EXPECT_EQ(rows[0].at("id"), json::value(open));
    // The count comes from the store before the callback ran: it may over-count.
    EXPECT_EQ(o.body.at("count"), 2);
    auto a = list(admin());
    ASSERT_EQ(a.status, 200);
    EXPECT_EQ(a.body.at("results").as_array().size(), 2u);
    EXPECT_EQ(list(user("u-blind")).status, 403);
    (void)secret;
}

TEST_F(callback_test, retrieve_refused_by_the_callback_is_a_404_like_a_missing_record) {
    auto secret = insert(docs(), "u1", {{"title", "secret"}});
    auto hidden = run(make_op(op_kind::retrieve, "docs", secret, user("u1")));
    auto missing = run(make_op(op_kind::retrieve, "docs", make_ulid(now_ms()), user("u1")));
    EXPECT_EQ(hidden.status, 404);
    EXPECT_EQ(json::serialize(hidden.body), json::serialize(missing.body));
    EXPECT_EQ(run(make_op(op_kind::retrieve, "docs", secret, admin())).status, 200);
    // Writes and actions on it are hidden too.
    EXPECT_EQ(run(make_op(op_kind::patch, "docs", secret, user("u1"), json::object{{"title", "x"}}))
                  .status,
              404);
    EXPECT_EQ(run(make_op(op_kind::remove, "docs", secret, anonymous())).status, 404);
    EXPECT_EQ(run(action_op("docs", secret, "publish", admin())).status, 200);
}

TEST_F(callback_test, refused_writes_are_403_and_write_nothing) {
    auto locked = insert(docs(), "u1", {{"title", "locked"}});
    auto seq = db_->last_seq();
    EXPECT_EQ(run(make_op(op_kind::patch, "docs", locked, user("u1"), json::object{{"title", "x"}}))
                  .status,
              403);
    EXPECT_EQ(
        run(make_op(op_kind::replace, "docs", locked, user("u1"), json::object{{"title", "x"}}))
            .status,
        403);
    EXPECT_EQ(run(make_op(op_kind::remove, "docs", locked, user("u1"))).status, 403);
    EXPECT_EQ(run(action_op("docs", locked, "publish", user("u1"))).status, 403);
    EXPECT_EQ(
        run(make_op(op_kind::create, "docs", "", user("u1"), json::object{{"title", "forbidden"}}))
            .status,
        403);
    EXPECT_EQ(db_->last_seq(), seq);
    EXPECT_EQ(
        run(make_op(op_kind::patch, "docs", locked, admin(), json::object{{"title", "x"}})).status,
        200);
}

TEST_F(callback_test, create_callback_sees_the_record_about_to_be_stored) {
    std::promise<json::object> seen;
    auto& c = *reg_.find_mutable("docs");
    auto once = std::make_shared<std::once_flag>();
    c.permission = [&seen, once](const principal&, std::string_view action,
                                 const json::object* rec) {
        if (action == "create" && rec) std::call_once(*once, [&] { seen.set_value(*rec); });
        return true;
    };
    auto o = run(make_op(op_kind::create, "docs", "", user("u7"), json::object{{"title", "t"}}));
    ASSERT_EQ(o.status, 201);
    auto rec = seen.get_future().get();
    EXPECT_EQ(rec.at("owner"), "u7");
    EXPECT_EQ(rec.at("title"), "t");
    EXPECT_EQ(rec.at("id"), o.body.at("id"));
}

}  // namespace
