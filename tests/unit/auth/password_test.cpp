#include <livebase/auth/auth.hpp>

#include <gtest/gtest.h>

#include <set>

namespace livebase {
namespace {

TEST(Password, HashVerifies) {
    auto h = hash_password("correct horse battery");
    ASSERT_TRUE(h.has_value()) << h.error().detail;
    EXPECT_EQ(h->rfind("$argon2id$", 0), 0u) << *h;
    EXPECT_TRUE(verify_password(*h, "correct horse battery"));
    EXPECT_FALSE(verify_password(*h, "correct horse batterY"));
    EXPECT_FALSE(verify_password(*h, ""));
}

TEST(Password, SaltedHashesDiffer) {
    auto a = hash_password("same password");
    auto b = hash_password("same password");
    ASSERT_TRUE(a && b);
    EXPECT_NE(*a, *b);
    EXPECT_TRUE(verify_password(*b, "same password"));
}

TEST(Password, GarbageHashNeverVerifies) {
    EXPECT_FALSE(verify_password("", "anything"));
    EXPECT_FALSE(verify_password("not a hash", "not a hash"));
    EXPECT_FALSE(verify_password("$argon2id$v=19$m=65536,t=2,p=1$garbage", "x"));
    EXPECT_FALSE(verify_password(std::string(4096, 'a'), "a"));
    auto h = hash_password("password1");
    ASSERT_TRUE(h);
    std::string with_nul = *h;
    with_nul.insert(with_nul.begin() + 5, '\0');
    EXPECT_FALSE(verify_password(with_nul, "password1"));
}

TEST(Password, Problem) {
    EXPECT_NE(password_problem(""), "");
    EXPECT_NE(password_problem("1234567"), "");
    EXPECT_EQ(password_problem("12345678"), "");
    EXPECT_EQ(password_problem(std::string(1024, 'x')), "");
    EXPECT_NE(password_problem(std::string(1025, 'x')), "");
}

TEST(Token, ShapeAndUniqueness) {
    std::set<std::string> seen;
    for (int i = 0; i < 200; ++i) {
        auto t = make_token();
        ASSERT_EQ(t.size(), 43u) << t;
        for (char ch : t)
            ASSERT_TRUE((ch >= 'A' && ch <= 'Z') || (ch >= 'a' && ch <= 'z') || (ch >= '0' && ch <= '9') ||
                        ch == '-' || ch == '_')
                << t;
        seen.insert(t);
    }
    EXPECT_EQ(seen.size(), 200u);
}

TEST(Token, HashIsStableLowercaseHex) {
    auto t = make_token();
    auto h = token_hash(t);
    ASSERT_EQ(h.size(), 64u);
    for (char ch : h) ASSERT_TRUE((ch >= '0' && ch <= '9') || (ch >= 'a' && ch <= 'f')) << h;
    EXPECT_EQ(token_hash(t), h);
    EXPECT_NE(token_hash(t + "x"), h);
    EXPECT_EQ(token_hash(""), "0e5751c026e543b2e8ab2eb06099daa1d1e5df47778f7787faab45cdf12fe3a8");  // BLAKE2b-256("")
}

}  // namespace
}  // namespace livebase
