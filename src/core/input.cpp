#include <livebase/core/input.hpp>

namespace livebase {

result<const json::value*> input_reader::find(std::string_view name) const {
    if (body_.is_null()) return static_cast<const json::value*>(nullptr);
    if (!body_.is_object()) return problem::bad_request("A JSON object body is required.");
    const auto& o = body_.get_object();
    auto it = o.find(name);
    return it == o.end() ? nullptr : &it->value();
}

problem input_reader::missing(std::string_view name) {
    return problem::validation({{std::string(name), {"This field is required."}}});
}

problem input_reader::wrong_type(std::string_view name, std::string_view expected) {
    return problem::validation({{std::string(name), {"Must be " + std::string(expected) + "."}}});
}

}  // namespace livebase
