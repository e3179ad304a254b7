#pragma once
/// RFC 9457 problem details: the only error type that reaches a client.
#include <livebase/core/json.hpp>

#include <map>
#include <string>
#include <vector>

namespace livebase {

/// Field name -> human-readable messages ("This field is required.").
using field_errors = std::map<std::string, std::vector<std::string>>;

/// An error destined for a client. Value type; cheap to move.
struct problem {
    int status = 500;
    std::string type;    ///< e.g. "/problems/validation"; empty means "about:blank"
    std::string title;   ///< short, stable per type
    std::string detail;  ///< this occurrence
    json::object extra;  ///< extension members, e.g. "errors" or "parameter"

    /// The problem+json body.
    json::object to_json() const;

    /// A problem of any type (for types without a factory below).
    static problem make(int status, std::string type, std::string title, std::string detail);
    static problem bad_request(std::string detail);
    /// 400 naming a query parameter (extension member "parameter").
    static problem bad_parameter(std::string parameter, std::string detail);
    static problem malformed_json(std::string detail = "The body is not valid JSON.");
    static problem validation(field_errors errors);
    static problem unauthorized(std::string detail = "Authentication credentials were not provided.");
    static problem forbidden(std::string detail = "You do not have permission to perform this action.");
    static problem not_found(std::string detail = "Not found.");
    static problem method_not_allowed(std::string detail = "Method not allowed.");
    static problem conflict(std::string detail);
    static problem gone(std::string detail);
    static problem precondition_failed(std::string detail = "The resource's version does not match.");
    static problem payload_too_large(std::string detail = "The body is over the size limit.");
    static problem unsupported_media_type(std::string detail = "The body must be application/json.");
    static problem unprocessable(std::string detail);
    static problem too_many_requests(std::string detail = "Request was throttled.");
    static problem internal(std::string detail = "Internal server error.");
    /// 503 with the extension member retry_after = 1 (answered as Retry-After: 1 too).
    static problem unavailable(std::string detail = "The server is not available.");
};

}  // namespace livebase
