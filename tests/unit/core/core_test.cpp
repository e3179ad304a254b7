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
    EXPECT_EQ(m1.substr(0, 18), m2.substr(0, 18)) << "make_ulid is the monotonic one";
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
    std::string every_byte;
    for (int c = 1; c < 256; ++c) every_byte += static_cast<char>(c);
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
    doc.get_object().erase("s");  // not UTF-8: parse_json refuses it
    auto back = parse_json(to_json_text(doc));
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, doc);
}
