#pragma once
/// Validation of client-supplied record bodies against a collection_def.
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>

namespace livebase {

enum class write_mode { create, replace, patch };

/// Validates a client body and returns the declared-field values to store.
///
/// - create: every declared, non-read_only field from `body`, defaults applied for absent ones;
///   `required` fields must be present (or defaulted).
/// - replace: like create, but `existing` supplies nothing (full replace of declared fields).
/// - patch: `body` is an RFC 7396 merge patch applied to `existing`'s declared fields
///   (null deletes = sets to null / default-less absent), then the result validated.
///
/// Server-managed fields (id, created, updated, version, owner) and read_only fields in `body`
/// are ignored. Unknown fields -> 400 validation problem naming them ("Unknown field.").
/// Type errors: "Must be an integer." / "Must be a number." / "Must be a string." /
/// "Must be a boolean." / "Must be a valid RFC 3339 datetime." etc. Datetimes are normalized to
/// format_timestamp(). Returns problem::validation(errors) when any field is invalid.
/// REQUIRES: `c` finalized; `existing` non-null for patch (the stored record, any shape).
result<json::object> validate_write(const collection_def& c, const json::object& body,
                                    write_mode mode, const json::object* existing = nullptr);

/// Validates/coerces one value for field `f` (used by validate_write and by query parsing of
/// JSON filters). On error appends messages to `errors` and returns nullopt.
std::optional<json::value> validate_field_value(const field_def& f, const json::value& v,
                                                std::vector<std::string>& errors);

/// The record as clients see it: write_only fields removed; field order: id, then declared,
/// then created, updated, version, owner. `fields` (if non-empty) keeps only those (+ id).
json::object present_record(const collection_def& c, const json::object& stored,
                            const std::vector<std::string>& fields = {});

}  // namespace livebase
