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
    bool authenticated() const noexcept { return !user_id.empty(); }
};

}  // namespace livebase
