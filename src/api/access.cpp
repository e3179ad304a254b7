#include "access.hpp"

#include <livebase/auth/auth.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>

namespace livebase::api_detail {

outcome refused(decision d, std::string_view reason) {
    return outcome::from_problem(refusal_problem(d, reason));
}

std::string_view detail_action(const operation& op) noexcept {
    switch (op.kind) {
        case op_kind::replace:
            return "update";
        case op_kind::patch:
            return "patch";
        case op_kind::remove:
            return "delete";
        case op_kind::action:
            return op.action;
        default:
            return "retrieve";
    }
}

access_rule detail_rule(const operation& op, const collection_def& c) {
    switch (op.kind) {
        // PATCH is an update with another body shape: one rule for both (config.md rules.*).
        case op_kind::replace:
        case op_kind::patch:
            return c.rule_for("update");
        case op_kind::remove:
            return c.rule_for("delete");
        case op_kind::action:
            return c.actions.at(op.action).rule;
        default:
            return c.rule_for("retrieve");
    }
}

std::optional<outcome> refuse_anonymous(access_rule r, const principal& who) {
    if (check_rule(r, who) == decision::unauthenticated) return refused(decision::unauthenticated);
    return std::nullopt;
}

bool is_users(const collection_def& c) { return c.name == users_collection().name; }

result<std::optional<std::string>> take_password(const collection_def& c, json::object& body) {
    if (!is_users(c)) return std::optional<std::string>{};
    auto it = body.find("password");
    if (it == body.end()) return std::optional<std::string>{};
    if (!it->value().is_string()) return problem::validation({{"password", {"Must be a string."}}});
    std::string password(it->value().get_string());
    body.erase(it);
    if (auto why = password_problem(password); !why.empty())
        return problem::validation({{"password", {std::move(why)}}});
    return std::optional<std::string>{std::move(password)};
}

json::object new_record(const collection_def& c, const principal& who, const json::object& fields) {
    json::object rec;
    auto now = now_ms();
    rec["id"] = make_ulid(now);
    rec["created"] = format_timestamp(now);
    rec["updated"] = rec["created"];
    rec["version"] = 1;
    if (c.owned)
        rec["owner"] = who.authenticated() ? json::value(who.user_id) : json::value(nullptr);
    for (const auto& kv : fields) rec[kv.key()] = kv.value();
    return rec;
}

}  // namespace livebase::api_detail
