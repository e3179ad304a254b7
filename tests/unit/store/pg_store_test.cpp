// PostgreSQL-specific behaviour of the store: several store instances on one database act as
// the nodes of a cluster. Commit order of the change log under concurrent writers on every
// node, NOTIFY waking the other nodes, task claims that skip rows other nodes hold, and the
// storage URL's own `schema=` parameter. The backend-independent store tests run on
// PostgreSQL too (scripts/test.sh runs the suites again with LIVEBASE_TEST_BACKEND=postgres).
#include "support/silent_listener.hpp"
#include "unit/store/store_test_support.hpp"

#include "store/pg/connection.hpp"
#include "store/pg/txn.hpp"

#include <gtest/gtest.h>

#include "store/change_log.hpp"

#include <arpa/inet.h>
#include <netinet/in.h>
#include <signal.h>
#include <sys/socket.h>
#include <unistd.h>

#include <atomic>
#include <cstdio>
#include <fstream>
#include <future>
#include <set>
#include <thread>

namespace livebase {
namespace {

using test::typed_cars;
using test::temp_dir;

#define REQUIRE_POSTGRES()                                                                   \
    do {                                                                                     \
        if (test::postgres_url().empty())                                                    \
            GTEST_SKIP() << "needs LIVEBASE_TEST_PG_URL (scripts/test.sh starts PostgreSQL)"; \
    } while (0)

json::object car(const std::string& id, const std::string& brand) {
    return json::object{{"id", id},   {"created", "2026-01-01T00:00:00.000Z"}, {"updated", "2026-01-01T00:00:00.000Z"},
                        {"version", 1}, {"owner", "u1"},                         {"brand", brand}};
}

std::unique_ptr<store> open_node(const std::string& url, std::size_t max_batch = 64) {
    postgres_options o;
    o.url = url;
    o.readers = 2;
    o.max_batch = max_batch;
    auto s = open_postgres_store(o);
    if (!s) ADD_FAILURE() << "open failed: " << s.error().detail;
    return s ? std::move(s).value() : nullptr;
}

std::vector<change> changes_after(store& s, std::int64_t after) {
    std::promise<result<std::vector<change>>> p;
    s.read([&](read_txn& t) { p.set_value(t.changes_after(after, 100000)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.has_value());
    return r ? std::move(r).value() : std::vector<change>{};
}

class pg_store_test : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_POSTGRES();
        url_ = test::postgres_url() + "?schema=" + test::schema_for(dir_.file("pg.db"));
        for (int i = 0; i < 3; ++i) {
            nodes_.push_back(open_node(url_));
            ASSERT_TRUE(nodes_.back());
        }
        for (auto& n : nodes_) test::migrate_or_die(*n, cars_);
    }

    temp_dir dir_;
    std::string url_;
    collection_def cars_ = typed_cars();
    std::vector<std::unique_ptr<store>> nodes_;
};

// The pitfall of architecture.md: sequence values are taken before commit, so with plain
// nextval() a reader that saw seq N could later find a row N-1 commit. Here three nodes write
// concurrently while a reader follows the log the way the hub does (changes_after(max seen));
// it must end up with every change, each exactly once, in ascending order.
TEST_F(pg_store_test, a_reader_following_max_seq_never_skips_a_change_of_concurrent_nodes) {
    constexpr int per_writer = 150;
    constexpr int writers_per_node = 2;
    std::atomic<bool> done{false};
    std::vector<std::int64_t> seen;
    std::thread reader([&] {
        std::int64_t cursor = 0;
        for (int rounds = 0; rounds < 200000; ++rounds) {
            const bool last = done.load();
            for (const auto& ch : changes_after(*nodes_[rounds % 3], cursor)) {
                seen.push_back(ch.seq);
                cursor = ch.seq;
            }
            if (last) break;
        }
    });
    std::vector<std::thread> writers;
    std::atomic<int> failed{0};
    for (int n = 0; n < 3; ++n) {
        for (int w = 0; w < writers_per_node; ++w) {
            writers.emplace_back([&, n, w] {
                for (int i = 0; i < per_writer; ++i) {
                    auto id = "n" + std::to_string(n) + "w" + std::to_string(w) + "i" + std::to_string(i);
                    auto r = nodes_[n]->write_sync([&](write_txn& t) -> result<json::value> {
                        if (auto x = t.insert(cars_, car(id, "b")); !x) return std::move(x).error();
                        return json::value(nullptr);
                    });
                    if (!r) ++failed;
                }
            });
        }
    }
    for (auto& t : writers) t.join();
    done = true;
    reader.join();
    EXPECT_EQ(failed.load(), 0);
    const std::size_t total = 3u * writers_per_node * per_writer;
    ASSERT_EQ(seen.size(), total) << "the follower skipped or repeated changes";
    for (std::size_t i = 1; i < seen.size(); ++i) ASSERT_LT(seen[i - 1], seen[i]);
    // And it agrees with a full read of the log.
    auto all = changes_after(*nodes_[0], 0);
    ASSERT_EQ(all.size(), total);
    for (std::size_t i = 0; i < total; ++i) EXPECT_EQ(all[i].seq, seen[i]);
}

TEST_F(pg_store_test, a_commit_on_one_node_wakes_the_others_with_its_seq) {
    std::promise<std::int64_t> heard;
    auto f = heard.get_future();
    std::atomic<bool> once{false};
    nodes_[1]->on_commit([&](std::int64_t seq) {
        if (!once.exchange(true)) heard.set_value(seq);
    });
    auto r = nodes_[0]->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto x = t.insert(cars_, car("A", "Ford")); !x) return std::move(x).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(r.has_value());
    ASSERT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    EXPECT_EQ(f.get(), nodes_[0]->last_seq());
    EXPECT_EQ(nodes_[1]->last_seq(), nodes_[0]->last_seq());
    nodes_[1]->on_commit({});
}

TEST_F(pg_store_test, a_pending_task_on_one_node_signals_the_others) {
    std::promise<void> heard;
    auto f = heard.get_future();
    std::atomic<bool> once{false};
    nodes_[2]->on_task_ready([&] {
        if (!once.exchange(true)) heard.set_value();
    });
    // A collection named like the built-in one (the tasks component is not linked here).
    collection_def tasks;
    tasks.name = "tasks";
    tasks.fields.push_back(test::make_field("kind", field_type::string));
    tasks.fields.push_back(test::make_field("state", field_type::string));
    ASSERT_EQ(finalize(tasks), "");
    test::migrate_or_die(*nodes_[0], tasks);
    json::object t{{"id", "T1"}, {"created", "2026-01-01T00:00:00.000Z"}, {"updated", "2026-01-01T00:00:00.000Z"},
                   {"version", 1}, {"kind", "k"}, {"state", "pending"}};
    auto r = nodes_[0]->write_sync([&](write_txn& txn) -> result<json::value> {
        if (auto x = txn.insert(tasks, t); !x) return std::move(x).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(r.has_value()) << r.error().detail;
    EXPECT_EQ(f.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    nodes_[2]->on_task_ready({});
}

// Two nodes claiming at once: each takes a different row, neither waits for the other.
TEST_F(pg_store_test, list_locked_skips_rows_another_node_holds) {
    for (auto id : {"A", "B"}) {
        auto r = nodes_[0]->write_sync([&](write_txn& t) -> result<json::value> {
            if (auto x = t.insert(cars_, car(id, "x")); !x) return std::move(x).error();
            return json::value(nullptr);
        });
        ASSERT_TRUE(r.has_value());
    }
    query q;
    q.ordering = {order_term{"id", false}};
    q.limit = 1;
    std::promise<void> first_holds, second_done;
    auto holds = first_holds.get_future();
    auto released = second_done.get_future();
    std::string first_id, second_id;
    std::thread a([&] {
        auto r = nodes_[0]->write_sync([&](write_txn& t) -> result<json::value> {
            auto pg = t.list_locked(cars_, q);
            if (!pg) return std::move(pg).error();
            if (!pg->items.empty()) first_id = get_string(pg->items[0], "id");
            first_holds.set_value();
            // Keep the lock until the other node has claimed (bounded).
            released.wait_for(std::chrono::seconds(30));
            return json::value(nullptr);
        });
        EXPECT_TRUE(r.has_value());
    });
    ASSERT_EQ(holds.wait_for(std::chrono::seconds(30)), std::future_status::ready);
    auto r = nodes_[1]->write_sync([&](write_txn& t) -> result<json::value> {
        auto pg = t.list_locked(cars_, q);
        if (!pg) return std::move(pg).error();
        if (!pg->items.empty()) second_id = get_string(pg->items[0], "id");
        return json::value(nullptr);
    });
    second_done.set_value();
    a.join();
    ASSERT_TRUE(r.has_value());
    EXPECT_EQ(first_id, "A");
    EXPECT_EQ(second_id, "B");
}

TEST_F(pg_store_test, unique_violations_name_the_field_across_nodes) {
    auto insert = [&](store& s, const std::string& id, const std::string& vin) {
        auto rec = car(id, "x");
        rec["vin"] = vin;
        return s.write_sync([&](write_txn& t) -> result<json::value> {
            if (auto x = t.insert(cars_, rec); !x) return std::move(x).error();
            return json::value(nullptr);
        });
    };
    ASSERT_TRUE(insert(*nodes_[0], "A", "V1").has_value());
    auto dup = insert(*nodes_[1], "B", "V1");
    ASSERT_FALSE(dup.has_value());
    EXPECT_EQ(dup.error().status, 409);
    EXPECT_NE(dup.error().detail.find("vin"), std::string::npos) << dup.error().detail;
    auto dup_id = insert(*nodes_[2], "A", "V2");
    ASSERT_FALSE(dup_id.has_value());
    EXPECT_EQ(dup_id.error().status, 409);
}

TEST_F(pg_store_test, a_restarted_node_resumes_at_the_last_seq) {
    auto r = nodes_[0]->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto x = t.insert(cars_, car("A", "Ford")); !x) return std::move(x).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(r.has_value());
    const auto seq = nodes_[0]->last_seq();
    nodes_[0].reset();
    auto again = open_node(url_);
    ASSERT_TRUE(again);
    EXPECT_EQ(again->last_seq(), seq);
    auto got = again->get_sync(cars_, "A");
    ASSERT_TRUE(got.has_value());
    ASSERT_TRUE(got->has_value());
}

TEST(pg_url, schema_parameter_is_livebase_s_own) {
    auto u = pg::split_url("postgresql://u@h:5/db?schema=app_1&sslmode=disable");
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(u->schema, "app_1");
    EXPECT_EQ(u->conninfo, "postgresql://u@h:5/db?sslmode=disable");
    auto plain = pg::split_url("postgresql://u@h/db");
    ASSERT_TRUE(plain.has_value());
    EXPECT_EQ(plain->schema, "");
    EXPECT_EQ(plain->conninfo, "postgresql://u@h/db");
    for (auto bad : {"postgresql://h/db?schema=", "postgresql://h/db?schema=1abc", "postgresql://h/db?schema=a;drop",
                     "postgresql://h/db?schema=A"}) {
        auto r = pg::split_url(bad);
        EXPECT_FALSE(r.has_value()) << bad;
        if (!r) {
            EXPECT_EQ(r.error().status, 400);
        }
    }
}

TEST(pg_url, passwords_never_reach_logs) {
    EXPECT_EQ(pg::redact_url("postgresql://app:s3cret@db:5432/x"), "postgresql://app:***@db:5432/x");
    EXPECT_EQ(pg::redact_url("postgresql://db/x?user=a&password=s3cret&sslmode=require"),
              "postgresql://db/x?user=a&password=***&sslmode=require");
    EXPECT_EQ(pg::redact_url("postgresql://app@db/x"), "postgresql://app@db/x");
}

TEST(pg_url, an_unreachable_server_is_a_503_naming_the_cause) {
    postgres_options o;
    o.url = "postgresql://nobody@127.0.0.1:1/none?connect_timeout=2";
    auto s = open_postgres_store(o);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().status, 503);
    EXPECT_NE(s.error().detail.find("PostgreSQL"), std::string::npos);
}


using test::silent_listener;

TEST(pg_url, a_server_that_never_answers_fails_after_connect_timeout_naming_host_and_port) {
    silent_listener l;
    postgres_options o;
    o.url = "postgresql://nobody@127.0.0.1:" + std::to_string(l.port()) + "/none";
    o.timeouts.connect = std::chrono::milliseconds(300);
    auto s = open_postgres_store(o);
    ASSERT_FALSE(s.has_value());
    EXPECT_EQ(s.error().status, 503);
    EXPECT_EQ(s.error().type, "/problems/storage-unavailable");
    const auto where = "127.0.0.1:" + std::to_string(l.port());
    EXPECT_NE(s.error().detail.find(where), std::string::npos) << s.error().detail;
    EXPECT_NE(s.error().detail.find("connect_timeout"), std::string::npos) << s.error().detail;
}

/// A store with short timeouts whose log goes to a file the test reads.
class pg_fault_test : public ::testing::Test {
protected:
    void SetUp() override {
        REQUIRE_POSTGRES();
        url_ = test::postgres_url() + "?schema=" + test::schema_for(dir_.file("faults.db"));
        postgres_options o;
        o.url = url_;
        o.readers = 2;
        o.log = &log_;
        o.timeouts.connect = std::chrono::milliseconds(2000);
        o.timeouts.statement = std::chrono::milliseconds(300);
        auto s = open_postgres_store(o);
        ASSERT_TRUE(s.has_value()) << s.error().detail;
        db_ = std::move(s).value();
        test::migrate_or_die(*db_, cars_);
    }
    void TearDown() override {
        for (int pid : stopped_) ::kill(pid, SIGCONT);
        if (db_) db_->close();
        if (log_file_) std::fclose(log_file_);
    }

    std::string log_text() {
        std::fflush(log_file_);
        std::rewind(log_file_);
        std::string out;
        char buf[4096];
        while (std::size_t n = std::fread(buf, 1, sizeof buf, log_file_)) out.append(buf, n);
        std::fseek(log_file_, 0, SEEK_END);
        return out;
    }
    static std::size_t count(const std::string& text, std::string_view what) {
        std::size_t n = 0;
        for (auto p = text.find(what); p != std::string::npos; p = text.find(what, p + 1)) ++n;
        return n;
    }

    /// The backend pid of the writer session running `t`.
    static result<std::int64_t> own_pid(write_txn& t) {
        auto pid = dynamic_cast<store_detail::sql_runner&>(t).scalar("SELECT pg_backend_pid()", {});
        if (!pid) return std::move(pid).error();
        return **pid;
    }

    /// The backend pids of the writer sessions (two, taking groups in turn).
    std::set<int> writer_pids() {
        std::set<int> pids;
        for (int i = 0; i < 10 && pids.size() < 2; ++i) {
            auto r = db_->write_sync([](write_txn& t) -> result<json::value> {
                auto pid = own_pid(t);
                if (!pid) return std::move(pid).error();
                return json::value(*pid);
            });
            EXPECT_TRUE(r.has_value());
            if (r) pids.insert(static_cast<int>(r->as_int64()));
        }
        return pids;
    }

    result<json::value> insert(const std::string& id) {
        return db_->write_sync([&](write_txn& t) -> result<json::value> {
            if (auto r = t.insert(cars_, car(id, "B")); !r) return std::move(r).error();
            return json::value(nullptr);
        });
    }

    /// Writes until one commits (the store recovers by itself); false after `tries`.
    bool write_resumes(int tries = 400) {
        for (int i = 0; i < tries; ++i) {
            if (insert("after" + std::to_string(i))) return true;
            std::this_thread::sleep_for(std::chrono::milliseconds(25));  // pacing a retry loop, not a sync
        }
        return false;
    }

    temp_dir dir_;
    std::FILE* log_file_ = std::tmpfile();
    logger log_{log_file_};
    std::string url_;
    collection_def cars_ = typed_cars();
    std::unique_ptr<store> db_;
    std::vector<int> stopped_;
};

void expect_storage_unavailable(const result<json::value>& r) {
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 503) << r.error().detail;
    EXPECT_EQ(r.error().type, "/problems/storage-unavailable");
    auto it = r.error().extra.find("retry_after");
    ASSERT_NE(it, r.error().extra.end());
    EXPECT_EQ(it->value().as_int64(), 5);
}

TEST_F(pg_fault_test, a_statement_past_statement_timeout_answers_503_and_the_store_stays_up) {
    auto r = db_->write_sync([](write_txn& t) -> result<json::value> {
        auto slept = dynamic_cast<store_detail::sql_runner&>(t).execute("SELECT pg_sleep(5)", {});
        if (!slept) return std::move(slept).error();
        return json::value(nullptr);
    });
    expect_storage_unavailable(r);
    EXPECT_NE(r.error().detail.find("in time"), std::string::npos) << r.error().detail;
    EXPECT_EQ(db_->condition(), "ok");
    EXPECT_TRUE(insert("next").has_value());  // the same connection goes on
    EXPECT_NE(log_text().find("57014"), std::string::npos);
}

TEST_F(pg_fault_test, a_commit_whose_connection_is_lost_answers_503_not_500_and_writes_resume) {
    // The write itself succeeds; its backend is terminated before the COMMIT is answered.
    auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto w = t.insert(cars_, car("lost", "B")); !w) return std::move(w).error();
        auto pid = own_pid(t);
        if (!pid) return std::move(pid).error();
        PGconn* admin = PQconnectdb(test::postgres_url().c_str());
        PGresult* k = PQexec(admin, ("SELECT pg_terminate_backend(" + std::to_string(*pid) + ")").c_str());
        PQclear(k);
        PQfinish(admin);
        return json::value(nullptr);
    });
    expect_storage_unavailable(r);
    EXPECT_NE(r.error().detail.find("may or may not"), std::string::npos) << r.error().detail;
    ASSERT_TRUE(write_resumes());
    const auto log = log_text();
    EXPECT_EQ(count(log, "PostgreSQL is unreachable"), count(log, "PostgreSQL is reachable again")) << log;
}

TEST_F(pg_fault_test, a_frozen_backend_answers_503_within_the_deadline_then_writes_resume) {
    const auto pids = writer_pids();
    ASSERT_EQ(pids.size(), 2u);
    for (int pid : pids) {
        ASSERT_EQ(::kill(pid, SIGSTOP), 0);  // the writers' backends stop answering (SIGSTOP)
        stopped_.push_back(pid);
    }
    // Deadline: statement_timeout (300ms) + 1s; the write answers 503 then, not never.
    auto r = insert("frozen");
    expect_storage_unavailable(r);
    EXPECT_NE(r.error().detail.find("in time"), std::string::npos) << r.error().detail;
    ASSERT_TRUE(write_resumes());  // the prober reconnects (new backends), the writers follow
    for (int pid : pids) ::kill(pid, SIGCONT);
    stopped_.clear();
    const auto log = log_text();
    EXPECT_EQ(count(log, "PostgreSQL is unreachable"), 1u) << log;
    EXPECT_EQ(count(log, "PostgreSQL is reachable again"), 1u) << log;
    EXPECT_NE(log.find("no answer within 1300ms"), std::string::npos) << log;
    EXPECT_EQ(db_->condition(), "ok");
}

TEST(pg_sql, unique_violation_detail_names_the_field) {
    auto c = typed_cars();
    EXPECT_EQ(pg::unique_violation_field(c, "Key (f_vin)=(V1) already exists."), "vin");
    EXPECT_EQ(pg::unique_violation_field(c, "Key (id)=(A) already exists."), "id");
    EXPECT_EQ(pg::unique_violation_field(c, "Key (f_brand, f_model)=(a, 1) already exists."), "brand");
    EXPECT_EQ(pg::unique_violation_field(c, "something else"), "");
}

}  // namespace
}  // namespace livebase
