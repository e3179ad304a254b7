#pragma once
// The auth operations (collection "auth": login, logout, me, register) and their attempt
// limits. Private to the api component; the api owns one.
#include <livebase/auth/auth.hpp>
#include <livebase/ops/operation.hpp>

#include <functional>
#include <string>

namespace livebase {

class auth_requests {
public:
    using done_fn = std::function<void(outcome)>;

    /// `base_path` prefixes the Location of a registered user.
    explicit auth_requests(std::string base_path) : base_path_(std::move(base_path)) {}

    /// Serves the operations through `a`; `signup` allows "register". Without it every auth
    /// operation answers 404. REQUIRES: before serving.
    void enable(authenticator& a, bool signup) noexcept {
        auth_ = &a;
        signup_ = signup;
    }
    /// Login (and sign-up) attempts per (client address, lowercased username) and per client
    /// address (count 0 = unlimited). REQUIRES: before serving.
    void set_limits(rate per_user, rate per_address) noexcept {
        per_user_ = per_user;
        per_address_ = per_address;
    }

    /// Runs an operation of the collection "auth"; `done` runs once, on a store thread or
    /// inline.
    void execute(operation op, done_fn done);

private:
    std::string base_path_;
    authenticator* auth_ = nullptr;
    bool signup_ = false;
    throttle attempts_;
    rate per_user_ = k_login_rate;
    rate per_address_ = k_login_address_rate;
};

}  // namespace livebase
