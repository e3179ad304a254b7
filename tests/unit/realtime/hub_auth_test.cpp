// The hub's part of authentication: revocations read from the change log (on_change) reset a
// client to anonymous and tell its door, and live-query windows are narrowed to what the
// client may retrieve before their limit applies.
#include "unit/realtime/hub_fixture.hpp"

#include <livebase/auth/rules.hpp>

#include <algorithm>
#include <stdexcept>

namespace livebase {
namespace {

using test::capturing_sink;
using test::car;
using test::decode;

principal user(std::string id, std::string token, bool admin = false) {
    principal p;
    p.user_id = id;
    p.username = "name-" + id;
    p.token_id = std::move(token);
    p.admin = admin;
    return p;
}

// The pks of the cars events (not live-query diffs) among `frames`.
std::vector<std::string> event_pks(const std::vector<std::shared_ptr<const std::string>>& frames) {
    std::vector<std::string> out;
    for (const auto& f : frames) {
        auto e = decode(*f);
        if (e.action != "observe") out.push_back(e.pk);
    }
    return out;
}

class hub_auth_test : public test::hub_test_base {
protected:
    void SetUp() override {
        hub_test_base::SetUp();
        // A car branded "revoke-user" / "revoke-token" stands for a change that ends the
        // credentials named in its notes (what authenticator::on_change says of a token
        // deleted or a user disabled).
        on_change_ = [](const change& ch) -> std::optional<revocation> {
            if (ch.collection != "cars" || ch.op != "create") return std::nullopt;
            auto brand = get_string(ch.record, "brand");
            auto notes = std::string(get_string(ch.record, "notes"));
            if (brand == "revoke-user") return revocation{notes, ""};
            if (brand == "revoke-token") return revocation{"", notes};
            if (brand == "revoke-nothing") return revocation{};
            if (brand == "throw") throw std::runtime_error("hook failure");
            return std::nullopt;
        };
        // Only signed-in clients see cars: a revoked client stops receiving events.
        may_see_ = [](const principal& who, const collection_def&, const json::object&) { return who.authenticated(); };
    }

    std::string subscribe_all(const std::string& client) {
        auto r = subscribe(client, subscribe_request{});
        EXPECT_TRUE(r.has_value());
        return r ? r->subscription : "";
    }
};

/// How many times each sink was reset by a revocation.
std::vector<std::size_t> revocations_of(std::initializer_list<std::shared_ptr<capturing_sink>> sinks) {
    std::vector<std::size_t> out;
    for (const auto& s : sinks) out.push_back(s->revocations());
    return out;
}

TEST_F(hub_auth_test, a_user_revocation_resets_every_socket_of_that_user) {
    start();
    auto a = std::make_shared<capturing_sink>();  // u1, token t1
    auto b = std::make_shared<capturing_sink>();  // u1, token t2
    auto c = std::make_shared<capturing_sink>();  // u2
    auto d = std::make_shared<capturing_sink>();  // anonymous
    auto ia = attach(a, user("u1", "t1"));
    auto ib = attach(b, user("u1", "t2"));
    auto ic = attach(c, user("u2", "t3"));
    auto id = attach(d);
    for (const auto& cl : {ia, ib, ic, id}) subscribe_all(cl);

    create(car("c1", {{"brand", "Ford"}}));
    create(car("c2", {{"brand", "revoke-user"}, {"notes", "u1"}}));
    const auto last = create(car("c3", {{"brand", "Kia"}}));
    ASSERT_TRUE(wait_seq(last));

    // An empty user id (d) is never "that user".
    EXPECT_EQ(revocations_of({a, b, c, d}), (std::vector<std::size_t>{1, 1, 0, 0}));
    // The revoking change is matched after the reset: u1's sockets see nothing from it on.
    EXPECT_EQ(event_pks(a->frames()), (std::vector<std::string>{"c1"}));
    EXPECT_EQ(event_pks(b->frames()), (std::vector<std::string>{"c1"}));
    EXPECT_EQ(event_pks(c->frames()), (std::vector<std::string>{"c1", "c2", "c3"}));
    EXPECT_TRUE(event_pks(d->frames()).empty());

    // Reset to anonymous once: a second revocation of u1 finds no client of u1.
    const auto again = create(car("c4", {{"brand", "revoke-user"}, {"notes", "u1"}}));
    ASSERT_TRUE(wait_seq(again));
    EXPECT_EQ(a->revocations(), 1u);
    EXPECT_EQ(b->revocations(), 1u);
}

TEST_F(hub_auth_test, a_token_revocation_resets_only_the_sockets_of_that_token) {
    start();
    auto a = std::make_shared<capturing_sink>();
    auto b = std::make_shared<capturing_sink>();
    auto c = std::make_shared<capturing_sink>();
    auto ia = attach(a, user("u1", "t1"));
    auto ib = attach(b, user("u1", "t2"));
    auto ic = attach(c, user("u2", "t1x"));
    for (const auto& cl : {ia, ib, ic}) subscribe_all(cl);

    create(car("c1", {{"brand", "revoke-token"}, {"notes", "t1"}}));
    const auto last = create(car("c2", {{"brand", "Ford"}}));
    ASSERT_TRUE(wait_seq(last));
    EXPECT_EQ(revocations_of({a, b, c}), (std::vector<std::size_t>{1, 0, 0}));
    EXPECT_TRUE(event_pks(a->frames()).empty());
    EXPECT_EQ(event_pks(b->frames()), (std::vector<std::string>{"c1", "c2"}));
}

TEST_F(hub_auth_test, empty_revocations_and_throwing_hooks_change_nothing) {
    start();
    auto a = std::make_shared<capturing_sink>();
    auto d = std::make_shared<capturing_sink>();
    auto ia = attach(a, user("u1", "t1"));
    auto id = attach(d);
    subscribe_all(ia);
    subscribe_all(id);
    create(car("c1", {{"brand", "revoke-nothing"}}));
    create(car("c2", {{"brand", "throw"}}));
    const auto last = create(car("c3", {{"brand", "Ford"}}));
    ASSERT_TRUE(wait_seq(last));
    EXPECT_EQ(a->revocations(), 0u);
    EXPECT_EQ(d->revocations(), 0u);
    // A hook that throws costs nobody an event.
    EXPECT_EQ(event_pks(a->frames()), (std::vector<std::string>{"c1", "c2", "c3"}));
}

TEST_F(hub_auth_test, revocations_come_from_the_log_not_from_callers) {
    // A change committed before a client attached (another process's, replayed from the log
    // only for resumes) is not a revocation of that client: only changes a pass reads count.
    start();
    auto a = std::make_shared<capturing_sink>();
    const auto before = create(car("c1", {{"brand", "revoke-user"}, {"notes", "u1"}}));
    ASSERT_TRUE(wait_seq(before));
    auto ia = attach(a, user("u1", "t1"));
    auto r = subscribe(ia, subscribe_request{"cars", "", {}, {}, std::int64_t{0}});
    ASSERT_TRUE(r.has_value());
    ASSERT_TRUE(a->wait_for(1));  // the replay of c1
    EXPECT_EQ(a->revocations(), 0u);
}

// ---- live queries narrowed to the caller's records ----

class hub_narrow_test : public test::hub_test_base {
protected:
    void SetUp() override {
        hub_test_base::SetUp();
        cars_.rules["list"] = access_rule::owner;
        cars_.rules["retrieve"] = access_rule::owner;
        may_see_ = [](const principal& who, const collection_def& c, const json::object& rec) {
            return may_retrieve(c, who, rec);
        };
    }

    // Three of u2's cars come first in model order, then two of u1's.
    void seed() {
        create(car("a1", {{"brand", "Ford"}, {"model", 2001}}, 1, "u2"));
        create(car("a2", {{"brand", "Ford"}, {"model", 2002}}, 1, "u2"));
        create(car("a3", {{"brand", "Ford"}, {"model", 2003}}, 1, "u2"));
        create(car("b1", {{"brand", "Ford"}, {"model", 2004}}, 1, "u1"));
        create(car("b2", {{"brand", "Ford"}, {"model", 2005}}, 1, "u1"));
    }

    /// seed(), start(), then attaches `sink` as `who`.
    std::string seed_and_attach(const std::shared_ptr<capturing_sink>& sink, principal who = {}) {
        seed();
        start();
        return attach(sink, std::move(who));
    }

    static std::vector<std::string> ids(const json::array& items) {
        std::vector<std::string> out;
        for (const auto& v : items) out.emplace_back(get_string(v.get_object(), "id"));
        return out;
    }

    // Live-query diffs among `frames`, as (msg, pk).
    static std::vector<std::pair<std::string, std::string>> diffs(
        const std::vector<std::shared_ptr<const std::string>>& frames) {
        std::vector<std::pair<std::string, std::string>> out;
        for (const auto& f : frames) {
            auto e = decode(*f);
            if (e.action != "observe") continue;
            const auto& d = e.data.get_object();
            out.emplace_back(get_string(d, "msg"), get_string(d, "pk"));
        }
        return out;
    }
};

const json::object k_window{{"ordering", "model"}, {"limit", 2}};

TEST_F(hub_narrow_test, the_limit_counts_only_the_callers_records) {
    auto s = std::make_shared<capturing_sink>();
    auto cl = seed_and_attach(s, user("u1", "t1"));
    auto o = observe(cl, k_window);
    ASSERT_TRUE(o.has_value());
    // may_see after the limit would have left an empty window over a2, a1.
    EXPECT_EQ(ids(o->items), (std::vector<std::string>{"b1", "b2"}));
    EXPECT_EQ(o->count, 2);
}

TEST_F(hub_narrow_test, admins_are_not_narrowed_and_anonymous_callers_see_nothing) {
    seed();
    start();
    auto sa = std::make_shared<capturing_sink>();
    auto sn = std::make_shared<capturing_sink>();
    auto admin = attach(sa, user("root", "t9", true));
    auto anon = attach(sn);
    auto oa = observe(admin, k_window);
    ASSERT_TRUE(oa.has_value());
    EXPECT_EQ(ids(oa->items), (std::vector<std::string>{"a1", "a2"}));
    EXPECT_EQ(oa->count, 5);
    auto on = observe(anon, k_window);
    ASSERT_TRUE(on.has_value());
    EXPECT_TRUE(on->items.empty());
    EXPECT_EQ(on->count, 0);

    const auto last = create(car("a0", {{"brand", "Ford"}, {"model", 1999}}, 1, "u2"));
    ASSERT_TRUE(wait_seq(last));
    EXPECT_EQ(diffs(sa->frames()).size(), 2u);  // a0 added, a2 pushed out
    EXPECT_TRUE(sn->frames().empty());
}

TEST_F(hub_narrow_test, other_owners_changes_never_reach_the_window) {
    auto s = std::make_shared<capturing_sink>();
    auto cl = seed_and_attach(s, user("u1", "t1"));
    ASSERT_TRUE(observe(cl, k_window).has_value());
    // u2's changes, even ones that would sort into the window, send nothing to u1.
    create(car("a0", {{"brand", "Ford"}, {"model", 1999}}, 1, "u2"));
    update(car("a3", {{"brand", "Kia"}, {"model", 2000}}, 2, "u2"));
    // Barrier: u1's own change arrives, so everything before it has been matched.
    const auto last = create(car("b0", {{"brand", "Ford"}, {"model", 1990}}, 1, "u1"));
    ASSERT_TRUE(wait_seq(last));
    auto d = diffs(s->frames());
    std::sort(d.begin(), d.end());
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0], (std::pair<std::string, std::string>{"added", "b0"}));
    EXPECT_EQ(d[1], (std::pair<std::string, std::string>{"removed", "b2"}));
}

// A REST `?observe=` names its caller: only the client's own principal may attach to it; for
// anyone else the client does not exist.
TEST_F(hub_auth_test, a_live_query_is_attached_only_by_the_clients_own_caller) {
    start();
    auto observe_as = [this](const std::string& client, principal caller) {
        std::promise<result<observed>> p;
        auto f = p.get_future();
        observe_request req{"cars", {}};
        req.caller = std::move(caller);
        hub_->observe(client, std::move(req), [&p](result<observed> r) { p.set_value(std::move(r)); });
        return test::wait_answer(f);
    };
    principal anon_here;
    anon_here.address = "10.0.0.1";
    principal anon_there;
    anon_there.address = "10.0.0.2";
    auto a = std::make_shared<capturing_sink>();
    auto u1 = attach(a, user("u1", "t1"));
    auto b = std::make_shared<capturing_sink>();
    auto anonymous = attach(b, anon_here);

    auto missing = observe_as("no-such-client", user("u1", "t1"));
    ASSERT_FALSE(missing.has_value());
    for (const auto& [client, caller] : std::vector<std::pair<std::string, principal>>{
             {u1, user("u2", "t9")}, {u1, user("u2", "t9", true)}, {u1, anon_here}, {anonymous, anon_there},
             {anonymous, user("u1", "t1")}}) {
        auto r = observe_as(client, caller);
        ASSERT_FALSE(r.has_value()) << caller.user_id << caller.address;
        EXPECT_EQ(r.error().status, 404);
        EXPECT_EQ(r.error().detail, missing.error().detail);
    }
    EXPECT_TRUE(observe_as(u1, user("u1", "another token")).has_value());
    EXPECT_TRUE(observe_as(anonymous, anon_here).has_value());
    // The WebSocket's own requests name no caller.
    EXPECT_TRUE(observe(u1, {}).has_value());
}

TEST_F(hub_narrow_test, a_new_identity_relists_the_window) {
    auto s = std::make_shared<capturing_sink>();
    auto cl = seed_and_attach(s);
    auto o = observe(cl, k_window);
    ASSERT_TRUE(o.has_value());
    EXPECT_TRUE(o->items.empty());
    // A login: the window follows without any write.
    hub_->set_principal(cl, user("u1", "t1"));
    ASSERT_TRUE(s->wait_for(2));
    auto d = diffs(s->frames());
    ASSERT_EQ(d.size(), 2u);
    EXPECT_EQ(d[0].first, "added");
    EXPECT_EQ(d[0].second, "b1");
    EXPECT_EQ(d[1].second, "b2");
}

TEST_F(hub_narrow_test, a_revoked_client_loses_its_window) {
    on_change_ = [](const change& ch) -> std::optional<revocation> {
        if (get_string(ch.record, "brand") == "revoke-user") return revocation{"u1", ""};
        return std::nullopt;
    };
    auto s = std::make_shared<capturing_sink>();
    auto cl = seed_and_attach(s, user("u1", "t1"));
    auto o = observe(cl, k_window);
    ASSERT_TRUE(o.has_value());
    ASSERT_EQ(o->items.size(), 2u);
    const auto last = create(car("x", {{"brand", "revoke-user"}, {"model", 1}}, 1, "u2"));
    ASSERT_TRUE(wait_seq(last));
    ASSERT_TRUE(s->wait_for(2));
    EXPECT_EQ(s->revocations(), 1u);
    for (const auto& [msg, pk] : diffs(s->frames())) {
        EXPECT_EQ(msg, "removed");
        EXPECT_NE(pk, "x");
    }
}

TEST_F(hub_narrow_test, a_narrow_hook_replaces_the_rules) {
    // The composition root may narrow differently (tasks: visibility by submitter).
    narrow_ = [](const principal&, const collection_def&, query& q) {
        q.filters.push_back({"model", lookup::gte, json::value(2003)});
        return true;
    };
    may_see_ = {};
    auto s = std::make_shared<capturing_sink>();
    auto cl = seed_and_attach(s);
    auto o = observe(cl, k_window);
    ASSERT_TRUE(o.has_value());
    EXPECT_EQ(ids(o->items), (std::vector<std::string>{"a3", "b1"}));
    EXPECT_EQ(o->count, 3);
}

}  // namespace
}  // namespace livebase
