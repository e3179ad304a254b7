#pragma once
/// What a WebSocket request means (realtime.md "Streams and actions"): an api operation, a hub
/// command, or an immediate refusal. Policy only, no I/O; thread-safe (reads the registry,
/// which is immutable while serving).
#include <cstddef>
#include <livebase/api/api.hpp>
#include <livebase/realtime/hub.hpp>
#include <string>
#include <string_view>

#include "ws/codec.hpp"

namespace livebase::ws_detail {

enum class plan_kind {
    refuse,       ///< answer `refusal` at once
    execute,      ///< api::execute(op), answer with shape_reply()
    subscribe,    ///< hub::subscribe(sub)
    unsubscribe,  ///< hub::unsubscribe(handle)
    observe,      ///< hub::observe(obs)
    unobserve,    ///< hub::unobserve(handle)
    /// `auth` stream, `login`: with `token`, the session resolves it (authenticator::resolve);
    /// otherwise `op` is the api's login action ({username, password}: the api applies the
    /// brute-force throttle), whose granted token the session then resolves. Success makes the
    /// result the socket's principal.
    login,
    /// `auth` stream, `logout`: `op` is the api's logout action, run with the socket's
    /// principal (the session answers 401 when it is anonymous); 204 revokes the token.
    logout,
};

/// How an api outcome becomes reply data.
enum class reply_shape {
    plain,  ///< the body as it is
    list,   ///< a 200 list page {count,next,previous,results} -> {count,results,limit,offset}
    task,   ///< a task retrieve: 303 (succeeded; HTTP would redirect to the result) -> 200
};

struct request_plan {
    plan_kind kind = plan_kind::refuse;
    problem refusal;  ///< refuse
    operation op;     ///< execute
    reply_shape shape = reply_shape::plain;
    std::size_t limit = 0;   ///< list: the page size the query resolved to
    std::size_t offset = 0;  ///< list
    subscribe_request sub;   ///< subscribe
    observe_request obs;     ///< observe
    std::string handle;      ///< unsubscribe/unobserve: the subscription or observer id
    std::string token;       ///< login with a token: the token as sent
};

/// Maps a decoded request to its plan. `base_path` as the api's (for op.path, which the api
/// uses for page links and endpoint matching). `auth`: whether the server authenticates (the
/// `auth` stream exists: `login`, `logout`, `me`). Refusals: 404 "Unknown stream" for a
/// stream that is neither a collection of `reg`, `tasks`, nor (with `auth`) `auth`; 404 for
/// an action the stream does not have; 400 for a missing or ill-typed pk, data, token,
/// subscription, observer, kind, or list query (naming the offending key).
request_plan plan_request(const ws_request& r, const registry& reg, std::string_view base_path,
                          bool auth = false);

/// Turns a validated query back into REST query parameters, so a WebSocket list runs exactly
/// the query the REST list would. Every filter is written `field__lookup` (so a field named like
/// a reserved parameter stays a filter). 400 naming the filter when an `in` item contains ','
/// or is empty (the query-string form cannot carry it).
result<query_params> to_query_params(const query& q);

/// The reply frame for an executed plan's outcome.
std::string encode_plan_reply(const request_plan& plan, const ws_request& r, const outcome& o);

}  // namespace livebase::ws_detail
