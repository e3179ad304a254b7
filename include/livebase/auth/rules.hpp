#pragma once
/// Access rules (config.md `rules.*`, http.md section 5) and C++ permission callbacks: one
/// decision function that every door reaches through the api and the hub.
#include <livebase/core/principal.hpp>
#include <livebase/core/problem.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/schema/query.hpp>

#include <string_view>

namespace livebase {

/// What a rule says about a request.
enum class decision {
    allow,
    unauthenticated,  ///< 401: credentials are required and none were given
    forbidden,        ///< 403: authenticated (or no credentials could help), not allowed
    hidden,           ///< 404: the caller may not see the record: answer as if it did not exist
};

/// A collection-level request (list, create, a list action, an endpoint) under rule `r`:
/// public -> allow; authenticated/owner -> 401 for anonymous callers, else allow (owner lists
/// are narrowed to the caller's records, creates are owned by the caller); admin -> 401 for
/// anonymous, 403 for non-admins; nobody -> 403 for everyone, admins included.
decision check_rule(access_rule r, const principal& who) noexcept;

/// Whether `who` may retrieve the stored record `stored` of `c`: its "retrieve" rule
/// (owner: the record's owner or an admin) and then its C++ permission callback with action
/// "retrieve". This is the one visibility test of retrieve, list rows, events, live queries
/// and SSE streams. Never throws (a throwing callback counts as "no").
bool may_retrieve(const collection_def& c, const principal& who, const json::object& stored) noexcept;

/// Narrows a list query of `c` to what `who` may retrieve, so that counts, limits and
/// live-query windows stay right: retrieve rule owner -> adds `owner = who.user_id` (admins
/// are not narrowed). Returns false when the caller may retrieve no record of `c` at all
/// (the list is then empty, count 0). Rows must still pass may_retrieve() for the C++
/// callback. Used by the api's lists and the hub's live queries.
bool narrow_query(const collection_def& c, const principal& who, query& q);

/// A detail request (`action` = "retrieve", "update", "patch", "delete" or a detail action's
/// name) with rule `r` on the stored record: hidden when the caller may not retrieve it (401
/// instead when the caller is anonymous and the retrieve rule needs credentials); else the
/// rule (owner: the record's owner or an admin, 403 otherwise) and then the C++ permission
/// callback (a refusal -> 403; its reason, if any, goes to `reason` when given).
decision check_record(const collection_def& c, std::string_view action, access_rule r,
                      const principal& who, const json::object& stored,
                      std::string* reason = nullptr) noexcept;

/// The C++ permission callback of `c` alone (true when there is none): `action` and `record` as
/// collection_def::permission documents them. Never throws: a throwing callback counts as "no".
bool permission_allows(const collection_def& c, const principal& who, std::string_view action,
                       const json::object* record) noexcept;
/// The same check with the callback's reason: allowed, or refused (a throwing callback
/// refuses without a reason).
verdict permission_verdict(const collection_def& c, const principal& who,
                           std::string_view action, const json::object* record) noexcept;

/// The problem of a refusal: 401 (the door adds WWW-Authenticate), 403 (with `reason` as its
/// detail when a permission gave one), or the same 404 an unknown record gets.
problem refusal_problem(decision d, std::string_view reason = {});

}  // namespace livebase
