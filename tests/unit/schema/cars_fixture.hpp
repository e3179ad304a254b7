#pragma once
/// The schema tests name the shared cars (support/cars.hpp) as schema_test::.
#include "support/cars.hpp"

namespace livebase::schema_test {
using test::cars;
using test::cars_def;
using test::make_field;
}  // namespace livebase::schema_test
