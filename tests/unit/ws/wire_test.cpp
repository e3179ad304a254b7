// The wire format without sockets: server frame headers, the client frame parser (masking,
// fragmentation, control frames, limits, errors), permessage-deflate negotiation and payloads.
#include "ws/wire.hpp"

#include <gtest/gtest.h>

#include <random>

using namespace livebase::ws_detail;

namespace {

/// A client frame: masked with a fixed key.
std::string client_frame(unsigned op, std::string_view payload, bool fin = true, bool rsv1 = false,
                         bool mask = true) {
    std::string out;
    out += static_cast<char>((fin ? 0x80 : 0) | (rsv1 ? 0x40 : 0) | op);
    const unsigned char m = mask ? 0x80 : 0;
    if (payload.size() < 126) {
        out += static_cast<char>(m | payload.size());
    } else if (payload.size() <= 0xffff) {
        out += static_cast<char>(m | 126);
        out += static_cast<char>(payload.size() >> 8);
        out += static_cast<char>(payload.size() & 0xff);
    } else {
        out += static_cast<char>(m | 127);
        for (int i = 7; i >= 0; --i) out += static_cast<char>((payload.size() >> (8 * i)) & 0xff);
    }
    const unsigned char key[4] = {0x12, 0x34, 0x56, 0x78};
    if (mask) out.append(reinterpret_cast<const char*>(key), 4);
    for (std::size_t i = 0; i < payload.size(); ++i)
        out += mask ? static_cast<char>(payload[i] ^ key[i & 3]) : payload[i];
    return out;
}

std::size_t header_of(std::uint64_t size, unsigned char* h, bool compressed = false) {
    return write_header(h, opcode::text, size, compressed);
}

}  // namespace

TEST(wire, headers_use_the_shortest_length_encoding) {
    unsigned char h[k_max_header];
    EXPECT_EQ(header_of(0, h), 2u);
    EXPECT_EQ(h[0], 0x81);
    EXPECT_EQ(h[1], 0);
    EXPECT_EQ(header_of(125, h), 2u);
    EXPECT_EQ(h[1], 125);
    EXPECT_EQ(header_of(126, h), 4u);
    EXPECT_EQ(h[1], 126);
    EXPECT_EQ((h[2] << 8) | h[3], 126);
    EXPECT_EQ(header_of(65535, h), 4u);
    EXPECT_EQ(header_of(65536, h), 10u);
    EXPECT_EQ(h[1], 127);
    EXPECT_EQ(h[7], 1);  // 0x00 00 00 00 00 01 00 00
    EXPECT_EQ(header_of(10, h, true), 2u);
    EXPECT_EQ(h[0], 0xc1);  // FIN | RSV1 | text
    EXPECT_EQ(write_header(h, opcode::pong, 3), 2u);
    EXPECT_EQ(h[0], 0x8a);
}

TEST(wire, close_frames_carry_the_code_and_a_cut_reason) {
    auto f = close_frame(4008, "slow consumer");
    ASSERT_EQ(f.size(), 2u + 2 + 13);
    EXPECT_EQ(static_cast<unsigned char>(f[0]), 0x88);
    EXPECT_EQ(static_cast<unsigned char>(f[1]), 15);
    EXPECT_EQ((static_cast<unsigned char>(f[2]) << 8) | static_cast<unsigned char>(f[3]), 4008);
    EXPECT_EQ(f.substr(4), "slow consumer");
    auto long_reason = close_frame(1000, std::string(300, 'x'));
    EXPECT_EQ(long_reason.size(), 2u + 125);
}

TEST(wire, the_parser_reassembles_messages_fed_a_byte_at_a_time) {
    frame_parser p(1 << 20);
    std::string bytes = client_frame(1, "hello") + client_frame(1, std::string(300, 'a')) +
                        client_frame(2, "bin") + client_frame(9, "pi") +
                        client_frame(1, "par", false) + client_frame(10, "po") +
                        client_frame(0, "t1", false) + client_frame(0, "end");
    std::vector<frame_parser::event> got;
    for (char c : bytes) {
        p.feed(std::string_view(&c, 1));
        while (auto e = p.next()) got.push_back(std::move(*e));
    }
    ASSERT_EQ(got.size(), 6u);
    using k = frame_parser::kind;
    EXPECT_EQ(got[0].what, k::text);
    EXPECT_EQ(got[0].payload, "hello");
    EXPECT_EQ(got[1].payload, std::string(300, 'a'));
    EXPECT_EQ(got[2].what, k::binary);
    EXPECT_EQ(got[3].what, k::ping);
    EXPECT_EQ(got[3].payload, "pi");
    EXPECT_EQ(got[4].what, k::pong);  // a control frame inside a fragmented message
    EXPECT_EQ(got[5].what, k::text);
    EXPECT_EQ(got[5].payload, "part1end");
    EXPECT_FALSE(p.failed());
    EXPECT_EQ(p.buffered(), 0u);
}

TEST(wire, close_frames_are_parsed_with_their_code) {
    frame_parser p(1024);
    p.feed(client_frame(8, std::string("\x03\xe8", 2) + "bye") + client_frame(8, ""));
    auto a = p.next();
    ASSERT_TRUE(a);
    EXPECT_EQ(a->what, frame_parser::kind::close);
    EXPECT_EQ(a->code, 1000);
    EXPECT_EQ(a->payload, "bye");
    auto b = p.next();
    ASSERT_TRUE(b);
    EXPECT_EQ(b->code, 1005);
}

TEST(wire, protocol_errors_are_final_and_answered_1002) {
    auto error_of = [](std::string bytes, bool deflate = false) -> std::uint16_t {
        frame_parser p(1024, deflate);
        p.feed(bytes);
        while (auto e = p.next())
            if (e->what == frame_parser::kind::error) {
                EXPECT_TRUE(p.failed());
                auto again = p.next();
                EXPECT_TRUE(again && again->what == frame_parser::kind::error);
                return e->code;
            }
        return 0;
    };
    EXPECT_EQ(error_of(client_frame(1, "x", true, false, false)), 1002);  // unmasked
    EXPECT_EQ(error_of(client_frame(0, "x")), 1002);                      // stray continuation
    EXPECT_EQ(error_of(client_frame(1, "a", false) + client_frame(1, "b")), 1002);
    EXPECT_EQ(error_of(client_frame(3, "x")), 1002);                    // reserved opcode
    EXPECT_EQ(error_of(client_frame(9, "x", false)), 1002);             // fragmented ping
    EXPECT_EQ(error_of(client_frame(9, std::string(126, 'p'))), 1002);  // long ping
    EXPECT_EQ(error_of(client_frame(1, "x", true, true)), 1002);        // RSV1 without deflate
    EXPECT_EQ(error_of(client_frame(1, "x", true, true), true), 0);     // RSV1 with deflate
    EXPECT_EQ(error_of(client_frame(8, "x")), 1002);                    // one-byte close
    EXPECT_EQ(error_of(client_frame(8, std::string("\x03\xed", 2))), 1002);  // close code 1005
    std::string rsv2 = client_frame(1, "x");
    rsv2[0] = static_cast<char>(rsv2[0] | 0x20);
    EXPECT_EQ(error_of(rsv2), 1002);
}

TEST(wire, a_message_over_the_limit_is_refused_before_its_payload_arrives) {
    frame_parser p(100);
    std::string big = client_frame(1, std::string(1000, 'x'));
    p.feed(big.substr(0, 8));  // the header and mask only
    auto e = p.next();
    ASSERT_TRUE(e);
    EXPECT_EQ(e->what, frame_parser::kind::error);
    EXPECT_EQ(e->code, 1009);
    // Fragments count together.
    frame_parser q(100);
    q.feed(client_frame(1, std::string(60, 'a'), false) + client_frame(0, std::string(60, 'b')));
    auto f = q.next();
    ASSERT_TRUE(f);
    EXPECT_EQ(f->code, 1009);
}

TEST(wire, deflate_is_negotiated_only_from_acceptable_offers) {
    EXPECT_FALSE(negotiate_deflate("", 6));
    EXPECT_FALSE(negotiate_deflate("x-webkit-deflate-frame", 6));
    auto a = negotiate_deflate("permessage-deflate; client_max_window_bits", 6);
    ASSERT_TRUE(a);
    EXPECT_EQ(a->response, "permessage-deflate; server_no_context_takeover; client_no_context_takeover");
    EXPECT_EQ(a->params.window_bits, 15);
    auto b = negotiate_deflate("permessage-deflate; server_max_window_bits=8, permessage-deflate; server_max_window_bits=10", 3);
    ASSERT_TRUE(b);  // the first offer is declined (zlib cannot do 8), the second taken
    EXPECT_EQ(b->params.window_bits, 10);
    EXPECT_EQ(b->params.level, 3);
    EXPECT_NE(b->response.find("server_max_window_bits=10"), std::string::npos);
    EXPECT_FALSE(negotiate_deflate("permessage-deflate; unknown_param", 6));
    EXPECT_FALSE(negotiate_deflate("permessage-deflate; server_no_context_takeover; server_no_context_takeover", 6));
    EXPECT_FALSE(negotiate_deflate("permessage-deflate; server_max_window_bits=16", 6));
}

TEST(wire, deflated_messages_round_trip_and_inflation_is_bounded) {
    std::string text;
    for (int i = 0; i < 200; ++i) text += R"({"stream":"cars","payload":{"action":"create"}})";
    deflate_params params;
    const auto z = deflate_message(text, params);
    ASSERT_FALSE(z.empty());
    EXPECT_LT(z.size(), text.size() / 5);
    auto back = inflate_message(z, 1 << 20);
    ASSERT_TRUE(back);
    EXPECT_EQ(*back, text);
    bool too_big = false;
    EXPECT_FALSE(inflate_message(z, 100, &too_big));
    EXPECT_TRUE(too_big);
    too_big = false;
    EXPECT_FALSE(inflate_message("\xff\xff\xff garbage", 1 << 20, &too_big));
    EXPECT_FALSE(too_big);
    // Random data does not crash and is bounded.
    std::mt19937 rng(7);
    for (int i = 0; i < 200; ++i) {
        std::string junk(static_cast<std::size_t>(rng() % 64), '\0');
        for (auto& c : junk) c = static_cast<char>(rng());
        auto r = inflate_message(junk, 4096);
        if (r) EXPECT_LE(r->size(), 4096u);
    }
}
