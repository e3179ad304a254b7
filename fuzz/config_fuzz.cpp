// Fuzzes the TOML loader: any input must load or yield a problem naming the file, never crash
// or throw. Each line is also tried as an environment override and as a listen address.
#include <cstdint>
#include <cstdlib>
#include <livebase/app/config.hpp>
#include <string>
#include <string_view>
#include <vector>

extern "C" int LLVMFuzzerTestOneInput(const std::uint8_t* data, std::size_t size) {
    using namespace livebase;
    const std::string_view text(reinterpret_cast<const char*>(data), size);

    auto r = load_config_string(text, "fuzz.toml");
    if (!r && r.error().detail.rfind("fuzz.toml", 0) != 0) std::abort();

    std::vector<std::string> env;
    std::string_view rest = text;
    while (!rest.empty()) {
        auto nl = rest.find('\n');
        std::string_view line = rest.substr(0, nl);
        (void)parse_listen(line);
        env.emplace_back(line);
        if (nl == std::string_view::npos) break;
        rest.remove_prefix(nl + 1);
    }
    config cfg = r ? std::move(r).value() : config{};
    (void)apply_env_overrides(cfg, env);
    return 0;
}
