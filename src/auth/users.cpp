// The built-in `users` and `auth_tokens` collections (http.md section 5).
#include <livebase/auth/auth.hpp>

#include <utility>

namespace livebase {

namespace {

collection_def build_users_collection() {
    collection_def c;
    c.name = "users";
    c.built_in = true;
    c.owned = false;
    auto username = make_field("username", field_type::string, /*required=*/true, /*unique=*/true);
    username.min_length = 1;
    username.max_length = 150;
    username.pattern = "^[A-Za-z0-9_.@+-]+$";
    auto admin = make_field("admin", field_type::boolean);
    admin.default_value = json::value(false);
    auto disabled = make_field("disabled", field_type::boolean);
    disabled.default_value = json::value(false);
    auto password_hash = make_field("password_hash", field_type::string);
    password_hash.write_only = true;
    c.fields = {std::move(username), std::move(admin), std::move(disabled), std::move(password_hash)};
    for (const char* action : {"list", "retrieve", "create", "update", "delete"})
        c.rules[action] = access_rule::admin;
    auto msg = finalize(c);
    (void)msg;  // a fixed definition: checked by the unit tests
    // Server-only: never accepted from a client (a replace or patch keeps the stored hash) and
    // never returned. finalize() refuses read_only together with write_only for declared
    // collections, where the pair would make a field nobody can ever set; here the
    // authenticator sets it, so it is applied after the checks.
    c.fields[3].read_only = true;
    return c;
}

collection_def build_tokens_collection() {
    collection_def c;
    c.name = "auth_tokens";
    c.built_in = true;
    c.owned = false;
    c.fields = {make_field("token_hash", field_type::string, /*required=*/true, /*unique=*/true),
                make_field("user", field_type::string, /*required=*/true), make_field("expires", field_type::integer)};
    // By user: a password change or a disable deletes all of a user's tokens. By expiry: the
    // authenticator purges expired rows.
    c.indexes = {{"user"}, {"expires"}};
    for (const char* action : {"list", "retrieve", "create", "update", "delete"})
        c.rules[action] = access_rule::nobody;
    auto msg = finalize(c);
    (void)msg;  // a fixed definition: checked by the unit tests
    return c;
}

}  // namespace

const collection_def& users_collection() {
    static const collection_def def = build_users_collection();
    return def;
}

const collection_def& tokens_collection() {
    static const collection_def def = build_tokens_collection();
    return def;
}

}  // namespace livebase
