#pragma once
/// Who is asking: the identity every door (REST, WebSocket, SSE, task worker) passes down.
#include <string>

namespace livebase {

/// Who is asking. Anonymous until auth exists. A plain value; copy freely.
struct principal {
    std::string user_id;  ///< empty = anonymous
    bool admin = false;
    bool authenticated() const noexcept { return !user_id.empty(); }
};

}  // namespace livebase
