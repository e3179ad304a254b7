// Idempotency-Key (http.md section 3): the same key from the same user (an anonymous caller: the
// same address) within the retention window replays the original response; the same key with
// another request is a 422; while the first request is still being handled, a 409.
#include <livebase/api/api.hpp>
#include <livebase/auth/auth.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>

#include <sodium.h>

#include <atomic>

namespace livebase {

namespace {

constexpr std::size_t k_purge_every = 256;  // inserts between purges of expired keys
constexpr std::size_t k_purge_batch = 200;

std::string fingerprint(const operation& op) {
    // A password never enters the fingerprint: a fast unsalted hash of it, kept for the
    // retention, would be cheap to guess from. Its presence does (a retry with another
    // password under the same key replays the first response).
    const json::value* input = &op.input;
    json::value without_password;
    if (op.collection == users_collection().name && op.input.is_object() &&
        op.input.get_object().contains("password")) {
        without_password = op.input;
        without_password.get_object()["password"] = true;
        input = &without_password;
    }
    std::string text = op.method + "\n" + op.path + "\n" + op.query + "\n" + json::serialize(*input);
    unsigned char hash[32];
    crypto_generichash(hash, sizeof hash, reinterpret_cast<const unsigned char*>(text.data()), text.size(),
                       nullptr, 0);
    char hex[65];
    sodium_bin2hex(hex, sizeof hex, hash, sizeof hash);
    return hex;
}

field_def field(std::string name, field_type type, bool unique = false) {
    field_def f;
    f.name = std::move(name);
    f.type = type;
    f.unique = unique;
    return f;
}

outcome replay(const json::object& row) {
    outcome o;
    o.status = static_cast<int>(get_int(row, "status").value_or(200));
    if (auto it = row.find("response"); it != row.end()) o.body = it->value();
    o.is_problem = o.status >= 400;
    o.location = std::string(get_string(row, "location"));
    o.version = get_int(row, "record_version");
    if (auto it = row.find("headers"); it != row.end() && it->value().is_array())
        for (const auto& h : it->value().get_array())
            if (h.is_array() && h.get_array().size() == 2 && h.get_array()[0].is_string() &&
                h.get_array()[1].is_string())
                o.headers.emplace_back(std::string(h.get_array()[0].get_string()),
                                       std::string(h.get_array()[1].get_string()));
    o.headers.emplace_back("Idempotent-Replayed", "true");
    return o;
}

}  // namespace

const collection_def& idempotency_collection() {
    static const collection_def def = [] {
        collection_def c;
        c.name = "idempotency_keys";
        c.built_in = true;
        c.fields = {field("scope", field_type::string, true), field("fingerprint", field_type::string),
                    field("state", field_type::string), field("status", field_type::integer),
                    field("response", field_type::json), field("location", field_type::string),
                    field("record_version", field_type::integer), field("headers", field_type::json)};
        c.indexes = {{"created"}};
        (void)finalize(c);
        return c;
    }();
    return def;
}

void api::set_idempotency_retention(std::chrono::milliseconds retention) noexcept {
    idempotency_retention_ = retention;
}

void api::with_idempotency(operation op, done_fn done) {
    const auto& ic = idempotency_collection();
    // A user's keys are theirs; an anonymous caller's belong to its address, so no other client
    // can replay its responses or block its keys.
    auto scope = op.who.owner_key() + "\n" + op.idempotency_key;
    auto fp = fingerprint(op);
    auto now = now_ms();
    auto cutoff = now - idempotency_retention_.count();
    bool purge = idempotency_inserts_.fetch_add(1) % k_purge_every == 0;
    auto row_id = make_ulid(now);

    db_.write(
        [&ic, scope, fp, now, cutoff, purge, row_id](write_txn& t) -> result<json::value> {
            if (purge) {
                query old;
                old.filters.push_back({"created", lookup::lt, json::value(format_timestamp(cutoff))});
                old.limit = k_purge_batch;
                old.with_count = false;
                auto pg = t.list(ic, old);
                if (!pg) return std::move(pg).error();
                for (const auto& row : pg->items)
                    if (auto r = t.remove(ic, row); !r) return std::move(r).error();
            }
            query q;
            q.filters.push_back({"scope", lookup::exact, json::value(scope)});
            q.limit = 1;
            q.with_count = false;
            auto pg = t.list(ic, q);
            if (!pg) return std::move(pg).error();
            if (!pg->items.empty()) {
                const auto& row = pg->items.front();
                auto created = parse_timestamp(get_string(row, "created"));
                if (created && *created >= cutoff) {
                    if (get_string(row, "fingerprint") != fp)
                        return problem::unprocessable(
                            "This Idempotency-Key was used with a different request.");
                    if (get_string(row, "state") == "pending")
                        return problem::conflict("A request with this Idempotency-Key is still being handled.");
                    return json::value(row);  // replay
                }
                if (auto r = t.remove(ic, row); !r) return std::move(r).error();  // expired: reuse
            }
            json::object row{{"id", row_id}, {"created", format_timestamp(now)},
                             {"updated", format_timestamp(now)}, {"version", 1},
                             {"scope", scope}, {"fingerprint", fp}, {"state", "pending"},
                             {"status", nullptr}, {"response", nullptr}, {"location", nullptr},
                             {"record_version", nullptr}, {"headers", nullptr}};
            if (auto r = t.insert(ic, row); !r) {
                // Another node inserted the same key at the same moment (PostgreSQL: the insert
                // waited for its commit): the same answer as a key found pending above.
                if (r.error().status == 409)
                    return problem::conflict("A request with this Idempotency-Key is still being handled.");
                return std::move(r).error();
            }
            return json::value(nullptr);  // first time: handle it
        },
        [this, &ic, op = std::move(op), row_id, now, done = std::move(done)](result<json::value> r) mutable {
            if (!r) return done(outcome::from_problem(r.error()));
            if (r->is_object()) return done(replay(r->get_object()));
            dispatch(std::move(op), [this, &ic, row_id, now, done = std::move(done)](outcome o) mutable {
                // Record the response before answering, so a retry after this answer replays it.
                // A 5xx is not recorded: the client may retry with the same key.
                auto shared = std::make_shared<outcome>(std::move(o));
                db_.write(
                    [&ic, row_id, now, shared](write_txn& t) -> result<json::value> {
                        auto got = t.get(ic, row_id);
                        if (!got) return std::move(got).error();
                        if (!got.value()) return json::value(nullptr);
                        if (shared->status >= 500) {
                            if (auto r = t.remove(ic, *got.value()); !r) return std::move(r).error();
                            return json::value(nullptr);
                        }
                        auto row = *got.value();
                        json::array headers;
                        for (const auto& [k, v] : shared->headers) headers.push_back(json::array{json::value(k), json::value(v)});
                        row["state"] = "done";
                        row["status"] = shared->status;
                        row["response"] = shared->body;
                        row["location"] = shared->location.empty() ? json::value(nullptr) : json::value(shared->location);
                        row["record_version"] = shared->version ? json::value(*shared->version) : json::value(nullptr);
                        row["headers"] = std::move(headers);
                        row["version"] = 2;
                        row["updated"] = format_timestamp(now_ms());
                        if (auto r = t.update(ic, row); !r) return std::move(r).error();
                        return json::value(nullptr);
                    },
                    [this, shared, done = std::move(done)](result<json::value> r) mutable {
                        if (!r) log_.warn("could not record an idempotent response", {{"detail", r.error().detail}});
                        done(std::move(*shared));
                    });
                (void)now;
            });
        });
}

}  // namespace livebase
