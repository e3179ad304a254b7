// The realtime hub. One thread owns every client, subscription and live query; the public
// methods only queue commands to it. A pass reads the change log after the hub's cursor in one
// read transaction (plus, when it reached the end of the log, the re-lists of touched live
// queries at that snapshot), then matches, encodes and delivers outside the store. The write
// path only learns of commits through a non-blocking listener.
//
// A resume (subscribe with `since`) is replayed in pages, each read and encoded on a store
// reader while the hub thread goes on with passes. The subscription stays out of the indexes
// (passes do not offer it changes) until its replay reaches the hub's cursor: the replay reads
// what arrives meanwhile from the log, so live and replayed events meet without a gap or a
// duplicate, and nothing but one page per replay is ever held. The next page is read only
// when the client's sink says its send queue has room (event_sink::when_ready).
#include <livebase/realtime/hub.hpp>

#include "realtime/frames.hpp"

#include <livebase/auth/rules.hpp>
#include <livebase/core/clock.hpp>
#include <livebase/realtime/event_filter.hpp>
#include <livebase/realtime/live_query.hpp>
#include <livebase/schema/query.hpp>

#include <sodium.h>

#include <algorithm>
#include <array>
#include <atomic>
#include <condition_variable>
#include <deque>
#include <exception>
#include <functional>
#include <limits>
#include <future>
#include <mutex>
#include <optional>
#include <thread>
#include <unordered_map>
#include <unordered_set>

namespace livebase {

namespace {

using realtime_detail::change_text;
using frame_ptr = std::shared_ptr<const std::string>;
using frame_list = std::vector<frame_ptr>;
using steady = std::chrono::steady_clock;

// Commands that answer through `done` wait in a bounded queue; beyond it they get 503 at once.
// attach/detach/set_principal have no answer to refuse with, so they are always queued; doors
// make them a few times per socket (connect, login/logout, close), which bounds them.
constexpr std::size_t k_max_commands = 100000;
// After a storage error the hub waits this long before it reads again.
constexpr auto k_retry_delay = std::chrono::milliseconds(100);
// Subscriptions numbered below this share frames through a flat table; above, a hash map.
constexpr std::uint64_t k_dense_slots = 1024;
// Changes one replay page read scans at most (a filter that matches little must not make one
// read long), and changes it asks the store for at once at most. A page asks first for as
// many as the replay's previous page used (big records fill a page with a few), then twice
// as many each time, so it fetches few rows it does not use.
constexpr std::size_t k_page_scan = 4096;
constexpr std::size_t k_page_chunk = 256;
constexpr std::size_t k_first_chunk = 16;

problem stopped_problem() { return problem::unavailable("The realtime hub is stopped."); }
problem busy_problem() { return problem::unavailable("The realtime hub is overloaded."); }

std::string random_client_id() {
    static const bool ready = sodium_init() >= 0;
    (void)ready;
    unsigned char bytes[16];
    randombytes_buf(bytes, sizeof bytes);
    char hex[sizeof bytes * 2 + 1];
    sodium_bin2hex(hex, sizeof hex, bytes, sizeof bytes);
    return hex;
}

struct command {
    std::function<void()> run;          // on the hub thread
    std::function<void(problem)> fail;  // when it will never run (stop); may be empty
};

// What the hub shares with other threads. Held by shared_ptr so that a commit listener or a
// trim completion that runs after the hub is gone touches live memory.
struct shared_state {
    std::mutex mu;
    std::condition_variable cv;
    std::deque<command> commands;          // under mu
    std::size_t answered_commands = 0;     // commands with `done` in `commands`, under mu
    bool stopping = false;                 // under mu
    std::int64_t committed = 0;            // the store's last seq as last told, under mu
    bool trim_running = false;             // under mu
    bool trim_held = false;                // under mu: a lagging node holds the trim back (logged once)
    logger* log = nullptr;                 // under mu; null once the hub stopped
    std::unordered_set<std::string> attached;  // client ids, under mu
    std::atomic<std::size_t> clients{0};
    std::atomic<std::int64_t> delivered{0};
    std::size_t page_reads = 0;  // replay pages being read, under mu; stop() waits for none
    std::atomic<std::size_t> replays{0};     // resumes still replaying
    std::atomic<std::uint64_t> replayed{0};  // events handed over by replays
};

// A resume in progress: (since, pos] is replayed.
struct replay_state {
    std::int64_t pos = 0;
    std::size_t chunk = k_first_chunk;  // changes the next page asks for first
    std::uint64_t token = 0;  // tells this replay's answers (pages, readiness) from stale ones
};

// Names a replay from outside the hub thread's pointers (the client or subscription may be
// gone when a page or a readiness notice comes back).
struct replay_ref {
    std::string client;
    std::string subscription;
    std::uint64_t token = 0;
};

// What one page read needs, copied: it runs on a store reader while the hub thread goes on.
struct page_job {
    replay_ref ref;
    std::uint64_t generation = 0;  // the client's identity generation it was read with
    std::int64_t after = 0;
    std::int64_t upto = 0;  // the hub's cursor when the read started
    principal who;
    event_filter filter;
    const collection_def* def = nullptr;
    std::string stream;
    event_encoding encoding = event_encoding::websocket;
    std::size_t max_events = 0;
    std::size_t max_bytes = 0;
    std::size_t first_chunk = 0;
};

struct page_result {
    std::vector<std::shared_ptr<const std::string>> frames;
    std::int64_t pos = 0;  // the page covers (job.after, pos]
    std::size_t scanned = 0;  // changes it went through
    bool trimmed = false;  // the history no longer reaches back to job.after
    std::optional<problem> failed;
};

struct collection_state;
struct client_state;

struct subscription_state {
    std::string id;  // "s-<number>"
    std::uint64_t number = 0;
    client_state* owner = nullptr;
    collection_state* coll = nullptr;
    event_filter filter;
    std::size_t index = 0;  // position in coll->all (pk == "")
    // Set while a resume replays: the subscription is in no index until the replay is live.
    std::unique_ptr<replay_state> replay;
};

struct observer_state {
    std::string id;  // "o-<number>"
    client_state* owner = nullptr;
    collection_state* coll = nullptr;
    query q;
    std::int64_t seq = 0;  // the snapshot `rows` is at
    window rows;
    bool stale = false;  // a re-list failed or the identity changed: re-list on the next pass
};

struct client_state {
    std::string id;
    std::weak_ptr<event_sink> sink;
    principal who;
    std::uint64_t generation = 0;  // bumped when `who` changes: pages read before are re-read
    event_encoding encoding = event_encoding::websocket;
    std::uint64_t next_subscription = 1;
    std::uint64_t next_observer = 1;
    std::unordered_map<std::string, std::unique_ptr<subscription_state>> subscriptions;
    std::unordered_map<std::string, std::unique_ptr<observer_state>> observers;
    frame_list out;              // this pass's frames
    std::size_t last_frames = 0;  // the previous pass's count: a reserve hint
    bool pending = false;         // in impl::pending_
};

struct collection_state {
    const collection_def* def = nullptr;
    std::string stream;  // the name as a JSON string
    std::vector<subscription_state*> all;  // subscriptions to every record
    std::unordered_map<std::string, std::vector<subscription_state*>> by_pk;
    std::vector<observer_state*> observers;
    bool touched = false;  // changed since its live queries were last re-listed
};

// Runs a callback of a layer above (hooks, done, deliver) so that its exception cannot take the
// hub thread down.
template <class Fn>
bool guarded(logger& log, std::string_view what, Fn&& fn) {
    try {
        fn();
        return true;
    } catch (const std::exception& e) {
        log.error(what, {{"error", e.what()}});
    } catch (...) {
        log.error(what, {{"error", "unknown exception"}});
    }
    return false;
}

json::object problem_fields(const problem& p) { return {{"status", p.status}, {"detail", p.detail}}; }

}  // namespace

struct hub::impl {
    impl(store& db, hub_hooks hooks, hub_options options, logger& log)
        : db_(db), hooks_(std::move(hooks)), opt_(options), log_(log), s_(std::make_shared<shared_state>()) {
        opt_.batch = std::max<std::size_t>(1, opt_.batch);
        opt_.node_timeout = std::max(opt_.node_timeout, std::chrono::milliseconds(4));
        // The trim writes this node's heartbeat: several per node_timeout, so that a live node
        // never looks dead to the others.
        opt_.trim_every = std::clamp(opt_.trim_every, std::chrono::milliseconds(1), opt_.node_timeout / 4);
        randombytes_buf(&node_, sizeof node_);
        node_ &= std::numeric_limits<std::int64_t>::max();
        s_->log = &log_;
    }

    // ---- public side (any thread) ----

    // Queues a command that answers through `fail`/its own `done`; refused (503 through
    // `fail`, on this thread) when stopped or when too many such commands wait.
    void push_answered(std::function<void()> run, std::function<void(problem)> fail) {
        std::optional<problem> refused;
        {
            std::lock_guard<std::mutex> lock(s_->mu);
            if (s_->stopping) {
                refused = stopped_problem();
            } else if (s_->answered_commands >= k_max_commands) {
                refused = busy_problem();
            } else {
                ++s_->answered_commands;
                command c;
                c.run = [this, run = std::move(run)] {
                    {
                        std::lock_guard<std::mutex> lock(s_->mu);
                        --s_->answered_commands;
                    }
                    run();
                };
                c.fail = std::move(fail);
                s_->commands.push_back(std::move(c));
            }
        }
        if (refused) {
            guarded(log_, "a realtime callback failed", [&] { fail(std::move(*refused)); });
            return;
        }
        s_->cv.notify_one();
    }

    // Queues a command without an answer; REQUIRES: s_->mu held. Dropped once stopped.
    void push_locked(std::function<void()> run) {
        if (s_->stopping) return;
        s_->commands.push_back(command{std::move(run), {}});
        s_->cv.notify_one();
    }

    void start() {
        auto s = s_;
        db_.on_commit([s](std::int64_t seq) {
            {
                std::lock_guard<std::mutex> lock(s->mu);
                if (seq > s->committed) s->committed = seq;
            }
            s->cv.notify_one();
        });
        cursor_ = db_.last_seq();
        {
            std::lock_guard<std::mutex> lock(s_->mu);
            if (cursor_ > s_->committed) s_->committed = cursor_;
        }
        s_->delivered.store(cursor_);
        register_node();
        next_trim_ = steady::now() + opt_.trim_every;
        started_ = true;
        thread_ = std::thread([this] { run(); });
    }

    // This node's first heartbeat, before it serves: a node that stalls before its first trim
    // (trim_every later) still holds the other nodes' trims back at its position.
    void register_node() {
        const std::int64_t wall = now_ms();
        const std::int64_t alive_since = wall - opt_.node_timeout.count();
        auto r = db_.write_sync([node = node_, pos = cursor_, wall, alive_since](write_txn& t) -> result<json::value> {
            auto n = t.node_heartbeat(node, pos, wall, alive_since);
            if (!n) return std::move(n).error();
            return json::value(nullptr);
        });
        if (!r) log_.warn("could not register this node's change-log position; its first trim will", problem_fields(r.error()));
    }

    void stop() {
        std::lock_guard<std::mutex> stop_lock(stop_mu_);
        {
            std::lock_guard<std::mutex> lock(s_->mu);
            s_->stopping = true;
        }
        s_->cv.notify_all();
        if (thread_.joinable()) thread_.join();
        {
            // A page read in flight uses this object's hooks; it no longer queues anything.
            std::unique_lock<std::mutex> lock(s_->mu);
            s_->cv.wait(lock, [&] { return s_->page_reads == 0; });
        }
        if (started_) {
            db_.on_commit({});
            started_ = false;
        }
        // Commands queued while the hub never started; once `stopping` is set none are added.
        fail_pending();
        std::lock_guard<std::mutex> lock(s_->mu);
        s_->log = nullptr;
    }

    void fail_pending() {
        std::deque<command> left;
        {
            std::lock_guard<std::mutex> lock(s_->mu);
            left.swap(s_->commands);
            s_->answered_commands = 0;
        }
        for (auto& c : left)
            if (c.fail) guarded(log_, "a realtime callback failed", [&] { c.fail(stopped_problem()); });
    }

    // ---- the hub thread ----

    void run() {
        for (;;) {
            std::deque<command> batch;
            std::int64_t committed;
            {
                std::unique_lock<std::mutex> lock(s_->mu);
                const auto now = steady::now();
                const bool backing_off = now < retry_at_;
                auto ready = [&] {
                    return s_->stopping || !s_->commands.empty() ||
                           (!backing_off && (s_->committed > cursor_ || more_ || stale_observers_ > 0));
                };
                auto deadline = next_trim_;
                if (backing_off) deadline = std::min(deadline, retry_at_);
                s_->cv.wait_until(lock, deadline, ready);
                if (s_->stopping) break;
                batch.swap(s_->commands);
                committed = s_->committed;
            }
            for (auto& c : batch) guarded(log_, "a realtime command failed", [&] { c.run(); });
            batch.clear();
            const auto now = steady::now();
            if (now >= next_trim_) start_trim(now);
            if (now >= retry_at_ && (committed > cursor_ || more_ || stale_observers_ > 0)) pass();
        }
        fail_pending();
    }

    // Reads `fn` on a reader thread and waits for it. The hub thread owns all state it
    // touches; while it waits, `fn` may read that state from the reader thread. Returns false
    // when `fn` threw (e.g. in a hook): what it gathered is then incomplete and must not be
    // used (a replay with a hole would break "no gap").
    [[nodiscard]] bool blocking_read(const std::function<void(read_txn&)>& fn) {
        std::promise<bool> done;
        auto f = done.get_future();
        db_.read([&](read_txn& t) { done.set_value(guarded(log_, "a realtime read failed", [&] { fn(t); })); });
        return f.get();
    }

    collection_state& collection(const collection_def& def) {
        auto& slot = colls_[def.name];
        if (!slot) {
            slot = std::make_unique<collection_state>();
            slot->def = &def;
            slot->stream = realtime_detail::json_string(def.name);
        }
        return *slot;
    }

    client_state* find_client(const std::string& id) {
        auto it = clients_.find(id);
        return it == clients_.end() ? nullptr : it->second.get();
    }

    // ---- commands ----

    void do_attach(std::string id, std::weak_ptr<event_sink> sink, principal who, event_encoding enc) {
        auto c = std::make_unique<client_state>();
        c->id = id;
        c->sink = std::move(sink);
        c->who = std::move(who);
        c->encoding = enc;
        clients_[id] = std::move(c);
    }

    void do_detach(const std::string& id) {
        auto it = clients_.find(id);
        if (it == clients_.end()) return;
        client_state& c = *it->second;
        for (auto& [sid, sub] : c.subscriptions) unindex(*sub);
        for (auto& [oid, obs] : c.observers) unindex(*obs);
        clients_.erase(it);
    }

    void unindex(subscription_state& sub) {
        if (sub.replay) {  // still replaying: in no index; its pending page is dropped on return
            sub.replay.reset();
            s_->replays.fetch_sub(1);
            return;
        }
        auto& coll = *sub.coll;
        if (sub.filter.pk().empty()) {
            auto* last = coll.all.back();
            coll.all[sub.index] = last;
            last->index = sub.index;
            coll.all.pop_back();
            return;
        }
        auto it = coll.by_pk.find(sub.filter.pk());
        if (it == coll.by_pk.end()) return;
        auto& v = it->second;
        v.erase(std::remove(v.begin(), v.end(), &sub), v.end());
        if (v.empty()) coll.by_pk.erase(it);
    }

    void unindex(observer_state& obs) {
        auto& v = obs.coll->observers;
        v.erase(std::remove(v.begin(), v.end(), &obs), v.end());
        if (obs.stale) --stale_observers_;
    }

    std::size_t streams_of(const client_state& c) const { return c.subscriptions.size() + c.observers.size(); }

    problem too_many() const {
        return problem::too_many_requests("At most " + std::to_string(opt_.max_subscriptions) +
                                          " subscriptions and live queries per connection.");
    }

    // A resume from a seq the hub has not read yet: the client saw it on another node (or
    // here, between the commit and the pass that reads it). When the log holds it, the hub
    // reads up to it now (passes as usual, delivering to everyone), so that the replay starts
    // there; only a seq beyond the log's last one is refused (410: another database, or a
    // client from the future). Each pass moves the cursor or fails, so this ends; a failure
    // answers 503.
    std::optional<problem> catch_up_to(std::int64_t since) {
        std::optional<problem> failed;
        std::int64_t last = 0;
        const bool read = blocking_read([&](read_txn& t) {
            auto s = t.snapshot_seq();
            if (!s) return void(failed = std::move(s).error());
            last = *s;
        });
        if (!read && !failed) failed = problem::unavailable("The change log could not be read; try again.");
        if (failed) return failed;
        if (since > last)
            return problem::gone("seq " + std::to_string(since) + " is ahead of the change log; list again.");
        {
            std::lock_guard<std::mutex> lock(s_->mu);
            if (last > s_->committed) s_->committed = last;
        }
        while (cursor_ < since) {
            const std::int64_t before = cursor_;
            pass();
            if (cursor_ <= before) return problem::unavailable("The change log could not be read; try again.");
        }
        return std::nullopt;
    }

    void do_subscribe(const std::string& client, subscribe_request req,
                      const std::function<void(result<subscribed>)>& done) {
        auto answer = [&](result<subscribed> r) {
            if (done) guarded(log_, "a subscribe callback failed", [&] { done(std::move(r)); });
        };
        client_state* c = find_client(client);
        if (!c) return answer(problem::not_found("No such client."));
        const collection_def* def = hooks_.find_collection(req.collection);
        if (!def) return answer(problem::not_found("No stream \"" + req.collection + "\"."));
        auto filter = event_filter::make(*def, req.pk, req.actions, req.filter);
        if (!filter) return answer(std::move(filter).error());
        if (streams_of(*c) >= opt_.max_subscriptions) return answer(too_many());
        if (req.since && *req.since > cursor_) {
            if (auto refused = catch_up_to(*req.since)) return answer(std::move(*refused));
            c = find_client(client);  // the passes may have expired it
            if (!c) return answer(problem::not_found("No such client."));
        }

        // Every refusal (404 for a pk, 410 for a trimmed or too long history, 503) comes before
        // `done` says yes; the replay itself is read in pages after the answer (replay_page).
        collection_state& coll = collection(*def);
        const std::uint64_t number = c->next_subscription;
        const std::string id = "s-" + std::to_string(number);
        if (!req.pk.empty() || req.since) {
            std::optional<problem> refused;
            const std::int64_t upto = cursor_;
            const bool read = blocking_read([&](read_txn& t) {
                if (!req.pk.empty()) {
                    auto rec = t.get(*def, req.pk);
                    if (!rec) return void(refused = std::move(rec).error());
                    if (!*rec || !visible(*c, *def, **rec)) return void(refused = problem::not_found());
                }
                if (!req.since) return;
                const std::int64_t since = *req.since;
                auto floor = t.history_floor();
                if (!floor) return void(refused = std::move(floor).error());
                if (since < *floor)
                    return void(refused = problem::gone("The history no longer reaches back to seq " +
                                                        std::to_string(since) + "; list again."));
                // Seqs above the floor count changes at most (PostgreSQL's sequence may skip).
                if (upto - since > static_cast<std::int64_t>(opt_.max_replay))
                    return void(refused = problem::gone("More than " + std::to_string(opt_.max_replay) +
                                                        " changes to replay since seq " + std::to_string(since) +
                                                        "; list again."));
            });
            if (!read && !refused) refused = problem::unavailable("The change log could not be read; try again.");
            if (refused) {
                if (refused->status >= 500)
                    log_.warn("subscribing failed on a storage error",
                              {{"client", client}, {"collection", req.collection}, {"status", refused->status}});
                return answer(std::move(*refused));
            }
        }
        const bool replaying = req.since && *req.since < cursor_;

        auto sub = std::make_unique<subscription_state>();
        sub->id = id;
        sub->number = number;
        sub->owner = c;
        sub->coll = &coll;
        sub->filter = std::move(*filter);
        if (replaying) {
            sub->replay = std::make_unique<replay_state>();
            sub->replay->pos = *req.since;
            sub->replay->token = ++replay_tokens_;
            s_->replays.fetch_add(1);
        } else {
            index(*sub);
        }
        subscription_state& added = *sub;
        ++c->next_subscription;
        c->subscriptions.emplace(id, std::move(sub));
        if (log_.enabled(log_level::debug))
            log_.debug("subscribed", {{"client", client},
                                      {"subscription", id},
                                      {"collection", req.collection},
                                      {"pk", req.pk},
                                      {"since", req.since ? json::value(*req.since) : json::value(nullptr)},
                                      {"replay", replaying},
                                      {"seq", cursor_}});
        answer(subscribed{id, cursor_});
        if (replaying) want_page(added);
    }

    void index(subscription_state& sub) {
        auto& coll = *sub.coll;
        if (sub.filter.pk().empty()) {
            sub.index = coll.all.size();
            coll.all.push_back(&sub);
        } else {
            coll.by_pk[sub.filter.pk()].push_back(&sub);
        }
    }

    // ---- paged replays ----

    // Queues the replay's next page. Pages are read one at a time across the hub, so replays
    // never hold more than one of the store's readers (passes and REST need the others).
    void want_page(subscription_state& sub) {
        replay_queue_.push_back(replay_ref{sub.owner->id, sub.id, sub.replay->token});
        pump_replays();
    }

    subscription_state* find_replay(const replay_ref& r) {
        client_state* c = find_client(r.client);
        if (!c) return nullptr;
        auto it = c->subscriptions.find(r.subscription);
        if (it == c->subscriptions.end()) return nullptr;
        subscription_state& sub = *it->second;
        if (!sub.replay || sub.replay->token != r.token) return nullptr;
        return &sub;
    }

    void pump_replays() {
        while (!page_reading_ && !replay_queue_.empty()) {
            replay_ref ref = std::move(replay_queue_.front());
            replay_queue_.pop_front();
            if (auto* sub = find_replay(ref)) read_page(*sub, std::move(ref));
        }
    }

    // Starts one page read on a store reader; its result comes back as a command (on_page).
    void read_page(subscription_state& sub, replay_ref ref) {
        client_state& c = *sub.owner;
        auto job = std::make_shared<page_job>();
        job->ref = std::move(ref);
        job->generation = c.generation;
        job->after = sub.replay->pos;
        job->upto = cursor_;
        job->who = c.who;
        job->filter = sub.filter;
        job->def = sub.coll->def;
        job->stream = sub.coll->stream;
        job->encoding = c.encoding;
        job->max_events = std::max<std::size_t>(1, opt_.replay_page_events);
        job->max_bytes = std::max<std::size_t>(1, opt_.replay_page_bytes);
        job->first_chunk = sub.replay->chunk;
        page_reading_ = true;
        {
            std::lock_guard<std::mutex> lock(s_->mu);
            ++s_->page_reads;
        }
        // stop() waits for the read to finish, so `this` outlives it. A full reader queue runs
        // it at once, here, with a failing transaction: that comes back as a command too.
        db_.read([this, job](read_txn& t) {
            auto out = std::make_shared<page_result>();
            if (!guarded(log_, "reading a replay page failed", [&] { *out = replay_page(t, *job); }))
                out->failed = problem::unavailable("The change log read threw.");
            std::lock_guard<std::mutex> lock(s_->mu);
            --s_->page_reads;
            push_locked([this, job, out] { on_page(*job, std::move(*out)); });
            s_->cv.notify_all();
        });
    }

    // On a store reader: the changes after job.after (up to the hub's cursor when the read
    // started) that the subscription wants, encoded, until the page is full. The floor is read
    // in the same transaction: if it passed job.after, the page would have a hole.
    page_result replay_page(read_txn& t, const page_job& job) const {
        page_result out;
        out.pos = job.after;
        auto floor = t.history_floor();
        if (!floor) {
            out.failed = std::move(floor).error();
            return out;
        }
        if (*floor > job.after) {
            out.trimmed = true;
            return out;
        }
        std::size_t& scanned = out.scanned;
        std::size_t bytes = 0;
        std::size_t ask = std::clamp<std::size_t>(job.first_chunk, 1, k_page_chunk);
        while (out.pos < job.upto && scanned < k_page_scan) {
            auto chunk = t.changes_after(out.pos, std::min(ask, k_page_scan - scanned));
            ask = std::min(2 * ask, k_page_chunk);
            if (!chunk) {
                out.failed = std::move(chunk).error();
                return out;
            }
            if (chunk->empty()) {
                // This snapshot began after the hub had read up to job.upto: nothing is missing.
                out.pos = job.upto;
                break;
            }
            for (const auto& ch : *chunk) {
                if (ch.seq > job.upto) return out;
                out.pos = ch.seq;
                ++scanned;
                if (ch.collection != job.def->name) continue;
                auto a = job.filter.classify(ch);
                if (!a || !visible(job.who, *job.def, ch.record)) continue;
                auto text = encode_change(*job.def, job.stream, ch);
                out.frames.push_back(std::make_shared<const std::string>(
                    job.encoding == event_encoding::sse
                        ? realtime_detail::sse_event(text, *a)
                        : realtime_detail::websocket_event(text, *a, job.ref.subscription)));
                bytes += out.frames.back()->size();
                if (out.frames.size() >= job.max_events || bytes >= job.max_bytes) return out;
            }
        }
        return out;
    }

    void on_page(const page_job& job, page_result page) {
        page_reading_ = false;
        if (auto* sub = find_replay(job.ref))
            guarded(log_, "a replay page failed", [&] { replayed_page(*sub, job, page); });
        pump_replays();
    }

    void replayed_page(subscription_state& sub, const page_job& job, page_result& page) {
        client_state& c = *sub.owner;
        if (page.failed) {
            log_.warn("reading a replay page failed", {{"client", c.id},
                                                       {"after", job.after},
                                                       {"status", page.failed->status},
                                                       {"detail", page.failed->detail}});
            return resync(sub, "the change log could not be read");
        }
        if (page.trimmed) return resync(sub, "the history it still had to replay was trimmed");
        // The identity changed while the page was read: read it again as the new one.
        if (c.generation != job.generation) return want_page(sub);
        auto sink = c.sink.lock();
        if (!sink) return expire({c.id});
        sub.replay->pos = page.pos;
        sub.replay->chunk = std::clamp<std::size_t>(page.scanned, 1, k_page_chunk);
        if (!page.frames.empty()) {
            s_->replayed.fetch_add(page.frames.size());
            guarded(log_, "delivering realtime frames failed", [&] { sink->deliver(std::move(page.frames)); });
        }
        if (sub.replay->pos >= cursor_) return go_live(sub);
        if (cursor_ - sub.replay->pos > static_cast<std::int64_t>(opt_.max_replay))
            return resync(sub, "the replay fell too far behind the log");
        // The next page once the client's queue has room. The notice may come from any thread,
        // after the hub stopped or the subscription went: it only queues a command.
        auto s = s_;
        replay_ref ref{c.id, sub.id, sub.replay->token};
        guarded(log_, "a realtime callback failed", [&] {
            sink->when_ready([s, self = this, ref = std::move(ref)] {
                std::lock_guard<std::mutex> lock(s->mu);
                if (s->stopping) return;
                s->commands.push_back(command{[self, ref] {
                                                  if (auto* r = self->find_replay(ref)) self->want_page(*r);
                                              },
                                              {}});
                s->cv.notify_one();
            });
        });
    }

    // The replay reached the hub's cursor: from the next pass on, the subscription is live.
    void go_live(subscription_state& sub) {
        sub.replay.reset();
        s_->replays.fetch_sub(1);
        index(sub);
        if (log_.enabled(log_level::debug))
            log_.debug("replay caught up", {{"client", sub.owner->id}, {"subscription", sub.id}, {"seq", cursor_}});
    }

    // The replay cannot go on without a gap: the subscription goes and the door closes the
    // client, which resumes (or lists again on 410). One log line per client and episode.
    void resync(subscription_state& sub, const char* why) {
        client_state& c = *sub.owner;
        log_.info("closing a resuming client for a resync",
                  {{"client", c.id}, {"subscription", sub.id}, {"after", sub.replay->pos}, {"reason", why}});
        std::weak_ptr<event_sink> weak = c.sink;
        const std::string id = sub.id;
        unindex(sub);
        c.subscriptions.erase(id);
        if (auto sink = weak.lock()) guarded(log_, "a resync callback failed", [&] { sink->resync(); });
    }

    void do_unsubscribe(const std::string& client, const std::string& id,
                        const std::function<void(result<void>)>& done) {
        auto answer = [&](result<void> r) {
            if (done) guarded(log_, "an unsubscribe callback failed", [&] { done(std::move(r)); });
        };
        client_state* c = find_client(client);
        if (!c) return answer(problem::not_found("No such client."));
        auto it = c->subscriptions.find(id);
        if (it == c->subscriptions.end()) return answer(problem::not_found("No subscription \"" + id + "\"."));
        unindex(*it->second);
        c->subscriptions.erase(it);
        answer({});
    }

    void do_observe(const std::string& client, observe_request req,
                    const std::function<void(result<observed>)>& done) {
        auto answer = [&](result<observed> r) {
            if (done) guarded(log_, "an observe callback failed", [&] { done(std::move(r)); });
        };
        client_state* c = find_client(client);
        // Another caller's socket answers exactly like a missing one: its id proves nothing.
        if (!c || (req.caller && req.caller->owner_key() != c->who.owner_key()))
            return answer(problem::not_found("No such client."));
        const collection_def* def = hooks_.find_collection(req.collection);
        if (!def) return answer(problem::not_found("No stream \"" + req.collection + "\"."));
        if (c->encoding == event_encoding::sse)
            return answer(problem::bad_request("Live queries are not offered over Server-Sent Events."));
        auto q = parse_query_json(*def, req.query);
        if (!q) return answer(std::move(q).error());
        if (streams_of(*c) >= opt_.max_subscriptions) return answer(too_many());

        std::optional<problem> refused;
        page pg;
        std::int64_t snap = 0;
        const bool read = blocking_read([&](read_txn& t) {
            auto r = list_window(t, *c, *def, *q);
            if (!r) return void(refused = std::move(r).error());
            auto s = t.snapshot_seq();
            if (!s) return void(refused = std::move(s).error());
            pg = std::move(*r);
            snap = *s;
        });
        if (!read && !refused) refused = problem::unavailable("The records could not be read; try again.");
        if (refused) {
            if (refused->status >= 500)
                log_.warn("observing failed on a storage error",
                          {{"client", client}, {"collection", req.collection}, {"status", refused->status}});
            return answer(std::move(*refused));
        }

        collection_state& coll = collection(*def);
        auto obs = std::make_unique<observer_state>();
        obs->id = "o-" + std::to_string(c->next_observer++);
        obs->owner = c;
        obs->coll = &coll;
        obs->q = std::move(*q);
        obs->seq = snap;
        obs->rows = to_window(*c, *def, pg.items);
        // A snapshot older than the cursor cannot happen (reads start at the latest commit),
        // but if it did the changes in between must not be lost: re-list on the next pass.
        if (snap < cursor_) {
            obs->stale = true;
            ++stale_observers_;
        }
        observed out;
        out.observer = obs->id;
        out.seq = snap;
        out.count = pg.count;
        out.items.reserve(obs->rows.size());
        for (const auto& row : obs->rows) out.items.emplace_back(row.item);
        coll.observers.push_back(obs.get());
        if (log_.enabled(log_level::debug))
            log_.debug("observing", {{"client", client},
                                     {"observer", obs->id},
                                     {"collection", req.collection},
                                     {"rows", obs->rows.size()},
                                     {"seq", snap}});
        c->observers.emplace(obs->id, std::move(obs));
        answer(std::move(out));
    }

    void do_unobserve(const std::string& client, const std::string& id,
                      const std::function<void(result<void>)>& done) {
        auto answer = [&](result<void> r) {
            if (done) guarded(log_, "an unobserve callback failed", [&] { done(std::move(r)); });
        };
        client_state* c = find_client(client);
        if (!c) return answer(problem::not_found("No such client."));
        auto it = c->observers.find(id);
        if (it == c->observers.end()) return answer(problem::not_found("No observer \"" + id + "\"."));
        unindex(*it->second);
        c->observers.erase(it);
        answer({});
    }

    // ---- authorization ----

    // A live query's window as its client may see it: the query narrowed to the client's
    // records first, so that limit and offset count only those (may_see alone would filter
    // after the limit and leave the window short). Runs inside a read (see blocking_read).
    result<page> list_window(read_txn& t, const client_state& c, const collection_def& def, const query& q) const {
        query narrowed = q;
        bool any = false;
        // A throwing hook shows nothing rather than failing every pass's read.
        guarded(log_, "narrowing a live query failed", [&] {
            any = hooks_.narrow ? hooks_.narrow(c.who, def, narrowed) : narrow_query(def, c.who, narrowed);
        });
        if (!any) return page{};
        return t.list(def, narrowed);
    }

    // The client's identity changed: its live queries are re-listed on the next pass, so
    // their windows follow the new identity even if no change touches them.
    void identity_changed(client_state& c) {
        ++c.generation;
        for (auto& [oid, obs] : c.observers) {
            if (obs->stale) continue;
            obs->stale = true;
            ++stale_observers_;
        }
    }

    void do_set_principal(const std::string& client, principal who) {
        client_state* c = find_client(client);
        if (!c) return;
        c->who = std::move(who);
        identity_changed(*c);
    }

    // Credentials ended by a committed change: every client authorized with them becomes
    // anonymous before the change (and anything after it) is matched, and its door is told.
    // Revocations are rare (logout, password change), so a scan of the clients is fine.
    void revoke(const revocation& r) {
        if (r.user_id.empty() && r.token_id.empty()) return;
        for (auto& [id, cp] : clients_) {
            client_state& c = *cp;
            const bool hit = (!r.user_id.empty() && c.who.user_id == r.user_id) ||
                             (!r.token_id.empty() && c.who.token_id == r.token_id);
            if (!hit) continue;
            if (log_.enabled(log_level::debug))
                log_.debug("credentials revoked", {{"client", c.id}, {"user", c.who.user_id}});
            principal anonymous;
            anonymous.address = c.who.address;  // what an anonymous caller's tasks are known by
            c.who = std::move(anonymous);
            identity_changed(c);
            if (auto sink = c.sink.lock()) guarded(log_, "a revocation callback failed", [&] { sink->revoked(); });
        }
    }

    void check_revocation(const change& ch) {
        if (!hooks_.on_change) return;
        std::optional<revocation> r;
        if (!guarded(log_, "the change hook failed", [&] { r = hooks_.on_change(ch); })) return;
        if (r) revoke(*r);
    }

    // ---- matching and encoding ----

    bool visible(const principal& who, const collection_def& def, const json::object& stored) const {
        return !hooks_.may_see || hooks_.may_see(who, def, stored);
    }
    bool visible(const client_state& c, const collection_def& def, const json::object& stored) const {
        return visible(c.who, def, stored);
    }

    change_text encode_change(const collection_def& def, const std::string& stream, const change& ch) const {
        change_text t;
        t.stream = stream;
        t.pk = realtime_detail::json_string(ch.id);
        t.data = to_json_text(hooks_.present(def, ch.record));
        t.seq = ch.seq;
        return t;
    }
    change_text encode_change(const collection_state& coll, const change& ch) const {
        return encode_change(*coll.def, coll.stream, ch);
    }

    window to_window(const client_state& c, const collection_def& def, const std::vector<json::object>& items) const {
        window w;
        w.reserve(items.size());
        for (const auto& rec : items) {
            if (!visible(c, def, rec)) continue;
            w.push_back(window_row{std::string(get_string(rec, "id")), hooks_.present(def, rec)});
        }
        return w;
    }

    // The shared frame of (encoding, action, subscription number) for the current change.
    frame_ptr& frame_slot(event_encoding enc, event_action a, std::uint64_t number) {
        // SSE frames do not name the subscription: one frame per action serves all.
        if (enc == event_encoding::sse) number = 0;
        const std::size_t kind = static_cast<std::size_t>(enc) * k_event_actions + static_cast<std::size_t>(a);
        if (number < k_dense_slots) {
            auto& table = dense_[kind];
            if (table.empty()) table.resize(k_dense_slots);
            frame_ptr& slot = table[number];
            if (!slot) used_slots_.push_back(&slot);
            return slot;
        }
        return sparse_[number * 8 + kind];
    }

    void clear_frame_slots() {
        for (auto* slot : used_slots_) slot->reset();
        used_slots_.clear();
        if (!sparse_.empty()) sparse_.clear();
    }

    void push_frame(client_state& c, const frame_ptr& f) {
        if (!c.pending) {
            c.pending = true;
            pending_.push_back(&c);
            if (c.out.capacity() == 0) c.out.reserve(std::min<std::size_t>(c.last_frames, 1 << 16));
        }
        c.out.push_back(f);
    }

    // Every subscription's event for one change. The per (change x subscription) path
    // allocates nothing but the client's vector slot; the frame is built once per distinct
    // (encoding, action, subscription id) and shared.
    void fan_out(const change& ch) {
        auto it = colls_.find(ch.collection);
        if (it == colls_.end()) return;
        collection_state& coll = *it->second;
        const std::vector<subscription_state*>* by_pk = nullptr;
        if (!coll.by_pk.empty()) {
            auto p = coll.by_pk.find(ch.id);
            if (p != coll.by_pk.end()) by_pk = &p->second;
        }
        if (coll.all.empty() && !by_pk) return;

        const auto op = event_action_from_string(ch.op);
        std::optional<change_text> text;
        auto offer = [&](subscription_state& sub) {
            auto a = sub.filter.classify(ch, op);
            if (!a) return;
            client_state& c = *sub.owner;
            if (!visible(c, *coll.def, ch.record)) return;
            frame_ptr& slot = frame_slot(c.encoding, *a, sub.number);
            if (!slot) {
                if (!text) text = encode_change(coll, ch);
                slot = std::make_shared<const std::string>(c.encoding == event_encoding::sse
                                                               ? realtime_detail::sse_event(*text, *a)
                                                               : realtime_detail::websocket_event(*text, *a, sub.id));
            }
            push_frame(c, slot);
        };
        // One subscriber's failure (a throwing hook) must not cost the others this change.
        auto offer_guarded = [&](subscription_state& sub) {
            guarded(log_, "matching a change failed", [&] { offer(sub); });
        };
        for (auto* sub : coll.all) offer_guarded(*sub);
        if (by_pk)
            for (auto* sub : *by_pk) offer_guarded(*sub);
        clear_frame_slots();
    }

    void relisted(observer_state& obs, const page& pg, std::int64_t snap) {
        client_state& c = *obs.owner;
        const collection_def& def = *obs.coll->def;
        window next = to_window(c, def, pg.items);
        auto diffs = diff_window(obs.rows, next);
        for (const auto& d : diffs)
            push_frame(c, std::make_shared<const std::string>(
                              realtime_detail::websocket_observe(obs.coll->stream, obs.id, snap, to_json(d))));
        obs.rows = std::move(next);
        obs.seq = snap;
        if (obs.stale) {
            obs.stale = false;
            --stale_observers_;
        }
    }

    // Clients of a lane go to it in one batch per pass (no hand-off per client); the others
    // get deliver() each.
    void deliver_pending() {
        std::vector<std::string> expired;
        for (client_state* c : pending_) {
            c->pending = false;
            frame_list frames = std::move(c->out);
            c->out = frame_list();
            c->last_frames = frames.size();
            auto sink = c->sink.lock();
            if (!sink) {
                expired.push_back(c->id);
                continue;
            }
            if (event_lane* l = sink->lane()) {
                auto it = std::find_if(lanes_.begin(), lanes_.end(), [&](const auto& e) { return e.first == l; });
                if (it == lanes_.end()) it = lanes_.insert(lanes_.end(), {l, {}});
                it->second.push_back(lane_delivery{std::move(sink), std::move(frames)});
                continue;
            }
            guarded(log_, "delivering realtime frames failed", [&] { sink->deliver(std::move(frames)); });
        }
        pending_.clear();
        for (auto& [l, batch] : lanes_) {
            if (batch.empty()) continue;
            const std::size_t hint = batch.size();
            guarded(log_, "delivering realtime frames failed", [&] { l->deliver(std::move(batch)); });
            batch = std::vector<lane_delivery>();
            batch.reserve(hint);
        }
        if (!expired.empty()) expire(expired);
    }

    // Clients whose sink is gone without a detach.
    void expire(const std::vector<std::string>& ids) {
        {
            std::lock_guard<std::mutex> lock(s_->mu);
            for (const auto& id : ids)
                if (s_->attached.erase(id)) s_->clients.fetch_sub(1);
        }
        for (const auto& id : ids) do_detach(id);
    }

    // The log was trimmed past the cursor (this node lagged behind the others for longer than
    // realtime.node_timeout): the changes in (cursor_, floor] are gone. Every client with
    // subscriptions loses them and is closed to resync (it resumes, gets 410, lists again);
    // never a silent gap. Live queries re-list at the next snapshot, which covers the gap.
    void history_lost(std::int64_t floor) {
        std::size_t closed = 0;
        for (auto& [id, cp] : clients_) {
            client_state& c = *cp;
            for (auto& [oid, obs] : c.observers)
                if (!obs->stale) {
                    obs->stale = true;
                    ++stale_observers_;
                }
            if (c.subscriptions.empty()) continue;
            for (auto& [sid, sub] : c.subscriptions) unindex(*sub);
            c.subscriptions.clear();
            ++closed;
            if (auto sink = c.sink.lock())
                guarded(log_, "a resync callback failed", [&] { sink->resync(); });
        }
        log_.warn("the change log was trimmed past this node's position; subscribers resync",
                  {{"after", cursor_}, {"floor", floor}, {"clients", closed}});
    }

    // One pass: a batch of the log, and (when the batch reached the end of the log) the live
    // queries it touched, re-listed at the same snapshot.
    void pass() {
        std::optional<problem> failed;
        std::vector<change> changes;
        bool complete = false;
        std::int64_t snap = 0;
        std::int64_t floor = 0;
        std::vector<std::pair<observer_state*, result<page>>> lists;
        const bool read = blocking_read([&](read_txn& t) {
            auto r = t.changes_after(cursor_, opt_.batch);
            if (!r) return void(failed = std::move(r).error());
            changes = std::move(*r);
            // A hole after the cursor is usually a rolled-back append; the floor tells whether
            // the log was trimmed past this hub (trims never delete the newest row, so a
            // trimmed past cursor always leaves a hole here).
            if (!changes.empty() && changes.front().seq > cursor_ + 1) {
                auto f = t.history_floor();
                if (!f) return void(failed = std::move(f).error());
                floor = *f;
            }
            complete = changes.size() < opt_.batch;
            for (const auto& ch : changes)
                if (auto it = colls_.find(ch.collection); it != colls_.end()) it->second->touched = true;
            if (!complete) return;
            auto s = t.snapshot_seq();
            if (!s) return void(failed = std::move(s).error());
            snap = *s;
            for (auto& [name, coll] : colls_) {
                for (auto* obs : coll->observers) {
                    // A stale window (a failed re-list, a new identity) is re-listed even at
                    // its own seq: nothing else would clear it.
                    if (!obs->stale && (!coll->touched || obs->seq >= snap)) continue;
                    lists.emplace_back(obs, list_window(t, *obs->owner, *coll->def, obs->q));
                }
            }
        });
        if (!read && !failed) failed = problem::unavailable("The change log read threw.");
        if (failed) {
            log_.warn("reading the change log failed; retrying",
                      {{"after", cursor_}, {"status", failed->status}, {"detail", failed->detail}});
            retry_at_ = steady::now() + k_retry_delay;
            return;
        }

        if (floor > cursor_) history_lost(floor);
        for (const auto& ch : changes) {
            check_revocation(ch);
            fan_out(ch);
        }
        std::int64_t next = changes.empty() ? cursor_ : changes.back().seq;
        if (complete) {
            for (auto& [obs, pg] : lists) {
                if (!pg) {
                    log_.warn("re-listing a live query failed; retrying",
                              {{"observer", obs->id}, {"client", obs->owner->id}, {"status", pg.error().status}});
                    if (!obs->stale) {
                        obs->stale = true;
                        ++stale_observers_;
                    }
                    retry_at_ = steady::now() + k_retry_delay;
                    continue;
                }
                guarded(log_, "re-listing a live query failed", [&] { relisted(*obs, *pg, snap); });
            }
            for (auto& [name, coll] : colls_) coll->touched = false;
            next = std::max(next, snap);
        }
        deliver_pending();
        cursor_ = next;
        // A full batch may have ended exactly at the end of the log: only a pass that reads
        // less than a batch knows, and only it re-lists live queries.
        more_ = !complete;
        // seq() promises that everything up to it is out, live-query diffs included, so it
        // moves only with passes that reached the end of the log (it lags while catching up).
        if (complete) s_->delivered.store(cursor_);
    }

    // ---- trimming ----

    void start_trim(steady::time_point now) {
        next_trim_ = now + opt_.trim_every;
        {
            std::lock_guard<std::mutex> lock(s_->mu);
            if (s_->trim_running) return;
            s_->trim_running = true;
        }
        auto s = s_;
        const std::uint64_t history = opt_.history;
        const std::int64_t wall = now_ms();
        const std::int64_t older_than = wall - opt_.history_age.count();
        const std::int64_t alive_since = wall - opt_.node_timeout.count();
        const std::int64_t node = node_;
        db_.write(
            [s, history, older_than, node, wall, alive_since](write_txn& t) -> result<json::value> {
                // Never trim what a live node (this one included) has not delivered yet, by
                // count or by age.
                const std::int64_t own = s->delivered.load();
                auto nodes = t.node_heartbeat(node, own, wall, alive_since);
                if (!nodes) return std::move(nodes).error();
                const std::int64_t delivered = std::min(own, nodes->delivered);
                auto newest = t.snapshot_seq();
                if (!newest) return std::move(newest).error();
                std::uint64_t keep = history;
                if (*newest > delivered) keep = std::max<std::uint64_t>(keep, static_cast<std::uint64_t>(*newest - delivered));
                std::int64_t cutoff = older_than;
                auto undelivered = t.changes_after(delivered, 1);
                if (!undelivered) return std::move(undelivered).error();
                if (!undelivered->empty()) cutoff = std::min(cutoff, undelivered->front().ts);
                auto n = t.trim_changes(keep, cutoff);
                if (!n) return std::move(n).error();
                // Held back: another node's position kept rows the history limit would drop.
                const bool held = delivered < own && *newest > delivered &&
                                  static_cast<std::uint64_t>(*newest - delivered) > history;
                return json::value(json::object{{"deleted", static_cast<std::uint64_t>(*n)},
                                                {"forgotten", static_cast<std::uint64_t>(nodes->forgotten)},
                                                {"held_at", held ? json::value(delivered) : json::value(nullptr)},
                                                {"delivered", own}});
            },
            [s](result<json::value> r) {
                std::lock_guard<std::mutex> lock(s->mu);
                s->trim_running = false;
                if (!s->log) return;
                if (!r) return s->log->warn("trimming the change log failed", problem_fields(r.error()));
                trimmed(*s, r->is_object() ? r->get_object() : json::object{});
            });
    }

    // A trim's outcome, logged once per episode of a held-back trim. REQUIRES: s.mu held, s.log set.
    static void trimmed(shared_state& s, const json::object& out) {
        auto count = [&](const char* k) {
            auto it = out.find(k);
            return it != out.end() && it->value().is_uint64() ? it->value().get_uint64() : 0;
        };
        if (count("forgotten") > 0)
            s.log->warn("serve nodes stopped sending heartbeats; they no longer hold the change-log trim back",
                        {{"nodes", count("forgotten")}});
        auto held = out.find("held_at");
        const bool is_held = held != out.end() && !held->value().is_null();
        if (is_held && !s.trim_held)
            s.log->warn("a lagging serve node holds the change-log trim back",
                        {{"held_at", held->value()}, {"delivered", out.find("delivered")->value()}});
        else if (!is_held && s.trim_held)
            s.log->info("the change-log trim is no longer held back", {});
        s.trim_held = is_held;
        if (count("deleted") > 0 && s.log->enabled(log_level::debug))
            s.log->debug("trimmed the change log", {{"deleted", count("deleted")}});
    }

    store& db_;
    hub_hooks hooks_;
    hub_options opt_;
    logger& log_;
    std::shared_ptr<shared_state> s_;
    std::int64_t node_ = 0;  // this node's id in the nodes table (random per start)
    std::thread thread_;
    std::mutex stop_mu_;    // one stop() at a time
    bool started_ = false;  // start() and stop() only

    // The hub thread's (and, while it waits on a read, that read's).
    std::int64_t cursor_ = 0;
    std::unordered_map<std::string, std::unique_ptr<client_state>> clients_;
    std::unordered_map<std::string, std::unique_ptr<collection_state>> colls_;
    std::vector<client_state*> pending_;
    // Lanes seen so far with this pass's batches; a handful (one per WebSocket I/O thread).
    std::vector<std::pair<event_lane*, std::vector<lane_delivery>>> lanes_;
    std::array<std::vector<frame_ptr>, 2 * k_event_actions> dense_;
    std::vector<frame_ptr*> used_slots_;
    std::unordered_map<std::uint64_t, frame_ptr> sparse_;
    std::size_t stale_observers_ = 0;
    std::deque<replay_ref> replay_queue_;  // replays waiting for their next page read
    bool page_reading_ = false;            // a replay page is being read
    std::uint64_t replay_tokens_ = 0;
    bool more_ = false;  // the last pass read a full batch: read on without waiting for a commit
    steady::time_point next_trim_{};
    steady::time_point retry_at_{};
};

hub::hub(store& db, hub_hooks hooks, hub_options options, logger& log)
    : impl_(std::make_unique<impl>(db, std::move(hooks), options, log)) {}

hub::~hub() { stop(); }

void hub::start() { impl_->start(); }

void hub::stop() { impl_->stop(); }

std::string hub::attach(std::weak_ptr<event_sink> sink, principal who, event_encoding encoding) {
    auto id = random_client_id();
    auto& s = *impl_->s_;
    std::lock_guard<std::mutex> lock(s.mu);
    if (s.stopping) return id;
    s.attached.insert(id);
    s.clients.fetch_add(1);
    impl_->push_locked([i = impl_.get(), id, sink = std::move(sink), who = std::move(who), encoding]() mutable {
        i->do_attach(id, std::move(sink), std::move(who), encoding);
    });
    return id;
}

void hub::detach(const std::string& client) {
    auto& s = *impl_->s_;
    std::lock_guard<std::mutex> lock(s.mu);
    if (!s.attached.erase(client)) return;
    s.clients.fetch_sub(1);
    impl_->push_locked([i = impl_.get(), client] { i->do_detach(client); });
}

void hub::set_principal(const std::string& client, principal who) {
    std::lock_guard<std::mutex> lock(impl_->s_->mu);
    impl_->push_locked([i = impl_.get(), client, who = std::move(who)]() mutable {
        i->do_set_principal(client, std::move(who));
    });
}

void hub::subscribe(const std::string& client, subscribe_request req, std::function<void(result<subscribed>)> done) {
    auto d = std::make_shared<std::function<void(result<subscribed>)>>(std::move(done));
    impl_->push_answered(
        [i = impl_.get(), client, req = std::move(req), d]() mutable { i->do_subscribe(client, std::move(req), *d); },
        [d](problem p) {
            if (*d) (*d)(std::move(p));
        });
}

void hub::unsubscribe(const std::string& client, const std::string& subscription,
                      std::function<void(result<void>)> done) {
    auto d = std::make_shared<std::function<void(result<void>)>>(std::move(done));
    impl_->push_answered([i = impl_.get(), client, subscription, d] { i->do_unsubscribe(client, subscription, *d); },
                         [d](problem p) {
                             if (*d) (*d)(std::move(p));
                         });
}

void hub::observe(const std::string& client, observe_request req, std::function<void(result<observed>)> done) {
    auto d = std::make_shared<std::function<void(result<observed>)>>(std::move(done));
    impl_->push_answered(
        [i = impl_.get(), client, req = std::move(req), d]() mutable { i->do_observe(client, std::move(req), *d); },
        [d](problem p) {
            if (*d) (*d)(std::move(p));
        });
}

void hub::unobserve(const std::string& client, const std::string& observer, std::function<void(result<void>)> done) {
    auto d = std::make_shared<std::function<void(result<void>)>>(std::move(done));
    impl_->push_answered([i = impl_.get(), client, observer, d] { i->do_unobserve(client, observer, *d); },
                         [d](problem p) {
                             if (*d) (*d)(std::move(p));
                         });
}

std::int64_t hub::seq() const noexcept { return impl_->s_->delivered.load(); }

std::size_t hub::clients() const noexcept { return impl_->s_->clients.load(); }

std::size_t hub::replays() const noexcept { return impl_->s_->replays.load(); }

std::uint64_t hub::replayed_events() const noexcept { return impl_->s_->replayed.load(); }

}  // namespace livebase
