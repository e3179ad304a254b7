// The SQLite store end to end: CRUD, queries (cross-checked with schema's matches() and
// record_less()), group commit, the change log, migrations, concurrency and close().
#include "unit/store/store_test_support.hpp"

#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/schema/query.hpp>

#include <gtest/gtest.h>
#include <sqlite3.h>

#include <algorithm>
#include <condition_variable>
#include <fstream>
#include <future>
#include <map>
#include <mutex>
#include <thread>

namespace livebase {
namespace {

using test::typed_cars;
using test::make_field;
using test::open_or_die;
using test::temp_dir;

json::object car(std::string id, json::object fields = {}) {
    json::object rec{{"id", id},
                     {"created", "2026-01-01T00:00:00.000Z"},
                     {"updated", "2026-01-01T00:00:00.000Z"},
                     {"version", 1},
                     {"owner", "u1"}};
    for (auto& kv : fields) rec[kv.key()] = kv.value();
    return rec;
}

result<json::value> insert_sync(store& s, const collection_def& c, json::object rec) {
    return s.write_sync([&c, rec](write_txn& t) -> result<json::value> {
        if (auto r = t.insert(c, rec); !r) return std::move(r).error();
        return json::value(rec);
    });
}

std::vector<change> changes_sync(store& s, std::int64_t after, std::size_t limit = 100000) {
    std::promise<result<std::vector<change>>> p;
    s.read([&](read_txn& t) { p.set_value(t.changes_after(after, limit)); });
    auto r = p.get_future().get();
    EXPECT_TRUE(r.has_value());
    return r ? std::move(r).value() : std::vector<change>{};
}

std::vector<std::string> ids_of(const std::vector<json::object>& items) {
    std::vector<std::string> out;
    for (const auto& r : items) out.emplace_back(get_string(r, "id"));
    return out;
}

class sqlite_store_test : public ::testing::Test {
protected:
    void SetUp() override {
        db_ = open_or_die(dir_.file("data/test.db"));
        ASSERT_TRUE(db_);
        test::migrate_or_die(*db_, cars_);
    }
    void reopen(std::size_t max_batch = 256) {
        db_.reset();
        db_ = open_or_die(dir_.file("data/test.db"), max_batch);
        ASSERT_TRUE(db_);
    }

    temp_dir dir_;
    collection_def cars_ = typed_cars();
    std::unique_ptr<store> db_;
};

TEST_F(sqlite_store_test, crud_round_trips_every_field_type) {
    auto full = car("01A", {{"brand", "Ford"},
                            {"vin", "V1"},
                            {"model", std::int64_t{2014}},
                            {"price", 12345.5},
                            {"electric", true},
                            {"notes", "long text \xC3\xA9"},
                            {"built", "2014-05-06T07:08:09.000Z"},
                            {"extra", json::object{{"a", json::array{1, 2.5, "x", nullptr, false}}}},
                            {"maker", "M1"}});
    ASSERT_TRUE(insert_sync(*db_, cars_, full).has_value());

    auto got = db_->get_sync(cars_, "01A");
    ASSERT_TRUE(got.has_value());
    ASSERT_TRUE(got->has_value());
    EXPECT_EQ(**got, full) << json::serialize(**got);

    // Absent and null fields read back as null; json null is SQL NULL.
    auto sparse = car("01B", {{"brand", "Kia"}, {"extra", nullptr}, {"electric", false}});
    sparse["owner"] = nullptr;
    ASSERT_TRUE(insert_sync(*db_, cars_, sparse).has_value());
    auto got_sparse = db_->get_sync(cars_, "01B");
    ASSERT_TRUE(got_sparse.has_value() && got_sparse->has_value());
    const auto& s = **got_sparse;
    EXPECT_EQ(s.at("electric"), json::value(false));
    EXPECT_TRUE(s.at("model").is_null());
    EXPECT_TRUE(s.at("extra").is_null());
    EXPECT_TRUE(s.at("owner").is_null());
    EXPECT_EQ(s.size(), 5u + cars_.fields.size());

    // Integers stored in a number field read back as doubles.
    auto n = car("01C", {{"price", 7}});
    ASSERT_TRUE(insert_sync(*db_, cars_, n).has_value());
    EXPECT_TRUE((*db_->get_sync(cars_, "01C"))->at("price").is_double());

    // Update replaces the record; remove deletes it.
    auto updated = full;
    updated["brand"] = "Ford Motor";
    updated["electric"] = false;
    updated["version"] = 2;
    updated["extra"] = json::array{"changed"};
    auto u = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.update(cars_, updated); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(u.has_value());
    EXPECT_EQ(**db_->get_sync(cars_, "01A"), updated);

    auto d = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.remove(cars_, updated); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_TRUE(d.has_value());
    auto gone = db_->get_sync(cars_, "01A");
    ASSERT_TRUE(gone.has_value());
    EXPECT_FALSE(gone->has_value());

    // Absent records: 404 for update and remove.
    auto u404 = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.update(cars_, car("nope")); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_FALSE(u404.has_value());
    EXPECT_EQ(u404.error().status, 404);
    auto d404 = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.remove(cars_, car("nope")); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_FALSE(d404.has_value());
    EXPECT_EQ(d404.error().status, 404);
}

TEST_F(sqlite_store_test, a_write_sees_its_own_changes_and_readers_see_commits) {
    auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto i = t.insert(cars_, car("01A", {{"brand", "Ford"}})); !i) return std::move(i).error();
        auto got = t.get(cars_, "01A");
        if (!got || !got.value()) return problem::internal("not visible");
        query q;
        auto pg = t.list(cars_, q);
        if (!pg || pg->count != 1) return problem::internal("not listed");
        return json::value(nullptr);
    });
    ASSERT_TRUE(r.has_value()) << r.error().detail;
    auto pg = db_->list_sync(cars_, query{});
    ASSERT_TRUE(pg.has_value());
    EXPECT_EQ(pg->count, 1);
}

// A fixture of varied records for the query tests.
class query_test : public sqlite_store_test {
protected:
    void SetUp() override {
        sqlite_store_test::SetUp();
        const char* brands[] = {"Ford", "ford", "FORD", "Kia", "Fiat", "Ferrari", "50%_off\\x", "", "Éclair"};
        std::mt19937 rng(42);
        for (int i = 0; i < 60; ++i) {
            json::object f;
            if (i % 7 != 0) f["brand"] = brands[rng() % std::size(brands)];
            if (i % 5 != 0) f["model"] = std::int64_t{2000 + static_cast<int>(rng() % 20)};
            if (i % 6 != 0) f["price"] = static_cast<double>(rng() % 1000) / 4.0;
            if (i % 4 != 0) f["electric"] = (rng() % 2) == 0;
            if (i % 3 != 0) f["notes"] = std::string("note ") + brands[rng() % std::size(brands)];
            if (i % 2 != 0) f["built"] = format_timestamp(1600000000000 + static_cast<std::int64_t>(rng() % 5) * 86400000);
            f["vin"] = "VIN" + std::to_string(i);
            char id[8];
            std::snprintf(id, sizeof id, "R%03d", (i * 37) % 60);  // ids not in insertion order
            ASSERT_TRUE(insert_sync(*db_, cars_, car(id, f)).has_value());
        }
        query all;
        all.limit = 1000;
        auto pg = db_->list_sync(cars_, all);
        ASSERT_TRUE(pg.has_value());
        all_ = pg->items;
        ASSERT_EQ(all_.size(), 60u);
    }

    // The ids the store returns for `q` vs what matches() + record_less() + limit/offset give.
    void check(const query& q, const std::string& what) {
        auto pg = db_->list_sync(cars_, q);
        ASSERT_TRUE(pg.has_value()) << what << ": " << pg.error().detail;
        std::vector<json::object> expected;
        for (const auto& r : all_)
            if (matches(q.filters, r)) expected.push_back(r);
        std::sort(expected.begin(), expected.end(),
                  [&](const json::object& a, const json::object& b) { return record_less(q.ordering, a, b); });
        EXPECT_EQ(pg->count, static_cast<std::int64_t>(expected.size())) << what;
        std::vector<json::object> window;
        for (std::size_t i = q.offset; i < expected.size() && window.size() < q.limit; ++i)
            window.push_back(expected[i]);
        EXPECT_EQ(ids_of(pg->items), ids_of(window)) << what;
    }

    void check_params(const query_params& params) {
        std::string what;
        for (const auto& [k, v] : params) what += k + "=" + v + "&";
        auto q = parse_query_params(cars_, params);
        ASSERT_TRUE(q.has_value()) << what << ": " << q.error().detail;
        check(*q, what);
    }

    std::vector<json::object> all_;
};

TEST_F(query_test, every_lookup_matches_the_in_memory_semantics) {
    std::vector<query_params> cases = {
        {{"brand", "Ford"}, {"limit", "500"}},
        {{"brand__iexact", "ford"}, {"limit", "500"}},
        {{"brand__contains", "or"}, {"limit", "500"}},
        {{"brand__contains", ""}, {"limit", "500"}},
        {{"brand__icontains", "OR"}, {"limit", "500"}},
        {{"brand__icontains", "%_"}, {"limit", "500"}},
        {{"brand__icontains", "\\"}, {"limit", "500"}},
        {{"brand__icontains", "é"}, {"limit", "500"}},
        {{"brand__startswith", "F"}, {"limit", "500"}},
        {{"brand__startswith", "50%"}, {"limit", "500"}},
        {{"brand__istartswith", "f"}, {"limit", "500"}},
        {{"brand__istartswith", "50%_"}, {"limit", "500"}},
        {{"brand__endswith", "d"}, {"limit", "500"}},
        {{"brand__endswith", ""}, {"limit", "500"}},
        {{"brand__endswith", "LongerThanAnyBrand"}, {"limit", "500"}},
        {{"notes__endswith", "x"}, {"limit", "500"}},
        {{"model__gt", "2010"}, {"limit", "500"}},
        {{"model__gte", "2010"}, {"limit", "500"}},
        {{"model__lt", "2010"}, {"limit", "500"}},
        {{"model__lte", "2010"}, {"limit", "500"}},
        {{"price__gt", "100.5"}, {"limit", "500"}},
        {{"price__lte", "100"}, {"limit", "500"}},
        {{"model__in", "2001,2005,2019"}, {"limit", "500"}},
        {{"brand__in", "Kia,Fiat"}, {"limit", "500"}},
        {{"brand__isnull", "true"}, {"limit", "500"}},
        {{"brand__isnull", "false"}, {"limit", "500"}},
        {{"brand__ne", "Ford"}, {"limit", "500"}},
        {{"model__ne", "2010"}, {"limit", "500"}},
        {{"electric", "true"}, {"limit", "500"}},
        {{"electric", "false"}, {"limit", "500"}},
        {{"electric__ne", "true"}, {"limit", "500"}},
        {{"built__gte", "2020-09-14T00:00:00Z"}, {"limit", "500"}},
        {{"built__startswith", "2020-09-1"}, {"limit", "500"}},
        {{"id__gt", "R030"}, {"limit", "500"}},
        {{"owner", "u1"}, {"limit", "500"}},
        {{"version__lte", "1"}, {"limit", "500"}},
        {{"brand__icontains", "f"}, {"model__gte", "2005"}, {"electric", "true"}, {"limit", "500"}},
    };
    for (const auto& params : cases) check_params(params);
}

TEST_F(query_test, ordering_breaks_ties_by_id) {
    for (const char* ordering : {"brand", "-brand", "model,-price", "-electric,brand", "-model", "price",
                                 "built,-brand", "-id", "notes,model,price"})
        check_params({{"ordering", ordering}, {"limit", "500"}});

    auto q = parse_query_params(cars_, {{"ordering", "brand"}, {"limit", "500"}});
    auto pg = db_->list_sync(cars_, *q);
    ASSERT_TRUE(pg.has_value());
    // Nulls first ascending, then ids ascending within equal brands.
    EXPECT_TRUE(pg->items.front().at("brand").is_null());
    for (std::size_t i = 1; i < pg->items.size(); ++i) {
        const auto& a = pg->items[i - 1];
        const auto& b = pg->items[i];
        if (a.at("brand") == b.at("brand")) {
            EXPECT_LT(get_string(a, "id"), get_string(b, "id"));
        }
    }
}

TEST_F(query_test, limit_offset_and_count) {
    for (const auto& [limit, offset] : std::vector<std::pair<int, int>>{{10, 0}, {10, 55}, {7, 14}, {5, 60}, {5, 100}})
        check_params({{"ordering", "-model"}, {"limit", std::to_string(limit)}, {"offset", std::to_string(offset)}});

    query none;  // limit 0 (the parser refuses it, the store need not): only the count
    none.limit = 0;
    check(none, "limit=0");

    query q;
    q.filters.push_back({"model", lookup::gte, std::int64_t{2010}});
    q.limit = 3;
    auto pg = db_->list_sync(cars_, q);
    ASSERT_TRUE(pg.has_value());
    EXPECT_EQ(pg->items.size(), 3u);
    EXPECT_GT(pg->count, 3);
}

TEST_F(query_test, random_filters_agree_with_matches) {
    std::mt19937 rng(7);
    const char* fields[] = {"brand", "model", "price", "electric", "notes", "built", "vin", "id"};
    const char* text_ops[] = {"", "__iexact", "__contains", "__icontains", "__startswith", "__istartswith",
                              "__endswith", "__ne", "__gt", "__lt", "__isnull", "__in"};
    const char* num_ops[] = {"", "__ne", "__gt", "__gte", "__lt", "__lte", "__isnull", "__in"};
    const char* texts[] = {"F", "f", "or", "Ford", "kia", "%", "_", "", "note", "2020", "R01", "VIN1"};
    for (int n = 0; n < 300; ++n) {
        query_params params{{"limit", "500"}};
        int terms = 1 + static_cast<int>(rng() % 3);
        for (int k = 0; k < terms; ++k) {
            std::string field = fields[rng() % std::size(fields)];
            std::string value;
            std::string op;
            if (field == "model" || field == "price") {
                op = num_ops[rng() % std::size(num_ops)];
                value = field == "model" ? std::to_string(2000 + rng() % 20) : std::to_string(rng() % 250);
                if (op == "__in") value += "," + std::to_string(2000 + rng() % 20);
            } else if (field == "electric") {
                op = rng() % 2 ? "" : "__ne";
                value = rng() % 2 ? "true" : "false";
            } else {
                op = text_ops[rng() % std::size(text_ops)];
                value = texts[rng() % std::size(texts)];
                if (field == "built") {
                    if (op == "__iexact" || op == "__icontains" || op == "__istartswith" || op == "__contains" ||
                        op == "__startswith" || op == "__endswith")
                        value = "2020";
                    else
                        value = format_timestamp(1600000000000 + static_cast<std::int64_t>(rng() % 5) * 86400000);
                }
            }
            if (op == "__isnull") value = rng() % 2 ? "true" : "false";
            if ((field == "id" || field == "vin") && op != "__isnull" && op != "__in" && rng() % 2)
                op = "__gt";
            params.emplace_back(field + op, value);
        }
        if (rng() % 2) params.emplace_back("ordering", rng() % 2 ? "-price,brand" : "electric,-model");
        auto q = parse_query_params(cars_, params);
        if (!q) continue;  // e.g. a text lookup on a datetime value the parser refuses
        std::string what;
        for (const auto& [k, v] : params) what += k + "=" + v + "&";
        check(*q, what);
    }
}

TEST_F(sqlite_store_test, unique_violation_is_a_409_naming_the_field) {
    ASSERT_TRUE(insert_sync(*db_, cars_, car("01A", {{"vin", "V1"}})).has_value());
    auto dup = insert_sync(*db_, cars_, car("01B", {{"vin", "V1"}}));
    ASSERT_FALSE(dup.has_value());
    EXPECT_EQ(dup.error().status, 409);
    EXPECT_EQ(dup.error().detail, "A record with this vin already exists.");
    EXPECT_EQ(dup.error().extra.at("errors"),
              (json::object{{"vin", json::array{"A record with this vin already exists."}}}));

    auto dup_id = insert_sync(*db_, cars_, car("01A", {{"vin", "V2"}}));
    ASSERT_FALSE(dup_id.has_value());
    EXPECT_EQ(dup_id.error().status, 409);
    EXPECT_EQ(dup_id.error().detail, "A record with this id already exists.");

    // Updates conflict the same way; nulls never conflict.
    ASSERT_TRUE(insert_sync(*db_, cars_, car("01C", {{"vin", "V3"}})).has_value());
    auto u = db_->write_sync([&](write_txn& t) -> result<json::value> {
        if (auto r = t.update(cars_, car("01C", {{"vin", "V1"}})); !r) return std::move(r).error();
        return json::value(nullptr);
    });
    ASSERT_FALSE(u.has_value());
    EXPECT_EQ(u.error().status, 409);
    EXPECT_TRUE(insert_sync(*db_, cars_, car("01D")).has_value());
    EXPECT_TRUE(insert_sync(*db_, cars_, car("01E")).has_value());
}

// Holds the writer thread inside a write until release(), so later writes queue up and land
// in one group.
class writer_gate {
public:
    explicit writer_gate(store& s) {
        auto entered = std::make_shared<std::promise<void>>();
        auto entered_f = entered->get_future();
        s.write(
            [entered, released = released_.get_future().share()](write_txn&) -> result<json::value> {
                entered->set_value();
                released.wait();
                return json::value(nullptr);
            },
            [](result<json::value>) {});
        entered_f.wait();
    }
    void release() { released_.set_value(); }

private:
    std::promise<void> released_;
};

struct collected {
    std::mutex mu;
    std::condition_variable cv;
    std::map<int, result<json::value>> results;

    store::write_done slot(int i) {
        return [this, i](result<json::value> r) {
            std::lock_guard<std::mutex> lock(mu);
            results.emplace(i, std::move(r));
            cv.notify_all();
        };
    }
    void wait_for(std::size_t n) {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return results.size() >= n; });
    }
};

TEST_F(sqlite_store_test, one_failing_write_does_not_affect_its_group) {
    std::atomic<int> commits{0};
    db_->on_commit([&](std::int64_t) { ++commits; });
    writer_gate gate(*db_);
    collected out;
    auto ins = [&](json::object rec) {
        return [this, rec](write_txn& t) -> result<json::value> {
            if (auto r = t.insert(cars_, rec); !r) return std::move(r).error();
            return json::value(get_string(rec, "id"));
        };
    };
    db_->write(ins(car("01A", {{"vin", "V1"}})), out.slot(0));
    db_->write(ins(car("01B", {{"vin", "V1"}})), out.slot(1));  // unique violation
    db_->write(
        [this](write_txn& t) -> result<json::value> {  // inserts, then changes its mind
            if (auto r = t.insert(cars_, car("01X", {{"vin", "VX"}})); !r) return std::move(r).error();
            return problem::bad_request("changed my mind");
        },
        out.slot(2));
    db_->write([](write_txn&) -> result<json::value> { throw std::runtime_error("boom"); }, out.slot(3));
    db_->write(ins(car("01C", {{"vin", "V3"}})), out.slot(4));
    int before = commits.load();
    gate.release();
    out.wait_for(5);

    EXPECT_TRUE(out.results.at(0).has_value());
    ASSERT_FALSE(out.results.at(1).has_value());
    EXPECT_EQ(out.results.at(1).error().status, 409);
    ASSERT_FALSE(out.results.at(2).has_value());
    EXPECT_EQ(out.results.at(2).error().detail, "changed my mind");
    ASSERT_FALSE(out.results.at(3).has_value());
    EXPECT_EQ(out.results.at(3).error().status, 500);
    ASSERT_TRUE(out.results.at(4).has_value());

    auto all = db_->list_sync(cars_, query{});
    ASSERT_TRUE(all.has_value());
    EXPECT_EQ(ids_of(all->items), (std::vector<std::string>{"01A", "01C"}));
    auto log = changes_sync(*db_, 0);
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[0].id, "01A");
    EXPECT_EQ(log[1].id, "01C");
    EXPECT_EQ(log[1].seq, log[0].seq + 1);  // the rolled-back insert left no gap
    EXPECT_EQ(db_->last_seq(), log[1].seq);
    // The gate's group and the five writes' group: at most two commits with changes, the
    // gate's group had none. The listener runs after the completions: wait for it (bounded).
    for (int i = 0; i < 500 && commits.load() - before < 1; ++i)
        std::this_thread::sleep_for(std::chrono::milliseconds(2));
    EXPECT_EQ(commits.load() - before, 1);
}

// An update given its `before` writes without reading first; when the row is gone it answers
// 404 alone (on PostgreSQL the deferred UPDATE finds no row at commit, and the group runs again
// with each write confirmed).
TEST_F(sqlite_store_test, an_update_of_a_missing_row_fails_alone_in_its_group) {
    writer_gate gate(*db_);
    collected out;
    db_->write(
        [this](write_txn& t) -> result<json::value> {
            if (auto r = t.insert(cars_, car("01A", {{"vin", "V1"}})); !r) return std::move(r).error();
            return json::value(nullptr);
        },
        out.slot(0));
    db_->write(
        [this](write_txn& t) -> result<json::value> {
            const auto before = car("01Z", {{"vin", "VZ"}});
            if (auto r = t.update(cars_, car("01Z", {{"vin", "VZ2"}}), &before); !r) return std::move(r).error();
            return json::value(nullptr);
        },
        out.slot(1));
    db_->write(
        [this](write_txn& t) -> result<json::value> {
            if (auto r = t.insert(cars_, car("01B", {{"vin", "V2"}})); !r) return std::move(r).error();
            return json::value(nullptr);
        },
        out.slot(2));
    gate.release();
    out.wait_for(3);
    EXPECT_TRUE(out.results.at(0).has_value());
    ASSERT_FALSE(out.results.at(1).has_value());
    EXPECT_EQ(out.results.at(1).error().status, 404);
    EXPECT_TRUE(out.results.at(2).has_value());
    auto all = db_->list_sync(cars_, query{});
    ASSERT_TRUE(all.has_value());
    EXPECT_EQ(ids_of(all->items), (std::vector<std::string>{"01A", "01B"}));
    auto log = changes_sync(*db_, 0);
    ASSERT_EQ(log.size(), 2u);
    EXPECT_EQ(log[1].seq, log[0].seq + 1);
}

// A malformed page found while serving (the file was damaged after the open-time check, or the
// check is off) answers 503 storage-damaged, and stops every write of the store, also writes
// that would not touch the damaged table: nothing more is committed into a malformed file.
TEST_F(sqlite_store_test, damage_found_at_runtime_stops_every_write) {
    if (test::on_postgres()) GTEST_SKIP() << "SQLite files only";
    for (int i = 0; i < 300; ++i) {  // enough rows for the table to span several pages
        auto id = "01D" + std::to_string(1000 + i);
        ASSERT_TRUE(insert_sync(*db_, cars_, car(id, {{"vin", id}, {"notes", std::string(200, 'n')}})));
    }
    EXPECT_EQ(db_->condition(), "ok");
    const auto path = dir_.file("data/test.db");
    db_.reset();

    // The cars table's root page, overwritten with junk (the header and the schema stay intact).
    std::int64_t root = 0, page_size = 0;
    {
        sqlite3* raw = nullptr;
        ASSERT_EQ(sqlite3_open(path.c_str(), &raw), SQLITE_OK);
        sqlite3_stmt* st = nullptr;
        ASSERT_EQ(sqlite3_prepare_v2(raw, "SELECT rootpage FROM sqlite_schema WHERE name = 'c_cars'", -1, &st, nullptr),
                  SQLITE_OK);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        root = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        ASSERT_EQ(sqlite3_prepare_v2(raw, "PRAGMA page_size", -1, &st, nullptr), SQLITE_OK);
        ASSERT_EQ(sqlite3_step(st), SQLITE_ROW);
        page_size = sqlite3_column_int64(st, 0);
        sqlite3_finalize(st);
        ASSERT_EQ(sqlite3_exec(raw, "PRAGMA wal_checkpoint(TRUNCATE)", nullptr, nullptr, nullptr), SQLITE_OK);
        sqlite3_close(raw);
    }
    ASSERT_GT(root, 1);
    {
        std::fstream f(path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp((root - 1) * page_size);
        const std::string junk(static_cast<std::size_t>(page_size), '\xA5');
        f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    reopen();  // the open-time check is off by default

    auto listed = db_->list_sync(cars_, query{});
    ASSERT_FALSE(listed.has_value());
    EXPECT_EQ(listed.error().status, 503);
    EXPECT_EQ(listed.error().type, "/problems/storage-damaged");
    EXPECT_EQ(db_->condition(), "damaged");

    // A write that touches no table at all is refused too, and commits nothing.
    std::atomic<bool> ran{false};
    auto w = db_->write_sync([&](write_txn&) -> result<json::value> {
        ran = true;
        return json::value(true);
    });
    ASSERT_FALSE(w.has_value());
    EXPECT_EQ(w.error().status, 503);
    EXPECT_EQ(w.error().type, "/problems/storage-damaged");
    EXPECT_FALSE(ran.load());
}

// The writer never checkpoints the WAL itself (below 20,000 pages): the checkpointer thread
// copies it into the database file once it passes 1,000 pages, so the file grows while the
// store is open, not only when it closes.
TEST_F(sqlite_store_test, the_wal_is_checkpointed_off_the_writer) {
    if (test::on_postgres()) GTEST_SKIP() << "SQLite files only";
    const auto path = dir_.file("data/test.db");
    const auto before = std::filesystem::file_size(path);
    const std::string notes(2000, 'n');
    for (int batch = 0; batch < 30; ++batch) {  // ~3,000 rows of 2 KB, plus their change-log rows
        std::vector<json::object> rows;
        auto r = db_->write_sync([&](write_txn& t) -> result<json::value> {
            for (int i = 0; i < 100; ++i) {
                auto id = "01W" + std::to_string(100000 + batch * 100 + i);
                if (auto w = t.insert(cars_, car(id, {{"vin", id}, {"notes", notes}})); !w) return std::move(w).error();
            }
            return json::value(true);
        });
        ASSERT_TRUE(r) << r.error().detail;
    }
    // Checkpoints are asynchronous: wait for the file to take the rows (bounded).
    std::uintmax_t size = before;
    for (int i = 0; i < 500 && size < before + 4 * 1024 * 1024; ++i) {
        std::this_thread::sleep_for(std::chrono::milliseconds(10));
        size = std::filesystem::file_size(path);
    }
    EXPECT_GE(size, before + 4 * 1024 * 1024) << "the database file did not take the WAL's pages";
}

TEST_F(sqlite_store_test, change_log_records_every_mutation_in_order) {
    EXPECT_EQ(db_->last_seq(), 0);
    std::vector<std::int64_t> seen;
    std::mutex mu;
    db_->on_commit([&](std::int64_t seq) {
        std::lock_guard<std::mutex> lock(mu);
        seen.push_back(seq);
    });
    auto rec = car("01A", {{"brand", "Ford"}, {"price", 3}});
    ASSERT_TRUE(insert_sync(*db_, cars_, rec).has_value());
    auto upd = rec;
    upd["brand"] = "Kia";
    upd["version"] = 2;
    ASSERT_TRUE(db_->write_sync([&](write_txn& t) -> result<json::value> {
                       if (auto r = t.update(cars_, upd); !r) return std::move(r).error();
                       return json::value(nullptr);
                   }).has_value());
    ASSERT_TRUE(db_->write_sync([&](write_txn& t) -> result<json::value> {
                       if (auto r = t.remove(cars_, upd); !r) return std::move(r).error();
                       return json::value(nullptr);
                   }).has_value());
    // A write that changes nothing commits nothing to the log and does not notify.
    ASSERT_TRUE(db_->write_sync([](write_txn&) -> result<json::value> { return json::value(1); }).has_value());

    auto log = changes_sync(*db_, 0);
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log[0].op, "create");
    EXPECT_EQ(log[1].op, "update");
    EXPECT_EQ(log[2].op, "delete");
    for (std::size_t i = 0; i < log.size(); ++i) {
        EXPECT_EQ(log[i].seq, static_cast<std::int64_t>(i + 1));
        EXPECT_EQ(log[i].collection, "cars");
        EXPECT_EQ(log[i].id, "01A");
        EXPECT_GT(log[i].ts, 0);
    }
    EXPECT_EQ(get_string(log[0].record, "brand"), "Ford");
    EXPECT_TRUE(log[0].record.at("price").is_double());  // the stored form
    EXPECT_EQ(log[0].record.size(), 5u + cars_.fields.size());  // every field, absent ones null
    EXPECT_EQ(get_string(log[1].record, "brand"), "Kia");
    EXPECT_EQ(get_string(log[2].record, "brand"), "Kia");
    EXPECT_EQ(db_->last_seq(), 3);
    {
        std::lock_guard<std::mutex> lock(mu);
        EXPECT_EQ(seen, (std::vector<std::int64_t>{1, 2, 3}));
    }

    auto tail = changes_sync(*db_, 1, 1);
    ASSERT_EQ(tail.size(), 1u);
    EXPECT_EQ(tail[0].seq, 2);

    // last_seq survives a reopen.
    reopen();
    EXPECT_EQ(db_->last_seq(), 3);
    ASSERT_TRUE(insert_sync(*db_, cars_, car("01B")).has_value());
    EXPECT_EQ(db_->last_seq(), 4);
}

TEST_F(sqlite_store_test, concurrent_writers_all_commit_in_order) {
    constexpr int k_threads = 8;
    constexpr int k_per_thread = 500;
    std::atomic<int> ok{0}, failed{0};
    std::mutex mu;
    std::condition_variable cv;
    int finished = 0;
    std::vector<std::thread> threads;
    for (int t = 0; t < k_threads; ++t) {
        threads.emplace_back([&, t] {
            for (int i = 0; i < k_per_thread; ++i) {
                auto rec = car(make_ulid(), {{"vin", "T" + std::to_string(t) + "-" + std::to_string(i)}});
                db_->write(
                    [this, rec](write_txn& w) -> result<json::value> {
                        if (auto r = w.insert(cars_, rec); !r) return std::move(r).error();
                        return json::value(nullptr);
                    },
                    [&](result<json::value> r) {
                        (r ? ok : failed)++;
                        std::lock_guard<std::mutex> lock(mu);
                        ++finished;
                        cv.notify_all();
                    });
            }
        });
    }
    for (auto& th : threads) th.join();
    {
        std::unique_lock<std::mutex> lock(mu);
        cv.wait(lock, [&] { return finished == k_threads * k_per_thread; });
    }
    EXPECT_EQ(ok.load(), k_threads * k_per_thread);
    EXPECT_EQ(failed.load(), 0);
    EXPECT_EQ(db_->last_seq(), k_threads * k_per_thread);
    auto log = changes_sync(*db_, 0);
    ASSERT_EQ(log.size(), static_cast<std::size_t>(k_threads * k_per_thread));
    for (std::size_t i = 0; i < log.size(); ++i) EXPECT_EQ(log[i].seq, static_cast<std::int64_t>(i + 1));
    query q;
    q.limit = 1;
    EXPECT_EQ(db_->list_sync(cars_, q)->count, k_threads * k_per_thread);
}

TEST_F(sqlite_store_test, concurrent_readers_see_consistent_snapshots) {
    std::atomic<bool> stop{false};
    std::atomic<int> bad{0};
    std::thread reader([&] {
        while (!stop) {
            std::promise<void> p;
            db_->read([&](read_txn& t) {
                query q;
                q.limit = 100000;
                auto pg = t.list(cars_, q);
                auto log = t.changes_after(0, 100000);
                if (!pg || !log || pg->count != static_cast<std::int64_t>(pg->items.size()) ||
                    log->size() != pg->items.size())
                    ++bad;
                p.set_value();
            });
            p.get_future().wait();
        }
    });
    for (int i = 0; i < 200; ++i) ASSERT_TRUE(insert_sync(*db_, cars_, car(make_ulid())).has_value());
    stop = true;
    reader.join();
    EXPECT_EQ(bad.load(), 0);
}

TEST_F(sqlite_store_test, close_finishes_queued_work_then_refuses) {
    constexpr int k_writes = 2000;
    std::atomic<int> ok{0};
    {
        writer_gate gate(*db_);
        for (int i = 0; i < k_writes; ++i) {
            auto rec = car(make_ulid());
            db_->write(
                [this, rec](write_txn& t) -> result<json::value> {
                    if (auto r = t.insert(cars_, rec); !r) return std::move(r).error();
                    return json::value(nullptr);
                },
                [&](result<json::value> r) {
                    if (r) ++ok;
                });
        }
        std::thread releaser([&] {
            std::this_thread::sleep_for(std::chrono::milliseconds(50));
            gate.release();
        });
        db_->close();  // waits for the queued writes
        releaser.join();
    }
    EXPECT_EQ(ok.load(), k_writes);
    db_->close();  // idempotent

    auto late = db_->write_sync([](write_txn&) -> result<json::value> { return json::value(nullptr); });
    ASSERT_FALSE(late.has_value());
    EXPECT_EQ(late.error().status, 503);
    auto late_read = db_->get_sync(cars_, "x");
    ASSERT_FALSE(late_read.has_value());
    EXPECT_EQ(late_read.error().status, 503);

    reopen();
    query q;
    q.limit = 1;
    EXPECT_EQ(db_->list_sync(cars_, q)->count, k_writes);
    EXPECT_EQ(db_->last_seq(), k_writes);
}

TEST_F(sqlite_store_test, small_batches_still_commit_everything) {
    reopen(/*max_batch=*/3);
    collected out;
    {
        writer_gate gate(*db_);
        for (int i = 0; i < 20; ++i) {
            auto rec = car("R" + std::to_string(100 + i));
            db_->write(
                [this, rec](write_txn& t) -> result<json::value> {
                    if (auto r = t.insert(cars_, rec); !r) return std::move(r).error();
                    return json::value(nullptr);
                },
                out.slot(i));
        }
        gate.release();
    }
    out.wait_for(20);
    for (auto& [i, r] : out.results) EXPECT_TRUE(r.has_value()) << i;
    EXPECT_EQ(db_->last_seq(), 20);
}

// ---------------------------------------------------------------- migrations

collection_def v1() {
    collection_def c;
    c.name = "items";
    c.fields.push_back(make_field("name", field_type::string));
    c.fields.push_back(make_field("qty", field_type::integer));
    c.fields.push_back(make_field("old", field_type::string));
    EXPECT_EQ(finalize(c), "");
    return c;
}

class migration_test : public ::testing::Test {
protected:
    void SetUp() override {
        db_ = open_or_die(dir_.file("m.db"));
        ASSERT_TRUE(db_);
    }
    void reopen() {
        db_.reset();
        db_ = open_or_die(dir_.file("m.db"));
        ASSERT_TRUE(db_);
    }
    temp_dir dir_;
    std::unique_ptr<store> db_;
};

TEST_F(migration_test, creates_tables_and_indexes_once) {
    auto c = v1();
    c.fields[0].unique = true;
    c.indexes = {{"qty", "created"}};
    auto dry = db_->migrate({&c}, false, true);
    ASSERT_TRUE(dry.has_value());
    EXPECT_EQ(dry->steps, (std::vector<std::string>{"create table items",
                                                    "create unique index u_items_name on items (name)",
                                                    "create index i_items_0 on items (qty, created)"}));
    // dry_run changed nothing.
    auto again = db_->migrate({&c}, false, true);
    ASSERT_TRUE(again.has_value());
    EXPECT_EQ(again->steps.size(), 3u);

    auto done = db_->migrate({&c}, false, false);
    ASSERT_TRUE(done.has_value());
    EXPECT_EQ(done->steps.size(), 3u);
    reopen();
    auto noop = db_->migrate({&c}, false, false);
    ASSERT_TRUE(noop.has_value());
    EXPECT_TRUE(noop->steps.empty());
    EXPECT_TRUE(noop->destructive.empty());
}

TEST_F(migration_test, added_field_reads_null_on_old_rows) {
    auto c = v1();
    ASSERT_TRUE(db_->migrate({&c}, false, false).has_value());
    ASSERT_TRUE(insert_sync(*db_, c, car("01A", {{"name", "a"}, {"qty", 3}})).has_value());

    reopen();
    auto c2 = v1();
    c2.fields.push_back(make_field("color", field_type::string));
    auto extra = make_field("tag", field_type::string);
    extra.unique = true;
    c2.fields.push_back(extra);
    ASSERT_EQ(finalize(c2), "");
    auto plan = db_->migrate({&c2}, false, false);
    ASSERT_TRUE(plan.has_value()) << plan.error().detail;
    EXPECT_EQ(plan->steps, (std::vector<std::string>{"add field items.color (string)", "add field items.tag (string)",
                                                     "create unique index u_items_tag on items (tag)"}));
    EXPECT_TRUE(plan->destructive.empty());

    auto got = db_->get_sync(c2, "01A");
    ASSERT_TRUE(got.has_value() && got->has_value());
    EXPECT_EQ((**got).at("name"), json::value("a"));
    EXPECT_TRUE((**got).at("color").is_null());
    ASSERT_TRUE(insert_sync(*db_, c2, car("01B", {{"color", "red"}, {"tag", "t"}})).has_value());
    EXPECT_EQ(insert_sync(*db_, c2, car("01C", {{"tag", "t"}})).error().status, 409);
}

TEST_F(migration_test, retype_and_drop_need_allow_destructive) {
    auto c = v1();
    ASSERT_TRUE(db_->migrate({&c}, false, false).has_value());
    ASSERT_TRUE(insert_sync(*db_, c, car("01A", {{"name", "a"}, {"qty", 3}, {"old", "x"}})).has_value());

    auto c2 = v1();
    c2.fields[1].type = field_type::string;  // qty: integer -> string
    c2.fields[0].type = field_type::text;    // name: string -> text keeps data
    c2.fields.pop_back();                    // old: dropped
    c2.indexes = {};
    ASSERT_EQ(finalize(c2), "");

    auto refused = db_->migrate({&c2}, false, false);
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().status, 409);
    EXPECT_NE(refused.error().detail.find("retype field items.qty from integer to string"), std::string::npos);
    EXPECT_NE(refused.error().detail.find("drop field items.old"), std::string::npos);
    ASSERT_TRUE(refused.error().extra.at("destructive").is_array());
    EXPECT_EQ(refused.error().extra.at("destructive").get_array().size(), 2u);
    // Nothing was applied: the old definition still works.
    EXPECT_EQ((**db_->get_sync(c, "01A")).at("qty"), json::value(3));

    auto dry = db_->migrate({&c2}, false, true);  // a plan, not a refusal
    ASSERT_TRUE(dry.has_value());
    EXPECT_EQ(dry->destructive.size(), 2u);
    EXPECT_EQ(dry->steps, (std::vector<std::string>{"retype field items.name from string to text (data kept)"}));

    auto allowed = db_->migrate({&c2}, true, false);
    ASSERT_TRUE(allowed.has_value()) << allowed.error().detail;
    auto got = db_->get_sync(c2, "01A");
    ASSERT_TRUE(got.has_value() && got->has_value());
    EXPECT_EQ((**got).at("name"), json::value("a"));
    EXPECT_TRUE((**got).at("qty").is_null());  // retyped: data dropped
    EXPECT_FALSE((**got).contains("old"));
    ASSERT_TRUE(insert_sync(*db_, c2, car("01B", {{"qty", "three"}})).has_value());

    reopen();
    auto noop = db_->migrate({&c2}, false, false);
    ASSERT_TRUE(noop.has_value());
    EXPECT_TRUE(noop->steps.empty());
    EXPECT_TRUE(noop->destructive.empty());
}

TEST_F(migration_test, retyping_an_indexed_field_rebuilds_its_indexes) {
    auto c = v1();
    c.fields[1].unique = true;
    c.indexes = {{"qty", "name"}};
    ASSERT_EQ(finalize(c), "");
    ASSERT_TRUE(db_->migrate({&c}, false, false).has_value());
    ASSERT_TRUE(insert_sync(*db_, c, car("01A", {{"qty", 1}})).has_value());

    auto c2 = c;
    c2.fields[1].type = field_type::number;
    auto plan = db_->migrate({&c2}, true, false);
    ASSERT_TRUE(plan.has_value()) << plan.error().detail;
    ASSERT_TRUE(insert_sync(*db_, c2, car("01B", {{"qty", 1.5}})).has_value());
    EXPECT_EQ(insert_sync(*db_, c2, car("01C", {{"qty", 1.5}})).error().status, 409);  // still unique

    // Dropping the declared index is destructive too.
    auto c3 = c2;
    c3.indexes = {};
    auto refused = db_->migrate({&c3}, false, false);
    ASSERT_FALSE(refused.has_value());
    EXPECT_NE(refused.error().detail.find("drop index i_items_0"), std::string::npos);
    ASSERT_TRUE(db_->migrate({&c3}, true, false).has_value());
}

TEST_F(migration_test, making_a_field_unique_over_duplicates_is_refused) {
    auto c = v1();
    ASSERT_TRUE(db_->migrate({&c}, false, false).has_value());
    ASSERT_TRUE(insert_sync(*db_, c, car("01A", {{"name", "same"}})).has_value());
    ASSERT_TRUE(insert_sync(*db_, c, car("01B", {{"name", "same"}})).has_value());
    auto c2 = c;
    c2.fields[0].unique = true;
    auto r = db_->migrate({&c2}, false, false);
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().status, 409);
}

}  // namespace
}  // namespace livebase
