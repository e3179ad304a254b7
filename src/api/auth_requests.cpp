// The auth operations (http.md section 5): login, logout, me, register. The doors turn
// /api/auth/<action> (REST) and the `auth` stream (WebSocket) into operations on the
// collection "auth"; credentials themselves are resolved by the doors (operation::who).
#include "api/auth_requests.hpp"

#include <livebase/api/api.hpp>
#include <livebase/auth/auth.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/text.hpp>

namespace livebase {

namespace {

struct credentials {
    std::string username;
    std::string password;
};

// {"username": "...", "password": "..."}: both strings, else 400 naming the fields.
result<credentials> read_credentials(const operation& op) {
    if (!op.input.is_object()) return problem::bad_request("A JSON object body is required.");
    const auto& body = op.input.get_object();
    field_errors errors;
    credentials out;
    for (auto [name, dest] :
         {std::pair{"username", &out.username}, std::pair{"password", &out.password}}) {
        auto it = body.find(name);
        if (it == body.end() || it->value().is_null())
            errors[name].push_back("This field is required.");
        else if (!it->value().is_string())
            errors[name].push_back("Must be a string.");
        else
            *dest = std::string(it->value().get_string());
    }
    if (!errors.empty()) return problem::validation(std::move(errors));
    return out;
}

outcome wrong_method(std::string_view allow) {
    auto o = outcome::from_problem(problem::method_not_allowed());
    o.headers.emplace_back("Allow", std::string(allow));
    return o;
}

// 429 with Retry-After (retry_after_seconds: never 0, the client must wait).
outcome throttled(std::chrono::milliseconds wait) {
    auto seconds = retry_after_seconds(wait);
    auto o =
        outcome::from_problem(problem::too_many_requests("Too many attempts. Try again later."));
    o.headers.emplace_back("Retry-After", std::to_string(seconds));
    return o;
}

}  // namespace

void auth_requests::execute(operation op, done_fn done) {
    if (!auth_ || op.kind != op_kind::action || !op.id.empty())
        return done(outcome::from_problem(problem::not_found()));
    const auto& action = op.action;
    std::string_view method = action == "me" ? "GET" : "POST";
    if (action != "login" && action != "logout" && action != "me" && action != "register")
        return done(
            outcome::from_problem(problem::not_found("Unknown action \"" + action + "\".")));
    if (action == "register" && !signup_) return done(outcome::from_problem(problem::not_found()));
    if (op.method != method) return done(wrong_method(method));

    if (action == "me") {
        return auth_->me(op.who, [done = std::move(done)](result<json::object> r) {
            if (!r) return done(outcome::from_problem(r.error()));
            done(outcome::json_body(200, std::move(r).value()));
        });
    }
    if (action == "logout") {
        // Only a token can be revoked: an anonymous caller, or an identity rebuilt from a user
        // id, has nothing to log out of.
        if (op.who.token_id.empty()) return done(outcome::from_problem(problem::unauthorized()));
        return auth_->revoke(op.who.token_id, [done = std::move(done)](result<void> r) {
            if (!r) return done(outcome::from_problem(r.error()));
            outcome o;
            o.status = 204;
            done(std::move(o));
        });
    }

    auto creds = read_credentials(op);
    if (!creds) return done(outcome::from_problem(creds.error()));
    // Brute-force protection: attempts per client address and username, and per client
    // address, counted before any Argon2id work so that a flood costs the server nothing.
    // Never per username alone: guesses from elsewhere must not lock the owner out. Sign-ups
    // count apart. The address is the resolved client's (trusted proxies' X-Forwarded-For).
    std::string prefix = action == "login" ? "login" : "register";
    if (auto wait = attempts_.take(prefix + "-ip:" + op.client_ip, per_address_))
        return done(throttled(*wait));
    if (auto wait = attempts_.take(
            prefix + "-user:" + op.client_ip + "|" + lowercase(creds->username), per_user_))
        return done(throttled(*wait));

    if (action == "register") {
        return auth_->register_user(std::move(creds->username), std::move(creds->password),
                                    [this, done = std::move(done)](result<json::object> r) {
                                        if (!r) return done(outcome::from_problem(r.error()));
                                        auto user = std::move(r).value();
                                        auto o = outcome::json_body(201, user);
                                        o.location = record_path(base_path_, users_collection().name,
                                                                 get_string(user, "id"));
                                        done(std::move(o));
                                    });
    }
    // login. Neither the password nor the token is ever logged.
    auth_->login(std::move(creds->username), std::move(creds->password),
                 [done = std::move(done)](result<login_grant> r) {
                     if (!r) return done(outcome::from_problem(r.error()));
                     auto& g = r.value();
                     json::object body{{"token", std::move(g.token)},
                                       {"expires", format_timestamp(g.expires)},
                                       {"user", std::move(g.user)}};
                     done(outcome::json_body(200, std::move(body)));
                 });
}

}  // namespace livebase
