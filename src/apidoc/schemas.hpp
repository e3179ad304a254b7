#pragma once
// The JSON Schemas and references both documents share (schemas.cpp). Policy only: no I/O.
#include <livebase/core/json.hpp>
#include <livebase/schema/collection.hpp>

#include <initializer_list>
#include <string>
#include <string_view>

namespace livebase::apidoc {

/// The `info.version` of both documents.
inline constexpr std::string_view k_api_version = "1";

/// Collections that never appear in the documents (the server never serves them) and fields
/// that never do (neither accepted nor returned, like users.password_hash).
bool hidden_from_schema(const collection_def& c) noexcept;
bool hidden_from_schema(const field_def& f) noexcept;

/// {"$ref": "#/components/<kind>/<name>"}, and the same for kind "schemas".
json::object ref_to(std::string_view kind, std::string_view name);
json::object schema_ref(std::string_view name);

/// A JSON array of strings.
json::array strings(std::initializer_list<std::string_view> items);

/// The record as the server returns it.
json::object record_schema(const collection_def& c);

/// A create/replace body (`full`) or a merge patch. Unknown fields are refused (400).
json::object input_schema(const collection_def& c, bool full);

/// `field` and `field__lookup` keys of a list's filters (REST query parameters, or the
/// WebSocket `filter` object, where `in` also takes an array).
json::object filter_schema(const collection_def& c);

/// The names a list may be ordered by, comma-separated.
std::string orderable_list(const collection_def& c);

/// A page of a list: count, next, previous and results of `item_ref`.
json::object page_schema(std::string_view item_ref);

/// The built-in resources: a task, an RFC 9457 problem, a user, login credentials.
json::object task_schema();
json::object problem_schema();
json::object user_schema();
json::object credentials_schema();

}  // namespace livebase::apidoc
