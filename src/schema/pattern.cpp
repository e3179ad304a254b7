// GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s regex compiler when built
// with sanitizers (GCC bug 105562). The regex is compiled in this file alone so that the
// suppression covers nothing else; it must precede the standard headers to take effect there.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "pattern.hpp"

namespace livebase::schema_detail {

std::shared_ptr<const std::regex> compile_pattern(const std::string& pattern) {
    return std::make_shared<const std::regex>(pattern, std::regex::ECMAScript);
}

}  // namespace livebase::schema_detail
