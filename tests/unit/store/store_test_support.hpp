#pragma once
// Shared helpers of the store tests: a temporary directory and a sample collection.
#include <livebase/schema/collection.hpp>
#include <livebase/store/store.hpp>

#include <gtest/gtest.h>

#include "support/test_backend.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>

namespace livebase::test {

/// A fresh directory under the system temp dir, removed with its contents on destruction.
class temp_dir {
public:
    temp_dir() {
        static std::atomic<int> counter{0};
        std::random_device rd;
        auto name = "livebase-store-" + std::to_string(rd()) + "-" + std::to_string(counter++) + "-" +
                    std::to_string(std::chrono::steady_clock::now().time_since_epoch().count());
        path_ = std::filesystem::temp_directory_path() / name;
        std::filesystem::create_directories(path_);
    }
    ~temp_dir() {
        std::error_code ec;
        std::filesystem::remove_all(path_, ec);
    }
    temp_dir(const temp_dir&) = delete;
    temp_dir& operator=(const temp_dir&) = delete;

    const std::filesystem::path& path() const { return path_; }
    std::string file(const std::string& name) const { return (path_ / name).string(); }

private:
    std::filesystem::path path_;
};

inline field_def make_field(std::string name, field_type t) {
    field_def f;
    f.name = std::move(name);
    f.type = t;
    return f;
}

/// cars: one field of every type, an owned collection, a unique vin and a composite index.
inline collection_def cars_def() {
    collection_def c;
    c.name = "cars";
    c.owned = true;
    c.fields.push_back(make_field("brand", field_type::string));
    auto vin = make_field("vin", field_type::string);
    vin.unique = true;
    c.fields.push_back(vin);
    c.fields.push_back(make_field("model", field_type::integer));
    c.fields.push_back(make_field("price", field_type::number));
    c.fields.push_back(make_field("electric", field_type::boolean));
    c.fields.push_back(make_field("notes", field_type::text));
    c.fields.push_back(make_field("built", field_type::datetime));
    c.fields.push_back(make_field("extra", field_type::json));
    auto maker = make_field("maker", field_type::ref);
    maker.ref_to = "makers";
    c.fields.push_back(maker);
    c.indexes = {{"brand", "model"}};
    auto msg = finalize(c);
    EXPECT_EQ(msg, "");
    return c;
}

/// The test's store: the SQLite file `path`, or (LIVEBASE_TEST_BACKEND=postgres) the schema of
/// the test PostgreSQL server named after it (support/test_backend.hpp).
inline std::unique_ptr<store> open_or_die(const std::string& path, std::size_t max_batch = 256) {
    result<std::unique_ptr<store>> s = problem::internal();
    if (on_postgres()) {
        postgres_options o;
        o.url = storage_url(path);
        o.max_batch = max_batch;
        o.readers = 2;
        s = open_postgres_store(o);
    } else {
        sqlite_options o;
        o.path = path;
        o.max_batch = max_batch;
        s = open_sqlite_store(o);
    }
    if (!s) ADD_FAILURE() << "open failed: " << s.error().detail;
    return s ? std::move(s).value() : nullptr;
}

inline void migrate_or_die(store& s, const collection_def& c) {
    auto plan = s.migrate({&c}, false, false);
    ASSERT_TRUE(plan.has_value()) << plan.error().detail;
}

}  // namespace livebase::test
