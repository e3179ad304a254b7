// The SSE policy of the REST door: which requests stream, event framing, chunk framing.
#include "http/sse.hpp"

#include <gtest/gtest.h>

using namespace livebase;
using namespace livebase::http_detail;

TEST(sse, accept_header_lists_event_stream) {
    EXPECT_TRUE(accepts_event_stream("text/event-stream"));
    EXPECT_TRUE(accepts_event_stream("Text/Event-Stream"));
    EXPECT_TRUE(accepts_event_stream("application/json, text/event-stream;q=0.9"));
    EXPECT_TRUE(accepts_event_stream(" text/event-stream ; charset=utf-8"));
    EXPECT_FALSE(accepts_event_stream(""));
    EXPECT_FALSE(accepts_event_stream("*/*"));
    EXPECT_FALSE(accepts_event_stream("application/json"));
    EXPECT_FALSE(accepts_event_stream("text/event-streams"));
}

TEST(sse, only_the_task_detail_streams) {
    operation op;
    op.collection = "tasks";
    op.kind = op_kind::retrieve;
    op.id = "01J";
    EXPECT_TRUE(is_task_stream_request("GET", op));
    EXPECT_FALSE(is_task_stream_request("DELETE", op));
    op.subresource = "result";
    EXPECT_FALSE(is_task_stream_request("GET", op));
    op.subresource.clear();
    op.collection = "cars";
    EXPECT_FALSE(is_task_stream_request("GET", op));
    op.collection = "tasks";
    op.kind = op_kind::list;
    op.id.clear();
    EXPECT_FALSE(is_task_stream_request("GET", op));
}

TEST(sse, event_and_comment_format) {
    EXPECT_EQ(format_sse_event(3, "task", R"({"a":1})"), "id: 3\nevent: task\ndata: {\"a\":1}\n\n");
    EXPECT_EQ(format_sse_event(1, "task", "x\ny"), "id: 1\nevent: task\ndata: x\ndata: y\n\n");
    EXPECT_EQ(format_sse_comment("keep-alive"), ": keep-alive\n\n");
}

TEST(sse, finished_states_end_the_stream) {
    for (const char* s : {"succeeded", "failed", "cancelled"})
        EXPECT_TRUE(task_snapshot_finished(json::object{{"state", s}})) << s;
    for (const char* s : {"pending", "running"})
        EXPECT_FALSE(task_snapshot_finished(json::object{{"state", s}})) << s;
    EXPECT_FALSE(task_snapshot_finished(json::object{}));
    EXPECT_FALSE(task_snapshot_finished(json::value(nullptr)));
}

TEST(sse, chunk_framing) {
    EXPECT_EQ(frame_chunk(""), "");
    EXPECT_EQ(frame_chunk("abc"), "3\r\nabc\r\n");
    EXPECT_EQ(frame_chunk(std::string(26, 'x')).substr(0, 4), "1a\r\n");
}
