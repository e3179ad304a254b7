// The pipeline without any door: operations in, outcomes out, on a real SQLite store.
#include "support/cars.hpp"
#include "support/test_backend.hpp"
#include <livebase/api/api.hpp>
#include <livebase/schema/validate.hpp>

#include <gtest/gtest.h>

#include <filesystem>
#include <future>
#include <random>

using namespace livebase;

namespace {

class api_test : public ::testing::Test {
protected:
    void SetUp() override {
        std::random_device rd;
        dir_ = std::filesystem::temp_directory_path() / ("livebase-api-" + std::to_string(rd()));
        std::filesystem::create_directories(dir_);
        auto cars = test::small_cars();
        cars.owned = true;
        ASSERT_EQ(finalize(cars), "");
        reg_.add_collection(cars);
        LIVEBASE_REQUIRE_BACKEND();
        auto s = open_store(test::storage_url((dir_ / "api.db").string()));
        ASSERT_TRUE(s);
        db_ = std::move(s).value();
        ASSERT_TRUE(db_->migrate(reg_.collections(), false, false));
        api_ = std::make_unique<api>(reg_, *db_, log_, "/v1");
    }
    void TearDown() override {
        api_.reset();
        db_->close();
        std::filesystem::remove_all(dir_);
    }
    outcome run(op_kind kind, std::string id = {}, json::value input = nullptr, query_params params = {}) {
        operation op;
        op.kind = kind;
        op.collection = "cars";
        op.id = std::move(id);
        op.input = std::move(input);
        op.params = std::move(params);
        op.path = "/v1/cars";
        op.who.user_id = "u1";
        return api_->execute_sync(std::move(op));
    }

    std::filesystem::path dir_;
    logger log_{nullptr};
    registry reg_;
    std::unique_ptr<store> db_;
    std::unique_ptr<api> api_;
};

TEST_F(api_test, create_sets_managed_fields_owner_and_location) {
    auto o = run(op_kind::create, {}, json::object{{"brand", "Ford"}, {"model", 2000}});
    ASSERT_EQ(o.status, 201) << json::serialize(o.body);
    auto& rec = o.body.as_object();
    EXPECT_EQ(rec.at("owner"), "u1");
    EXPECT_EQ(o.version, 1);
    EXPECT_EQ(o.location, "/v1/cars/" + std::string(rec.at("id").as_string()));
}

TEST_F(api_test, every_write_appends_to_the_change_log) {
    auto created = run(op_kind::create, {}, json::object{{"brand", "Ford"}});
    auto id = std::string(created.body.as_object().at("id").as_string());
    EXPECT_EQ(run(op_kind::patch, id, json::object{{"model", 2001}}).status, 200);
    EXPECT_EQ(run(op_kind::remove, id).status, 204);
    std::promise<std::vector<change>> p;
    db_->read([&](read_txn& t) { p.set_value(t.changes_after(0, 100).value()); });
    auto log = p.get_future().get();
    ASSERT_EQ(log.size(), 3u);
    EXPECT_EQ(log[0].op, "create");
    EXPECT_EQ(log[1].op, "update");
    EXPECT_EQ(log[1].record.at("model"), 2001);
    EXPECT_EQ(log[2].op, "delete");
    EXPECT_EQ(log[2].id, id);
    EXPECT_LT(log[0].seq, log[1].seq);
    EXPECT_EQ(db_->last_seq(), log[2].seq);
}

TEST_F(api_test, unknown_collection_and_missing_body) {
    operation op;
    op.collection = "boats";
    EXPECT_EQ(api_->execute_sync(op).status, 404);
    EXPECT_EQ(run(op_kind::create).status, 400);
    EXPECT_EQ(run(op_kind::create, {}, json::array{1}).status, 400);
    EXPECT_EQ(run(op_kind::retrieve, "nope").status, 404);
}

TEST_F(api_test, list_pages_link_with_the_base_path) {
    for (int i = 0; i < 5; ++i) run(op_kind::create, {}, json::object{{"brand", "B"}, {"model", i}});
    auto o = run(op_kind::list, {}, nullptr, {{"limit", "2"}, {"ordering", "model"}});
    ASSERT_EQ(o.status, 200);
    auto& page = o.body.as_object();
    EXPECT_EQ(page.at("count"), 5);
    EXPECT_EQ(page.at("next"), "/v1/cars?ordering=model&limit=2&offset=2");
    EXPECT_EQ(page.at("results").as_array().at(1).at("model"), 1);
}

TEST_F(api_test, action_without_handler_is_an_internal_error_not_a_crash) {
    action_def a;
    a.name = "ghost";
    reg_.find_mutable("cars")->actions["ghost"] = a;
    operation op;
    op.kind = op_kind::action;
    op.collection = "cars";
    op.action = "ghost";
    op.method = "POST";
    op.who.user_id = "u1";  // actions need a user by default
    EXPECT_EQ(api_->execute_sync(op).status, 500);
}

}  // namespace
