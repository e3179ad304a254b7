// The TOML loader of config.md: reading the file, refusing what toml11 must not see, toml11's
// parse, and the order of the sections. The walk itself is `loader` (config_parse.hpp): the
// settings table in config_settings.cpp, collections and endpoints in config_collections.cpp.
#include <algorithm>
#include <cerrno>
#include <cstring>
#include <fstream>
#include <sstream>

#include "app/config_parse.hpp"

namespace livebase::config_detail {

config loader::load(const tvalue& root) {
    config cfg;
    const auto& top = expect_table(root, "");
    check_keys(top, "",
               {"server", "storage", "realtime", "tasks", "auth", "collections", "endpoints"});
    for (const auto& [k, item] : ordered_entries(top)) {
        if (*k == "tasks")
            read_tasks(*item, cfg);
        else if (*k == "server" || *k == "storage" || *k == "realtime" || *k == "auth")
            read_section(*k, *item, cfg);
    }

    read_collections(top, cfg);
    read_endpoints(top, cfg);
    return cfg;
}

namespace {

/// toml11 parses arrays and inline tables recursively; deep nesting would overflow the stack.
/// Finds the first line where `[`/`{` nesting (outside strings and comments) exceeds `limit`,
/// or 0 when it never does.
std::size_t line_nested_too_deep(std::string_view text, std::size_t limit) {
    std::size_t depth = 0, line = 1, i = 0;
    auto starts = [&](std::string_view token) { return text.substr(i, token.size()) == token; };
    while (i < text.size()) {
        const char ch = text[i];
        if (ch == '\n') {
            ++line;
            ++i;
        } else if (ch == '#') {
            while (i < text.size() && text[i] != '\n') ++i;
        } else if (starts(R"(""")") || starts("'''")) {
            const std::string_view close = text.substr(i, 3);
            const bool escapes = ch == '"';
            i += 3;
            while (i < text.size() && !starts(close)) {
                if (text[i] == '\n') ++line;
                if (escapes && text[i] == '\\') ++i;
                ++i;
            }
            i += 3;
        } else if (ch == '"' || ch == '\'') {
            ++i;
            while (i < text.size() && text[i] != ch && text[i] != '\n') {
                if (ch == '"' && text[i] == '\\' && i + 1 < text.size() && text[i + 1] != '\n') ++i;
                ++i;
            }
            if (i < text.size() && text[i] == ch) ++i;
        } else {
            if (ch == '[' || ch == '{') {
                if (++depth > limit) return line;
            } else if ((ch == ']' || ch == '}') && depth > 0) {
                --depth;
            }
            ++i;
        }
    }
    return 0;
}

constexpr std::size_t k_max_nesting = 64;

/// "cars.toml:3: invalid TOML: <toml11's message>" followed by toml11's source excerpt.
std::string describe_syntax_error(const toml::syntax_error& e, const std::string& file) {
    std::string what = e.what();
    auto nl = what.find('\n');
    std::string first = what.substr(0, nl);
    std::string rest = nl == std::string::npos ? std::string() : what.substr(nl);
    if (first.rfind("[error] ", 0) == 0) first.erase(0, 8);
    // Drop toml11's internal function name ("toml::parse_key: ").
    if (first.rfind("toml::", 0) == 0) {
        auto colon = first.find(": ");
        if (colon != std::string::npos) first.erase(0, colon + 2);
    }
    return file + ":" + std::to_string(e.location().line()) + ": invalid TOML: " + first + rest;
}

}  // namespace

}  // namespace livebase::config_detail

namespace livebase {

result<config> load_config_string(std::string_view toml_text, const std::string& file_name) {
    using namespace config_detail;
    if (auto bad = first_invalid_utf8(toml_text); bad != std::string_view::npos) {
        auto line = 1 + std::count(toml_text.begin(), toml_text.begin() + bad, '\n');
        return config_problem(file_name + ":" + std::to_string(line) +
                              ": invalid TOML: not valid UTF-8 (byte " + std::to_string(bad) + ")");
    }
    if (auto line = line_nested_too_deep(toml_text, k_max_nesting))
        return config_problem(file_name + ":" + std::to_string(line) +
                              ": invalid TOML: arrays and tables nested more than " +
                              std::to_string(k_max_nesting) + " levels deep");
    try {
        std::istringstream is{std::string(toml_text)};
        const tvalue root = toml::parse(is, file_name);
        loader l(file_name);
        return l.load(root);
    } catch (const config_error& e) {
        return config_problem(e.message);
    } catch (const toml::syntax_error& e) {
        return config_problem(describe_syntax_error(e, file_name));
    } catch (const toml::exception& e) {
        return config_problem(file_name + ":" + std::to_string(e.location().line()) + ": " +
                              e.what());
    } catch (const std::exception& e) {
        return config_problem(file_name + ": " + e.what());
    } catch (...) {
        return config_problem(file_name + ": cannot be loaded");
    }
}

result<config> load_config_file(const std::string& path) {
    using namespace config_detail;
    std::ifstream in(path, std::ios::binary);
    if (!in) return config_problem("cannot read " + path + ": " + std::strerror(errno));
    std::ostringstream buf;
    buf << in.rdbuf();
    if (in.bad()) return config_problem("cannot read " + path + ": " + std::strerror(errno));
    return load_config_string(buf.str(), path);
}

}  // namespace livebase
