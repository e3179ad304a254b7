#include <livebase/api/api.hpp>

#include "api/auth_requests.hpp"
#include "api/handler_pool.hpp"
#include "api/record_hooks.hpp"
#include "api/idempotency.hpp"
#include "api/task_requests.hpp"
#include <livebase/auth/auth.hpp>
#include <livebase/auth/rules.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/schema/validate.hpp>

#include <condition_variable>
#include <deque>
#include <exception>
#include <future>
#include <mutex>
#include <thread>

#include <unistd.h>

#include "access.hpp"

namespace livebase {

namespace {

constexpr std::size_t k_max_cascade_depth = 16;
constexpr std::size_t k_ref_batch = 1000;

// The URL of another page of the same list: the request's params without limit/offset, then
// the new limit and offset (offset omitted when 0, as Django REST framework does).
std::string page_link(const operation& op, std::size_t limit, std::size_t offset) {
    std::string out = op.path + "?";
    for (const auto& [k, v] : op.params) {
        if (k == "limit" || k == "offset") continue;
        out += percent_encode(k) + "=" + percent_encode(v) + "&";
    }
    out += "limit=" + std::to_string(limit);
    if (offset > 0) out += "&offset=" + std::to_string(offset);
    return out;
}

// The body of create/update/patch: must be a JSON object.
result<json::object> body_object(const operation& op) {
    if (op.input.is_null()) return problem::bad_request("A JSON object body is required.");
    if (!op.input.is_object()) return problem::bad_request("The body must be a JSON object.");
    return op.input.get_object();
}

// "version" in a body is checked like If-Match; an If-Match header wins when both are given.
result<std::optional<std::int64_t>> expected_version(const operation& op, const json::object& body) {
    if (op.if_match) return op.if_match;
    auto it = body.find("version");
    if (it == body.end() || it->value().is_null()) return std::optional<std::int64_t>{};
    if (auto v = get_int(body, "version")) return std::optional<std::int64_t>{*v};
    return problem::validation({{"version", {"Must be an integer."}}});
}

result<void> check_version(const std::optional<std::int64_t>& expected, const json::object& stored) {
    if (!expected) return {};
    auto current = get_int(stored, "version");
    if (current && *current == *expected) return {};
    return problem::precondition_failed(
        "The record is at version " + std::to_string(current.value_or(0)) + ", not " +
        std::to_string(*expected) + ".");
}

// Every non-null ref field must name an existing record of its target collection, and one
// `who` may retrieve: a record the caller may not see answers exactly like a missing one (a
// reference must not prove that it exists). A ref an update leaves as it was (`stored`, null
// for a create) is not judged again: someone else may have set it.
result<void> check_refs(const registry& reg, const collection_def& c, const json::object& rec,
                        read_txn& t, const principal& who, const json::object* stored = nullptr) {
    field_errors errors;
    for (const auto& f : c.fields) {
        if (f.type != field_type::ref) continue;
        auto it = rec.find(f.name);
        if (it == rec.end() || !it->value().is_string()) continue;
        const auto* target = reg.find(f.ref_to);
        std::string id(it->value().get_string());
        if (!target) {
            errors[f.name].push_back("Unknown target collection \"" + f.ref_to + "\".");
            continue;
        }
        bool unchanged = false;
        if (stored)
            if (auto old = stored->find(f.name); old != stored->end() && old->value() == it->value())
                unchanged = true;
        auto got = t.get(*target, id);
        if (!got) return std::move(got).error();
        if (!got.value() || (!unchanged && !may_retrieve(*target, who, *got.value())))
            errors[f.name].push_back("Invalid pk \"" + id + "\" - object does not exist.");
    }
    if (!errors.empty()) return problem::validation(std::move(errors));
    return {};
}

// The finisher a task-run operation hands to its write (see task_finish), or null.
std::shared_ptr<task_finish> take_finish(const operation& op) {
    if (op.finish && op.finish->take()) return op.finish;
    return nullptr;
}

// Inside the write, after its effect: the task's success joins the transaction.
result<void> finish_in(const std::shared_ptr<task_finish>& fin, write_txn& t, const outcome& o) {
    if (!fin) return {};
    return fin->in_txn(t, o);
}

// After the write: committed (the task is finished) or not (the next write may finish it).
void settle(const std::shared_ptr<task_finish>& fin, bool committed) {
    if (!fin) return;
    if (committed) fin->set_committed();
    else fin->give_back();
}

json::object with_fields(json::object base, const json::object& fields) {
    for (const auto& kv : fields) base[kv.key()] = kv.value();
    return base;
}

result<void> remove_record(const registry& reg, const collection_def& c, const json::object& rec,
                           write_txn& t, std::size_t depth);

// Applies the on_delete policies of every ref field that points at `c` to the records that
// reference `id`: restrict refuses (409), cascade deletes them, set_null clears the field.
result<void> apply_on_delete(const registry& reg, const collection_def& c, std::string_view id,
                             write_txn& t, std::size_t depth) {
    for (const auto* other : reg.collections()) {
        for (const auto& f : other->fields) {
            if (f.type != field_type::ref || f.ref_to != c.name) continue;
            query q;
            q.filters.push_back({f.name, lookup::exact, json::value(id)});
            q.limit = k_ref_batch;
            for (;;) {
                auto pg = t.list(*other, q);
                if (!pg) return std::move(pg).error();
                if (pg->items.empty()) break;
                if (f.on_delete == on_delete_policy::restrict) {
                    // Referrers the caller may not see block the delete too (integrity), but the
                    // answer neither counts nor names them.
                    return problem::conflict("Cannot delete: records of " + other->name +
                                             " refer to it through " + f.name + ".");
                }
                for (auto& row : pg->items) {
                    if (f.on_delete == on_delete_policy::cascade) {
                        if (auto r = remove_record(reg, *other, row, t, depth + 1); !r) return r;
                    } else {
                        row[f.name] = nullptr;
                        row["version"] = get_int(row, "version").value_or(0) + 1;
                        row["updated"] = format_timestamp(now_ms());
                        if (auto r = t.update(*other, row); !r) return r;
                    }
                }
            }
        }
    }
    return {};
}

result<void> remove_record(const registry& reg, const collection_def& c, const json::object& rec,
                           write_txn& t, std::size_t depth) {
    if (depth > k_max_cascade_depth)
        return problem::conflict("Cannot delete: the cascade is deeper than " +
                                 std::to_string(k_max_cascade_depth) + " levels.");
    if (auto r = apply_on_delete(reg, c, get_string(rec, "id"), t, depth); !r) return r;
    return t.remove(c, rec);
}

}  // namespace

namespace {

using namespace api_detail;

// `fields=a,b` on a detail request: the same projection as in lists.
result<std::vector<std::string>> detail_fields(const collection_def& c, const query_params& params) {
    query_params only;
    for (const auto& kv : params)
        if (kv.first == "fields") only.push_back(kv);
    if (only.empty()) return std::vector<std::string>{};
    auto q = parse_query_params(c, only);
    if (!q) return std::move(q).error();
    return std::move(q->fields);
}

// The state of a write's before-hooks (what they enqueued), or null when there are none.
std::shared_ptr<hook_tasks> hook_state(const std::vector<before_hook>& hooks) {
    return hooks.empty() ? nullptr : std::make_shared<hook_tasks>();
}

outcome deleted_outcome() {
    outcome o;
    o.status = 204;
    return o;
}

outcome record_outcome(int status, const collection_def& c, const json::object& rec,
                       const std::vector<std::string>& fields = {}) {
    auto o = outcome::json_body(status, present_record(c, rec, fields));
    o.version = get_int(rec, "version");
    return o;
}

// A boolean field that is true (absent, null or not a boolean: false).
bool flag(const json::object& rec, std::string_view key) {
    auto it = rec.find(key);
    return it != rec.end() && it->value().is_bool() && it->value().get_bool();
}

// Deletes every token of `user_id` (a password change or a deleted user ends its sessions; the
// hub's authenticator::on_change then closes its sockets).
result<void> delete_tokens(write_txn& t, std::string_view user_id) {
    const auto& tc = tokens_collection();
    query q;
    q.filters.push_back({"user", lookup::exact, json::value(user_id)});
    q.limit = k_ref_batch;
    q.with_count = false;
    for (;;) {
        auto pg = t.list(tc, q);
        if (!pg) return std::move(pg).error();
        if (pg->items.empty()) return {};
        for (const auto& row : pg->items)
            if (auto r = t.remove(tc, row); !r) return r;
    }
}

}  // namespace

api::api(const registry& reg, store& db, logger& log, std::string base_path)
    : reg_(reg), db_(db), log_(log), base_path_(std::move(base_path)),
      pool_(std::make_unique<handler_pool>()),
      auth_ops_(std::make_unique<auth_requests>(base_path_)),
      keys_(std::make_unique<idempotency_keys>(db, log)) {}

api::~api() = default;

void api::enable_auth(authenticator& a, bool signup) noexcept {
    auth_ = &a;
    auth_ops_->enable(a, signup);
}

bool api::has_effects(const operation& op) const {
    if (op.collection == "auth" || op.collection == "tasks") return false;
    if (reg_.find_endpoint(op.method, op.path)) return true;
    const auto* c = reg_.find(op.collection);
    if (!c) return false;
    if (op.kind != op_kind::list && op.kind != op_kind::retrieve) return true;  // actions, writes
    return task_ops_ && !task_ops_->async_kind(op, *c).empty();
}

void api::set_login_limits(rate per_user, rate per_address) noexcept {
    auth_ops_->set_limits(per_user, per_address);
}

std::string record_path(std::string_view base_path, std::string_view collection,
                        std::string_view id) {
    std::string p(base_path);
    if (p.empty() || p.back() != '/') p += '/';
    p += collection;
    p += '/';
    p += percent_encode(id);
    return p;
}

std::string api::record_path(std::string_view collection, std::string_view id) const {
    return livebase::record_path(base_path_, collection, id);
}

void api::execute(operation op, std::function<void(outcome)> done) {
    bool unsafe = op.method == "POST" || op.method == "PUT" || op.method == "PATCH" ||
                  op.method == "DELETE" || op.prefer_async;
    // Auth operations are never replayed: the stored response of a login would hold its token.
    bool replayable = op.collection != "auth";
    if (!op.idempotency_key.empty() && !op.from_task && unsafe && replayable)
        return keys_->handle(std::move(op), std::move(done), [this](operation o, done_fn d) {
            dispatch(std::move(o), std::move(d));
        });
    dispatch(std::move(op), std::move(done));
}

void api::dispatch(operation op, std::function<void(outcome)> done) {
    if (op.from_task && auth_ && op.who.authenticated()) {
        // The submitter as they are now, not as they were at submission: a disabled or deleted
        // user's task fails with 401, and an admin flag removed since then no longer applies.
        // We are on a task worker thread, where blocking on the store is allowed.
        auto now = auth_->principal_of_sync(op.who.user_id);
        if (!now) return done(outcome::from_problem(now.error()));
        op.who = std::move(now).value();
    }
    if (op.collection == "auth") return auth_ops_->execute(std::move(op), std::move(done));
    if (task_ops_ && !op.from_task) {
        if (op.collection == "tasks") return task_ops_->execute(std::move(op), std::move(done));
        if (const auto* e = reg_.find_endpoint(op.method, op.path)) {
            if (auto d = check_rule(e->rule, op.who); d != decision::allow) return done(refused(d));
            return task_ops_->endpoint(std::move(op), *e, std::move(done));
        }
    }
    const auto* c = reg_.find(op.collection);
    if (!c) {
        done(outcome::from_problem(problem::not_found("Unknown collection \"" + op.collection + "\".")));
        return;
    }
    if (task_ops_ && !op.from_task) {
        if (auto kind = task_ops_->async_kind(op, *c); !kind.empty()) {
            if (auto refusal = task_ops_->precheck(op, *c)) return done(std::move(*refusal));
            bool task_action = op.kind == op_kind::action && !c->actions.at(op.action).task.empty();
            // A task action's input is its body; a records operation (or a C++ action) runs the
            // stored request again in a worker (submit() stores it as the input).
            json::value input = task_action ? op.input : json::value(nullptr);
            if (op.id.empty()) return task_ops_->submit(std::move(op), std::move(kind), std::move(input), std::move(done));
            // A detail request is judged on its record now: a missing or hidden record is a 404
            // at once, not a task (the worker checks again when it runs the request).
            return db_.read([this, c, op = std::move(op), kind = std::move(kind), input = std::move(input),
                             task_action, done = std::move(done)](read_txn& t) mutable {
                auto got = t.get(*c, op.id);
                if (!got) return done(outcome::from_problem(got.error()));
                if (!got.value()) return done(outcome::from_problem(problem::not_found()));
                std::string why;
                auto d = check_record(*c, detail_action(op), detail_rule(op, *c), op.who, *got.value(), &why);
                if (d != decision::allow) return done(refused(d, why));
                if (task_action) {
                    // A detail task action's input adds the record's pk to its body.
                    json::object o = input.is_object() ? input.get_object() : json::object{};
                    if (!input.is_null() && !input.is_object()) o["data"] = input;
                    o["pk"] = op.id;
                    input = std::move(o);
                }
                task_ops_->submit(std::move(op), std::move(kind), std::move(input), std::move(done));
            });
        }
    }
    switch (op.kind) {
        case op_kind::list: return do_list(std::move(op), *c, std::move(done));
        case op_kind::retrieve: return do_retrieve(std::move(op), *c, std::move(done));
        case op_kind::create: return do_create(std::move(op), *c, std::move(done));
        case op_kind::replace:
        case op_kind::patch: return do_update(std::move(op), *c, std::move(done));
        case op_kind::remove: return do_remove(std::move(op), *c, std::move(done));
        case op_kind::action: return do_action(std::move(op), *c, std::move(done));
    }
}

outcome api::execute_sync(operation op) {
    std::promise<outcome> p;
    auto f = p.get_future();
    execute(std::move(op), [&p](outcome o) { p.set_value(std::move(o)); });
    return f.get();
}

json::object api::list_page(const operation& op, const query& q, std::int64_t total) {
    json::object body;
    auto count = static_cast<std::size_t>(total);
    body["count"] = total;
    body["next"] = q.offset + q.limit < count ? json::value(page_link(op, q.limit, q.offset + q.limit))
                                              : json::value(nullptr);
    body["previous"] = q.offset > 0 ? json::value(page_link(op, q.limit,
                                                            q.offset > q.limit ? q.offset - q.limit : 0))
                                    : json::value(nullptr);
    return body;
}

bool api::run_blocking(std::function<void()> job) { return pool_->post(std::move(job)); }

void api::hash_then(std::string password, done_fn done, std::function<void(std::string, done_fn)> next) {
    // Argon2id takes tens of milliseconds of CPU and memory: never on an I/O or store thread.
    auto shared_done = std::make_shared<done_fn>(std::move(done));
    auto job = [password = std::move(password), shared_done, next = std::move(next)]() mutable {
        auto hash = hash_password(password);
        if (!hash) return (*shared_done)(outcome::from_problem(hash.error()));
        next(std::move(hash).value(), std::move(*shared_done));
    };
    if (!run_blocking(std::move(job)))
        (*shared_done)(outcome::from_problem(problem::unavailable("The server is overloaded.")));
}

void api::do_list(operation op, const collection_def& c, std::function<void(outcome)> done) {
    if (auto d = check_rule(c.rule_for("list"), op.who); d != decision::allow) return done(refused(d));
    if (auto v = permission_verdict(c, op.who, "list", nullptr); !v)
        return done(refused(decision::forbidden, v.reason));
    auto q = parse_query_params(c, op.params);
    if (!q) return done(outcome::from_problem(q.error()));
    if (!narrow_query(c, op.who, *q)) {
        // The caller may retrieve no record at all: an empty page, without asking the store.
        auto body = list_page(op, *q, 0);
        body["results"] = json::array{};
        return done(outcome::json_body(200, std::move(body)));
    }
    db_.read([op = std::move(op), q = std::move(q).value(), &c,
              done = std::move(done)](read_txn& t) {
        auto pg = t.list(c, q);
        if (!pg) return done(outcome::from_problem(pg.error()));
        json::array results;
        results.reserve(pg->items.size());
        // narrow_query() applied the rule in SQL; the C++ callback can only be asked per row, so
        // a callback that hides rows makes the page shorter than `limit` and `count` an upper
        // bound (it still counts the hidden rows). The rows themselves never leak.
        for (const auto& rec : pg->items)
            if (may_retrieve(c, op.who, rec)) results.emplace_back(present_record(c, rec, q.fields));
        auto body = list_page(op, q, pg->count);
        body["results"] = std::move(results);
        done(outcome::json_body(200, std::move(body)));
    });
}

void api::do_retrieve(operation op, const collection_def& c, std::function<void(outcome)> done) {
    auto fields = detail_fields(c, op.params);
    if (!fields) return done(outcome::from_problem(fields.error()));
    if (auto r = refuse_anonymous(c.rule_for("retrieve"), op.who)) return done(std::move(*r));
    db_.read([id = std::move(op.id), who = std::move(op.who), fields = std::move(fields).value(), &c,
              done = std::move(done)](read_txn& t) {
        auto got = t.get(c, id);
        if (!got) return done(outcome::from_problem(got.error()));
        if (!got.value()) return done(outcome::from_problem(problem::not_found()));
        const auto& rec = *got.value();
        if (auto d = check_record(c, "retrieve", c.rule_for("retrieve"), who, rec); d != decision::allow)
            return done(refused(d));
        done(record_outcome(200, c, rec, fields));
    });
}

void api::do_create(operation op, const collection_def& c, std::function<void(outcome)> done) {
    // The rule first: an anonymous caller learns that credentials are needed, not what a valid
    // body looks like.
    if (auto d = check_rule(c.rule_for("create"), op.who); d != decision::allow) return done(refused(d));
    auto body = body_object(op);
    if (!body) return done(outcome::from_problem(body.error()));
    auto password = take_password(c, *body);
    if (!password) return done(outcome::from_problem(password.error()));
    auto fields = validate_write(c, *body, write_mode::create);
    if (!fields) return done(outcome::from_problem(fields.error()));
    auto rec = new_record(c, op.who, *fields);
    if (auto v = permission_verdict(c, op.who, "create", &rec); !v)
        return done(refused(decision::forbidden, v.reason));
    if (!*password) {
        // A task hashed the password at submission.
        if (op.password_hash && is_users(c)) rec["password_hash"] = *op.password_hash;
        return insert_record(c, std::move(rec), op.who, take_finish(op), std::move(done));
    }
    hash_then(std::move(**password), std::move(done),
              [this, &c, rec = std::move(rec), who = op.who, fin = take_finish(op)](std::string hash,
                                                                                   done_fn done) mutable {
                  rec["password_hash"] = std::move(hash);
                  insert_record(c, std::move(rec), std::move(who), std::move(fin), std::move(done));
              });
}

outcome api::created_outcome(const collection_def& c, const json::object& rec) const {
    auto o = record_outcome(201, c, rec);
    o.location = record_path(c.name, get_string(rec, "id"));
    return o;
}

void api::insert_record(const collection_def& c, json::object rec, principal who,
                        std::shared_ptr<task_finish> fin, done_fn done) {
    auto hooked = hook_state(c.hooks.before_create);
    db_.write(
        [this, &c, rec = std::move(rec), who, fin, hooked](write_txn& t) -> result<json::value> {
            if (hooked) {
                // A replayed transaction runs the hooks again, on the record as validated.
                json::object draft = rec;
                if (auto r = run_hooks(c, c.hooks.before_create, who, "create", &draft, nullptr, t, hooked); !r)
                    return std::move(r).error();
                return insert_in(c, std::move(draft), who, fin, t);
            }
            return insert_in(c, rec, who, fin, t);
        },
        [this, &c, fin, who, hooked, done = std::move(done)](result<json::value> r) {
            settle(fin, r.has_value());
            hooks_done(hooked, r.has_value());
            if (!r) return done(outcome::from_problem(r.error()));
            after_write(c, c.hooks.after_create, "create", who, &r->get_object(), nullptr);
            done(created_outcome(c, r->get_object()));
        });
}

result<json::value> api::insert_in(const collection_def& c, json::object rec, const principal& who,
                                   const std::shared_ptr<task_finish>& fin, write_txn& t) {
    if (auto r = check_refs(reg_, c, rec, t, who); !r) return std::move(r).error();
    if (is_users(c))
        if (auto p = username_conflict(t, get_string(rec, "username"))) return std::move(*p);
    if (auto r = t.insert(c, rec); !r) return std::move(r).error();
    // The outcome (a presented copy of the record) only when a task finishes with this write.
    if (fin)
        if (auto r = finish_in(fin, t, created_outcome(c, rec)); !r) return std::move(r).error();
    return json::value(std::move(rec));
}

result<void> api::run_hooks(const collection_def& c, const std::vector<before_hook>& hooks, const principal& who,
                            std::string_view action, json::object* record, const json::object* stored,
                            write_txn& t, const std::shared_ptr<hook_tasks>& tasks) {
    if (hooks.empty() || !tasks) return {};
    tasks->used = 0;
    auto w = hook_view(who, action, record, stored, t, *tasks);
    return run_before_hooks(log_, c, hooks, w);
}

void api::hooks_done(const std::shared_ptr<hook_tasks>& tasks, bool committed) {
    if (tasks && task_ops_) task_ops_->enqueued(*tasks, committed);
}

record_write api::hook_view(const principal& who, std::string_view action, json::object* record,
                           const json::object* stored, write_txn& t, hook_tasks& tasks) {
    record_write w{who, action, record, stored, &t, {}, {}};
    if (task_ops_)
        w.enqueue = [this, &who, &t, &tasks](std::string_view kind, json::value input) {
            return task_ops_->enqueue_in(t, tasks, kind, std::move(input), who);
        };
    w.create = [this, &who, &t](std::string_view name, const json::object& fields) -> result<json::object> {
        const auto* c = reg_.find(name);
        if (!c || c->built_in) {
            log_.error("a hook created a record of a collection that is not declared", {{"collection", name}});
            return problem::internal();
        }
        auto valid = validate_write(*c, fields, write_mode::create);
        if (!valid) return std::move(valid).error();
        auto stored = insert_in(*c, new_record(*c, who, *valid), who, nullptr, t);
        if (!stored) return std::move(stored).error();
        return std::move(stored->get_object());
    };
    return w;
}

void api::after_write(const collection_def& c, const std::vector<after_hook>& hooks, std::string action,
                      const principal& who, const json::object* record, const json::object* stored) {
    if (hooks.empty()) return;
    committed_write w{who, std::move(action), std::nullopt, std::nullopt};
    if (record) w.record = *record;
    if (stored) w.stored = *stored;
    schedule_after_hooks(log_, c, hooks, std::move(w), [this](std::function<void()> job) {
        return run_blocking(std::move(job));
    });
}

void api::do_update(operation op, const collection_def& c, std::function<void(outcome)> done) {
    if (auto r = refuse_anonymous(c.rule_for("update"), op.who)) return done(std::move(*r));
    auto body = body_object(op);
    if (!body) return done(outcome::from_problem(body.error()));
    auto password = take_password(c, *body);
    if (!password) return done(outcome::from_problem(password.error()));
    if (!*password) {
        // A task hashed the password at submission.
        auto hashed = is_users(c) ? op.password_hash : std::nullopt;
        return write_update(std::move(op), c, std::move(body).value(), std::move(hashed), std::move(done));
    }
    // A new password: judge the caller on the stored user before spending Argon2id on it (the
    // write below judges again, on the record it writes).
    auto shared_done = std::make_shared<done_fn>(std::move(done));
    db_.read([this, &c, op = std::move(op), body = std::move(body).value(), password = std::move(**password),
              shared_done](read_txn& t) mutable {
        auto got = t.get(c, op.id);
        if (!got) return (*shared_done)(outcome::from_problem(got.error()));
        if (!got.value()) return (*shared_done)(outcome::from_problem(problem::not_found()));
        std::string why;
        auto d = check_record(c, detail_action(op), c.rule_for("update"), op.who, *got.value(), &why);
        if (d != decision::allow) return (*shared_done)(refused(d, why));
        hash_then(std::move(password), std::move(*shared_done),
                  [this, &c, op = std::move(op), body = std::move(body)](std::string hash, done_fn done) mutable {
                      write_update(std::move(op), c, std::move(body), std::move(hash), std::move(done));
                  });
    });
}

void api::write_update(operation op, const collection_def& c, json::object body,
                       std::optional<std::string> password_hash, done_fn done) {
    auto expected = expected_version(op, body);
    if (!expected) return done(outcome::from_problem(expected.error()));
    auto mode = op.kind == op_kind::patch ? write_mode::patch : write_mode::replace;
    std::string action(detail_action(op));
    auto fin = take_finish(op);
    // The record as it was, for the after-hooks (filled on the writer thread before `done`).
    auto was = c.hooks.after_update.empty() ? nullptr : std::make_shared<json::object>();
    auto hooked = hook_state(c.hooks.before_update);

    db_.write(
        [this, &c, id = std::move(op.id), who = op.who, action, body = std::move(body), expected = *expected, mode,
         fin, was, hooked, password_hash = std::move(password_hash)](write_txn& t) -> result<json::value> {
            auto got = t.get(c, id);
            if (!got) return std::move(got).error();
            if (!got.value()) return problem::not_found();
            const auto& stored = *got.value();
            // Judged on the record as it is in this transaction; a refusal writes nothing.
            std::string why;
            if (auto d = check_record(c, action, c.rule_for("update"), who, stored, &why); d != decision::allow)
                return refusal_problem(d, why);
            if (auto r = check_version(expected, stored); !r) return std::move(r).error();
            auto fields = validate_write(c, body, mode, &stored);
            if (!fields) return std::move(fields).error();
            auto rec = with_fields(stored, *fields);
            rec["version"] = get_int(stored, "version").value_or(0) + 1;
            rec["updated"] = format_timestamp(now_ms());
            if (password_hash) rec["password_hash"] = *password_hash;
            if (auto r = run_hooks(c, c.hooks.before_update, who, action, &rec, &stored, t, hooked); !r)
                return std::move(r).error();
            if (was) *was = stored;
            if (auto r = check_refs(reg_, c, rec, t, who, &stored); !r) return std::move(r).error();
            if (is_users(c))
                if (auto p = username_conflict(t, get_string(rec, "username"), id)) return std::move(*p);
            if (auto r = t.update(c, rec, &stored); !r) return std::move(r).error();
            // A new password or a disable ends every session of the user (as `livebase users
            // passwd|disable` does): re-enabling later must not bring old tokens back.
            const bool disabled = is_users(c) && flag(rec, "disabled") && !flag(stored, "disabled");
            if (password_hash || disabled)
                if (auto r = delete_tokens(t, id); !r) return std::move(r).error();
            if (auto r = finish_in(fin, t, record_outcome(200, c, rec)); !r) return std::move(r).error();
            return json::value(std::move(rec));
        },
        [this, &c, fin, was, hooked, who = op.who, action, done = std::move(done)](result<json::value> r) {
            settle(fin, r.has_value());
            hooks_done(hooked, r.has_value());
            if (!r) return done(outcome::from_problem(r.error()));
            if (is_users(c)) forget_user(std::string(get_string(r->get_object(), "id")));
            after_write(c, c.hooks.after_update, action, who, &r->get_object(), was.get());
            done(record_outcome(200, c, r->get_object()));
        });
}

void api::forget_user(const std::string& user_id) {
    // The hub does this too when it reads the change; doing it before answering means no
    // request after the answer can be served from credentials the change ended.
    if (!auth_ || user_id.empty()) return;
    change ch;
    ch.collection = users_collection().name;
    ch.op = "update";  // without `before`: whatever changed, the cached identity is dropped
    ch.id = user_id;
    (void)auth_->on_change(ch);
}

void api::do_remove(operation op, const collection_def& c, std::function<void(outcome)> done) {
    if (auto r = refuse_anonymous(c.rule_for("delete"), op.who)) return done(std::move(*r));
    auto fin = take_finish(op);
    const std::string removed = op.id;
    auto was = c.hooks.after_delete.empty() ? nullptr : std::make_shared<json::object>();
    auto hooked = hook_state(c.hooks.before_delete);
    db_.write(
        [this, &c, id = std::move(op.id), who = op.who, expected = op.if_match, fin, was,
         hooked](write_txn& t) -> result<json::value> {
            auto got = t.get(c, id);
            if (!got) return std::move(got).error();
            if (!got.value()) return problem::not_found();
            const auto& stored = *got.value();
            std::string why;
            if (auto d = check_record(c, "delete", c.rule_for("delete"), who, stored, &why); d != decision::allow)
                return refusal_problem(d, why);
            if (auto r = check_version(expected, stored); !r) return std::move(r).error();
            if (auto r = run_hooks(c, c.hooks.before_delete, who, "delete", nullptr, &stored, t, hooked); !r)
                return std::move(r).error();
            if (was) *was = stored;
            // A deleted user's tokens go with it (first, so no reference to the user remains).
            if (is_users(c))
                if (auto r = delete_tokens(t, id); !r) return std::move(r).error();
            if (auto r = remove_record(reg_, c, stored, t, 0); !r) return std::move(r).error();
            if (auto r = finish_in(fin, t, deleted_outcome()); !r) return std::move(r).error();
            return json::value(nullptr);
        },
        [this, &c, removed, fin, was, hooked, who = op.who, done = std::move(done)](result<json::value> r) {
            settle(fin, r.has_value());
            hooks_done(hooked, r.has_value());
            if (!r) return done(outcome::from_problem(r.error()));
            if (is_users(c)) forget_user(removed);
            after_write(c, c.hooks.after_delete, "delete", who, nullptr, was.get());
            done(deleted_outcome());
        });
}

void api::set_idempotency_retention(std::chrono::milliseconds retention) noexcept {
    keys_->set_retention(retention);
}

void api::set_node(std::string name) { keys_->set_node(std::move(name)); }

void api::keep_keys_alive() { keys_->keep_alive(); }

void api::enable_tasks(task_queue& queue, worker_pool& pool, task_waiters& waiters) {
    task_ops_ = std::make_unique<task_requests>(
        reg_, db_, log_, base_path_, queue, pool, waiters,
        [this](std::function<void()> job) { return run_blocking(std::move(job)); },
        [this](std::string password, done_fn done, std::function<void(std::string, done_fn)> next) {
            hash_then(std::move(password), std::move(done), std::move(next));
        });
}

bool api::watch_task(const std::string& id, std::chrono::steady_clock::time_point deadline,
                     std::function<void()> cb) {
    return task_ops_ && task_ops_->watch(id, deadline, std::move(cb));
}

}  // namespace livebase
