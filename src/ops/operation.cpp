#include <livebase/ops/operation.hpp>

namespace livebase {

std::string_view to_string(op_kind k) noexcept {
    switch (k) {
        case op_kind::list: return "list";
        case op_kind::retrieve: return "retrieve";
        case op_kind::create: return "create";
        case op_kind::replace: return "update";
        case op_kind::patch: return "patch";
        case op_kind::remove: return "delete";
        case op_kind::action: return "action";
    }
    return "action";
}

std::optional<op_kind> op_kind_named(std::string_view name) noexcept {
    for (auto k : {op_kind::list, op_kind::retrieve, op_kind::create, op_kind::replace,
                   op_kind::patch, op_kind::remove, op_kind::action})
        if (to_string(k) == name) return k;
    return std::nullopt;
}

outcome outcome::from_problem(const problem& p) {
    outcome o;
    o.status = p.status;
    o.body = p.to_json();
    o.is_problem = true;
    // A problem that says when to come back (429, 503, 507) carries it as Retry-After too.
    if (auto it = p.extra.find("retry_after"); it != p.extra.end() && it->value().is_int64())
        o.headers.emplace_back("Retry-After", std::to_string(it->value().get_int64()));
    return o;
}

outcome outcome::json_body(int status, json::value body) {
    outcome o;
    o.status = status;
    o.body = std::move(body);
    return o;
}

}  // namespace livebase
