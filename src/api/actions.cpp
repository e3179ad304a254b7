// Custom actions: finding the action an operation names, judging the caller, and running its
// C++ handler on the handler pool.
#include <livebase/api/api.hpp>

#include "api/access.hpp"
#include "api/handler_pool.hpp"
#include <livebase/auth/rules.hpp>

#include <exception>
#include <memory>

namespace livebase {

namespace {

using namespace api_detail;

// Guards user handler code: exceptions become a logged 500.
template <class Fn>
outcome guarded(logger& log, const operation& op, Fn&& fn) {
    try {
        return fn();
    } catch (const std::exception& e) {
        log.error("handler failed", {{"request_id", op.request_id}, {"error", e.what()}});
    } catch (...) {
        log.error("handler failed", {{"request_id", op.request_id}, {"error", "unknown exception"}});
    }
    return outcome::from_problem(problem::internal());
}

}  // namespace

const action_def* find_action(const operation& op, const collection_def& c, outcome& refusal) {
    auto it = c.actions.find(op.action);
    bool detail = !op.id.empty();
    if (it == c.actions.end() || it->second.detail != detail) {
        refusal = outcome::from_problem(problem::not_found("Unknown action \"" + op.action + "\"."));
        return nullptr;
    }
    const auto& def = it->second;
    bool method_ok = false;
    std::string allow;
    for (const auto& m : def.methods) {
        method_ok = method_ok || m == op.method;
        allow += (allow.empty() ? "" : ", ") + m;
    }
    if (!method_ok) {
        refusal = outcome::from_problem(problem::method_not_allowed());
        refusal.headers.emplace_back("Allow", allow);
        return nullptr;
    }
    return &def;
}


void api::do_action(operation op, const collection_def& c, std::function<void(outcome)> done) {
    outcome refusal;
    const auto* def = find_action(op, c, refusal);
    if (!def) return done(std::move(refusal));
    if (op.id.empty()) {
        if (auto d = check_rule(def->rule, op.who); d != decision::allow) return done(refused(d));
        if (auto v = permission_verdict(c, op.who, op.action, nullptr); !v)
            return done(refused(decision::forbidden, v.reason));
    } else if (auto r = refuse_anonymous(def->rule, op.who)) {
        return done(std::move(*r));
    }
    const auto* handler = reg_.find_action_handler(c.name, op.action);
    if (!handler) {
        log_.error("action has no handler", {{"collection", c.name}, {"action", op.action}});
        return done(outcome::from_problem(problem::internal()));
    }

    // The key belongs to this request and was settled before it got here: an operation the
    // handler derives from call.op (execute_sync of a patch, say) must not claim it again,
    // which would find the key still pending and answer 409.
    op.idempotency_key.clear();
    // Nor the key's finisher: the action's response is not its first write's (the key is
    // recorded after the action; a task's finisher stays, it records the task's outcome).
    if (!op.from_task) op.finish.reset();
    auto shared_done = std::make_shared<std::function<void(outcome)>>(std::move(done));
    auto invoke = [this, &c, handler, shared_done](operation op, std::optional<json::object> rec) {
        auto job = [this, &c, handler, shared_done, op = std::move(op), rec = std::move(rec)] {
            (*shared_done)(guarded(log_, op, [&] {
                action_call call{op, c, rec ? &*rec : nullptr, db_, *this};
                auto r = (*handler)(call);
                return r ? std::move(r).value() : outcome::from_problem(r.error());
            }));
        };
        if (!pool_->post(std::move(job)))
            (*shared_done)(outcome::from_problem(problem::unavailable("The server is overloaded.")));
    };
    if (op.id.empty()) return invoke(std::move(op), std::nullopt);
    db_.read([&c, rule = def->rule, op = std::move(op), invoke, shared_done](read_txn& t) mutable {
        auto got = t.get(c, op.id);
        if (!got) return (*shared_done)(outcome::from_problem(got.error()));
        if (!got.value()) return (*shared_done)(outcome::from_problem(problem::not_found()));
        std::string why;
        if (auto d = check_record(c, op.action, rule, op.who, *got.value(), &why); d != decision::allow)
            return (*shared_done)(refused(d, why));
        invoke(std::move(op), std::move(*got.value()));
    });
}

}  // namespace livebase
