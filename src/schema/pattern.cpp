// GCC 12 reports a false -Wmaybe-uninitialized inside libstdc++'s regex compiler when built
// with sanitizers. The regex is compiled in this file alone so that the suppression covers
// nothing else; it must precede the standard headers to take effect there.
#if defined(__GNUC__) && !defined(__clang__)
#pragma GCC diagnostic ignored "-Wmaybe-uninitialized"
#endif

#include "pattern.hpp"

namespace livebase::schema_detail {

std::shared_ptr<const std::regex> compile_pattern(const std::string& pattern) {
    auto flags = std::regex::ECMAScript;
#if defined(__GLIBCXX__)
    // libstdc++'s default executor backtracks recursively: "(a*)*b" takes exponential time on
    // a few dozen characters and long inputs overflow the stack. The polynomial (Thompson NFA)
    // executor has neither problem; the price is that back-references do not compile.
    flags |= std::regex_constants::__polynomial;
#endif
    return std::make_shared<const std::regex>(pattern, flags);
}

}  // namespace livebase::schema_detail
