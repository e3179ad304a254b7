#include <livebase/tasks/queue.hpp>

#include "tasks/task_rows.hpp"

#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>

#include <sodium.h>

#include <algorithm>
#include <cmath>
#include <map>
#include <memory>
#include <unordered_map>
#include <utility>

namespace livebase {

using namespace task_rows;


task_queue::task_queue(store& s) : task_queue(s, options{}) {}

task_queue::task_queue(store& s, options o) : store_(s), options_(std::move(o)) {
    if (sodium_init() < 0) options_.jitter = false;  // no randomness: plain exponential delays
}

std::int64_t task_queue::now() const { return options_.clock ? options_.clock() : now_ms(); }

std::chrono::milliseconds task_queue::backoff(int attempt) const {
    std::int64_t base = std::max<std::int64_t>(options_.backoff_base.count(), 0);
    std::int64_t cap = std::max<std::int64_t>(options_.backoff_cap.count(), 0);
    std::int64_t delay = base;
    for (int i = 1; i < attempt && delay < cap; ++i) delay *= 2;
    delay = std::min(delay, cap);
    if (options_.jitter && delay > 0) {
        auto bound = static_cast<std::uint32_t>(std::min<std::int64_t>(delay, 0xFFFFFFFELL) + 1);
        delay = randombytes_uniform(bound);
    }
    return std::chrono::milliseconds(delay);
}

std::string task_queue::owner_key(const task_submission& t) { return t.who.owner_key(); }

void task_queue::set_limits(limits l) {
    std::lock_guard lock(fair_mu_);
    limits_ = l;
}

// Runs on the store's writer thread, inside the submission's transaction: what it reads is
// exact as of now, and no I/O thread waits for it.
result<void> task_queue::load_owner_in(write_txn& txn, const std::string& owner) {
    {
        std::lock_guard lock(fair_mu_);
        if (owners_.count(owner) && head_loaded_) return {};
    }
    auto count = txn.list(tasks(), pending_count(owner));
    if (!count) return std::move(count).error();
    query q;  // the owner's last key
    q.filters = {owner_term(owner), term("state", lookup::exact, json::value("pending")),
                 term("fair", lookup::lt, json::value(kRetryBand))};
    q.ordering = {order_term{"fair", true}};
    q.limit = 1;
    q.with_count = false;
    auto mine = txn.list(tasks(), q);
    if (!mine) return std::move(mine).error();
    std::optional<std::int64_t> head;
    bool need_head = false;
    {
        std::lock_guard lock(fair_mu_);
        need_head = !head_loaded_;
    }
    if (need_head) {
        query h;
        h.filters = {term("state", lookup::exact, json::value("pending")),
                     term("fair", lookup::lt, json::value(kRetryBand))};
        h.ordering = {order_term{"fair", false}};
        h.limit = 1;
        h.with_count = false;
        auto first = txn.list(tasks(), h);
        if (!first) return std::move(first).error();
        head = first->items.empty() ? 0 : turn_of(int_or(first->items.front(), "fair", 0));
    }
    std::lock_guard lock(fair_mu_);
    if (head && !head_loaded_) {
        head_ = std::max(head_, *head);
        head_loaded_ = true;
    }
    auto [it, fresh] = owners_.try_emplace(owner);
    if (fresh) {
        it->second.pending = count->count;
        it->second.last = mine->items.empty() ? 0 : turn_of(int_or(mine->items.front(), "fair", 0));
    }
    return {};
}

result<std::int64_t> task_queue::admit_in(write_txn& txn, const std::string& owner, bool& admitted) {
    if (auto l = load_owner_in(txn, owner); !l) return std::move(l).error();
    std::size_t limit = 0;
    bool over = false;
    {
        std::lock_guard lock(fair_mu_);
        limit = is_anonymous_owner(owner) ? limits_.max_pending_per_address : limits_.max_pending_per_user;
        auto& o = owners_[owner];
        over = !admitted && limit != 0 && o.pending + o.inflight + o.unseen >= static_cast<std::int64_t>(limit);
    }
    if (over) {
        // The running count follows the change log, a moment behind (a task just claimed may
        // still count): before refusing, count in this transaction, which sees every commit
        // and this group's earlier submissions. Only owners at their limit pay for it.
        auto exact = txn.list(tasks(), pending_count(owner));
        if (!exact) return std::move(exact).error();
        if (exact->count >= static_cast<std::int64_t>(limit)) {
            auto p = problem::too_many_requests(
                "Too many pending tasks: at most " + std::to_string(limit) + (is_anonymous_owner(owner)
                    ? " per client address. Wait for some to finish."
                    : " per user. Wait for some to finish."));
            p.extra["retry_after"] = 1;
            return p;
        }
    }
    std::lock_guard lock(fair_mu_);
    auto& o = owners_[owner];
    if (!admitted) {  // else the store runs the write again (a retry): counted already
        ++o.inflight;
        admitted = true;
    }
    o.last = std::max(o.last + 1, head_);
    return o.last;
}

result<json::object> task_queue::submit_admitted_in(write_txn& txn, const task_submission& t, bool& admitted) {
    auto fair = admit_in(txn, owner_key(t), admitted);
    if (!fair) return std::move(fair).error();
    return submit_in(txn, t, now(), nullptr, *fair);
}

void task_queue::settled(const std::string& owner, bool stored) {
    std::lock_guard lock(fair_mu_);
    auto it = owners_.find(owner);
    if (it == owners_.end()) return;
    if (it->second.inflight > 0) --it->second.inflight;
    if (stored) ++it->second.unseen;  // counted until observe() sees its create
}

result<std::int64_t> task_queue::pending_of(const std::string& owner) {
    {
        std::lock_guard lock(fair_mu_);
        if (auto it = owners_.find(owner); it != owners_.end()) return it->second.pending + it->second.unseen;
    }
    auto r = store_.list_sync(tasks(), pending_count(owner));
    if (!r) return std::move(r).error();
    return r->count;
}

void task_queue::observe(const change& ch) {
    if (ch.collection != tasks().name) return;
    const bool now_pending = ch.op != "delete" && pending_row(ch.record);
    const bool was_pending = ch.op == "delete"   ? pending_row(ch.record)
                             : ch.op == "update" ? (ch.before && pending_row(*ch.before))
                                                 : false;
    const auto fair = get_int(ch.record, "fair");
    const bool taken = !now_pending && get_string(ch.record, "state") == "running" &&
                       (was_pending || ch.op == "create");
    if (now_pending == was_pending && !taken && ch.op != "create") return;
    auto owner = stored_owner(ch.record);
    std::lock_guard lock(fair_mu_);
    // The claim head follows the tasks taken (claimed, or run at once on submission).
    if (taken && fair && *fair < kRetryBand) head_ = std::max(head_, turn_of(*fair));
    auto it = owners_.find(owner);
    if (it == owners_.end()) return;  // loaded from the store at its next submission
    auto& o = it->second;
    if (ch.op == "create") {
        if (fair && *fair < kRetryBand) o.last = std::max(o.last, turn_of(*fair));
        if (o.unseen > 0) --o.unseen;
    }
    if (now_pending && !was_pending) ++o.pending;
    if (was_pending && !now_pending && o.pending > 0) --o.pending;
    if (o.pending == 0 && o.inflight == 0 && o.unseen == 0 && o.last <= head_ && owners_.size() > kOwnersKept)
        owners_.erase(it);
}

result<json::object> task_queue::submit_in(write_txn& txn, const task_submission& t, std::int64_t now,
                                           const claim_slot* claimed, std::int64_t fair) {
    if (t.kind.empty()) return problem::bad_request("A task needs a kind.");
    if (t.max_attempts < 1) return problem::bad_request("max_attempts must be at least 1.");
    if (t.priority < kMinPriority || t.priority > kMaxPriority)
        return problem::bad_request("priority must be from " + std::to_string(kMinPriority) + " to " +
                                    std::to_string(kMaxPriority) + ".");
    const bool delayed = t.not_before > 0 && !claimed;
    auto ts = format_timestamp(now);
    // The id of a task is the capability to read and cancel it (an anonymous task's only
    // protection): all of its random bits are fresh, none follows from another task's id.
    json::object rec{{"id", make_unguessable_ulid(now)},
                     {"created", ts},
                     {"updated", ts},
                     {"version", 1},
                     {"kind", t.kind},
                     {"state", to_string(task_state::pending)},
                     {"progress", nullptr},
                     {"message", nullptr},
                     {"eta", nullptr},
                     {"steps", json::array{}},
                     {"request", t.request},
                     {"input", t.input},
                     {"result", nullptr},
                     {"result_status", nullptr},
                     {"error", nullptr},
                     {"location", nullptr},
                     {"attempt", 0},
                     {"max_attempts", t.max_attempts},
                     {"started", nullptr},
                     {"finished", nullptr},
                     {"not_before", delayed ? t.not_before : now},
                     {"lease_until", nullptr},
                     {"worker", nullptr},
                     {"cancel_requested", false},
                     {"timeout_ms", static_cast<std::int64_t>(t.timeout.count())},
                     {"fair", delayed ? kRetryBand + t.not_before : claim_key(fair, t.priority)},
                     {"priority", t.priority}};
    auto owner = owner_key(t);
    rec["owner"] = owner.empty() ? json::value(nullptr) : json::value(std::move(owner));
    if (!t.schedule.empty()) {
        rec["schedule"] = t.schedule;
        rec["tick"] = format_timestamp(t.tick);
        rec["schedule_tick"] = t.schedule + "@" + std::to_string(t.tick);
    }
    if (claimed) {
        rec["state"] = to_string(task_state::running);
        rec["attempt"] = 1;
        rec["started"] = ts;
        rec["not_before"] = nullptr;
        rec["lease_until"] = now + claimed->lease.count();
        rec["worker"] = claimed->worker;
    }
    if (auto r = txn.insert(tasks(), rec); !r) return std::move(r).error();
    return rec;
}

result<json::object> task_queue::submit(const task_submission& t) {
    auto at = now();
    auto owner = owner_key(t);
    bool admitted = false;
    auto r = as_object(store_.write_sync([this, &t, &owner, &admitted, at](write_txn& txn) -> result<json::value> {
        auto fair = admit_in(txn, owner, admitted);
        if (!fair) return std::move(fair).error();
        auto rec = submit_in(txn, t, at, nullptr, *fair);
        if (!rec) return std::move(rec).error();
        return json::value(std::move(*rec));
    }));
    if (admitted) settled(owner, r.has_value());
    if (r) notify();
    return r;
}

void task_queue::submit_async(const task_submission& t, done_fn done,
                              std::function<result<void>(write_txn&, const json::object&)> also) {
    auto at = now();
    task_intake* intake = nullptr;
    std::optional<claim_slot> slot;
    if (t.not_before == 0) {
        std::lock_guard lock(intake_mu_);
        for (auto* in : intakes_)
            if ((slot = in->reserve(t.kind))) {
                intake = in;
                break;
            }
    }
    auto owner = std::make_shared<std::string>(owner_key(t));
    auto admitted = std::make_shared<bool>(false);
    store_.write(
        [this, t, at, slot, owner, admitted, also = std::move(also)](write_txn& txn) -> result<json::value> {
            auto fair = admit_in(txn, *owner, *admitted);
            if (!fair) return std::move(fair).error();
            auto rec = submit_in(txn, t, at, slot ? &*slot : nullptr, *fair);
            if (!rec) return std::move(rec).error();
            if (also)
                if (auto r = also(txn, *rec); !r) return std::move(r).error();
            return json::value(std::move(*rec));
        },
        [this, intake, slot, owner, admitted, done = std::move(done)](result<json::value> r) {
            auto obj = as_object(std::move(r));
            if (*admitted) settled(*owner, obj.has_value());
            if (slot) {
                if (obj) intake->deliver(*obj);
                else intake->unreserve();
            } else if (obj) {
                notify();
            }
            if (done) done(std::move(obj));
        });
}

void task_queue::add_intake(task_intake* intake) {
    std::lock_guard lock(intake_mu_);
    if (std::find(intakes_.begin(), intakes_.end(), intake) == intakes_.end()) intakes_.push_back(intake);
}

void task_queue::remove_intake(task_intake* intake) {
    std::lock_guard lock(intake_mu_);
    intakes_.erase(std::remove(intakes_.begin(), intakes_.end(), intake), intakes_.end());
}

result<std::optional<json::object>> task_queue::claim(const std::string& worker_id, std::int64_t now,
                                                      std::chrono::milliseconds lease,
                                                      const std::vector<std::string>& kinds) {
    auto r = claim_batch(worker_id, now, lease, kinds, 1);
    if (!r) return std::move(r).error();
    if (r->empty()) return std::optional<json::object>{};
    return std::optional<json::object>(std::move(r->front()));
}

namespace {

// The token bucket of a rate: at most a tenth of a second's worth of tokens (at least one).
double bucket_size(const rate& r) {
    return std::max(1.0, static_cast<double>(r.count) * 100.0 / static_cast<double>(std::max<std::int64_t>(r.per.count(), 1)));
}

double number_or(const json::object& o, std::string_view key, double fallback) {
    auto it = o.find(key);
    if (it == o.end()) return fallback;
    if (it->value().is_double()) return it->value().get_double();
    if (it->value().is_int64()) return static_cast<double>(it->value().get_int64());
    if (it->value().is_uint64()) return static_cast<double>(it->value().get_uint64());
    return fallback;
}

collection_def build_task_queues_collection() {
    collection_def c;
    c.name = "task_queues";
    c.built_in = true;
    c.fields = {make_field("tokens", field_type::number), make_field("at", field_type::integer)};
    c.rules = {{"list", access_rule::nobody},   {"retrieve", access_rule::nobody}, {"create", access_rule::nobody},
               {"update", access_rule::nobody}, {"delete", access_rule::nobody}};
    auto msg = finalize(c);
    (void)msg;  // a fixed definition: checked by the unit tests
    return c;
}

}  // namespace

const collection_def& task_queues_collection() {
    static const collection_def c = build_task_queues_collection();
    return c;
}

result<std::vector<json::object>> task_queue::claim_batch(const std::string& worker_id, std::int64_t now,
                                                          std::chrono::milliseconds lease,
                                                          const std::vector<std::string>& kinds, std::size_t max,
                                                          std::int64_t* next_due, const queue_limits* limits) {
    std::vector<json::object> out;
    if (next_due) *next_due = 0;
    if (max == 0) return out;
    if (limits && limits->empty()) limits = nullptr;
    query q;
    q.filters.push_back(term("state", lookup::exact, json::value("pending")));
    // The bound on the claim key ends the index range at the first delayed or retried task not
    // due yet: a claim never reads through the tasks waiting for later.
    q.filters.push_back(term("fair", lookup::lte, json::value(kRetryBand + now)));
    q.filters.push_back(term("not_before", lookup::lte, json::value(now)));
    std::optional<filter_term> kind_filter;
    if (!kinds.empty()) {
        json::array names;
        for (const auto& k : kinds) names.emplace_back(k);
        kind_filter = term("kind", lookup::in, std::move(names));
        q.filters.push_back(*kind_filter);
    }
    q.ordering = {order_term{"fair", false}, order_term{"id", false}};
    q.with_count = false;  // a claim needs the oldest rows, not a scan of the whole backlog
    auto r = store_.write_sync([&](write_txn& txn) -> result<json::value> {
        query cq = q;
        std::size_t take = max;
        // A limited queue: its row (locked until commit) holds the token bucket; the running
        // tasks of each kind with a concurrency are counted under that lock.
        std::optional<json::object> row;
        double tokens = 0;
        std::map<std::string, std::size_t, std::less<>> slots;
        double rate_per_ms = 0;
        if (limits) {
            auto got = txn.get(task_queues_collection(), limits->name);
            if (!got) return std::move(got).error();
            row = std::move(*got);
            if (limits->rate_limit.count > 0) {
                const double size = bucket_size(limits->rate_limit);
                const double per_ms = static_cast<double>(limits->rate_limit.count) /
                                      static_cast<double>(std::max<std::int64_t>(limits->rate_limit.per.count(), 1));
                tokens = size;
                if (row) {
                    const auto at = int_or(*row, "at", now);
                    tokens = std::min(size, number_or(*row, "tokens", size) + static_cast<double>(std::max<std::int64_t>(now - at, 0)) * per_ms);
                }
                take = std::min<std::size_t>(take, static_cast<std::size_t>(std::max(0.0, tokens)));
                rate_per_ms = per_ms;
            }
            std::size_t served = 0;  // kinds of this claim still with a free slot
            for (const auto& [kind, most] : limits->concurrency) {
                if (!kinds.empty() && std::find(kinds.begin(), kinds.end(), kind) == kinds.end()) continue;
                query running;
                running.filters = {term("state", lookup::exact, json::value("running")),
                                   term("kind", lookup::exact, json::value(kind))};
                running.limit = 0;
                auto n = txn.list(tasks(), running);
                if (!n) return std::move(n).error();
                const auto busy = static_cast<std::size_t>(std::max<std::int64_t>(n->count, 0));
                slots[kind] = busy >= most ? 0 : most - busy;
                if (slots[kind] == 0) cq.filters.push_back(term("kind", lookup::ne, json::value(kind)));
                else ++served;
            }
            if (!kinds.empty() && served == 0 && slots.size() == kinds.size()) take = 0;  // every kind at its limit
        }
        json::array claimed;
        // A kind that reaches its concurrency in this claim is passed over from then on: the
        // claim reads again, without it, for the places its waiting tasks took (a few rounds at
        // most: each one closes a kind).
        for (int round = 0; round <= static_cast<int>(slots.size()) && claimed.size() < take; ++round) {
            cq.limit = take - claimed.size();
            auto found = txn.list_locked(tasks(), cq);
            if (!found) return std::move(found).error();
            bool passed_over = false;
            for (const auto& before : found->items) {
                if (!slots.empty()) {
                    auto slot = slots.find(get_string(before, "kind"));
                    if (slot != slots.end()) {
                        if (slot->second == 0) {  // its last slot went to an earlier task of this claim
                            passed_over = true;
                            continue;
                        }
                        if (--slot->second == 0) cq.filters.push_back(term("kind", lookup::ne, json::value(slot->first)));
                    }
                }
                // The row as read is the change log's `before` (saves the store a second read).
                json::object t = before;
                t["state"] = to_string(task_state::running);
                t["attempt"] = int_or(t, "attempt", 0) + 1;
                t["lease_until"] = now + lease.count();
                t["worker"] = worker_id;
                t["started"] = format_timestamp(now);
                t["not_before"] = nullptr;
                touch(t, now);
                if (auto w = txn.update(tasks(), t, &before); !w) return std::move(w).error();
                claimed.emplace_back(std::move(t));
            }
            if (!passed_over) break;  // the read was not short for a kind at its limit
        }
        // Tokens ran out before the claim was full: the next one comes at refill_at.
        std::int64_t refill_at = 0;
        if (rate_per_ms > 0 && claimed.size() == take && take < max)
            refill_at = now + static_cast<std::int64_t>(
                                  std::ceil((1.0 - (tokens - static_cast<double>(claimed.size()))) / rate_per_ms));
        if (limits && limits->rate_limit.count > 0 && (!claimed.empty() || !row)) {
            json::object next{{"id", limits->name},
                              {"created", row ? json::value((*row)["created"]) : json::value(format_timestamp(now))},
                              {"updated", format_timestamp(now)},
                              {"version", row ? int_or(*row, "version", 0) + 1 : 1},
                              {"tokens", tokens - static_cast<double>(claimed.size())},
                              {"at", now}};
            auto w = row ? txn.update(task_queues_collection(), next, &*row) : txn.insert(task_queues_collection(), next);
            if (!w) return std::move(w).error();
        }
        if (next_due && claimed.size() < max) {
            // The earliest task of these kinds waiting for its time: the caller wakes then.
            query d;
            d.filters.push_back(term("state", lookup::exact, json::value("pending")));
            d.filters.push_back(term("fair", lookup::gt, json::value(kRetryBand + now)));
            if (kind_filter) d.filters.push_back(*kind_filter);
            d.ordering = {order_term{"fair", false}};
            d.limit = 1;
            d.with_count = false;
            auto first = txn.list(tasks(), d);
            if (!first) return std::move(first).error();
            if (!first->items.empty()) *next_due = int_or(first->items.front(), "fair", 0) - kRetryBand;
            if (refill_at > 0 && (*next_due == 0 || refill_at < *next_due)) *next_due = refill_at;
        }
        return json::value(std::move(claimed));
    });
    if (!r) return std::move(r).error();
    if (!r->is_array()) return problem::internal("The claim returned no tasks.");
    out.reserve(r->get_array().size());
    for (auto& t : r->get_array())
        if (t.is_object()) out.push_back(std::move(t.get_object()));
    return out;
}

result<json::object> task_queue::cancel(const std::string& id) {
    auto at = now();
    return as_object(store_.write_sync([&](write_txn& txn) -> result<json::value> {
        auto t = load(txn, id);
        if (!t) return std::move(t).error();
        auto s = state_of(*t);
        if (!s || is_finished(*s)) return problem::conflict("The task is already finished.");
        if (*s == task_state::pending) {
            finish_as_cancelled(*t, at);
        }
        (*t)["cancel_requested"] = true;
        touch(*t, at);
        if (auto w = txn.update(tasks(), *t); !w) return std::move(w).error();
        return json::value(std::move(*t));
    }));
}

result<std::size_t> task_queue::reap(std::int64_t now) {
    query q;
    q.filters.push_back(term("state", lookup::exact, json::value("running")));
    q.filters.push_back(term("lease_until", lookup::lt, json::value(now)));
    q.ordering = {order_term{"lease_until", false}};
    q.limit = options_.batch;
    q.with_count = false;
    auto r = store_.write_sync([&](write_txn& txn) -> result<json::value> {
        auto found = txn.list_locked(tasks(), q);
        if (!found) return std::move(found).error();
        for (auto& t : found->items) {
            if (bool_field(t, "cancel_requested")) {
                finish_as_cancelled(t, now);
            } else if (int_or(t, "attempt", 1) >= int_or(t, "max_attempts", 1)) {
                finish(t, task_state::failed, now);
                auto p = problem::make(500, "/problems/task-worker-lost", "Worker lost",
                                      "The worker running the task stopped responding.");
                t["error"] = p.to_json();
                t["result_status"] = p.status;
            } else {
                t["state"] = to_string(task_state::pending);
                t["not_before"] = now;
                t["lease_until"] = nullptr;
                t["worker"] = nullptr;
            }
            touch(t, now);
            if (auto w = txn.update(tasks(), t); !w) return std::move(w).error();
        }
        return json::value(static_cast<std::int64_t>(found->items.size()));
    });
    if (!r) return std::move(r).error();
    auto n = r->is_int64() ? r->get_int64() : 0;
    if (n > 0) notify();
    return static_cast<std::size_t>(n);
}

result<std::size_t> task_queue::purge(std::int64_t now, std::chrono::milliseconds retention) {
    query q;
    q.filters.push_back(term("state", lookup::in,
                             json::array{json::value("succeeded"), json::value("failed"),
                                         json::value("cancelled")}));
    q.filters.push_back(term("finished", lookup::lt, json::value(format_timestamp(now - retention.count()))));
    q.ordering = {order_term{"finished", false}};
    q.limit = options_.batch;
    q.with_count = false;
    auto r = store_.write_sync([&](write_txn& txn) -> result<json::value> {
        auto found = txn.list_locked(tasks(), q);
        if (!found) return std::move(found).error();
        for (const auto& t : found->items)
            if (auto w = txn.remove(tasks(), t); !w) return std::move(w).error();
        return json::value(static_cast<std::int64_t>(found->items.size()));
    });
    if (!r) return std::move(r).error();
    return static_cast<std::size_t>(r->is_int64() ? r->get_int64() : 0);
}

result<std::optional<json::object>> task_queue::get(const std::string& id) {
    return store_.get_sync(tasks(), id);
}

void task_queue::notify() {
    {
        std::lock_guard lock(wake_mu_);
        ++generation_;
    }
    wake_cv_.notify_all();
    std::lock_guard lock(intake_mu_);
    for (auto* in : intakes_) in->work_available();
}

std::uint64_t task_queue::generation() const {
    std::lock_guard lock(wake_mu_);
    return generation_;
}

void task_queue::wait_for_work(std::uint64_t seen, std::chrono::milliseconds timeout) {
    std::unique_lock lock(wake_mu_);
    wake_cv_.wait_for(lock, timeout, [&] { return generation_ != seen; });
}

}  // namespace livebase
