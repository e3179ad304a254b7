#pragma once
// Running a collection's record hooks (collection_def::hooks) around the api's creates,
// updates and deletes. Private to the api component.
#include <livebase/core/log.hpp>
#include <livebase/core/principal.hpp>
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>

#include <functional>
#include <optional>
#include <string>
#include <vector>

namespace livebase::api_detail {

/// Runs before-hooks `hooks` of `c` for the write `w`, inside its transaction, in order; the
/// first problem a hook returns is the answer. A hook that throws is a logged 500. For creates
/// and updates the record's declared fields are validated again afterwards (an invalid value,
/// or a key the collection does not declare, is the app's bug: a logged 500) and every other
/// key (id, created, updated, version, owner, password_hash) gets back the value it had.
result<void> run_before_hooks(logger& log, const collection_def& c, const std::vector<before_hook>& hooks,
                              record_write& w);

/// A committed write, copied for its after-hooks.
struct committed_write {
    principal who;
    std::string action;
    std::optional<json::object> record;  ///< create, update, patch: as stored
    std::optional<json::object> stored;  ///< update, patch, delete: as it was
};

/// Queues the after-hooks `hooks` of `c` for `w` with `post` (the api's handler pool). A hook
/// that throws is logged; a full pool drops them with a warning.
void schedule_after_hooks(logger& log, const collection_def& c, const std::vector<after_hook>& hooks,
                          committed_write w, const std::function<bool(std::function<void()>)>& post);

}  // namespace livebase::api_detail
