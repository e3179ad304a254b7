// parse_listen: the forms of a listen address ("host:port", ":port", "[v6]:port") and the
// ones refused.
#include <gtest/gtest.h>

#include <livebase/app/config.hpp>

namespace livebase {
namespace {

TEST(ParseListen, Forms) {
    struct form {
        const char* text;
        const char* host;
        int port;
    };
    for (const auto& f : {form{"127.0.0.1:8080", "127.0.0.1", 8080}, form{":9000", "", 9000},
                          form{"localhost:0", "localhost", 0}, form{"[::1]:65535", "::1", 65535}}) {
        auto r = parse_listen(f.text);
        ASSERT_TRUE(r.has_value()) << f.text;
        EXPECT_EQ(r->first, f.host) << f.text;
        EXPECT_EQ(r->second, f.port) << f.text;
    }

    for (const char* bad : {"", "8080", "host:", ":", ":65536", ":-1", ":80x", "::1:80", "[::1]80",
                            "[::1", "[]:80", "a b:80", ":８０"}) {
        EXPECT_FALSE(parse_listen(bad).has_value()) << bad;
    }
}

}  // namespace
}  // namespace livebase
