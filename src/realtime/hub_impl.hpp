#pragma once
// The hub's private side: the state its thread owns and the impl class whose members the
// files of src/realtime share. Which file holds what:
//   hub.cpp            the public face, the command queue, the hub thread's loop, start and stop
//   clients.cpp        attach, detach, expiry, identity changes and revocations
//   subscriptions.cpp  subscribe (its checks, the catch-up to a resume's seq), unsubscribe, indexes
//   replay.cpp         resumes replayed in pages read on a store reader
//   observers.cpp      live queries: observe, unobserve, windows and their re-lists
//   feed.cpp           a pass over the change log: read, match, encode
//   delivery.cpp       frames shared per pass and handed to sinks and lanes
//   trim.cpp           this node's heartbeat and the change-log trim
#include <livebase/realtime/hub.hpp>

#include "realtime/frames.hpp"

#include <livebase/realtime/event_filter.hpp>
#include <livebase/realtime/live_query.hpp>

#include <array>
#include <atomic>
#include <chrono>
#include <condition_variable>
#include <cstdint>
#include <deque>
#include <exception>
#include <functional>
#include <memory>
#include <mutex>
#include <optional>
#include <string>
#include <string_view>
#include <thread>
#include <type_traits>
#include <unordered_map>
#include <unordered_set>
#include <utility>
#include <vector>

namespace livebase::realtime_detail {

using frame_ptr = std::shared_ptr<const std::string>;
using frame_list = std::vector<frame_ptr>;
using steady = std::chrono::steady_clock;

// Changes the first page of a replay asks the store for (replay.cpp).
constexpr std::size_t k_first_chunk = 16;

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

}  // namespace livebase::realtime_detail

namespace livebase {

struct hub::impl {
    using change_text = realtime_detail::change_text;
    using frame_ptr = realtime_detail::frame_ptr;
    using frame_list = realtime_detail::frame_list;
    using steady = realtime_detail::steady;
    using command = realtime_detail::command;
    using shared_state = realtime_detail::shared_state;
    using replay_state = realtime_detail::replay_state;
    using replay_ref = realtime_detail::replay_ref;
    using page_job = realtime_detail::page_job;
    using page_result = realtime_detail::page_result;
    using subscription_state = realtime_detail::subscription_state;
    using observer_state = realtime_detail::observer_state;
    using client_state = realtime_detail::client_state;
    using collection_state = realtime_detail::collection_state;

    // Subscriptions numbered below this share frames through a flat table; above, a hash map.
    static constexpr std::uint64_t k_dense_slots = 1024;

    impl(store& db, hub_hooks hooks, hub_options options, logger& log);

    // Runs a callback of a layer above (hooks, done, deliver) so that its exception cannot
    // take the hub thread down.
    template <class Fn>
    static bool guarded(logger& log, std::string_view what, Fn&& fn) {
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

    // Answers a command through its `done`, if it has one.
    template <class T>
    void answer(const std::function<void(result<T>)>& done, std::type_identity_t<result<T>> r,
                std::string_view what) {
        if (done) guarded(log_, what, [&] { done(std::move(r)); });
    }

    // ---- public side (any thread): hub.cpp ----

    void push_answered(std::function<void()> run, std::function<void(problem)> fail);
    void push_locked(std::function<void()> run);
    void start();
    void stop();
    void fail_pending();

    // ---- the hub thread: hub.cpp ----

    void run();
    [[nodiscard]] bool blocking_read(const std::function<void(read_txn&)>& fn);
    collection_state& collection(const collection_def& def);
    client_state* find_client(const std::string& id);

    // ---- clients: clients.cpp ----

    void do_attach(std::string id, std::weak_ptr<event_sink> sink, principal who, event_encoding enc);
    void do_detach(const std::string& id);
    void expire(const std::vector<std::string>& ids);
    void do_set_principal(const std::string& client, principal who);
    void identity_changed(client_state& c);
    void revoke(const revocation& r);
    void check_revocation(const change& ch);
    std::size_t streams_of(const client_state& c) const;
    problem too_many() const;

    // ---- subscriptions: subscriptions.cpp ----

    void do_subscribe(const std::string& client, subscribe_request req,
                      const std::function<void(result<subscribed>)>& done);
    std::optional<problem> catch_up_to(std::int64_t since);
    std::optional<problem> check_subscription(const client_state& c, const collection_def& def,
                                              const subscribe_request& req);
    std::optional<problem> check_record(read_txn& t, const client_state& c, const collection_def& def,
                                        const std::string& pk) const;
    std::optional<problem> check_history(read_txn& t, std::int64_t since, std::int64_t upto) const;
    subscription_state& add_subscription(client_state& c, collection_state& coll, event_filter filter,
                                         std::optional<std::int64_t> replay_since);
    void do_unsubscribe(const std::string& client, const std::string& id,
                        const std::function<void(result<void>)>& done);
    void index(subscription_state& sub);
    void unindex(subscription_state& sub);

    // ---- paged replays: replay.cpp ----

    void want_page(subscription_state& sub);
    subscription_state* find_replay(const replay_ref& r);
    void pump_replays();
    void read_page(subscription_state& sub, replay_ref ref);
    page_result replay_page(read_txn& t, const page_job& job) const;
    void on_page(const page_job& job, page_result page);
    void replayed_page(subscription_state& sub, const page_job& job, page_result& page);
    void next_page_when_ready(event_sink& sink, replay_ref ref);
    void go_live(subscription_state& sub);
    void resync(subscription_state& sub, const char* why);

    // ---- live queries: observers.cpp ----

    void do_observe(const std::string& client, observe_request req,
                    const std::function<void(result<observed>)>& done);
    void do_unobserve(const std::string& client, const std::string& id,
                      const std::function<void(result<void>)>& done);
    void unindex(observer_state& obs);
    result<page> list_window(read_txn& t, const client_state& c, const collection_def& def,
                             const query& q) const;
    window to_window(const client_state& c, const collection_def& def,
                     const std::vector<json::object>& items) const;
    void relisted(observer_state& obs, const page& pg, std::int64_t snap);
    void mark_stale(observer_state& obs);

    // ---- passes over the change log: feed.cpp ----

    void pass();
    void history_lost(std::int64_t floor);
    void fan_out(const change& ch);
    bool visible(const principal& who, const collection_def& def, const json::object& stored) const;
    bool visible(const client_state& c, const collection_def& def, const json::object& stored) const;
    change_text encode_change(const collection_def& def, const std::string& stream, const change& ch) const;
    change_text encode_change(const collection_state& coll, const change& ch) const;

    // ---- delivery: delivery.cpp ----

    frame_ptr& frame_slot(event_encoding enc, event_action a, std::uint64_t number);
    void clear_frame_slots();
    void push_frame(client_state& c, const frame_ptr& f);
    void deliver_pending();

    // ---- trimming: trim.cpp ----

    void register_node();
    void start_trim(steady::time_point now);
    static void trimmed(shared_state& s, const json::object& out);

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

}  // namespace livebase
