// The outcomes of running tasks: completions, failures (with retries and backoff), releases,
// cancels that finish, and heartbeats, each checked against the worker that holds the task,
// many workers' outcomes written in one batch.
#include <livebase/tasks/queue.hpp>

#include "tasks/task_rows.hpp"

#include <memory>
#include <mutex>
#include <utility>

namespace livebase {

using namespace task_rows;

namespace {
// Loads the task, checks it is running under `worker`, applies `fn`, writes it back.
result<json::object> mutate_in(write_txn& txn, const std::string& id, const std::string& worker,
                               const std::function<result<void>(json::object&)>& fn) {
    auto t = load(txn, id);
    if (!t) return std::move(t).error();
    if (state_of(*t) != task_state::running || get_string(*t, "worker") != worker)
        return problem::conflict("The task is no longer held by this worker.");
    const json::object before = *t;
    if (auto m = fn(*t); !m) return std::move(m).error();
    if (auto w = txn.update(tasks(), *t, &before); !w) return std::move(w).error();
    return std::move(*t);
}

void complete_task(json::object& t, const outcome& out, std::int64_t at) {
    finish(t, out.is_problem ? task_state::failed : task_state::succeeded, at);
    t["result_status"] = out.status;
    if (out.is_problem) {
        t["error"] = out.body;
        t["result"] = nullptr;
    } else {
        t["result"] = out.body;
        t["error"] = nullptr;
    }
    t["location"] = out.location.empty() ? json::value(nullptr) : json::value(out.location);
    touch(t, at);
}
}  // namespace

result<json::object> task_queue::complete_in(write_txn& txn, const std::string& id, const std::string& worker,
                                             const outcome& out, std::int64_t now) {
    return mutate_in(txn, id, worker, [&](json::object& t) -> result<void> {
        complete_task(t, out, now);
        return {};
    });
}

result<json::object> task_queue::mutate_owned(const std::string& id, const std::string& worker,
                                              mutate_fn fn) {
    return as_object(store_.write_sync([&](write_txn& txn) -> result<json::value> {
        auto t = mutate_in(txn, id, worker, fn);
        if (!t) return std::move(t).error();
        return json::value(std::move(*t));
    }));
}

struct task_queue::owned_batch {
    struct item {
        std::string id;
        std::string worker;
        mutate_fn fn;
        done_fn done;
    };
    std::vector<item> items;
    std::vector<result<json::object>> results;  // one per item, filled by the write
};

namespace {
// Items per batch; later ones start the next batch.
constexpr std::size_t k_owned_batch = 256;
}  // namespace

void task_queue::mutate_owned_async(const std::string& id, const std::string& worker, mutate_fn fn,
                                    done_fn done) {
    std::shared_ptr<owned_batch> fresh;
    {
        std::lock_guard lock(batch_mu_);
        if (!open_batch_ || open_batch_->items.size() >= k_owned_batch) {
            open_batch_ = std::make_shared<owned_batch>();
            fresh = open_batch_;
        }
        open_batch_->items.push_back({id, worker, std::move(fn), std::move(done)});
    }
    if (!fresh) return;  // joins the batch whose write is queued
    store_.write(
        [this, b = fresh](write_txn& txn) -> result<json::value> {
            {
                // From now on calls start a new batch (the write may run again: same items).
                std::lock_guard lock(batch_mu_);
                if (open_batch_ == b) open_batch_.reset();
            }
            if (auto r = run_owned_batch(txn, *b); !r) return std::move(r).error();
            return json::value(nullptr);
        },
        [b = fresh](result<json::value> r) {
            for (std::size_t i = 0; i < b->items.size(); ++i) {
                auto& it = b->items[i];
                if (!it.done) continue;
                if (!r) it.done(r.error());
                else if (i < b->results.size()) it.done(std::move(b->results[i]));
                else it.done(problem::internal("The task write returned no task."));
            }
        });
}

result<void> task_queue::run_owned_batch(write_txn& txn, owned_batch& b) {
    b.results.clear();
    std::vector<std::string> ids;
    ids.reserve(b.items.size());
    for (const auto& it : b.items) ids.push_back(it.id);
    auto rows = txn.get_many(tasks(), ids);
    if (!rows) return std::move(rows).error();
    std::unordered_map<std::string, json::object*> by_id;
    for (auto& row : *rows) by_id.emplace(std::string(get_string(row, "id")), &row);
    for (auto& it : b.items) {
        auto found = by_id.find(it.id);
        if (found == by_id.end()) {
            b.results.emplace_back(problem::not_found("No task with this id."));
            continue;
        }
        // Items for the same task (a completion after a hand-back) see each other's changes.
        json::object& t = *found->second;
        if (state_of(t) != task_state::running || get_string(t, "worker") != it.worker) {
            b.results.emplace_back(problem::conflict("The task is no longer held by this worker."));
            continue;
        }
        const json::object before = t;
        if (auto m = it.fn(t); !m) {
            t = before;
            b.results.emplace_back(std::move(m).error());
            continue;
        }
        // A store failure fails the whole batch (the transaction is in doubt).
        if (auto w = txn.update(tasks(), t, &before); !w) return std::move(w).error();
        b.results.emplace_back(t);
    }
    return {};
}

result<heartbeat_status> task_queue::heartbeat(const std::string& id, const std::string& worker,
                                               std::chrono::milliseconds lease,
                                               const task_progress& progress) {
    auto at = now();
    auto r = store_.write_sync([&](write_txn& txn) -> result<json::value> {
        auto t = load(txn, id);
        if (!t) return std::move(t).error();
        if (state_of(*t) != task_state::running || get_string(*t, "worker") != worker)
            return json::value(json::object{{"ours", false}, {"cancel", false}});
        const json::object before = *t;
        (*t)["lease_until"] = at + lease.count();
        if (progress.progress) (*t)["progress"] = *progress.progress;
        if (progress.message) (*t)["message"] = *progress.message;
        if (progress.eta) (*t)["eta"] = *progress.eta;
        if (progress.steps) (*t)["steps"] = *progress.steps;
        touch(*t, at);
        if (auto w = txn.update(tasks(), *t, &before); !w) return std::move(w).error();
        return json::value(json::object{{"ours", true}, {"cancel", bool_field(*t, "cancel_requested")}});
    });
    if (!r) return std::move(r).error();
    heartbeat_status s;
    if (r->is_object()) {
        s.ours = bool_field(r->get_object(), "ours");
        s.cancel_requested = bool_field(r->get_object(), "cancel");
    }
    return s;
}

result<std::vector<heartbeat_status>> task_queue::heartbeat_batch(const std::vector<heartbeat_request>& requests,
                                                                  std::chrono::milliseconds lease) {
    auto at = now();
    auto r = store_.write_sync([&](write_txn& txn) -> result<json::value> {
        json::array answers;
        answers.reserve(requests.size());
        for (const auto& rq : requests) {
            auto got = txn.get(tasks(), rq.id);
            if (!got) return std::move(got).error();
            if (!*got || state_of(**got) != task_state::running || get_string(**got, "worker") != rq.worker) {
                answers.emplace_back(json::array{false, false});
                continue;
            }
            json::object t = std::move(**got);
            const json::object before = t;
            t["lease_until"] = at + lease.count();
            if (rq.progress.progress) t["progress"] = *rq.progress.progress;
            if (rq.progress.message) t["message"] = *rq.progress.message;
            if (rq.progress.eta) t["eta"] = *rq.progress.eta;
            if (rq.progress.steps) t["steps"] = *rq.progress.steps;
            touch(t, at);
            if (auto w = txn.update(tasks(), t, &before); !w) return std::move(w).error();
            answers.emplace_back(json::array{true, bool_field(t, "cancel_requested")});
        }
        return json::value(std::move(answers));
    });
    if (!r) return std::move(r).error();
    std::vector<heartbeat_status> out;
    if (r->is_array()) {
        for (const auto& a : r->get_array()) {
            const auto& pair = a.get_array();
            out.push_back({pair[0].get_bool(), pair[1].get_bool()});
        }
    }
    return out;
}

task_queue::mutate_fn task_queue::completing(const outcome& out, std::int64_t at) const {
    return [out, at](json::object& t) -> result<void> {
        complete_task(t, out, at);
        return {};
    };
}

task_queue::mutate_fn task_queue::failing(const problem& p, bool retryable, std::int64_t at) const {
    return [this, p, retryable, at](json::object& t) -> result<void> {
        auto attempt = int_or(t, "attempt", 1);
        t["error"] = p.to_json();
        if (retryable && attempt < int_or(t, "max_attempts", 1)) {
            t["state"] = to_string(task_state::pending);
            const auto not_before = at + backoff(static_cast<int>(attempt)).count();
            t["not_before"] = not_before;
            t["fair"] = kRetryBand + not_before;  // behind the queued tasks
            t["lease_until"] = nullptr;
            t["worker"] = nullptr;
        } else {
            finish(t, task_state::failed, at);
            t["result_status"] = p.status;
        }
        touch(t, at);
        return {};
    };
}

task_queue::mutate_fn task_queue::cancelling(std::int64_t at) const {
    return [at](json::object& t) -> result<void> {
        finish_as_cancelled(t, at);
        touch(t, at);
        return {};
    };
}

task_queue::mutate_fn task_queue::releasing(std::int64_t at) const {
    return [at](json::object& t) -> result<void> {
        t["state"] = to_string(task_state::pending);
        t["attempt"] = std::max<std::int64_t>(int_or(t, "attempt", 1) - 1, 0);
        t["not_before"] = at;
        t["lease_until"] = nullptr;
        t["worker"] = nullptr;
        touch(t, at);
        return {};
    };
}

result<json::object> task_queue::complete(const std::string& id, const std::string& worker, const outcome& out) {
    return mutate_owned(id, worker, completing(out, now()));
}

result<json::object> task_queue::fail(const std::string& id, const std::string& worker, const problem& p,
                                      bool retryable) {
    return mutate_owned(id, worker, failing(p, retryable, now()));
}

result<json::object> task_queue::finish_cancelled(const std::string& id, const std::string& worker) {
    return mutate_owned(id, worker, cancelling(now()));
}

result<json::object> task_queue::release(const std::string& id, const std::string& worker) {
    return mutate_owned(id, worker, releasing(now()));
}

void task_queue::complete_async(const std::string& id, const std::string& worker, const outcome& out,
                                done_fn done) {
    mutate_owned_async(id, worker, completing(out, now()), std::move(done));
}

void task_queue::fail_async(const std::string& id, const std::string& worker, const problem& p, bool retryable,
                            done_fn done) {
    // A retry makes the task pending again: idle workers (here and elsewhere) look for it.
    mutate_owned_async(id, worker, failing(p, retryable, now()),
                       [this, retryable, done = std::move(done)](result<json::object> r) {
                           if (r && retryable && get_string(*r, "state") == "pending") notify();
                           if (done) done(std::move(r));
                       });
}

void task_queue::finish_cancelled_async(const std::string& id, const std::string& worker, done_fn done) {
    mutate_owned_async(id, worker, cancelling(now()), std::move(done));
}

void task_queue::release_async(const std::string& id, const std::string& worker, done_fn done) {
    mutate_owned_async(id, worker, releasing(now()), [this, done = std::move(done)](result<json::object> r) {
        if (r) notify();
        if (done) done(std::move(r));
    });
}

}  // namespace livebase
