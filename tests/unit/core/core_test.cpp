#include <livebase/core/client_address.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/json.hpp>
#include <livebase/core/problem.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/core/units.hpp>

#include <gtest/gtest.h>

#include <charconv>
#include <cmath>
#include <cstring>
#include <limits>
#include <random>
#include <set>
#include <thread>

using namespace livebase;

TEST(clock, formats_and_parses_rfc3339) {
    EXPECT_EQ(format_timestamp(0), "1970-01-01T00:00:00.000Z");
    EXPECT_EQ(format_timestamp(1795502241123), "2026-11-24T06:37:21.123Z");
    EXPECT_EQ(parse_timestamp("2026-11-24T06:37:21.123Z"), 1795502241123);
    EXPECT_EQ(parse_timestamp("2026-11-24T08:37:21.123+02:00"), 1795502241123);
    EXPECT_EQ(parse_timestamp("2026-11-24T06:37:21.1234567Z"), 1795502241123);
    EXPECT_EQ(parse_timestamp("2026-11-24"), 1795478400000);
    EXPECT_EQ(format_timestamp(-1), "1969-12-31T23:59:59.999Z");
}

TEST(clock, rejects_malformed_timestamps) {
    for (const char* s : {"", "2026", "2026-13-01", "2026-02-30", "2026-11-24T25:00:00Z",
                          "2026-11-24T06:37:21", "2026-11-24T06:37:21.Z", "2026-11-24T06:37:21Zx",
                          "2026-11-24T06:37:21+0200", "x026-11-24"}) {
        EXPECT_FALSE(parse_timestamp(s)) << s;
    }
    EXPECT_TRUE(parse_timestamp("2024-02-29T00:00:00Z"));
}

TEST(clock, round_trips_many_values) {
    for (std::int64_t ms = -5'000'000'000'000; ms < 5'000'000'000'000; ms += 123'456'789'123) {
        EXPECT_EQ(parse_timestamp(format_timestamp(ms)), ms);
    }
}

TEST(ulid, ids_of_one_millisecond_do_not_tell_the_next) {
    // An id is a capability (anonymous tasks): knowing one must not give the next one.
    std::vector<std::string> ids;
    for (int i = 0; i < 64; ++i) ids.push_back(make_ulid(5000));
    int adjacent = 0;
    for (std::size_t i = 1; i < ids.size(); ++i) {
        EXPECT_LT(ids[i - 1], ids[i]);
        // The last 13 characters (64 bits) of consecutive ids differ by more than a count.
        const auto tail = [](const std::string& s) {
            std::uint64_t v = 0;
            for (char ch : s.substr(13)) v = v * 32 + static_cast<std::uint64_t>(std::string_view("0123456789ABCDEFGHJKMNPQRSTVWXYZ").find(ch));
            return v;
        };
        if (tail(ids[i]) - tail(ids[i - 1]) < 1000) ++adjacent;
    }
    EXPECT_LE(adjacent, 1);
}

TEST(ulid, shape_and_monotonic_per_thread) {
    auto a = make_ulid(1000);
    auto b = make_ulid(1000);
    auto c = make_ulid(999);  // clock went back: still increasing
    EXPECT_TRUE(is_ulid(a));
    EXPECT_EQ(a.size(), 26u);
    EXPECT_LT(a, b);
    EXPECT_LT(b, c);
    auto d = make_ulid(now_ms());
    EXPECT_LT(c, d);
    EXPECT_FALSE(is_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAVX"));
    EXPECT_FALSE(is_ulid("81ARZ3NDEKTSV4RRFFQ69G5FAV"));
    EXPECT_FALSE(is_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAU"));  // U is not Crockford
    EXPECT_TRUE(is_ulid("01ARZ3NDEKTSV4RRFFQ69G5FAV"));
}

// Capability ids: ids of one millisecond share the time prefix but none follows from another
// (monotonic ids of one millisecond differ only in their last characters).
TEST(ulid, unguessable_ids_share_nothing_but_the_time) {
    auto a = make_unguessable_ulid(1000);
    auto b = make_unguessable_ulid(1000);
    EXPECT_TRUE(is_ulid(a));
    EXPECT_TRUE(is_ulid(b));
    EXPECT_EQ(a.substr(0, 10), "00000000Z8");  // 1000 ms = 31 * 32 + 8
    EXPECT_EQ(a.substr(0, 10), b.substr(0, 10));
    // 80 fresh bits: the first 8 random characters (40 bits) agree by chance once in 2^40.
    int same_prefix = 0;
    for (int i = 0; i < 100; ++i)
        if (make_unguessable_ulid(2000).substr(10, 8) == make_unguessable_ulid(2000).substr(10, 8)) ++same_prefix;
    EXPECT_EQ(same_prefix, 0);
    auto m1 = make_ulid(3000);
    auto m2 = make_ulid(3000);
    EXPECT_EQ(m1.substr(0, 10), m2.substr(0, 10));
    EXPECT_LT(m1, m2) << "make_ulid is the monotonic one";
}

TEST(ulid, time_prefix_encodes_milliseconds) {
    // 48-bit time 1469918176385 encodes as 01ARYZ6S41 (the ULID spec's example). A fresh
    // thread, since a thread never goes back in time.
    std::string id;
    std::thread([&] { id = make_ulid(1469918176385); }).join();
    EXPECT_EQ(id.substr(0, 10), "01ARYZ6S41");
}

TEST(ulid, unique_across_threads) {
    std::vector<std::vector<std::string>> ids(4);
    std::vector<std::thread> ts;
    for (int t = 0; t < 4; ++t)
        ts.emplace_back([&, t] {
            for (int i = 0; i < 5000; ++i) ids[t].push_back(make_ulid());
        });
    for (auto& t : ts) t.join();
    std::set<std::string> all;
    for (auto& v : ids) all.insert(v.begin(), v.end());
    EXPECT_EQ(all.size(), 20000u);
}

TEST(units, durations) {
    EXPECT_EQ(parse_duration("60s")->count(), 60000);
    EXPECT_EQ(parse_duration("500ms")->count(), 500);
    EXPECT_EQ(parse_duration("10m")->count(), 600000);
    EXPECT_EQ(parse_duration("24h")->count(), 86400000);
    EXPECT_EQ(parse_duration("7d")->count(), 604800000);
    EXPECT_EQ(parse_duration("30")->count(), 30000);
    EXPECT_EQ(parse_duration("1.5s")->count(), 1500);
    for (const char* s : {"", "s", "10x", "-5s", "1e99d", "ten"}) EXPECT_FALSE(parse_duration(s)) << s;
}

TEST(units, sizes_and_rates) {
    EXPECT_EQ(*parse_size("1MiB"), 1048576u);
    EXPECT_EQ(*parse_size("4 MiB"), 4194304u);
    EXPECT_EQ(*parse_size("512KiB"), 524288u);
    EXPECT_EQ(*parse_size("10MB"), 10000000u);
    EXPECT_EQ(*parse_size("123"), 123u);
    EXPECT_FALSE(parse_size("1 parsec"));
    EXPECT_FALSE(parse_size(""));
    auto r = parse_rate("120/min");
    ASSERT_TRUE(r);
    EXPECT_EQ(r->count, 120u);
    EXPECT_EQ(r->per.count(), 60000);
    EXPECT_EQ(parse_rate("10/s")->per.count(), 1000);
    EXPECT_FALSE(parse_rate("10"));
    EXPECT_FALSE(parse_rate("x/min"));
    EXPECT_FALSE(parse_rate("10/fortnight"));
    EXPECT_FALSE(parse_rate("0/min"));  // "unlimited" says it on purpose
    EXPECT_EQ(parse_rate("unlimited")->count, 0u);
}

TEST(json, parse_and_helpers) {
    EXPECT_TRUE(parse_json(R"({"a": [1, 2, {"b": null}]})"));
    EXPECT_FALSE(parse_json("{"));
    EXPECT_FALSE(parse_json("{} x"));
    EXPECT_FALSE(parse_json(""));
    EXPECT_FALSE(parse_json(std::string(100, '[') + std::string(100, ']')));  // too deep
    auto v = parse_json(R"({"s": "x", "i": 5, "u": 18446744073709551615, "d": 1.5})");
    ASSERT_TRUE(v);
    auto& o = v->get_object();
    EXPECT_EQ(get_string(o, "s"), "x");
    EXPECT_EQ(get_string(o, "i"), "");
    EXPECT_EQ(get_int(o, "i"), 5);
    EXPECT_FALSE(get_int(o, "u"));
    EXPECT_FALSE(get_int(o, "d"));
}

TEST(json, utf8_validation) {
    EXPECT_TRUE(valid_utf8("plain"));
    EXPECT_TRUE(valid_utf8("caf\xc3\xa9 \xf0\x9f\x9a\x97"));
    EXPECT_FALSE(valid_utf8("\xc3"));
    EXPECT_FALSE(valid_utf8("\xc0\xaf"));          // overlong
    EXPECT_FALSE(valid_utf8("\xed\xa0\x80"));      // surrogate
    EXPECT_FALSE(valid_utf8("\xf4\x90\x80\x80"));  // > U+10FFFF
    EXPECT_FALSE(valid_utf8("\xff"));
}

TEST(json_text, invalid_utf8_in_strings_becomes_replacement_characters) {
    // Whatever reaches a string, the text written is valid JSON.
    json::object o{{"k\xff", "a\xc3\x28z"}, {"ok", "caf\xc3\xa9"}};
    auto text = to_json_text(o);
    EXPECT_TRUE(valid_utf8(text)) << text;
    EXPECT_EQ(text, R"({"k\ufffd":"a\ufffd(z","ok":"café"})");
    EXPECT_TRUE(parse_json(text));
    EXPECT_EQ(to_json_text(json::value("\xf0\x9f\x9a\x97")), "\"\xf0\x9f\x9a\x97\"");
    EXPECT_EQ(to_json_text(json::value("\xf0\x9f\x9a")), R"("\ufffd\ufffd\ufffd")");
}

TEST(json_text, parse_json_input_refuses_repeated_keys) {
    std::optional<std::string> dup;
    EXPECT_FALSE(parse_json_input(R"({"a":1,"b":{"c":1,"c":2}})", 64, &dup));
    ASSERT_TRUE(dup);
    EXPECT_EQ(*dup, "c");
    dup.reset();
    EXPECT_FALSE(parse_json_input("{\"a\":1,\"\\u0061\":2}", 64, &dup));
    EXPECT_EQ(dup.value_or(""), "a");
    dup.reset();
    EXPECT_FALSE(parse_json_input("{\"a\":", 64, &dup));
    EXPECT_FALSE(dup);  // malformed, not repeated
    auto ok = parse_json_input(R"({"a":{"a":1},"b":[{"a":1},{"a":2}]})", 64, &dup);
    ASSERT_TRUE(ok);
    EXPECT_FALSE(dup);
    EXPECT_TRUE(parse_json_input("[1,2,\"{\"]"));
}

TEST(problem, renders_rfc9457) {
    auto p = problem::validation({{"brand", {"This field is required."}}, {"model", {"Must be an integer."}}});
    auto j = p.to_json();
    EXPECT_EQ(j["status"], 400);
    EXPECT_EQ(j["type"], "/problems/validation");
    EXPECT_EQ(j["title"], "Invalid input");
    EXPECT_EQ(j["detail"], "2 fields are invalid");
    EXPECT_EQ(j["errors"].at("brand").at(0), "This field is required.");
    auto q = problem::bad_parameter("colour", "Unknown field \"colour\".").to_json();
    EXPECT_EQ(q["parameter"], "colour");
    EXPECT_EQ(problem::not_found().status, 404);
}

TEST(json_text, doubles_in_shortest_round_trip_form) {
    EXPECT_EQ(to_json_text(json::value(43.333333333333336)), "43.333333333333336");
    EXPECT_EQ(to_json_text(json::value(130.0 / 3)), "43.333333333333336");
    EXPECT_EQ(to_json_text(json::value(0.9)), "0.9");
    EXPECT_EQ(to_json_text(json::value(0.653)), "0.653");
    EXPECT_EQ(to_json_text(json::value(4.07)), "4.07");
    EXPECT_EQ(to_json_text(json::value(0.0005)), "0.0005");
    EXPECT_EQ(to_json_text(json::value(1e21)), "1e+21");
    EXPECT_EQ(to_json_text(json::value(0.000001)), "0.000001");
    EXPECT_EQ(to_json_text(json::value(1.5e-7)), "1.5e-7");
    EXPECT_EQ(to_json_text(json::value(1e-7)), "1e-7");
    EXPECT_EQ(to_json_text(json::value(1e20)), "100000000000000000000.0");
    EXPECT_EQ(to_json_text(json::value(123456789.125)), "123456789.125");
    EXPECT_EQ(to_json_text(json::value(5e-324)), "5e-324");
    EXPECT_EQ(to_json_text(json::value(-2.5e-100)), "-2.5e-100");
    EXPECT_EQ(to_json_text(json::value(1.7976931348623157e308)), "1.7976931348623157e+308");
    // An integral double stays a double when read back.
    EXPECT_EQ(to_json_text(json::value(2.0)), "2.0");
    EXPECT_EQ(to_json_text(json::value(100.0)), "100.0");
    EXPECT_EQ(to_json_text(json::value(-0.0)), "-0.0");
    EXPECT_EQ(to_json_text(json::value(1e15)), "1000000000000000.0");
    // JSON has no NaN or Infinity.
    EXPECT_EQ(to_json_text(json::value(std::numeric_limits<double>::infinity())), "null");
    EXPECT_EQ(to_json_text(json::value(-std::numeric_limits<double>::infinity())), "null");
    EXPECT_EQ(to_json_text(json::value(std::numeric_limits<double>::quiet_NaN())), "null");
    EXPECT_EQ(json_number_text(0.9), "0.9");
    // Inside documents too, next to integers that stay integers.
    json::object task{{"progress", 130.0 / 3}, {"eta", 0.9}, {"attempt", 1}, {"big", std::uint64_t{18446744073709551615u}},
                      {"min", std::int64_t{INT64_MIN}}, {"steps", json::array{1.5, nullptr, true, "x"}}};
    EXPECT_EQ(to_json_text(task),
              R"({"progress":43.333333333333336,"eta":0.9,"attempt":1,"big":18446744073709551615,)"
              R"("min":-9223372036854775808,"steps":[1.5,null,true,"x"]})");
}

TEST(json_text, every_double_reads_back_as_the_same_double) {
    // Exactly, by a correctly rounding reader (from_chars); and as a double by Boost.JSON, whose
    // 1.81 parser may miss by one unit in the last place.
    std::mt19937_64 rng(42);
    for (int i = 0; i < 20000; ++i) {
        std::uint64_t bits = rng();
        double d;
        std::memcpy(&d, &bits, sizeof d);
        if (!std::isfinite(d)) continue;
        const double everyday[] = {static_cast<double>(static_cast<std::int32_t>(bits)) / 1000.0,
                                   static_cast<double>(static_cast<std::int32_t>(bits)),
                                   static_cast<double>(bits % 100000) / 3.0};
        for (double x : {d, everyday[0], everyday[1], everyday[2]}) {
            auto text = to_json_text(json::value(x));
            double read = 0;
            auto r = std::from_chars(text.data(), text.data() + text.size(), read);
            ASSERT_EQ(r.ec, std::errc()) << text;
            EXPECT_EQ(std::memcmp(&read, &x, sizeof x), 0) << text;
            auto back = parse_json(text);
            ASSERT_TRUE(back && back->is_double()) << text;
            if (x != d) {
                EXPECT_LE(back->get_double(), std::nextafter(x, INFINITY)) << text;
                EXPECT_GE(back->get_double(), std::nextafter(x, -INFINITY)) << text;
            }
        }
    }
}

TEST(json_text, everything_but_doubles_as_json_serialize_writes_it) {
    // Every ASCII byte, and UTF-8 of every length (bytes that are not UTF-8 become U+FFFD:
    // invalid_utf8_in_strings_becomes_replacement_characters).
    std::string every_byte;
    for (int c = 1; c < 128; ++c) every_byte += static_cast<char>(c);
    every_byte += "\xc2\x80 \xdf\xbf \xe0\xa0\x80 \xef\xbf\xbf \xf0\x90\x80\x80 \xf4\x8f\xbf\xbf";
    json::value doc = json::object{
        {"s", every_byte},
        {"q\"uote\\", "line\nbreak\ttab\b\f\r\x01\x1f\x7f é ✓ /"},
        {"empty", json::object{}},
        {"list", json::array{json::array{}, json::object{{"a", nullptr}}, false, -7, std::uint64_t{7}}},
        {"", ""},
    };
    EXPECT_EQ(to_json_text(doc), json::serialize(doc));
    std::string appended = "x";
    append_json_text(appended, doc);
    EXPECT_EQ(appended, "x" + json::serialize(doc));
    auto back = parse_json(to_json_text(doc));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, doc);
}

TEST(client_address, sets_of_addresses_and_ranges) {
    auto set = address_set::parse({"10.0.0.0/8", "192.168.1.7", "fd00::/8", " ::1 "});
    ASSERT_TRUE(set) << set.error().detail;
    EXPECT_TRUE(set->contains("10.200.3.4"));
    EXPECT_TRUE(set->contains("::ffff:10.1.2.3"));  // IPv4-mapped
    EXPECT_TRUE(set->contains("192.168.1.7"));
    EXPECT_FALSE(set->contains("192.168.1.8"));
    EXPECT_TRUE(set->contains("fd12::1"));
    EXPECT_TRUE(set->contains("::1"));
    EXPECT_FALSE(set->contains("11.0.0.1"));
    EXPECT_FALSE(set->contains("not an address"));
    EXPECT_FALSE(set->contains(""));
    for (const char* bad : {"10.0.0.0/33", "1.2.3", "10.0.0.0/", "host.example", "::1/129", ""})
        EXPECT_FALSE(address_set::parse({bad})) << bad;
    auto odd = address_set::parse({"10.1.2.3/12"});  // host bits set: the range still counts
    ASSERT_TRUE(odd);
    EXPECT_TRUE(odd->contains("10.0.0.1"));
    EXPECT_FALSE(odd->contains("10.16.0.1"));
}

TEST(client_address, x_forwarded_for_is_believed_only_from_trusted_proxies) {
    auto trusted = *address_set::parse({"10.0.0.0/8"});
    // An untrusted peer's header is ignored, whatever it says.
    EXPECT_EQ(resolve_client_address("203.0.113.5", {"1.2.3.4"}, trusted), "203.0.113.5");
    EXPECT_EQ(resolve_client_address("203.0.113.5", {}, address_set{}), "203.0.113.5");
    // From a proxy: the rightmost address that is not a trusted proxy.
    EXPECT_EQ(resolve_client_address("10.0.0.1", {"198.51.100.1"}, trusted), "198.51.100.1");
    EXPECT_EQ(resolve_client_address("10.0.0.1", {"6.6.6.6, 198.51.100.1, 10.0.0.2"}, trusted),
              "198.51.100.1");
    EXPECT_EQ(resolve_client_address("10.0.0.1", {"6.6.6.6", "198.51.100.1"}, trusted),
              "198.51.100.1");
    // Garbage a client put through an appending proxy stops the walk.
    EXPECT_EQ(resolve_client_address("10.0.0.1", {"6.6.6.6, garbage, 10.0.0.9"}, trusted), "10.0.0.9");
    EXPECT_EQ(resolve_client_address("10.0.0.1", {"garbage"}, trusted), "10.0.0.1");
    EXPECT_EQ(resolve_client_address("10.0.0.1", {}, trusted), "10.0.0.1");
    EXPECT_EQ(resolve_client_address("::ffff:10.0.0.1", {"[2001:db8::0001]"}, trusted), "2001:db8::1");
    EXPECT_EQ(canonical_address("::ffff:192.0.2.1").value_or(""), "192.0.2.1");
    EXPECT_FALSE(canonical_address("192.0.2.1:80"));
}
