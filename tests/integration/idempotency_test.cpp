// Idempotency-Key (http.md section 3): replay, 422 on a different request, 409 while in flight.
#include "support/test_app.hpp"

#include <livebase/api/api.hpp>
#include <livebase/core/clock.hpp>

#include <mutex>
#include <set>
#include <thread>

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {
std::string id_of(const http_response& r) {
    auto v = r.json();
    return v.is_object() && v.get_object().contains("id") ? std::string(v.at("id").as_string()) : "";
}
}  // namespace

using idempotency = server_test;

TEST(idempotency_collection, is_a_valid_definition) {
    auto c = idempotency_collection();
    EXPECT_EQ(finalize(c), "");
    EXPECT_TRUE(is_reserved_collection_name(c.name));
}

TEST_F(idempotency, same_key_replays_the_original_response) {
    auto c = client();
    header_list key{{"Idempotency-Key", "order-1"}};
    auto first = c.request("POST", "/api/cars", R"({"brand": "Ford"})", key);
    ASSERT_EQ(first.status, 201) << first.body;
    auto again = c.request("POST", "/api/cars", R"({"brand": "Ford"})", key);
    EXPECT_EQ(again.status, 201);
    EXPECT_EQ(id_of(again), id_of(first));
    EXPECT_EQ(again.header("Location"), first.header("Location"));
    EXPECT_EQ(again.header("Idempotent-Replayed"), "true");
    EXPECT_EQ(c.get("/api/cars").json().at("count"), 1);
    // another key creates another record
    EXPECT_EQ(c.request("POST", "/api/cars", R"({"brand": "Ford"})", {{"Idempotency-Key", "order-2"}}).status, 201);
    EXPECT_EQ(c.get("/api/cars").json().at("count"), 2);
}

TEST_F(idempotency, same_key_with_another_request_is_422) {
    auto c = client();
    header_list key{{"Idempotency-Key", "k"}};
    ASSERT_EQ(c.request("POST", "/api/cars", R"({"brand": "Ford"})", key).status, 201);
    EXPECT_EQ(c.request("POST", "/api/cars", R"({"brand": "Opel"})", key).status, 422);
    EXPECT_EQ(c.request("POST", "/api/things", R"({"title": "A"})", key).status, 422);
}

TEST_F(idempotency, async_submission_replays_the_same_task) {
    auto c = client();
    header_list h{{"Idempotency-Key", "async-1"}, {"Prefer", "respond-async"}};
    auto first = c.request("POST", "/api/cars", R"({"brand": "Ford"})", h);
    ASSERT_EQ(first.status, 202) << first.body;
    auto again = c.request("POST", "/api/cars", R"({"brand": "Ford"})", h);
    EXPECT_EQ(again.status, 202);
    EXPECT_EQ(again.header("Location"), first.header("Location"));
    EXPECT_EQ(c.get("/api/tasks").json().at("count"), 1);
}

TEST_F(idempotency, errors_are_replayed_but_keys_are_bounded) {
    auto c = client();
    header_list key{{"Idempotency-Key", "bad"}};
    EXPECT_EQ(c.request("POST", "/api/cars", R"({"model": 1})", key).status, 400);
    auto again = c.request("POST", "/api/cars", R"({"model": 1})", key);
    EXPECT_EQ(again.status, 400);
    EXPECT_EQ(again.header("Content-Type"), "application/problem+json");
    EXPECT_EQ(c.request("POST", "/api/cars", R"({"brand": "x"})", {{"Idempotency-Key", std::string(256, 'k')}}).status, 400);
}

TEST_F(idempotency, concurrent_identical_requests_create_one_record) {
    constexpr int k_threads = 8;
    std::mutex mu;
    std::set<std::string> ids;
    std::vector<int> statuses;
    std::vector<std::string> retry_after;  // of the 409s
    std::vector<std::thread> threads;
    for (int i = 0; i < k_threads; ++i)
        threads.emplace_back([&] {
            http_client c(app_.port());
            auto r = c.request("POST", "/api/cars", R"({"brand": "Race"})", {{"Idempotency-Key", "race"}});
            std::lock_guard<std::mutex> lock(mu);
            statuses.push_back(r.status);
            if (r.status == 201) ids.insert(id_of(r));
            if (r.status == 409) retry_after.push_back(r.header("Retry-After"));
        });
    for (auto& t : threads) t.join();
    EXPECT_EQ(ids.size(), 1u);
    for (int s : statuses) EXPECT_TRUE(s == 201 || s == 409) << s;
    for (const auto& ra : retry_after) EXPECT_EQ(ra, "1");  // in flight here: come back soon
    EXPECT_EQ(client().get("/api/cars").json().at("count"), 1);
}

namespace {
/// Turns the only stored key back into a pending one held by `holder` until `held_until`, as a
/// process that died (or still runs) on another node leaves it.
void make_pending(livebase::store& db, const std::string& holder, std::int64_t held_until) {
    auto rows = db.list_sync(idempotency_collection(), query{});
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->items.size(), 1u);
    auto row = rows->items.front();
    row["state"] = "pending";
    row["holder"] = holder;
    row["held_until"] = held_until;
    auto r = db.write_sync([&](write_txn& t) -> result<json::value> {
        if (auto u = t.update(idempotency_collection(), row); !u) return std::move(u).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(r) << r.error().detail;
}
}  // namespace

// A key left pending by a holder that is gone (another node whose lease ran out) is taken over
// by the retry, which runs afresh; while the holder's lease runs, the retry gets 409 with the
// seconds left as Retry-After.
TEST_F(idempotency, a_pending_key_of_a_holder_that_is_gone_is_taken_over) {
    auto c = client();
    header_list key{{"Idempotency-Key", "orphan"}};
    auto first = c.request("POST", "/api/cars", R"({"brand": "Orphan"})", key);
    ASSERT_EQ(first.status, 201) << first.body;

    make_pending(app_.store(), "other-node:8080 01OTHERBOOT", now_ms() + 20'000);
    auto busy = c.request("POST", "/api/cars", R"({"brand": "Orphan"})", key);
    EXPECT_EQ(busy.status, 409) << busy.body;
    auto ra = busy.header("Retry-After");
    ASSERT_FALSE(ra.empty());
    EXPECT_GE(std::stoi(ra), 1);
    EXPECT_LE(std::stoi(ra), 20);

    make_pending(app_.store(), "other-node:8080 01OTHERBOOT", now_ms() - 1);
    auto fresh = c.request("POST", "/api/cars", R"({"brand": "Orphan"})", key);
    ASSERT_EQ(fresh.status, 201) << fresh.body;
    EXPECT_FALSE(fresh.has_header("Idempotent-Replayed"));
    EXPECT_NE(id_of(fresh), id_of(first));  // a fresh run (the row was made pending by hand)
    auto replay = c.request("POST", "/api/cars", R"({"brand": "Orphan"})", key);
    EXPECT_EQ(replay.header("Idempotent-Replayed"), "true");
    EXPECT_EQ(id_of(replay), id_of(fresh));
    // The key's row is done again, its holder cleared.
    auto rows = app_.store().list_sync(idempotency_collection(), query{});
    ASSERT_TRUE(rows);
    ASSERT_EQ(rows->items.size(), 1u);
    EXPECT_EQ(get_string(rows->items.front(), "state"), "done");
    EXPECT_TRUE(rows->items.front().at("holder").is_null());
}
