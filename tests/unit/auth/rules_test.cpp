// The decision table of access rules (src/auth/rules.cpp): every rule against every kind of
// caller, for collection-level requests, record visibility, detail requests, list narrowing
// and the C++ permission callback.
#include <gtest/gtest.h>

#include <array>
#include <atomic>
#include <livebase/auth/rules.hpp>
#include <stdexcept>

using namespace livebase;

namespace {

enum caller { anon, other, owner_, admin_ };
constexpr std::array<caller, 4> k_callers{anon, other, owner_, admin_};
constexpr std::array<access_rule, 5> k_rules{access_rule::public_, access_rule::authenticated,
                                             access_rule::owner, access_rule::admin,
                                             access_rule::nobody};

principal who(caller c) {
    principal p;
    switch (c) {
        case anon:
            break;
        case other:
            p.user_id = "u-other";
            break;
        case owner_:
            p.user_id = "u-owner";
            break;
        case admin_:
            p.user_id = "u-admin";
            p.admin = true;
            break;
    }
    p.username = p.user_id;
    return p;
}

const char* name(caller c) {
    static constexpr std::array<const char*, 4> names{"anonymous", "other user", "owner", "admin"};
    return names[c];
}

constexpr auto A = decision::allow;
constexpr auto U = decision::unauthenticated;
constexpr auto F = decision::forbidden;
constexpr auto H = decision::hidden;

collection_def notes(access_rule retrieve) {
    collection_def c;
    c.name = "notes";
    c.owned = true;
    field_def title;
    title.name = "title";
    c.fields = {title};
    c.rules["retrieve"] = retrieve;
    EXPECT_EQ(finalize(c), "");
    return c;
}

const json::object k_record{{"id", "r1"}, {"owner", "u-owner"}, {"title", "hello"}, {"version", 1}};

TEST(rules, check_rule_table) {
    // Rows follow k_rules, columns k_callers.
    const std::array<std::array<decision, 4>, 5> expected{{
        {A, A, A, A},  // public
        {U, A, A, A},  // authenticated
        {U, A, A, A},  // owner: any user (lists are narrowed, creates owned by the caller)
        {U, F, F, A},  // admin
        {F, F, F, F},  // nobody: admins included
    }};
    for (std::size_t r = 0; r < k_rules.size(); ++r)
        for (auto c : k_callers)
            EXPECT_EQ(check_rule(k_rules[r], who(c)), expected[r][c])
                << to_string(k_rules[r]) << " / " << name(c);
}

TEST(rules, may_retrieve_table) {
    const std::array<std::array<bool, 4>, 5> expected{{
        {true, true, true, true},      // public
        {false, true, true, true},     // authenticated
        {false, false, true, true},    // owner: the owner or an admin
        {false, false, false, true},   // admin
        {false, false, false, false},  // nobody
    }};
    for (std::size_t r = 0; r < k_rules.size(); ++r) {
        auto c = notes(k_rules[r]);
        for (auto k : k_callers)
            EXPECT_EQ(may_retrieve(c, who(k), k_record), expected[r][k])
                << to_string(k_rules[r]) << " / " << name(k);
    }
}

TEST(rules, check_record_on_a_visible_record_applies_the_rule) {
    // retrieve public: every caller sees the record; the action's rule decides.
    auto c = notes(access_rule::public_);
    const std::array<std::array<decision, 4>, 5> expected{{
        {A, A, A, A},  // public
        {U, A, A, A},  // authenticated
        {U, F, A, A},  // owner: 403 for another user (they can see it)
        {U, F, F, A},  // admin
        {F, F, F, F},  // nobody
    }};
    for (std::size_t r = 0; r < k_rules.size(); ++r)
        for (auto k : k_callers)
            EXPECT_EQ(check_record(c, "update", k_rules[r], who(k), k_record), expected[r][k])
                << to_string(k_rules[r]) << " / " << name(k);
}

TEST(rules, check_record_on_an_invisible_record_is_hidden_or_asks_for_credentials) {
    // Rows: the retrieve rule; the action rule is public, so only visibility decides.
    const std::array<std::array<decision, 4>, 5> expected{{
        {A, A, A, A},  // public
        {U, A, A, A},  // authenticated
        {U, H, A, A},  // owner: another user gets the 404 of a missing record
        {U, H, H, A},  // admin
        {H, H, H, H},  // nobody: credentials would not help, so no 401 either
    }};
    for (std::size_t r = 0; r < k_rules.size(); ++r) {
        auto c = notes(k_rules[r]);
        for (auto k : k_callers)
            EXPECT_EQ(check_record(c, "delete", access_rule::public_, who(k), k_record),
                      expected[r][k])
                << "retrieve " << to_string(k_rules[r]) << " / " << name(k);
    }
}

TEST(rules, hidden_wins_over_forbidden) {
    // Retrieve owner + update admin: a user who cannot see the record must not learn that it
    // exists from a 403.
    auto c = notes(access_rule::owner);
    EXPECT_EQ(check_record(c, "update", access_rule::admin, who(other), k_record), H);
    EXPECT_EQ(check_record(c, "update", access_rule::admin, who(owner_), k_record), F);
    EXPECT_EQ(check_record(c, "update", access_rule::admin, who(admin_), k_record), A);
}

TEST(rules, narrow_query_table) {
    struct row {
        bool any;
        bool owner_filter;
    };
    const std::array<std::array<row, 4>, 5> expected{{
        {{{true, false}, {true, false}, {true, false}, {true, false}}},      // public
        {{{false, false}, {true, false}, {true, false}, {true, false}}},     // authenticated
        {{{false, false}, {true, true}, {true, true}, {true, false}}},       // owner: admins not
                                                                             // narrowed
        {{{false, false}, {false, false}, {false, false}, {true, false}}},   // admin
        {{{false, false}, {false, false}, {false, false}, {false, false}}},  // nobody
    }};
    for (std::size_t r = 0; r < k_rules.size(); ++r) {
        auto c = notes(k_rules[r]);
        for (auto k : k_callers) {
            query q;
            q.filters.push_back({"title", lookup::exact, json::value("x")});
            auto p = who(k);
            bool any = narrow_query(c, p, q);
            const auto& e = expected[r][k];
            SCOPED_TRACE(std::string(to_string(k_rules[r])) + " / " + name(k));
            EXPECT_EQ(any, e.any);
            if (!any) continue;
            ASSERT_EQ(q.filters.size(), e.owner_filter ? 2u : 1u);
            EXPECT_EQ(q.filters[0].field, "title");  // the caller's filters stay
            if (e.owner_filter) {
                EXPECT_EQ(q.filters[1].field, "owner");
                EXPECT_EQ(q.filters[1].op, lookup::exact);
                EXPECT_EQ(q.filters[1].value, json::value(p.user_id));
            }
        }
    }
}

TEST(rules, narrow_query_agrees_with_may_retrieve) {
    // Whatever narrow_query lets through (applied in memory here) is exactly what may_retrieve
    // allows, for records of several owners.
    const std::array<json::object, 3> records{
        json::object{{"id", "a"}, {"owner", "u-owner"}},
        json::object{{"id", "b"}, {"owner", "u-other"}},
        json::object{{"id", "c"}, {"owner", nullptr}},
    };
    for (auto rule : k_rules) {
        auto c = notes(rule);
        for (auto k : k_callers) {
            query q;
            bool any = narrow_query(c, who(k), q);
            for (const auto& rec : records) {
                bool listed = any && matches(q.filters, rec);
                EXPECT_EQ(listed, may_retrieve(c, who(k), rec))
                    << to_string(rule) << " / " << name(k) << " / " << get_string(rec, "id");
            }
        }
    }
}

TEST(rules, callback_refusing_retrieve_hides_the_record) {
    auto c = notes(access_rule::public_);
    c.permission = [](const principal& p, std::string_view action, const json::object* rec) {
        return !(action == "retrieve" && rec && get_string(*rec, "title") == "secret" && !p.admin);
    };
    json::object secret{{"id", "s"}, {"owner", "u-owner"}, {"title", "secret"}};
    EXPECT_FALSE(may_retrieve(c, who(owner_), secret));
    EXPECT_TRUE(may_retrieve(c, who(admin_), secret));
    EXPECT_TRUE(may_retrieve(c, who(owner_), k_record));
    // Hidden for users; an anonymous caller gets the same 404 (the rule itself is public, so
    // credentials are not what is missing).
    EXPECT_EQ(check_record(c, "update", access_rule::public_, who(other), secret), H);
    EXPECT_EQ(check_record(c, "update", access_rule::public_, who(anon), secret), H);
    EXPECT_EQ(check_record(c, "update", access_rule::public_, who(admin_), secret), A);
}

TEST(rules, callback_refusing_an_action_is_forbidden_and_sees_its_arguments) {
    auto c = notes(access_rule::public_);
    std::string seen_action;
    const json::object* seen_record = nullptr;
    c.permission = [&](const principal& p, std::string_view action, const json::object* rec) {
        if (action != "retrieve") {
            seen_action = std::string(action);
            seen_record = rec;
        }
        return !(action == "publish" && p.user_id == "u-other");
    };
    EXPECT_EQ(check_record(c, "publish", access_rule::authenticated, who(other), k_record), F);
    EXPECT_EQ(seen_action, "publish");
    EXPECT_EQ(seen_record, &k_record);
    EXPECT_EQ(check_record(c, "publish", access_rule::authenticated, who(owner_), k_record), A);
    // A rule refusal stops before the callback.
    seen_action.clear();
    EXPECT_EQ(check_record(c, "publish", access_rule::admin, who(other), k_record), F);
    EXPECT_EQ(seen_action, "");
    // Collection-level calls pass a null record.
    EXPECT_TRUE(permission_allows(c, who(owner_), "list", nullptr));
    EXPECT_EQ(seen_action, "list");
    EXPECT_EQ(seen_record, nullptr);
}

TEST(rules, retrieve_asks_the_callback_once) {
    auto c = notes(access_rule::public_);
    auto calls = std::make_shared<std::atomic<int>>(0);
    c.permission = [calls](const principal&, std::string_view, const json::object*) {
        ++*calls;
        return true;
    };
    EXPECT_EQ(check_record(c, "retrieve", c.rule_for("retrieve"), who(other), k_record), A);
    EXPECT_EQ(calls->load(), 1);
}

TEST(rules, a_throwing_callback_refuses) {
    auto c = notes(access_rule::public_);
    c.permission = [](const principal&, std::string_view action, const json::object*) -> bool {
        if (action == "retrieve") throw std::runtime_error("bug");
        throw 42;  // not even an exception type
    };
    EXPECT_FALSE(may_retrieve(c, who(admin_), k_record));
    EXPECT_EQ(check_record(c, "update", access_rule::public_, who(admin_), k_record), H);
    EXPECT_FALSE(permission_allows(c, who(admin_), "list", nullptr));
    EXPECT_FALSE(permission_allows(c, who(admin_), "create", &k_record));
}

TEST(rules, a_refusal_carries_the_permissions_reason) {
    auto c = notes(access_rule::public_);
    c.permission = [](const principal&, std::string_view action, const json::object*) -> verdict {
        if (action == "delete") return verdict::deny("Archived notes stay.");
        if (action == "list") return false;  // a bool still works: refused without a reason
        return verdict::allow();
    };
    std::string why;
    EXPECT_EQ(check_record(c, "delete", access_rule::public_, who(admin_), k_record, &why), F);
    EXPECT_EQ(why, "Archived notes stay.");
    EXPECT_EQ(refusal_problem(F, why).detail, "Archived notes stay.");
    EXPECT_EQ(refusal_problem(F).detail, "You do not have permission to perform this action.");
    auto v = permission_verdict(c, who(admin_), "list", nullptr);
    EXPECT_FALSE(v.allowed);
    EXPECT_TRUE(v.reason.empty());
    EXPECT_TRUE(permission_verdict(c, who(anon), "update", &k_record).allowed);
}

TEST(rules, no_callback_allows) {
    auto c = notes(access_rule::public_);
    EXPECT_TRUE(permission_allows(c, who(anon), "create", nullptr));
}

TEST(rules, refusal_problems) {
    EXPECT_EQ(refusal_problem(U).status, 401);
    EXPECT_EQ(refusal_problem(F).status, 403);
    EXPECT_EQ(refusal_problem(H).status, 404);
    // The 404 of a hidden record is byte for byte the 404 of a missing one.
    EXPECT_EQ(json::serialize(refusal_problem(H).to_json()),
              json::serialize(problem::not_found().to_json()));
}

TEST(rules, default_rules_read_openly_and_write_with_a_user) {
    auto c = notes(access_rule::public_);
    c.rules.clear();
    EXPECT_EQ(c.rule_for("list"), access_rule::public_);
    EXPECT_EQ(c.rule_for("retrieve"), access_rule::public_);
    for (auto a : {"create", "update", "delete"})
        EXPECT_EQ(c.rule_for(a), access_rule::authenticated) << a;
}

}  // namespace
