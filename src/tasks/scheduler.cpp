#include <livebase/tasks/scheduler.hpp>

#include <livebase/core/clock.hpp>
#include <livebase/core/units.hpp>
#include <livebase/tasks/cron.hpp>

#include "task_rows.hpp"

#include <algorithm>

namespace livebase {

namespace {

using task_rows::term;
using task_rows::touch;

constexpr std::int64_t kMinEveryMs = 1000;
constexpr std::int64_t kMaxEveryMs = std::int64_t{366} * 24 * 3600 * 1000;

collection_def build_schedules_collection() {
    collection_def c;
    c.name = "schedules";
    c.owned = true;
    c.built_in = true;
    auto text = [](std::string name, std::size_t max, bool required = false) {
        auto f = make_field(std::move(name), field_type::string, required);
        f.max_length = max;
        return f;
    };
    c.fields = {text("name", 200),
                text("kind", 200, true),
                make_field("input", field_type::json),
                text("cron", 256),
                text("every", 64),
                text("timezone", 64),
                make_field("enabled", field_type::boolean),
                make_field("missed", field_type::string),
                make_field("next_run", field_type::datetime),
                make_field("last_run", field_type::datetime),
                make_field("last_task", field_type::string)};
    for (auto& f : c.fields) {
        if (f.name == "timezone") f.default_value = json::value("UTC");
        if (f.name == "enabled") f.default_value = json::value(true);
        if (f.name == "missed") {
            f.default_value = json::value("skip");
            f.choices = {json::value("skip"), json::value("once")};
        }
        if (f.name == "next_run" || f.name == "last_run" || f.name == "last_task") f.read_only = true;
    }
    // The schedulers read the enabled schedules by next_run.
    c.indexes = {{"enabled", "next_run"}};
    c.rules = {{"list", access_rule::admin},
               {"retrieve", access_rule::admin},
               {"create", access_rule::admin},
               {"update", access_rule::admin},
               {"delete", access_rule::admin}};
    auto msg = finalize(c);
    (void)msg;  // a fixed definition: checked by the unit tests
    return c;
}

const json::value* member(const json::object& o, std::string_view key) {
    auto it = o.find(key);
    return it == o.end() ? nullptr : &it->value();
}

bool is_set(const json::object& o, std::string_view key) {
    auto* v = member(o, key);
    return v && !v->is_null();
}

bool same_member(const json::object& a, const json::object& b, std::string_view key) {
    auto* x = member(a, key);
    auto* y = member(b, key);
    if (!x || x->is_null()) return !y || y->is_null();
    return y && *x == *y;
}

bool enabled_of(const json::object& o) {
    auto* v = member(o, "enabled");
    return !v || !v->is_bool() || v->get_bool();
}

json::value timestamp_or_null(std::optional<std::int64_t> ms) {
    return ms ? json::value(format_timestamp(*ms)) : json::value(nullptr);
}

std::string zone_of(const json::object& o) {
    auto z = get_string(o, "timezone");
    return z.empty() ? std::string("UTC") : std::string(z);
}

}  // namespace

const collection_def& schedules_collection() {
    static const collection_def c = build_schedules_collection();
    return c;
}

result<void> prepare_schedule(json::object& record, const json::object* stored, std::int64_t now,
                              const std::function<bool(std::string_view)>& known_kind) {
    field_errors errors;
    const auto kind = get_string(record, "kind");
    if (!known_kind || !known_kind(kind))
        errors["kind"].push_back("No task kind \"" + std::string(kind) + "\" runs here.");
    const bool has_cron = is_set(record, "cron");
    const bool has_every = is_set(record, "every");
    if (has_cron == has_every) {
        errors[has_cron ? "every" : "cron"].push_back("A schedule takes exactly one of cron and every.");
    }
    const std::string zone = zone_of(record);
    const bool zone_ok = known_time_zone(zone);
    if (!zone_ok) errors["timezone"].push_back("\"" + zone + "\" is not a time zone this server knows (for example UTC or Europe/Berlin).");
    if (has_cron) {
        auto e = cron_expr::parse(get_string(record, "cron"));
        if (!e) {
            errors["cron"].push_back(e.error().detail);
        } else if (zone_ok && !e->next_after(now, zone)) {
            errors["cron"].push_back("The cron expression never ticks.");
        }
    }
    if (has_every) {
        auto d = parse_duration(get_string(record, "every"));
        if (!d) {
            errors["every"].push_back("\"" + std::string(get_string(record, "every")) +
                                      "\" is not a duration (for example 30s, 5m or 1h).");
        } else if (d->count() < kMinEveryMs || d->count() > kMaxEveryMs) {
            errors["every"].push_back("every must be from 1s to 366d.");
        }
    }
    if (!errors.empty()) return problem::validation(std::move(errors));

    record["last_run"] = stored ? (member(*stored, "last_run") ? *member(*stored, "last_run") : json::value(nullptr))
                                : json::value(nullptr);
    record["last_task"] = stored ? (member(*stored, "last_task") ? *member(*stored, "last_task") : json::value(nullptr))
                                 : json::value(nullptr);
    if (!enabled_of(record)) {
        record["next_run"] = nullptr;
        return {};
    }
    const bool timing_kept = stored && enabled_of(*stored) && is_set(*stored, "next_run") &&
                             same_member(record, *stored, "cron") && same_member(record, *stored, "every") &&
                             zone_of(record) == zone_of(*stored);
    if (timing_kept) {
        record["next_run"] = *member(*stored, "next_run");
    } else {
        record["next_run"] = timestamp_or_null(next_tick(record, now));
    }
    return {};
}

std::optional<std::int64_t> next_tick(const json::object& schedule, std::int64_t after) {
    if (is_set(schedule, "cron")) {
        auto e = cron_expr::parse(get_string(schedule, "cron"));
        if (!e) return std::nullopt;
        return e->next_after(after, zone_of(schedule));
    }
    auto d = parse_duration(get_string(schedule, "every"));
    if (!d || d->count() < kMinEveryMs) return std::nullopt;
    return next_period_after(after, d->count());
}

scheduler::scheduler(store& s, task_queue& q, scheduler_options o) : store_(s), queue_(q), options_(std::move(o)) {
    if (!options_.clock) options_.clock = [] { return now_ms(); };
    if (options_.batch == 0) options_.batch = 1;
}

scheduler::~scheduler() { stop(); }

void scheduler::start() {
    std::lock_guard lk(mu_);
    if (thread_.joinable() || stopping_) return;
    thread_ = std::thread([this] { run(); });
}

void scheduler::stop() {
    {
        std::lock_guard lk(mu_);
        stopping_ = true;
    }
    cv_.notify_all();
    if (thread_.joinable() && thread_.get_id() != std::this_thread::get_id()) thread_.join();
}

void scheduler::poke() {
    {
        std::lock_guard lk(mu_);
        poked_ = true;
    }
    cv_.notify_all();
}

result<scheduler_pass> scheduler::run_due() {
    const auto& sc = schedules_collection();
    const std::int64_t now = options_.clock();
    const auto now_text = format_timestamp(now);

    // The earliest enabled schedule: a plain read when nothing is due (most passes).
    query first;
    first.filters = {term("enabled", lookup::exact, json::value(true)),
                     term("next_run", lookup::isnull, json::value(false))};
    first.ordering = {order_term{"next_run", false}};
    first.limit = 1;
    first.with_count = false;
    auto earliest = [&](const page& p) -> std::int64_t {
        if (p.items.empty()) return 0;
        return parse_timestamp(get_string(p.items.front(), "next_run")).value_or(0);
    };
    scheduler_pass pass;
    {
        auto peek = store_.list_sync(sc, first);
        if (!peek) return std::move(peek).error();
        pass.next_due = earliest(*peek);
        if (pass.next_due == 0 || pass.next_due > now) return pass;
    }

    query due;
    due.filters = {term("enabled", lookup::exact, json::value(true)),
                   term("next_run", lookup::lte, json::value(now_text))};
    due.ordering = {order_term{"next_run", false}};
    due.limit = options_.batch;
    due.with_count = false;
    std::vector<json::object> notes;  // log lines, written once the pass committed
    auto r = store_.write_sync([&](write_txn& txn) -> result<json::value> {
        pass = {};
        notes.clear();
        auto found = txn.list_locked(sc, due);
        if (!found) return std::move(found).error();
        for (const auto& before : found->items) {
            json::object s = before;
            const auto id = std::string(get_string(s, "id"));
            const auto tick = parse_timestamp(get_string(s, "next_run"));
            const bool late = !tick || now - *tick > options_.grace.count();
            std::optional<std::int64_t> fire;
            if (tick && (!late || get_string(s, "missed") == "once")) fire = *tick;
            if (tick && late) {
                notes.push_back({{"msg", fire ? "schedule missed ticks: running the first once"
                                             : "schedule missed ticks: skipped"},
                                 {"schedule", id},
                                 {"tick", format_timestamp(*tick)},
                                 {"late_ms", now - *tick}});
            }
            if (fire) {
                principal who;
                auto owner = task_rows::stored_owner(s);
                if (!task_rows::is_anonymous_owner(owner)) who.user_id = owner;
                json::value input = member(s, "input") ? *member(s, "input") : json::value(nullptr);
                auto sub = options_.make_submission
                               ? options_.make_submission(get_string(s, "kind"), std::move(input), who)
                               : result<task_submission>(problem::internal("The scheduler cannot make tasks."));
                if (!sub) {
                    // The kind is no longer served (a config change): the tick is skipped.
                    notes.push_back({{"msg", "schedule tick skipped: its task kind does not run here"},
                                     {"schedule", id},
                                     {"kind", get_string(s, "kind")},
                                     {"detail", sub.error().detail}});
                    fire.reset();
                } else {
                    sub->not_before = *fire;
                    sub->schedule = id;
                    sub->tick = *fire;
                    auto task = task_queue::submit_in(txn, *sub, now);
                    if (!task) return std::move(task).error();
                    s["last_run"] = format_timestamp(*fire);
                    s["last_task"] = get_string(*task, "id");
                    ++pass.made;
                }
            }
            if (tick && late && !fire) ++pass.skipped;
            // On time: the tick after this one (a pass that fell a few ticks behind catches up
            // one tick per pass). Late: the first tick after now.
            auto next = next_tick(s, late ? now : *tick);
            if (!next)
                notes.push_back({{"msg", "schedule has no next tick: it stops"}, {"schedule", id}});
            s["next_run"] = timestamp_or_null(next);
            touch(s, now);
            if (auto w = txn.update(sc, s, &before); !w) return std::move(w).error();
        }
        auto after = txn.list(sc, first);
        if (!after) return std::move(after).error();
        pass.next_due = earliest(*after);
        // Still due after this pass: more than a batch was, or another node holds some.
        pass.contended = pass.next_due != 0 && pass.next_due <= now && found->items.size() < options_.batch;
        return json::value(nullptr);
    });
    if (!r) return std::move(r).error();
    if (options_.log)
        for (auto& n : notes) {
            auto msg = std::string(get_string(n, "msg"));
            n.erase("msg");
            options_.log->warn(msg, n);
        }
    if (pass.made) queue_.notify();
    return pass;
}

void scheduler::run() {
    std::unique_lock lk(mu_);
    while (!stopping_) {
        poked_ = false;
        lk.unlock();
        auto r = run_due();
        const auto now = options_.clock();
        std::chrono::milliseconds wait = options_.max_sleep;
        if (!r) {
            if (options_.log)
                options_.log->warn("schedules: a pass failed; trying again", {{"status", r.error().status},
                                                                             {"detail", r.error().detail}});
            wait = std::min(wait, std::chrono::milliseconds(1000));
        } else if (r->next_due != 0) {
            if (r->next_due <= now) {
                // Contended: another node is making those ticks' tasks; look again shortly.
                wait = std::chrono::milliseconds(r->contended ? 50 : 0);
            } else {
                wait = std::min(wait, std::chrono::milliseconds(r->next_due - now));
            }
        }
        lk.lock();
        if (wait.count() > 0) cv_.wait_for(lk, wait, [this] { return stopping_ || poked_; });
    }
}

}  // namespace livebase
