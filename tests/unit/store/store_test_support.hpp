#pragma once
// Shared helpers of the store tests: a temporary directory and a sample collection.
#include <livebase/schema/collection.hpp>
#include <livebase/store/store.hpp>

#include <gtest/gtest.h>

#include "support/cars.hpp"
#include "support/temp_dir.hpp"
#include "support/test_backend.hpp"

#include <atomic>
#include <chrono>
#include <filesystem>
#include <random>
#include <string>

namespace livebase::test {

/// cars: one field of every type, an owned collection, a unique vin and a composite index.
inline collection_def typed_cars() {
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
