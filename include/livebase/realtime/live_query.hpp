#pragma once
/// Live-query windows and the diffs between them (realtime.md "observe", DRF-reactive style).
/// Policy only, no I/O: plain functions over values, safe to call from any thread on
/// arguments that are not shared.
#include <livebase/core/json.hpp>

#include <cstddef>
#include <string>
#include <string_view>
#include <vector>

namespace livebase {

/// One row of a live query's window: the record's id and the record as the client sees it.
struct window_row {
    std::string pk;
    json::object item;
    bool operator==(const window_row&) const = default;
};

/// A live query's rows, in window order. Pks are unique within a window.
using window = std::vector<window_row>;

/// One step of the change from one window to the next. Indices refer to the window as it is
/// when the step is applied (after the steps before it).
struct window_diff {
    enum class kind { removed, added, moved, changed };
    kind msg = kind::removed;
    /// removed: the index taken out; added: the index the row is inserted at; moved: the index
    /// the row has after the move; changed: the row's index.
    std::size_t order = 0;
    std::size_t from = 0;  ///< moved: the row's index before the move; unused otherwise
    std::string pk;
    json::object item;     ///< added, changed: the row's new item; empty otherwise
};

/// The steps that turn `from` into `to`, in the order they must be applied: removals (from
/// the back, so indices stay those of `from`), then moves (a longest run of rows already in
/// order stays put; every other kept row moves exactly once), then additions (ascending), then
/// changes of rows whose item differs (at their final index). Empty when the windows are equal.
/// REQUIRES: pks are unique within each window.
std::vector<window_diff> diff_window(const window& from, const window& to);

/// Applies `diffs` to `w` in order. Returns false, leaving `w` partly changed, when a step
/// does not fit (an index out of range, or a pk that is not at the index the step names).
bool apply_diffs(window& w, const std::vector<window_diff>& diffs);

/// "removed" | "added" | "moved" | "changed".
std::string_view to_string(window_diff::kind k) noexcept;

/// The frame's `data`: {"msg", "order", "pk"} plus "from" (moved) or "item" (added, changed).
json::object to_json(const window_diff& d);

}  // namespace livebase
