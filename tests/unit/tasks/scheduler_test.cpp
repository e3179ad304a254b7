// Schedules: the built-in collection, prepare_schedule()'s checks and next_run, and the
// scheduler's passes (on time, missed ticks skipped or run once, several schedulers at once)
// on a real store, on a clock the test moves.
#include "unit/tasks/tasks_test_support.hpp"

#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/tasks/scheduler.hpp>

#include <set>
#include <thread>

namespace livebase {
namespace {

using test::id_of;

bool known(std::string_view kind) { return kind == "report" || kind == "cleanup"; }

/// A stored schedule as the api would store it (prepare_schedule is its before-hook).
json::object schedule_record(json::object fields, std::int64_t now, std::string owner = "admin1") {
    json::object rec{{"id", make_ulid(now)},       {"created", format_timestamp(now)},
                     {"updated", format_timestamp(now)}, {"version", 1},
                     {"owner", owner},             {"name", nullptr},
                     {"input", nullptr},           {"cron", nullptr},
                     {"every", nullptr},           {"timezone", "UTC"},
                     {"enabled", true},            {"missed", "skip"}};
    for (auto& [k, v] : fields) rec[k] = v;
    return rec;
}

TEST(schedules_collection_test, is_a_valid_admin_only_owned_collection) {
    auto c = schedules_collection();
    EXPECT_EQ(c.name, "schedules");
    EXPECT_TRUE(c.owned);
    EXPECT_TRUE(c.built_in);
    EXPECT_EQ(finalize(c), "");
    for (auto action : {"list", "retrieve", "create", "update", "delete"})
        EXPECT_EQ(c.rule_for(action), access_rule::admin) << action;
    for (auto name : {"next_run", "last_run", "last_task"}) {
        auto* f = c.find_field(name);
        ASSERT_NE(f, nullptr) << name;
        EXPECT_TRUE(f->read_only) << name;
    }
    EXPECT_TRUE(is_reserved_collection_name("schedules"));
}

TEST(prepare_schedule_test, names_every_bad_field) {
    const std::int64_t now = 1'700'000'000'000;
    struct bad {
        json::object fields;
        const char* field;
    };
    for (const auto& b : {
             bad{{{"kind", "report"}}, "cron"},                                       // neither
             bad{{{"kind", "report"}, {"cron", "* * * * *"}, {"every", "1m"}}, "every"},  // both
             bad{{{"kind", "report"}, {"cron", "61 * * * *"}}, "cron"},
             bad{{{"kind", "report"}, {"cron", "0 0 30 2 *"}}, "cron"},  // never ticks
             bad{{{"kind", "report"}, {"every", "soon"}}, "every"},
             bad{{{"kind", "report"}, {"every", "500ms"}}, "every"},
             bad{{{"kind", "report"}, {"every", "400d"}}, "every"},
             bad{{{"kind", "report"}, {"every", "1m"}, {"timezone", "Mars/Olympus"}}, "timezone"},
             bad{{{"kind", "mine_bitcoin"}, {"every", "1m"}}, "kind"},
         }) {
        auto rec = schedule_record(b.fields, now);
        auto r = prepare_schedule(rec, nullptr, now, known);
        ASSERT_FALSE(r) << json::serialize(b.fields);
        EXPECT_EQ(r.error().status, 400);
        auto body = r.error().to_json();
        EXPECT_NE(json::serialize(body).find(std::string("\"") + b.field + "\""), std::string::npos)
            << json::serialize(body);
    }
}

TEST(prepare_schedule_test, sets_next_run_from_cron_or_period_and_keeps_it_while_the_timing_stays) {
    const std::int64_t now = *parse_timestamp("2026-01-05T10:07:30Z");
    auto rec = schedule_record({{"kind", "report"}, {"cron", "0 9 * * *"}, {"timezone", "Europe/Berlin"}}, now);
    ASSERT_TRUE(prepare_schedule(rec, nullptr, now, known));
    EXPECT_EQ(get_string(rec, "next_run"), "2026-01-06T08:00:00.000Z");
    EXPECT_TRUE(rec.at("last_run").is_null());

    auto every = schedule_record({{"kind", "report"}, {"every", "15m"}}, now);
    ASSERT_TRUE(prepare_schedule(every, nullptr, now, known));
    EXPECT_EQ(get_string(every, "next_run"), "2026-01-05T10:15:00.000Z");

    // An update that keeps the timing keeps next_run (and the scheduler's own fields), even
    // when asked later.
    auto stored = every;
    stored["last_run"] = "2026-01-05T10:00:00.000Z";
    stored["last_task"] = "t1";
    auto renamed = stored;
    renamed["name"] = "nightly";
    renamed["last_task"] = "forged";
    ASSERT_TRUE(prepare_schedule(renamed, &stored, now + 3'600'000, known));
    EXPECT_EQ(get_string(renamed, "next_run"), "2026-01-05T10:15:00.000Z");
    EXPECT_EQ(get_string(renamed, "last_task"), "t1");
    // A new period starts from now.
    auto faster = stored;
    faster["every"] = "1h";
    ASSERT_TRUE(prepare_schedule(faster, &stored, now, known));
    EXPECT_EQ(get_string(faster, "next_run"), "2026-01-05T11:00:00.000Z");
    // Disabled: no next run; enabled again: the next tick after now.
    auto off = stored;
    off["enabled"] = false;
    ASSERT_TRUE(prepare_schedule(off, &stored, now, known));
    EXPECT_TRUE(off.at("next_run").is_null());
    auto on = off;
    on["enabled"] = true;
    ASSERT_TRUE(prepare_schedule(on, &off, now + 20 * 60'000, known));
    EXPECT_EQ(get_string(on, "next_run"), "2026-01-05T10:30:00.000Z");
}

class scheduler_test : public test::queue_fixture {
protected:
    scheduler_test() {
        if (ts_.db) test::migrate_or_die(*ts_.db, schedules_collection());
    }

    scheduler_options options() {
        scheduler_options o;
        o.clock = [this] { return clock_.load(); };
        o.make_submission = [](std::string_view kind, json::value input, const principal& who) -> result<task_submission> {
            if (!known(kind)) return problem::bad_request("Unknown task kind.");
            task_submission s;
            s.kind = std::string(kind);
            s.input = std::move(input);
            s.who = who;
            return s;
        };
        return o;
    }

    /// Stores a schedule (prepared at the test clock); its id.
    std::string add(json::object fields, std::string owner = "admin1") {
        auto rec = schedule_record(std::move(fields), clock_.load(), std::move(owner));
        auto prepared = prepare_schedule(rec, nullptr, clock_.load(), known);
        EXPECT_TRUE(prepared) << (prepared ? "" : prepared.error().detail);
        auto w = ts_.db->write_sync([&](write_txn& txn) -> result<json::value> {
            if (auto r = txn.insert(schedules_collection(), rec); !r) return std::move(r).error();
            return json::value(nullptr);
        });
        EXPECT_TRUE(w) << (w ? "" : w.error().detail);
        return id_of(rec);
    }

    json::object schedule(const std::string& id) {
        auto r = ts_.db->get_sync(schedules_collection(), id);
        EXPECT_TRUE(r && *r);
        return r && *r ? **r : json::object{};
    }

    std::vector<json::object> tasks_of(const std::string& schedule_id) {
        query q;
        q.filters = {{"schedule", lookup::exact, json::value(schedule_id)}};
        q.ordering = {{"tick", false}};
        q.limit = 1000;
        auto r = ts_.db->list_sync(tasks_collection(), q);
        EXPECT_TRUE(r);
        return r ? r->items : std::vector<json::object>{};
    }

    scheduler_pass pass(scheduler& s) {
        auto r = s.run_due();
        EXPECT_TRUE(r) << (r ? "" : r.error().detail);
        return r ? *r : scheduler_pass{};
    }
};

TEST_F(scheduler_test, a_due_tick_becomes_one_task_of_the_schedules_owner) {
    clock_ = *parse_timestamp("2026-01-05T10:00:00.300Z");
    auto id = add({{"kind", "report"}, {"every", "1s"}, {"input", json::object{{"n", 1}}}});
    scheduler s(*ts_.db, queue_, options());

    auto idle = pass(s);  // nothing due yet
    EXPECT_EQ(idle.made, 0u);
    EXPECT_EQ(idle.next_due, *parse_timestamp("2026-01-05T10:00:01Z"));

    clock_ = *parse_timestamp("2026-01-05T10:00:01.020Z");
    auto p = pass(s);
    EXPECT_EQ(p.made, 1u);
    EXPECT_EQ(p.next_due, *parse_timestamp("2026-01-05T10:00:02Z"));
    auto made = tasks_of(id);
    ASSERT_EQ(made.size(), 1u);
    const auto& t = made.front();
    EXPECT_EQ(get_string(t, "kind"), "report");
    EXPECT_EQ(get_string(t, "state"), "pending");
    EXPECT_EQ(get_string(t, "owner"), "admin1");
    EXPECT_EQ(t.at("input"), (json::object{{"n", 1}}));
    EXPECT_EQ(get_string(t, "tick"), "2026-01-05T10:00:01.000Z");
    auto sched = schedule(id);
    EXPECT_EQ(get_string(sched, "last_run"), "2026-01-05T10:00:01.000Z");
    EXPECT_EQ(get_string(sched, "last_task"), id_of(t));
    EXPECT_EQ(get_string(sched, "next_run"), "2026-01-05T10:00:02.000Z");

    // The task is due at once: a worker claims it.
    auto claimed = queue_.claim("w1", clock_.load(), std::chrono::milliseconds(1000));
    ASSERT_TRUE(claimed && *claimed);
    EXPECT_EQ(id_of(**claimed), id_of(t));

    // Presented, the task names its schedule and tick.
    auto shown = present_task(t, "/api/tasks");
    EXPECT_EQ(get_string(shown, "schedule"), id);
    EXPECT_EQ(get_string(shown, "tick"), "2026-01-05T10:00:01.000Z");

    // Again at the same time: nothing more.
    EXPECT_EQ(pass(s).made, 0u);
    EXPECT_EQ(tasks_of(id).size(), 1u);
}

TEST_F(scheduler_test, a_pass_behind_by_a_few_ticks_catches_up_one_task_per_tick) {
    clock_ = *parse_timestamp("2026-01-05T10:00:00Z");
    auto id = add({{"kind", "report"}, {"every", "1s"}});
    clock_ = *parse_timestamp("2026-01-05T10:00:05.500Z");  // 5 ticks due, within the grace
    scheduler s(*ts_.db, queue_, options());
    std::size_t made = 0;
    for (int i = 0; i < 10 && made < 5; ++i) made += pass(s).made;
    EXPECT_EQ(made, 5u);
    std::set<std::string> ticks;
    for (const auto& t : tasks_of(id)) ticks.insert(std::string(get_string(t, "tick")));
    EXPECT_EQ(ticks, (std::set<std::string>{"2026-01-05T10:00:01.000Z", "2026-01-05T10:00:02.000Z",
                                            "2026-01-05T10:00:03.000Z", "2026-01-05T10:00:04.000Z",
                                            "2026-01-05T10:00:05.000Z"}));
    EXPECT_EQ(get_string(schedule(id), "next_run"), "2026-01-05T10:00:06.000Z");
}

TEST_F(scheduler_test, missed_ticks_are_skipped_or_run_once) {
    clock_ = *parse_timestamp("2026-01-05T10:00:00Z");
    auto skip = add({{"kind", "report"}, {"every", "1m"}});
    auto once = add({{"kind", "cleanup"}, {"every", "1m"}, {"missed", "once"}});
    // Every node was down for an hour.
    clock_ = *parse_timestamp("2026-01-05T11:00:30Z");
    scheduler s(*ts_.db, queue_, options());
    auto p = pass(s);
    EXPECT_EQ(p.made, 1u);
    EXPECT_EQ(p.skipped, 1u);
    EXPECT_TRUE(tasks_of(skip).empty());
    auto ran = tasks_of(once);
    ASSERT_EQ(ran.size(), 1u);
    EXPECT_EQ(get_string(ran.front(), "tick"), "2026-01-05T10:01:00.000Z");  // the first missed tick
    // Both go on from the next tick after now.
    EXPECT_EQ(get_string(schedule(skip), "next_run"), "2026-01-05T11:01:00.000Z");
    EXPECT_EQ(get_string(schedule(once), "next_run"), "2026-01-05T11:01:00.000Z");
    EXPECT_EQ(pass(s).made, 0u);
}

TEST_F(scheduler_test, disabled_schedules_and_kinds_no_longer_served_make_no_task) {
    clock_ = *parse_timestamp("2026-01-05T10:00:00Z");
    auto off = add({{"kind", "report"}, {"every", "1s"}, {"enabled", false}});
    auto gone = add({{"kind", "cleanup"}, {"every", "1s"}});
    clock_ = *parse_timestamp("2026-01-05T10:00:01.010Z");
    auto o = options();
    o.make_submission = [](std::string_view, json::value, const principal&) -> result<task_submission> {
        return problem::bad_request("Unknown task kind.");
    };
    scheduler s(*ts_.db, queue_, o);
    auto p = pass(s);
    EXPECT_EQ(p.made, 0u);
    EXPECT_TRUE(tasks_of(off).empty());
    EXPECT_TRUE(tasks_of(gone).empty());
    // The schedule goes on (the kind may come back with the next config).
    EXPECT_EQ(get_string(schedule(gone), "next_run"), "2026-01-05T10:00:02.000Z");
}

TEST_F(scheduler_test, a_tick_can_never_become_two_tasks) {
    clock_ = *parse_timestamp("2026-01-05T10:00:00Z");
    task_submission sub = test::submission("report");
    sub.schedule = "s1";
    sub.tick = clock_.load();
    sub.not_before = clock_.load();
    auto twice = ts_.db->write_sync([&](write_txn& txn) -> result<json::value> {
        if (auto r = task_queue::submit_in(txn, sub, clock_.load()); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(twice);
    auto again = ts_.db->write_sync([&](write_txn& txn) -> result<json::value> {
        if (auto r = task_queue::submit_in(txn, sub, clock_.load()); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_FALSE(again);
    EXPECT_EQ(again.error().status, 409);
    EXPECT_EQ(tasks_of("s1").size(), 1u);
}

TEST_F(scheduler_test, schedulers_running_at_once_make_exactly_one_task_per_tick) {
    clock_ = *parse_timestamp("2026-01-05T10:00:00Z");
    std::vector<std::string> ids;
    for (int i = 0; i < 4; ++i) ids.push_back(add({{"kind", "report"}, {"every", "1s"}}));
    // Two more stores on the same database act as two more nodes (PostgreSQL; on SQLite the
    // schedulers share the one store, whose single writer serializes them).
    std::vector<std::unique_ptr<store>> nodes;
    std::vector<std::unique_ptr<task_queue>> queues;
    std::vector<std::unique_ptr<scheduler>> schedulers;
    for (int n = 0; n < 3; ++n) {
        store* db = ts_.db.get();
        if (test::on_postgres()) {
            nodes.push_back(test::open_or_die(ts_.dir.file("data/tasks.db")));
            ASSERT_TRUE(nodes.back());
            db = nodes.back().get();
        }
        queues.push_back(std::make_unique<task_queue>(*db));
        schedulers.push_back(std::make_unique<scheduler>(*db, *queues.back(), options()));
    }
    constexpr int kTicks = 20;
    for (int tick = 1; tick <= kTicks; ++tick) {
        clock_ = *parse_timestamp("2026-01-05T10:00:00Z") + tick * 1000 + 5;
        std::vector<std::thread> threads;
        for (auto& s : schedulers)
            threads.emplace_back([&s] {
                // Each node passes until nothing is due (another node may hold some a while).
                for (int i = 0; i < 10'000; ++i) {
                    auto r = s->run_due();
                    if (!r) {
                        ADD_FAILURE() << r.error().detail;
                        return;
                    }
                    if (!r->contended) return;
                    std::this_thread::yield();
                }
            });
        for (auto& t : threads) t.join();
    }
    for (const auto& id : ids) {
        auto made = tasks_of(id);
        std::set<std::string> ticks;
        for (const auto& t : made) ticks.insert(std::string(get_string(t, "tick")));
        EXPECT_EQ(made.size(), static_cast<std::size_t>(kTicks)) << id;
        EXPECT_EQ(ticks.size(), made.size()) << id;
    }
}

}  // namespace
}  // namespace livebase
