#pragma once
// Access checks shared by the synchronous pipeline (api.cpp) and the asynchronous submission
// (task_requests.cpp), so a request is judged the same way whether it runs now or as a task.
#include <livebase/api/api.hpp>
#include <livebase/auth/rules.hpp>
#include <optional>
#include <string>
#include <string_view>

namespace livebase::api_detail {

/// The outcome of a refusal (401, 403, or the 404 of a missing record).
outcome refused(decision d, std::string_view reason = {});

/// The callback/`check_record` action of a detail operation: "retrieve", "update", "patch",
/// "delete", or the custom action's name.
std::string_view detail_action(const operation& op) noexcept;

/// The rule of a detail operation: rules.retrieve, rules.update (PUT and PATCH),
/// rules.delete, or the action's rule. REQUIRES: for op_kind::action, the action exists in
/// `c` (find_action() succeeded).
access_rule detail_rule(const operation& op, const collection_def& c);

/// A refusal that needs no record: 401 when the caller is anonymous and `r` needs
/// credentials. Answering it before reading keeps anonymous callers from telling a missing
/// record from an existing one, and before validation keeps them from probing bodies.
std::optional<outcome> refuse_anonymous(access_rule r, const principal& who);

/// True for the built-in users collection (whose bodies may carry "password").
bool is_users(const collection_def& c);

/// For the users collection: removes "password" from `body` and returns it (nullopt when
/// absent). 400 with a field error when it is not a string or not acceptable
/// (password_problem). Other collections: nullopt, `body` untouched (an unknown "password"
/// field is then refused by validation like any other).
result<std::optional<std::string>> take_password(const collection_def& c, json::object& body);

/// A record about to be created: id, created, updated, version, owner (the caller, null when
/// anonymous) on owned collections, then `fields`.
json::object new_record(const collection_def& c, const principal& who, const json::object& fields);

}  // namespace livebase::api_detail
