#pragma once
/// Who is asking: the identity every door (REST, WebSocket, SSE, task worker) passes down.
#include <string>

namespace livebase {

/// Who is asking. A plain value; copy freely.
struct principal {
    std::string user_id;  ///< empty = anonymous
    bool admin = false;
    std::string username;  ///< the user's name ("" when anonymous)
    /// The id of the token record the caller authenticated with ("" for anonymous callers and
    /// for identities rebuilt from a user id, e.g. a task's submitter). Never the token itself.
    std::string token_id;
    /// The caller's network address as the door resolved it ("" when unknown: an identity
    /// rebuilt from the store, an in-process call). Anonymous callers are told apart by it.
    std::string address;
    bool authenticated() const noexcept { return !user_id.empty(); }
    /// Whose the things this caller makes are (tasks, Idempotency-Keys): the user id, or for an
    /// anonymous caller "anon:<address>" ("" when the address is unknown). Callers behind one
    /// address (a NAT, a proxy that is not trusted) share one anonymous key.
    std::string owner_key() const {
        if (authenticated()) return user_id;
        return address.empty() ? std::string() : "anon:" + address;
    }
};

}  // namespace livebase
