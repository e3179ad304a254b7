#pragma once
/// What the TOML loader's files share: the key-path helpers, and `loader`, which walks the tree
/// with the dotted key in hand so that every error reads "file:line: dotted.key: what is wrong".
/// Private to app. config.cpp holds the entry (syntax guards, section order),
/// config_settings.cpp the settings table and its scalar sections, config_collections.cpp the
/// collections and endpoints, config_parse.cpp these helpers and the loader's expect_* checks.
#include <chrono>
#include <cstdint>
#include <limits>
#include <livebase/core/text.hpp>
#include <livebase/app/config.hpp>
#include <string>
#include <string_view>
#include <toml.hpp>
#include <utility>
#include <vector>

namespace livebase::config_detail {

using tvalue = toml::value;

/// Raised inside the loader only; load_config_string turns it into a problem.
struct config_error {
    std::string message;
};

/// The 500 /problems/config problem every loading error becomes.
problem config_problem(std::string detail);

constexpr std::uint64_t k_unbounded = std::numeric_limits<std::uint64_t>::max();

/// Appends `key` to a dotted path, quoting it the way TOML would when it is not a bare key.
std::string join_key(std::string_view path, std::string_view key);
/// Letters, digits and '_', not starting with a digit, at most 63 characters.
bool is_identifier(std::string_view s);
/// Task kind names are also used in URLs and logs; allow dots and dashes besides identifiers.
bool is_kind_name(std::string_view s);
/// `s` in double quotes, control characters shown as '?'.
std::string quote_text(std::string_view s);
/// "an integer", "a table", ... for "expected X, got Y" messages.
std::string type_name(const tvalue& v);
/// "a, b, c".
std::string join_names(const std::vector<std::string_view>& names);
/// "90s", or "1500ms" when not whole seconds.
std::string duration_text(std::chrono::milliseconds d);

using entry = std::pair<const std::string*, const tvalue*>;

/// A table's entries in the order they appear in the file (toml11 keeps an unordered_map; every
/// value carries its source position, which recovers the order).
std::vector<entry> ordered_entries(const toml::table& t);

struct setting;  ///< a row of the settings table (config_settings.cpp)

/// Turns a parsed TOML tree into a `config`. Every check throws config_error with the file,
/// line and dotted key of the offending value. Unknown keys are errors everywhere: a typo must
/// not silently fall back to a default.
class loader {
public:
    explicit loader(std::string file) : file_(std::move(file)) {}

    /// The whole file: sections in file order, then collections, then endpoints (config.cpp).
    config load(const tvalue& root);

private:
    // ---- checks shared by every section (config_parse.cpp)
    [[noreturn]] void fail(const tvalue& at, std::string_view key, std::string_view message) const;
    const toml::table& expect_table(const tvalue& v, std::string_view key) const;
    const std::string& expect_string(const tvalue& v, std::string_view key) const;
    bool expect_bool(const tvalue& v, std::string_view key) const;
    const toml::array& expect_array(const tvalue& v, std::string_view key) const;
    double expect_number(const tvalue& v, std::string_view key) const;
    std::uint64_t expect_count(const tvalue& v, std::string_view key, std::uint64_t min,
                               std::uint64_t max = k_unbounded) const;
    std::vector<std::string> expect_string_list(const tvalue& v, std::string_view key) const;
    std::chrono::milliseconds expect_duration(const tvalue& v, std::string_view key,
                                              std::chrono::milliseconds min) const;
    /// Rejects any key of `t` not in `known`.
    void check_keys(const toml::table& t, std::string_view path,
                    const std::vector<std::string_view>& known) const;

    // ---- [server], [storage], [realtime], [auth], [tasks] (config_settings.cpp)
    void read_setting(const setting& s, const tvalue& v, std::string_view key, config& cfg) const;
    void read_section(std::string_view section, const tvalue& v, config& cfg) const;
    void read_tasks(const tvalue& v, config& cfg) const;
    task_kind_def read_task_kind(const std::string& name, const tvalue& v,
                                 const std::string& path) const;
    task_queue_def read_task_queue(const std::string& name, const tvalue& v, const std::string& path) const;

    // ---- [collections] and [endpoints] (config_collections.cpp)
    /// Reads every collection, then checks the references between them and finalizes each.
    void read_collections(const toml::table& top, config& cfg) const;
    void read_endpoints(const toml::table& top, config& cfg) const;
    collection_def read_collection(const std::string& name, const tvalue& v,
                                   const std::string& path) const;
    field_def read_field(const std::string& name, const tvalue& v, const std::string& path) const;
    action_def read_action(const std::string& name, const tvalue& v, const std::string& path) const;
    endpoint_def read_endpoint(const std::string& name, const tvalue& v,
                               const std::string& path) const;
    access_rule read_rule(const tvalue& v, std::string_view key) const;
    json::value to_json(const tvalue& v, std::string_view key, int depth = 0) const;
    /// Reports a finalize() message ("fields.model.default: Must be an integer.") at the value
    /// its leading key names, falling back to the nearest enclosing table that exists.
    [[noreturn]] void fail_definition(const tvalue& collection, const std::string& path,
                                      const std::string& message) const;

    std::string file_;
};

}  // namespace livebase::config_detail
