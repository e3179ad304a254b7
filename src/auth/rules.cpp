#include <livebase/auth/rules.hpp>

namespace livebase {

namespace {

bool owns(const principal& who, const json::object& stored) {
    if (!who.authenticated()) return false;
    auto it = stored.find("owner");
    return it != stored.end() && it->value().is_string() && it->value().get_string() == who.user_id;
}

// The rule alone on a record the caller may see.
decision rule_on_record(access_rule r, const principal& who, const json::object& stored) noexcept {
    switch (r) {
        case access_rule::public_: return decision::allow;
        case access_rule::authenticated:
            return who.authenticated() ? decision::allow : decision::unauthenticated;
        case access_rule::owner:
            if (!who.authenticated()) return decision::unauthenticated;
            return who.admin || owns(who, stored) ? decision::allow : decision::forbidden;
        case access_rule::admin:
            if (!who.authenticated()) return decision::unauthenticated;
            return who.admin ? decision::allow : decision::forbidden;
        case access_rule::nobody: return decision::forbidden;
    }
    return decision::forbidden;
}

}  // namespace

decision check_rule(access_rule r, const principal& who) noexcept {
    switch (r) {
        case access_rule::public_: return decision::allow;
        case access_rule::authenticated:
        case access_rule::owner:
            return who.authenticated() ? decision::allow : decision::unauthenticated;
        case access_rule::admin:
            if (!who.authenticated()) return decision::unauthenticated;
            return who.admin ? decision::allow : decision::forbidden;
        case access_rule::nobody: return decision::forbidden;
    }
    return decision::forbidden;
}

verdict permission_verdict(const collection_def& c, const principal& who,
                           std::string_view action, const json::object* record) noexcept {
    if (!c.permission) return verdict::allow();
    try {
        return c.permission(who, action, record);
    } catch (...) {
        // A bug in user code must never open a door: it refuses.
        return verdict(false);
    }
}

bool permission_allows(const collection_def& c, const principal& who, std::string_view action,
                       const json::object* record) noexcept {
    return permission_verdict(c, who, action, record).allowed;
}

bool may_retrieve(const collection_def& c, const principal& who, const json::object& stored) noexcept {
    if (rule_on_record(c.rule_for("retrieve"), who, stored) != decision::allow) return false;
    return permission_allows(c, who, "retrieve", &stored);
}

bool narrow_query(const collection_def& c, const principal& who, query& q) {
    switch (c.rule_for("retrieve")) {
        case access_rule::public_: return true;
        case access_rule::authenticated: return who.authenticated();
        case access_rule::admin: return who.authenticated() && who.admin;
        case access_rule::nobody: return false;
        case access_rule::owner:
            if (!who.authenticated()) return false;
            if (who.admin) return true;
            // finalize() refuses owner rules on collections without an owner column; should one
            // get here anyway, nobody but admins can own its records.
            if (!c.owned) return false;
            q.filters.push_back({"owner", lookup::exact, json::value(who.user_id)});
            return true;
    }
    return false;
}

decision check_record(const collection_def& c, std::string_view action, access_rule r,
                      const principal& who, const json::object& stored,
                      std::string* reason) noexcept {
    if (!may_retrieve(c, who, stored)) {
        // An anonymous caller learns only that credentials are needed: the answer is the same
        // whether or not the record exists.
        auto need = check_rule(c.rule_for("retrieve"), who);
        return need == decision::unauthenticated ? decision::unauthenticated : decision::hidden;
    }
    if (auto d = rule_on_record(r, who, stored); d != decision::allow) return d;
    // may_retrieve() already asked the callback about "retrieve": once is enough.
    if (action == "retrieve") return decision::allow;
    auto v = permission_verdict(c, who, action, &stored);
    if (v.allowed) return decision::allow;
    if (reason) {
        try {
            *reason = std::move(v.reason);
        } catch (...) {  // out of memory: the refusal stands without its reason
        }
    }
    return decision::forbidden;
}

problem refusal_problem(decision d, std::string_view reason) {
    switch (d) {
        case decision::unauthenticated:
            return problem::unauthorized("Authentication credentials were not provided.");
        case decision::forbidden:
            return problem::forbidden(reason.empty() ? std::string("You do not have permission to perform this action.")
                                                     : std::string(reason));
        case decision::hidden:
        case decision::allow: break;
    }
    return problem::not_found();
}

}  // namespace livebase
