#pragma once
/// Compiling `pattern` options. Private to schema.
#include <memory>
#include <regex>
#include <string>

namespace livebase::schema_detail {

/// Compiles an ECMAScript regex. Throws std::regex_error when it does not compile; called only
/// at startup (finalize()), where exceptions are allowed.
std::shared_ptr<const std::regex> compile_pattern(const std::string& pattern);

}  // namespace livebase::schema_detail
