// Asynchronous operations (http.md section 3): submission with Prefer, async collections,
// actions and endpoints, and the /api/tasks resource (list, retrieve with 303, long poll,
// result, cancel).
#include "api/task_requests.hpp"

#include <livebase/api/api.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/units.hpp>
#include <livebase/schema/validate.hpp>
#include <livebase/tasks/queue.hpp>
#include <livebase/tasks/waiters.hpp>
#include <livebase/tasks/worker_pool.hpp>

#include "access.hpp"

namespace livebase {

namespace {

// The async.<name> key of a records operation.
std::string_view async_key(op_kind k) {
    switch (k) {
        case op_kind::replace:
        case op_kind::patch: return "update";
        default: return to_string(k);
    }
}

// An anonymous task's owner: null (submitted in-process, address unknown) or
// "anon:<address>". A user's: the user id (a ULID, never with a colon).
bool anonymous_owner(const json::object& task) {
    auto it = task.find("owner");
    if (it == task.end() || it->value().is_null()) return true;
    return it->value().is_string() && it->value().get_string().starts_with(k_anonymous_owner_prefix);
}

bool may_see(const principal& who, const json::object& task) {
    if (who.admin) return true;
    if (!who.authenticated()) return anonymous_owner(task);
    return !anonymous_owner(task) && get_string(task, "owner") == who.user_id;
}

// A task's request as it may be shown: write_only fields (and a users password) out of a
// record body, the password hash of a users operation out of "op".
json::object echo_of(const collection_def& c, op_kind kind, json::object request) {
    const bool record_body = kind == op_kind::create || kind == op_kind::replace || kind == op_kind::patch;
    if (auto b = request.find("body"); record_body && b != request.end() && b->value().is_object()) {
        auto& body = b->value().get_object();
        for (const auto& f : c.fields)
            if (f.write_only) body.erase(f.name);
        if (api_detail::is_users(c)) body.erase("password");
    }
    if (auto d = request.find("op"); d != request.end() && d->value().is_object())
        d->value().get_object().erase("password_hash");
    return request;
}

task_state state_of(const json::object& task) {
    return task_state_from_string(get_string(task, "state")).value_or(task_state::pending);
}

// GET /api/tasks/{id}/result: what the synchronous request would have answered.
outcome result_outcome(const json::object& task, const std::string& task_path) {
    switch (state_of(task)) {
        case task_state::succeeded: {
            auto status = static_cast<int>(get_int(task, "result_status").value_or(200));
            auto it = task.find("result");
            outcome o = outcome::json_body(status, it == task.end() ? json::value(nullptr) : it->value());
            if (status == 201) o.location = std::string(get_string(task, "location"));
            if (status == 204) o.body = nullptr;
            return o;
        }
        case task_state::failed: {
            auto it = task.find("error");
            outcome o;
            o.is_problem = true;
            o.body = it != task.end() && it->value().is_object()
                         ? it->value()
                         : json::value(problem::internal("The task failed.").to_json());
            o.status = static_cast<int>(get_int(o.body.get_object(), "status").value_or(500));
            return o;
        }
        case task_state::cancelled:
            return outcome::from_problem(problem::gone("The task was cancelled."));
        default: {
            outcome o = outcome::json_body(202, nullptr);
            o.location = task_path;
            o.headers.emplace_back("Retry-After", "1");
            return o;
        }
    }
}

}  // namespace

bool may_see_task(const principal& who, const json::object& task) { return may_see(who, task); }

bool may_list_task(const principal& who, const json::object& task) {
    if (who.admin) return true;
    auto key = who.owner_key();
    return !key.empty() && get_string(task, "owner") == key;
}

bool narrow_task_query(const principal& who, query& q) {
    if (who.admin) return true;
    auto key = who.owner_key();
    if (key.empty()) return false;
    q.filters.push_back({"owner", lookup::exact, json::value(std::move(key))});
    return true;
}

task_requests::task_requests(const registry& reg, store& db, logger& log, std::string base_path,
                             task_queue& queue, worker_pool& workers, task_waiters& waiters,
                             blocking_fn run_blocking, hash_fn hash_then)
    : reg_(reg), db_(db), log_(log), base_path_(std::move(base_path)), tasks_(queue),
      workers_(workers), waiters_(waiters), run_blocking_(std::move(run_blocking)),
      hash_then_(std::move(hash_then)) {}

bool task_requests::watch(const std::string& id, std::chrono::steady_clock::time_point deadline,
                          std::function<void()> cb) {
    return waiters_.watch(id, deadline, std::move(cb));
}

std::string task_requests::tasks_path() const {
    std::string p = base_path_;
    if (!p.empty() && p.back() == '/') p.pop_back();
    return p + "/tasks";
}

std::string task_requests::async_kind(const operation& op, const collection_def& c) const {
    if (op.kind == op_kind::action) {
        auto it = c.actions.find(op.action);
        if (it == c.actions.end()) return {};
        if (!it->second.task.empty()) return it->second.task;  // task actions always run async
        auto mode = c.async_for(op.action);
        if (mode == async_mode::always || (mode == async_mode::allowed && op.prefer_async))
            return operation_task_kind(c.name, op.kind, op.action);
        return {};
    }
    auto mode = c.async_for(async_key(op.kind));
    if (mode == async_mode::always || (mode == async_mode::allowed && op.prefer_async))
        return operation_task_kind(c.name, op.kind);
    return {};
}

std::optional<outcome> task_requests::precheck(const operation& op, const collection_def& c) const {
    using namespace api_detail;
    switch (op.kind) {
        case op_kind::list:
            if (auto d = check_rule(c.rule_for("list"), op.who); d != decision::allow) return refused(d);
            if (auto v = permission_verdict(c, op.who, "list", nullptr); !v)
                return refused(decision::forbidden, v.reason);
            if (auto q = parse_query_params(c, op.params); !q) return outcome::from_problem(q.error());
            break;
        case op_kind::create: {
            if (auto d = check_rule(c.rule_for("create"), op.who); d != decision::allow) return refused(d);
            if (!op.input.is_object())
                return outcome::from_problem(problem::bad_request("A JSON object body is required."));
            auto body = op.input.get_object();
            if (auto pw = take_password(c, body); !pw) return outcome::from_problem(pw.error());
            auto v = validate_write(c, body, write_mode::create);
            if (!v) return outcome::from_problem(v.error());
            // The record as it would be stored now (the worker builds it again with its own id).
            auto rec = new_record(c, op.who, *v);
            if (auto v = permission_verdict(c, op.who, "create", &rec); !v)
                return refused(decision::forbidden, v.reason);
            break;
        }
        case op_kind::action: {
            outcome refusal;
            const auto* def = find_action(op, c, refusal);
            if (!def) return refusal;
            if (op.id.empty()) {
                if (auto d = check_rule(def->rule, op.who); d != decision::allow) return refused(d);
                if (auto v = permission_verdict(c, op.who, op.action, nullptr); !v)
                    return refused(decision::forbidden, v.reason);
            } else if (auto r = refuse_anonymous(def->rule, op.who)) {
                return r;
            }
            break;
        }
        // Detail requests: the record is judged by dispatch() before submitting.
        case op_kind::retrieve:
        case op_kind::replace:
        case op_kind::patch:
        case op_kind::remove:
            if (auto r = refuse_anonymous(detail_rule(op, c), op.who)) return r;
            break;
    }
    return std::nullopt;
}

void task_requests::submit(operation op, std::string kind, json::value input, done_fn done) {
    const collection_def* c = reg_.find(op.collection);
    // A password never reaches the store: it is hashed now, and the task carries the hash.
    if (c && api_detail::is_users(*c) && op.input.is_object()) {
        auto body = op.input.get_object();
        auto password = api_detail::take_password(*c, body);
        if (!password) return done(outcome::from_problem(password.error()));
        if (*password) {
            op.input = std::move(body);
            return hash_then_(std::move(**password), std::move(done),
                             [this, op = std::move(op), kind = std::move(kind),
                              input = std::move(input)](std::string hash, done_fn done) mutable {
                                 op.password_hash = std::move(hash);
                                 submit(std::move(op), std::move(kind), std::move(input), std::move(done));
                             });
        }
    }
    auto request = request_to_json(op, op.query);
    // Records operations carry their whole request as input: the worker runs it again.
    if (input.is_null() && kind.find_first_of(".:") != std::string::npos && c) input = request;
    // The request as the task shows it (and as its events and the change log hold it): without
    // the values of write_only fields and without a password hash. Only the input, which no
    // client ever reads, keeps what the worker must write.
    if (c) request = echo_of(*c, op.kind, std::move(request));
    store_submission(std::move(op), std::move(kind), std::move(input), std::move(request), {}, std::move(done));
}

namespace {

problem bad_field(std::string name, std::string detail) { return problem::bad_parameter(std::move(name), std::move(detail)); }

// The longest delay a submission may ask for.
constexpr std::int64_t k_max_delay_ms = 366LL * 24 * 3600 * 1000;

// "delay": seconds (a number) or a duration ("90s", "10m", "2h").
result<std::int64_t> delay_of(const json::value& v) {
    std::int64_t ms = -1;
    if (v.is_string()) {
        auto d = parse_duration(v.get_string());
        if (!d) return bad_field("delay", "Must be a number of seconds or a duration such as \"90s\", \"10m\" or \"2h\".");
        ms = d->count();
    } else if (v.is_number()) {
        const double sec = v.to_number<double>();
        if (!(sec >= 0) || sec * 1000 > static_cast<double>(k_max_delay_ms))
            return bad_field("delay", "Must be from 0 to 366 days, in seconds.");
        ms = static_cast<std::int64_t>(sec * 1000);
    } else {
        return bad_field("delay", "Must be a number of seconds or a duration such as \"90s\".");
    }
    if (ms < 0 || ms > k_max_delay_ms) return bad_field("delay", "Must be from 0 to 366 days.");
    return ms;
}

}  // namespace

void task_requests::submit_direct(operation op, done_fn done) {
    auto fail = [&done](problem p) { done(outcome::from_problem(std::move(p))); };
    if (!op.input.is_object()) return fail(problem::bad_request("The body must be a JSON object with a \"kind\"."));
    const auto& body = op.input.get_object();
    for (const auto& kv : body) {
        const auto k = kv.key();
        if (k != "kind" && k != "input" && k != "delay" && k != "not_before" && k != "priority")
            return fail(bad_field(std::string(k), "Unknown field; a submission takes kind, input, delay or "
                                                  "not_before, and priority."));
    }
    auto kv = body.find("kind");
    if (kv == body.end() || !kv->value().is_string() || kv->value().get_string().empty())
        return fail(bad_field("kind", "Must be a non-empty string."));
    std::string kind(kv->value().get_string());
    const access_rule* rule = reg_.submit_rule(kind);
    // One answer for a kind that does not exist and one that is not submittable: a caller
    // learns nothing of the app's other kinds.
    if (!rule) return fail(bad_field("kind", "No task kind of this name may be submitted directly."));
    if (auto d = check_rule(*rule, op.who); d != decision::allow) return done(api_detail::refused(d));

    task_schedule when;
    const std::int64_t now = now_ms();
    auto delay = body.find("delay");
    auto at = body.find("not_before");
    if (delay != body.end() && at != body.end())
        return fail(bad_field("delay", "Give delay or not_before, not both."));
    if (delay != body.end() && !delay->value().is_null()) {
        auto ms = delay_of(delay->value());
        if (!ms) return fail(std::move(ms).error());
        if (*ms > 0) when.not_before = now + *ms;
    }
    if (at != body.end() && !at->value().is_null()) {
        std::optional<std::int64_t> t;
        if (at->value().is_string()) t = parse_timestamp(at->value().get_string());
        if (!t) return fail(bad_field("not_before", "Must be an RFC 3339 time such as \"2026-12-24T18:00:00Z\"."));
        if (*t > now + k_max_delay_ms) return fail(bad_field("not_before", "Must be within 366 days."));
        if (*t > now) when.not_before = *t;  // a time past runs at once
    }
    if (auto p = body.find("priority"); p != body.end() && !p->value().is_null()) {
        const auto& v = p->value();
        const bool integral = v.is_int64() || v.is_uint64() ||
                              (v.is_double() && v.get_double() == static_cast<double>(static_cast<std::int64_t>(v.get_double())));
        const auto n = integral ? v.to_number<double>() : 0.0;
        if (!integral || n < task_queue::kMinPriority || n > task_queue::kMaxPriority)
            return fail(bad_field("priority", "Must be an integer from " + std::to_string(task_queue::kMinPriority) +
                                              " to " + std::to_string(task_queue::kMaxPriority) + "."));
        when.priority = static_cast<int>(n);
    }
    json::value input = nullptr;
    if (auto in = body.find("input"); in != body.end()) input = in->value();
    auto request = request_to_json(op, op.query);
    store_submission(std::move(op), std::move(kind), std::move(input), std::move(request), when, std::move(done));
}

void task_requests::store_submission(operation op, std::string kind, json::value input, json::object request,
                                     const task_schedule& when, done_fn done) {
    auto sub = workers_.make_submission(kind, std::move(input), std::move(request), op.who);
    if (!sub) {
        log_.error("task submission refused", {{"kind", kind}, {"detail", sub.error().detail}});
        return done(outcome::from_problem(problem::internal()));
    }
    sub->not_before = when.not_before;
    if (when.priority) sub->priority = *when.priority;
    bool prefer_applied = op.prefer_async;
    auto wait = std::chrono::seconds(op.prefer_wait.value_or(0));
    auto base = tasks_path();
    auto accepted = [base, prefer_applied](const json::object& task) {
        std::string id(get_string(task, "id"));
        auto o = outcome::json_body(202, present_task(task, base));
        o.location = base + "/" + id;
        o.headers.emplace_back("Retry-After", "1");
        if (prefer_applied) o.headers.emplace_back("Preference-Applied", "respond-async");
        return o;
    };
    // An Idempotency-Key's 202 is stored with the task (Prefer: wait answers later, with the
    // task's result: that key is recorded after the answer).
    std::shared_ptr<task_finish> fin;
    if (op.finish && wait.count() == 0 && op.finish->take()) fin = op.finish;
    std::function<result<void>(write_txn&, const json::object&)> also;
    if (fin)
        also = [fin, accepted](write_txn& t, const json::object& task) { return fin->in_txn(t, accepted(task)); };
    tasks_.submit_async(*sub, [this, done = std::move(done), prefer_applied, wait, accepted,
                                fin](result<json::object> r) mutable {
        if (fin) {
            if (r) fin->set_committed();
            else fin->give_back();
        }
        if (!r) return done(outcome::from_problem(r.error()));
        std::string id(get_string(*r, "id"));
        if (wait.count() > 0)
            return respond_when_finished(id, prefer_applied,
                                         std::chrono::steady_clock::now() + wait, std::move(done));
        done(accepted(*r));
    }, std::move(also));
}

// `Prefer: wait=N` on a submission: the synchronous answer if the task finishes in time, else
// the 202 of a plain submission.
void task_requests::respond_when_finished(const std::string& task_id, bool prefer_applied,
                                          std::chrono::steady_clock::time_point deadline, done_fn done) {
    waiters_.wait(task_id, deadline, [this, task_id, prefer_applied, done = std::move(done)]() mutable {
        db_.read([this, task_id, prefer_applied, done = std::move(done)](read_txn& t) {
            auto got = t.get(tasks_collection(), task_id);
            if (!got) return done(outcome::from_problem(got.error()));
            if (!got.value()) return done(outcome::from_problem(problem::gone("The task was purged.")));
            const auto& task = *got.value();
            auto path = tasks_path() + "/" + task_id;
            if (is_finished(state_of(task))) return done(result_outcome(task, path));
            auto o = outcome::json_body(202, present_task(task, tasks_path()));
            o.location = path;
            o.headers.emplace_back("Retry-After", "1");
            if (prefer_applied) o.headers.emplace_back("Preference-Applied", "respond-async");
            done(std::move(o));
        });
    });
    // A task that finished before the waiter was registered is caught by the next poll; check
    // once now so short tasks answer at once.
    db_.read([this, task_id](read_txn& t) {
        auto got = t.get(tasks_collection(), task_id);
        if (got && got.value() && is_finished(state_of(*got.value()))) waiters_.notify(task_id);
    });
}

void task_requests::endpoint(operation op, const endpoint_binding& e, done_fn done) {
    json::value input;
    if (op.method == "GET" || op.input.is_null()) {
        json::object args;
        for (const auto& [k, v] : op.params) args[k] = v;
        input = std::move(args);
    } else {
        input = op.input;
    }
    submit(std::move(op), e.task, std::move(input), std::move(done));
}

void task_requests::execute(operation op, done_fn done) {
    const auto& tc = tasks_collection();
    auto base = tasks_path();
    if (op.kind == op_kind::list) {
        auto q = parse_query_params(tc, op.params);
        if (!q) return done(outcome::from_problem(q.error()));
        if (q->ordering.empty()) q->ordering.push_back({"created", true});
        if (!narrow_task_query(op.who, *q)) {
            auto page = api::list_page(op, *q, 0);
            page["results"] = json::array{};
            return done(outcome::json_body(200, std::move(page)));
        }
        operation self = op;
        return db_.read([this, &tc, q = std::move(q).value(), base, self = std::move(self),
                         done = std::move(done)](read_txn& t) {
            auto pg = t.list(tc, q);
            if (!pg) return done(outcome::from_problem(pg.error()));
            json::array results;
            for (const auto& task : pg->items) results.emplace_back(present_task(task, base));
            auto page = api::list_page(self, q, pg->count);
            page["results"] = std::move(results);
            done(outcome::json_body(200, std::move(page)));
        });
    }
    if (op.kind == op_kind::create) return submit_direct(std::move(op), std::move(done));
    if (op.kind == op_kind::replace || op.kind == op_kind::patch || op.kind == op_kind::action) {
        auto o = outcome::from_problem(problem::method_not_allowed());
        o.headers.emplace_back("Allow", "GET, DELETE");
        return done(std::move(o));
    }
    auto path = base + "/" + op.id;
    if (op.kind == op_kind::remove) {
        // Cancelling writes through the queue, which blocks: run it on the handler pool.
        auto job = [this, op, path, done]() {
            auto got = tasks_.get(op.id);
            if (!got) return done(outcome::from_problem(got.error()));
            if (!got.value() || !may_see(op.who, *got.value()))
                return done(outcome::from_problem(problem::not_found()));
            auto before = state_of(*got.value());
            auto r = tasks_.cancel(op.id);
            if (!r) return done(outcome::from_problem(r.error()));
            auto after = state_of(*r);
            if (is_finished(after)) waiters_.notify(op.id);
            auto o = outcome::json_body(before == task_state::running && !is_finished(after) ? 202 : 200,
                                        present_task(*r, tasks_path()));
            done(std::move(o));
        };
        if (!run_blocking_(job))
            done(outcome::from_problem(problem::unavailable("The server is overloaded.")));
        return;
    }

    // retrieve (the task, or its result)
    auto answer = [this, op, path](const json::object& task) -> outcome {
        if (op.subresource == "result") return result_outcome(task, path);
        auto state = state_of(task);
        auto o = outcome::json_body(state == task_state::succeeded ? 303 : 200,
                                    present_task(task, tasks_path()));
        if (state == task_state::succeeded) {
            auto loc = get_string(task, "location");
            o.location = loc.empty() ? path + "/result" : std::string(loc);
        } else if (!is_finished(state)) {
            o.headers.emplace_back("Retry-After", "1");
        }
        return o;
    };
    auto lookup_task = [this, op, answer](done_fn done, bool may_wait) {
        db_.read([this, op, answer, done = std::move(done), may_wait](read_txn& t) mutable {
            auto got = t.get(tasks_collection(), op.id);
            if (!got) return done(outcome::from_problem(got.error()));
            if (!got.value() || !may_see(op.who, *got.value()))
                return done(outcome::from_problem(problem::not_found()));
            const auto& task = *got.value();
            if (may_wait && op.prefer_wait.value_or(0) > 0 && !is_finished(state_of(task))) {
                // Long poll: answer as soon as the task is finished, or after N seconds.
                auto deadline = std::chrono::steady_clock::now() + std::chrono::seconds(*op.prefer_wait);
                waiters_.wait(op.id, deadline, [this, op, answer, done = std::move(done)]() mutable {
                    db_.read([op, answer, done = std::move(done)](read_txn& t) {
                        auto again = t.get(tasks_collection(), op.id);
                        if (!again) return done(outcome::from_problem(again.error()));
                        if (!again.value()) return done(outcome::from_problem(problem::not_found()));
                        done(answer(*again.value()));
                    });
                });
                // It may have finished between the read and the registration.
                return db_.read([this, id = op.id](read_txn& t) {
                    auto again = t.get(tasks_collection(), id);
                    if (again && again.value() && is_finished(state_of(*again.value())))
                        waiters_.notify(id);
                });
            }
            done(answer(task));
        });
    };
    lookup_task(std::move(done), true);
}

result<json::object> task_requests::enqueue_in(write_txn& t, hook_tasks& h, std::string_view kind,
                                               json::value input, const principal& who) {
    auto sub = workers_.make_submission(kind, std::move(input), nullptr, who);
    if (!sub) {
        log_.error("a record hook enqueued a task of a kind this app does not register", {{"kind", kind}});
        return problem::internal();
    }
    // The same call of a transaction the store runs again finds its entry (and its admission).
    if (h.used == h.entries.size()) h.entries.push_back({task_queue::owner_key(*sub), false});
    auto& e = h.entries[h.used++];
    e.owner = task_queue::owner_key(*sub);
    return tasks_.submit_admitted_in(t, *sub, e.admitted);
}

void task_requests::enqueued(const hook_tasks& h, bool committed) {
    for (std::size_t i = 0; i < h.entries.size(); ++i)
        if (h.entries[i].admitted) tasks_.settle_submission(h.entries[i].owner, committed && i < h.used);
    if (committed && h.used > 0) tasks_.notify();
}

}  // namespace livebase
