#pragma once
/// Declarations of collections and their fields: what the config file and the C++ API build.
#include <livebase/core/json.hpp>
#include <livebase/core/principal.hpp>
#include <livebase/core/result.hpp>

#include <functional>
#include <map>
#include <memory>
#include <optional>
#include <regex>
#include <string>
#include <vector>

namespace livebase {

enum class field_type { string, text, integer, number, boolean, datetime, json, ref };
enum class on_delete_policy { restrict, cascade, set_null };

/// Access rule of one collection action (http.md section 5, config.md `rules.*`).
enum class access_rule { public_, authenticated, owner, admin, nobody };
/// `async.<action>`: whether a request runs as a task.
enum class async_mode { allowed, always, never };

/// "string" -> field_type::string, etc. nullopt for unknown names.
std::optional<field_type> field_type_from_string(std::string_view s) noexcept;
std::string_view to_string(field_type t) noexcept;
std::optional<access_rule> access_rule_from_string(std::string_view s) noexcept;
std::string_view to_string(access_rule r) noexcept;
std::optional<async_mode> async_mode_from_string(std::string_view s) noexcept;

/// One declared field. Defaults are the config file's defaults.
struct field_def {
    std::string name;
    field_type type = field_type::string;
    bool required = false;
    std::optional<json::value> default_value;  ///< applied on create when absent
    bool unique = false;
    std::optional<double> min, max;                  ///< integer/number bounds
    std::optional<std::size_t> min_length, max_length;  ///< string/text length (code points)
    std::vector<json::value> choices;                ///< empty = any value
    std::string pattern;                             ///< ECMAScript regex, empty = none
    std::shared_ptr<const std::regex> pattern_re;    ///< compiled `pattern` (set by finalize())
    bool read_only = false;   ///< never accepted from clients (ignored like server fields)
    bool write_only = false;  ///< accepted, never returned
    std::string ref_to;       ///< for type ref: the referenced collection
    on_delete_policy on_delete = on_delete_policy::restrict;
};

/// A field named `name` of type `t` (the other members at their defaults): for collections
/// declared in code.
field_def make_field(std::string name, field_type t, bool required = false, bool unique = false);

/// A custom action (`POST /api/{c}:{name}` or `/api/{c}/{id}:{name}`), declarative part.
/// The C++ handler, if any, lives in the api registry.
struct action_def {
    std::string name;
    bool detail = false;                    ///< true: /{c}/{id}:{name}
    std::vector<std::string> methods{"POST"};  ///< "GET" may be added
    std::string task;                       ///< task kind: the action runs as a task of it
    access_rule rule = access_rule::authenticated;
};

/// A permission's answer: allowed, or refused with the reason the client reads (the 403's
/// detail). A bool converts to it (true: allowed; false: refused without a reason).
struct verdict {
    bool allowed = true;
    std::string reason;

    verdict() = default;
    verdict(bool allow) : allowed(allow) {}  // NOLINT(google-explicit-constructor): bool is a verdict
    static verdict allow() { return verdict(true); }
    static verdict deny(std::string why) {
        verdict v(false);
        v.reason = std::move(why);
        return v;
    }
    explicit operator bool() const noexcept { return allowed; }
};

class write_txn;

/// A record write as its hooks see it (collection_handle::before_create and the others).
struct record_write {
    const principal& who;
    /// "create", "update" (a full replace), "patch" or "delete".
    std::string_view action;
    /// create, update, patch: the record about to be stored. A before-hook may change its
    /// declared fields, read-only ones included; they are validated again after the hooks, and
    /// the managed fields (id, created, updated, version, owner) keep their values. Null for
    /// delete.
    json::object* record = nullptr;
    /// update, patch, delete: the record as it was stored. Null for create.
    const json::object* stored = nullptr;
    /// Before-hooks: the write's own transaction, to read other records or write more in the
    /// same commit (both commit, or neither). Null in after-hooks.
    write_txn* txn = nullptr;
    /// Before-hooks: creates a record of a declared collection in this same transaction (an
    /// audit entry, a follow-up), owned by `who` where that collection is owned. `fields` are
    /// validated like a client's body (a 400 problem names them), without rules, permissions or
    /// hooks; returns the stored record. Empty in after-hooks. Like `txn`, valid only while the
    /// hook runs.
    std::function<result<json::object>(std::string_view collection, const json::object& fields)> create;
    /// Before-hooks: submits a task of `kind` with `input` in this same transaction, owned by
    /// `who`: it is pending once the write commits and never exists if the write does not (a
    /// refusal, a later hook's problem, a failed commit). Counts towards the owner's
    /// pending-task limit (a 429 problem, to return as it is). Returns the stored task. Empty in
    /// after-hooks and in apps without tasks; valid only while the hook runs.
    std::function<result<json::object>(std::string_view kind, json::value input)> enqueue;
};

/// Runs inside the write's transaction on the store's writer thread, after the rules, the
/// permission and validation allowed it. An error answers the request (a 4xx problem reaches
/// the client as it is) and nothing is written. Keep it short (every write waits for it) and
/// free of effects outside the transaction: a transaction the store retries runs it again.
using before_hook = std::function<result<void>(record_write& w)>;
/// Runs once the write has committed, on the api's handler threads: it never delays the
/// answer or the writer. Hooks of different writes may run concurrently and out of order.
using after_hook = std::function<void(const record_write& w)>;

/// A collection's record hooks, run in the order they were attached. "update" hooks run for
/// full replaces and patches alike.
struct record_hooks {
    std::vector<before_hook> before_create, before_update, before_delete;
    std::vector<after_hook> after_create, after_update, after_delete;
};

/// A collection: a table of records with server-managed fields (id, created, updated, version,
/// owner) next to the declared ones.
struct collection_def {
    std::string name;
    std::vector<field_def> fields;
    bool owned = false;
    /// Defined by livebase itself (tasks, tokens, users, ...): migrations rebuild its indexes
    /// as its definition changes, without --allow-destructive (an index holds no data).
    bool built_in = false;
    std::vector<std::vector<std::string>> indexes;
    /// list, retrieve, create, update, delete -> rule. Missing keys use defaults (see rule_for).
    std::map<std::string, access_rule> rules;
    /// create, update, delete, list, retrieve -> async mode. Missing = allowed.
    std::map<std::string, async_mode> async;
    std::size_t page_size = 25;
    std::size_t max_page_size = 500;
    std::map<std::string, action_def> actions;
    /// A C++ permission check (optional), asked after the rule allows: a refusal answers 403
    /// with its reason as the detail (or 404 when it refuses "retrieve", which also hides the
    /// record from lists and streams).
    /// `action` is "list", "retrieve", "create", "update", "patch", "delete" or a custom
    /// action's name; `record` is the stored record for detail requests, the record about to
    /// be stored for "create", null for "list" and list actions. Called concurrently from
    /// several threads (and per event on the realtime thread): keep it fast and thread-safe.
    std::function<verdict(const principal& who, std::string_view action, const json::object* record)> permission;
    /// Code run around this collection's creates, updates and deletes (record_hooks).
    record_hooks hooks;

    const field_def* find_field(std::string_view name) const noexcept;
    access_rule rule_for(std::string_view action) const noexcept;
    async_mode async_for(std::string_view action) const noexcept;
};

/// Names a client may filter and order by: declared fields that are not write_only, plus
/// id, created, updated, version (and owner when owned).
bool is_managed_field(std::string_view name) noexcept;

/// Names user collections may not take because built-in endpoints use them
/// (tasks, auth, health, schema) or that are built-in collections (idempotency_keys, users,
/// auth_tokens, schedules, task_queues).
bool is_reserved_collection_name(std::string_view name) noexcept;

/// Checks a definition (names are identifiers, no duplicates, options fit the type, "owner"
/// rules only on owned collections, defaults
/// and choices valid, pattern compiles, page sizes sane) and compiles patterns.
/// Returns a human message naming the offending field/key, or empty on success.
std::string finalize(collection_def& c);

}  // namespace livebase
