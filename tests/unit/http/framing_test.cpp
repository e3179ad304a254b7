// The framing checks made once a request's header is read (RFC 9112 3.2, 6.1, 6.3), without sockets.
#include "http/framing.hpp"

#include <gtest/gtest.h>

using namespace livebase;
using namespace livebase::http_detail;

namespace {

framing_facts facts(std::vector<std::string_view> te, unsigned version = 11,
                    std::vector<std::string_view> host = {"example.com"}) {
    framing_facts f;
    f.version = version;
    f.transfer_encoding = std::move(te);
    f.host = std::move(host);
    return f;
}

int status_of(const framing_facts& f) {
    auto p = check_framing(f);
    return p ? p->status : 0;
}

}  // namespace

TEST(framing, transfer_codings) {
    EXPECT_EQ(status_of(facts({})), 0);
    EXPECT_EQ(status_of(facts({"chunked"})), 0);
    EXPECT_EQ(status_of(facts({"Chunked"})), 0);
    EXPECT_EQ(status_of(facts({" chunked ,"})), 0);  // empty list elements are allowed
    // The body length cannot be determined: 400.
    EXPECT_EQ(status_of(facts({"gzip"})), 400);
    EXPECT_EQ(status_of(facts({"chunked, identity"})), 400);
    EXPECT_EQ(status_of(facts({"chunked", "gzip"})), 400);
    EXPECT_EQ(status_of(facts({"chunked, chunked"})), 400);
    EXPECT_EQ(status_of(facts({","})), 400);
    EXPECT_EQ(status_of(facts({"chunked;x=1"})), 400);
    EXPECT_EQ(status_of(facts({"chunked"}, 10)), 400);  // HTTP/1.0: faulty framing
    // Chunked last, but another coding first: none is decoded here.
    EXPECT_EQ(status_of(facts({"gzip, chunked"})), 501);
    EXPECT_EQ(status_of(facts({"gzip", "chunked"})), 501);
    auto named = check_framing(facts({"x-custom;q=1, chunked"}));
    ASSERT_TRUE(named);
    EXPECT_NE(named->detail.find("'x-custom'"), std::string::npos) << named->detail;
    auto unnamed = check_framing(facts({"x\xff, chunked"}));  // not a token: not echoed
    ASSERT_TRUE(unnamed);
    EXPECT_EQ(unnamed->detail.find('\xff'), std::string::npos);
}

TEST(framing, host) {
    EXPECT_EQ(status_of(facts({}, 11, {})), 400);
    EXPECT_EQ(status_of(facts({}, 11, {"a", "b"})), 400);
    EXPECT_EQ(status_of(facts({}, 11, {"a b"})), 400);
    EXPECT_EQ(status_of(facts({}, 11, {"a/b"})), 400);
    EXPECT_EQ(status_of(facts({}, 11, {""})), 0);  // a target without authority
    EXPECT_EQ(status_of(facts({}, 11, {"[::1]:8080"})), 0);
    EXPECT_EQ(status_of(facts({}, 11, {"127.0.0.1:80"})), 0);
    EXPECT_EQ(status_of(facts({}, 10, {})), 0);  // HTTP/1.0 needs none
    EXPECT_EQ(status_of(facts({}, 10, {"a", "b"})), 400);
}

TEST(framing, header_size_counts_the_whole_header) {
    auto f = facts({});
    f.max_header = 100;
    f.header_bytes = 100;
    EXPECT_EQ(status_of(f), 0);
    f.header_bytes = 101;
    EXPECT_EQ(status_of(f), 431);
    f.max_header = 0;  // no limit
    EXPECT_EQ(status_of(f), 0);
}
