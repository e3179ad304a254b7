// Idempotency-Key (http.md section 3): the same key from the same user (an anonymous caller: the
// same address) within the retention window replays the original response; the same key with
// another request is a 422; while the first request is still being handled, a 409 with
// Retry-After.
//
// A crash must not separate a key from its request's effect. A create, update or delete, and a
// task submission (202), store the key's response in the transaction of the effect itself (the
// key's finisher, a task_finish): after a crash the key is either pending with no effect or
// done with it. Everything else (actions that run user code, Prefer: wait, cancel, a refusal)
// stores the response in a write after the request; a pending key names its holder (node and
// boot id) and a lease the holder renews, and a retry takes over a key whose holder is gone (the
// same node with another boot id: it restarted; another node: its lease ran out) and runs the
// request afresh.
#include "api/idempotency.hpp"

#include <livebase/api/api.hpp>
#include <livebase/auth/auth.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>

#include <sodium.h>

#include <atomic>
#include <mutex>
#include <unistd.h>

namespace livebase {

namespace {

constexpr std::size_t k_purge_every = 256;  // inserts between purges of expired keys
constexpr std::size_t k_purge_batch = 200;
constexpr std::int64_t k_lease_ms = 30'000;  // a pending key's hold; renewed every ~10 s while held

const char* const k_busy = "A request with this Idempotency-Key is still being handled.";

problem busy(std::int64_t retry_after_s) {
    auto p = problem::conflict(k_busy);
    p.extra["retry_after"] = std::max<std::int64_t>(1, retry_after_s);
    return p;
}

// The key's row as done, with the response `o`.
void set_done(json::object& row, const outcome& o) {
    json::array headers;
    for (const auto& [k, v] : o.headers) headers.push_back(json::array{json::value(k), json::value(v)});
    row["state"] = "done";
    row["status"] = o.status;
    row["response"] = o.body;
    row["location"] = o.location.empty() ? json::value(nullptr) : json::value(o.location);
    row["record_version"] = o.version ? json::value(*o.version) : json::value(nullptr);
    row["headers"] = std::move(headers);
    row["holder"] = nullptr;
    row["held_until"] = nullptr;
    row["version"] = get_int(row, "version").value_or(1) + 1;
    row["updated"] = format_timestamp(now_ms());
}

// Stores the response of a keyed create/update/delete or submission in the transaction of its
// effect. A key taken over by another holder meanwhile (this node's lease ran out) rolls the
// effect back: the other run is the one that counts.
class key_finish final : public task_finish {
public:
    key_finish(std::string row_id, std::string holder) : row_id_(std::move(row_id)), holder_(std::move(holder)) {}
    result<void> in_txn(write_txn& t, const outcome& out) override {
        auto got = t.get(idempotency_collection(), row_id_);
        if (!got) return std::move(got).error();
        if (!got.value() || get_string(*got.value(), "holder") != holder_) return busy(1);
        auto row = *got.value();
        set_done(row, out);
        if (auto r = t.update(idempotency_collection(), row); !r) return std::move(r).error();
        return {};
    }

private:
    std::string row_id_;
    std::string holder_;
};

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
        c.fields = {make_field("scope", field_type::string, /*required=*/false, /*unique=*/true), make_field("fingerprint", field_type::string),
                    make_field("state", field_type::string), make_field("status", field_type::integer),
                    make_field("response", field_type::json), make_field("location", field_type::string),
                    make_field("record_version", field_type::integer), make_field("headers", field_type::json),
                    make_field("holder", field_type::string), make_field("held_until", field_type::integer)};
        c.indexes = {{"created"}};
        (void)finalize(c);
        return c;
    }();
    return def;
}

idempotency_keys::idempotency_keys(store& db, logger& log) : db_(db), log_(log) {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    node_ = std::string(host) + ":" + std::to_string(::getpid());
    boot_ = make_ulid();
}

void idempotency_keys::set_node(std::string name) {
    std::lock_guard<std::mutex> lock(mu_);
    node_ = std::move(name);
}

std::string idempotency_keys::holder() const {
    std::lock_guard<std::mutex> lock(mu_);
    return holder_locked();
}

std::string idempotency_keys::holder_locked() const { return node_ + " " + boot_; }

void idempotency_keys::keep_alive() {
    std::vector<std::string> ids;
    std::string me;
    auto now = now_ms();
    {
        std::lock_guard<std::mutex> lock(mu_);
        if (held_.empty() || now - renewed_ < k_lease_ms / 3) return;
        renewed_ = now;
        for (const auto& [id, n] : held_) ids.push_back(id);
        me = holder_locked();
    }
    db_.write(
        [ids = std::move(ids), me, now](write_txn& t) -> result<json::value> {
            const auto& ic = idempotency_collection();
            for (const auto& id : ids) {
                auto got = t.get(ic, id);
                if (!got) return std::move(got).error();
                if (!got.value() || get_string(*got.value(), "holder") != me) continue;
                auto row = *got.value();
                row["held_until"] = now + k_lease_ms;
                if (auto r = t.update(ic, row); !r) return std::move(r).error();
            }
            return json::value(nullptr);
        },
        [this](result<json::value> r) {
            if (!r) log_.warn("could not renew pending Idempotency-Keys", {{"detail", r.error().detail}});
        });
}

void idempotency_keys::hold(const std::string& row_id, bool held) {
    std::lock_guard<std::mutex> lock(mu_);
    if (held) ++held_[row_id];
    else if (auto it = held_.find(row_id); it != held_.end() && --it->second == 0) held_.erase(it);
}

void idempotency_keys::handle(operation op, done_fn done, run_fn run) {
    const auto& ic = idempotency_collection();
    // A user's keys are theirs; an anonymous caller's belong to its address, so no other client
    // can replay its responses or block its keys.
    auto scope = op.who.owner_key() + "\n" + op.idempotency_key;
    auto fp = fingerprint(op);
    auto now = now_ms();
    auto cutoff = now - retention_.count();
    bool purge = inserts_.fetch_add(1) % k_purge_every == 0;
    std::string node, me;
    {
        std::lock_guard<std::mutex> lock(mu_);
        node = node_;
        me = holder_locked();
    }
    auto fresh_id = make_ulid(now);
    auto claim = std::make_shared<std::string>();  // the row id this request holds

    db_.write(
        [&ic, scope, fp, now, cutoff, purge, claim, fresh_id, node, me](write_txn& t) -> result<json::value> {
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
                    if (get_string(row, "state") != "pending") return json::value(row);  // replay
                    // Pending: still being handled, unless its holder is gone.
                    auto holder = get_string(row, "holder");
                    auto until = get_int(row, "held_until").value_or(*created + k_lease_ms);
                    auto space = holder.rfind(' ');
                    bool restarted = space != std::string_view::npos && holder.substr(0, space) == node &&
                                     holder != me;
                    if (holder == me || (!restarted && until > now))
                        return busy(holder == me ? 1 : (until - now + 999) / 1000);
                    // Taken over: this request runs afresh under the same row.
                    auto taken = row;
                    taken["holder"] = me;
                    taken["held_until"] = now + k_lease_ms;
                    taken["created"] = format_timestamp(now);
                    taken["updated"] = format_timestamp(now);
                    taken["version"] = get_int(row, "version").value_or(1) + 1;
                    if (auto r = t.update(ic, taken); !r) return std::move(r).error();
                    *claim = std::string(get_string(row, "id"));
                    return json::value(json::object{{"taken_over", std::string(holder)}});
                }
                if (auto r = t.remove(ic, row); !r) return std::move(r).error();  // expired: reuse
            }
            *claim = fresh_id;
            json::object row{{"id", fresh_id}, {"created", format_timestamp(now)},
                             {"updated", format_timestamp(now)}, {"version", 1},
                             {"scope", scope}, {"fingerprint", fp}, {"state", "pending"},
                             {"status", nullptr}, {"response", nullptr}, {"location", nullptr},
                             {"record_version", nullptr}, {"headers", nullptr},
                             {"holder", me}, {"held_until", now + k_lease_ms}};
            if (auto r = t.insert(ic, row); !r) {
                // Another node inserted the same key at the same moment (PostgreSQL: the insert
                // waited for its commit): the same answer as a key found pending above.
                if (r.error().status == 409) return busy(1);
                return std::move(r).error();
            }
            return json::value(nullptr);  // first time: handle it
        },
        [this, &ic, op = std::move(op), claim, me, done = std::move(done),
         run = std::move(run)](result<json::value> r) mutable {
            if (!r) return done(outcome::from_problem(r.error()));
            if (r->is_object() && r->get_object().contains("taken_over")) {
                log_.info("Idempotency-Key taken over from a holder that is gone",
                          {{"holder", std::string(get_string(r->get_object(), "taken_over"))},
                           {"request_id", op.request_id}});
            } else if (r->is_object()) {
                return done(replay(r->get_object()));
            }
            auto row_id = *claim;
            hold(row_id, true);
            // Writes that can store the response with their effect do (and mark it committed).
            auto fin = std::make_shared<key_finish>(row_id, me);
            op.finish = fin;
            run(std::move(op), [this, &ic, row_id, me, fin, done = std::move(done)](outcome o) mutable {
                if (fin->committed()) {
                    hold(row_id, false);
                    return done(std::move(o));
                }
                // Record the response before answering, so a retry after this answer replays it.
                // A 5xx is not recorded: the client may retry with the same key.
                auto shared = std::make_shared<outcome>(std::move(o));
                db_.write(
                    [&ic, row_id, me, shared](write_txn& t) -> result<json::value> {
                        auto got = t.get(ic, row_id);
                        if (!got) return std::move(got).error();
                        // Gone, or taken over by a retry after this node's lease ran out.
                        if (!got.value() || get_string(*got.value(), "holder") != me) return json::value(nullptr);
                        if (shared->status >= 500) {
                            if (auto r = t.remove(ic, *got.value()); !r) return std::move(r).error();
                            return json::value(nullptr);
                        }
                        auto row = *got.value();
                        set_done(row, *shared);
                        if (auto r = t.update(ic, row); !r) return std::move(r).error();
                        return json::value(nullptr);
                    },
                    [this, row_id, shared, done = std::move(done)](result<json::value> r) mutable {
                        hold(row_id, false);
                        if (!r) log_.warn("could not record an idempotent response", {{"detail", r.error().detail}});
                        done(std::move(*shared));
                    });
            });
        });
}

}  // namespace livebase
