#pragma once
/// The realtime hub (realtime.md): turns committed changes from the change log into events for
/// subscriptions and diffs for live queries, in commit order, and replays history for resumes.
/// Doors (WebSocket sessions, SSE streams) attach as clients with an event_sink.
#include <livebase/auth/auth.hpp>
#include <livebase/core/log.hpp>
#include <livebase/core/principal.hpp>
#include <livebase/core/result.hpp>
#include <livebase/schema/collection.hpp>
#include <livebase/schema/query.hpp>
#include <livebase/store/store.hpp>

#include <chrono>
#include <cstdint>
#include <functional>
#include <memory>
#include <optional>
#include <string>
#include <vector>

namespace livebase {

/// How a client's frames are encoded. Frames are serialized once per (change, encoding,
/// action, subscription id) and shared between clients as `shared_ptr<const std::string>`.
enum class event_encoding {
    /// One WebSocket text frame each, realtime.md "Events":
    /// {"stream": c, "payload": {"action", "pk", "data", "seq", "subscription"}} and, for live
    /// queries, {"stream": c, "payload": {"action": "observe", "observer", "seq", "data": {...}}}.
    websocket,
    /// One Server-Sent Event each (realtime.md "SSE"): "id: <seq>\nevent: <action>\ndata:
    /// <record json>\n\n" (no chunk framing: the HTTP session adds it). Live queries are not
    /// offered to SSE clients.
    sse,
};

class event_sink;

/// One client's frames of a pass, as handed to its lane.
struct lane_delivery {
    std::shared_ptr<event_sink> sink;
    std::vector<std::shared_ptr<const std::string>> frames;
};

/// A group of sinks that take their frames together: the WebSocket door spreads its sockets
/// over lanes (one per I/O thread), and the hub hands each lane one batch per pass instead of
/// calling deliver() per client. The lane then gives each sink its frames, in batch order, on
/// its own thread.
class event_lane {
public:
    virtual ~event_lane() = default;
    /// This pass's frames for the lane's clients (each client once). Called on the hub thread
    /// only; must not block and must not call the hub. The same rules as event_sink::deliver
    /// apply to each entry: frames in order, after those of earlier calls and of earlier
    /// deliver() calls on the same sink.
    virtual void deliver(std::vector<lane_delivery> batch) = 0;
};

/// Receives one client's frames. Implemented by WebSocket sessions and SSE streams.
class event_sink {
public:
    virtual ~event_sink() = default;
    /// Frames for this client, in the order they must be sent. Called on the hub thread only
    /// (never concurrently with itself); must not block and must not call the hub. A sink that
    /// cannot keep up closes its client (4008) and the door calls hub::detach.
    virtual void deliver(std::vector<std::shared_ptr<const std::string>> frames) = 0;
    /// The credentials this client was authorized with ended (logout, token revocation,
    /// password change, a disabled or deleted user: realtime.md "Flow control and lifecycle").
    /// The hub has already reset the client's principal to anonymous, so later frames are
    /// filtered as for an anonymous client; the door closes the connection (WebSocket: 4401;
    /// an SSE stream ends). Called on the hub thread, at most once per revocation that names
    /// the client, between deliver() calls; must not block and must not call the hub.
    virtual void revoked() {}
    /// The lane this sink's live events go through, or null for deliver(). Asked on the hub
    /// thread at every pass that has frames for the sink; a non-null lane must outlive the
    /// sink's shared_ptr (lane_delivery holds one) and stay the same for the sink's life.
    /// Replays of a resume still come through deliver().
    virtual event_lane* lane() noexcept { return nullptr; }
    /// Asks to be told when the client's send queue has room again: `ready` is called once,
    /// when what is queued for the client (everything delivered and not yet written) is at or
    /// below a quarter of its bound; at once (possibly before this returns) when it already
    /// is. The hub reads a resume's next page only then, so a replay is paced by the socket
    /// and counted against its send budget. `ready` may run on any thread; it only queues a
    /// command to the hub. A sink that closes may drop it uncalled. Called on the hub thread.
    /// The default calls it at once (a sink without a queue of its own).
    virtual void when_ready(std::function<void()> ready) { ready(); }
    /// The hub cannot go on with a resume of this client without a gap: the history it still
    /// had to replay was trimmed, it fell more than max_replay changes behind the log, or the
    /// log could not be read; or the change log was trimmed past what the hub had read (this
    /// node lagged behind the others for longer than realtime.node_timeout), so events this
    /// client should have had are gone. The hub has already dropped the subscription(s); the door closes
    /// the client as a slow consumer (WebSocket 4008; an SSE stream ends after what was
    /// delivered), and the client resumes from the last seq it got (410 if that history is
    /// gone: it lists again). Called on the hub thread; must not block nor call the hub.
    virtual void resync() {}
};

/// What the hub needs from the layers above it; the composition root fills these in.
struct hub_hooks {
    /// The streamable collection called `name`, or null (unknown, or internal such as
    /// idempotency_keys). Includes the built-in `tasks` collection. Required.
    std::function<const collection_def*(std::string_view name)> find_collection;
    /// The record as clients see it (present_record, or present_task for tasks). Required.
    std::function<json::object(const collection_def&, const json::object& stored)> present;
    /// Hooks may run on the hub thread or on a store reader thread (resumes): thread-safe.
    /// Per-event authorization: may `who` retrieve `stored` now? Asked per subscriber per
    /// event, for replayed events, for pk subscriptions (false answers 404) and for live-query
    /// rows. Unset: everyone may see everything.
    std::function<bool(const principal& who, const collection_def&, const json::object& stored)>
        may_see;
    /// Narrows a live query to the records `who` may retrieve before its window is listed
    /// (first list and every re-list), so that limits, offsets and counts are those of the
    /// caller's own list; false: the caller may retrieve no record, the window stays empty.
    /// Rows still pass may_see. Called while the hub lists (on a store reader thread, the hub
    /// thread waiting for it): thread-safe. Unset: rules.hpp narrow_query.
    std::function<bool(const principal& who, const collection_def&, query& q)> narrow;
    /// Asked on the hub thread with every change a pass reads (changes of every collection,
    /// from every process writing to the store), before that change's events are matched:
    /// whose credentials the change ended (authenticator::on_change). Every client whose
    /// principal has the revocation's non-empty user_id, or its non-empty token_id, is reset to
    /// anonymous and its sink's revoked() is called. Unset: nothing is ever revoked.
    std::function<std::optional<revocation>(const change&)> on_change;
};

struct hub_options {
    std::size_t batch = 1024;                       ///< changes read from the log per pass
    std::uint64_t history = 100000;                 ///< realtime.history: changes kept for resume
    std::chrono::milliseconds history_age{24 * 3600 * 1000};  ///< realtime.history_age
    /// How often the log is trimmed and this node's heartbeat written (at most a quarter of
    /// node_timeout).
    std::chrono::milliseconds trim_every{60 * 1000};
    /// realtime.node_timeout: a node whose heartbeat is older no longer holds the trim back.
    std::chrono::milliseconds node_timeout{5 * 60 * 1000};
    std::size_t max_subscriptions = 1000;           ///< realtime.max_subscriptions, per client
                                                    ///< (subscriptions + live queries)
    /// How far behind the hub's cursor (in seqs) a resume may start; more answers 410. A
    /// paused replay that falls further behind than this gets event_sink::resync().
    std::size_t max_replay = 100000;
    /// A resume is replayed in pages of at most this many events or this many bytes of
    /// encoded frames (whichever comes first; a page holds at least one event), each read on
    /// a store reader. One page is read at a time across the hub.
    std::size_t replay_page_events = 256;
    std::size_t replay_page_bytes = 1u << 20;
};

/// A subscription as the doors decode it (realtime.md "subscribe").
struct subscribe_request {
    std::string collection;
    std::string pk;                        ///< "" = every record of the collection
    std::vector<std::string> actions;      ///< subset of create/update/delete; empty = all
    json::object filter;                   ///< REST lookups as JSON ({"brand": "Ford", ...}); {} = all
    std::optional<std::int64_t> since;     ///< replay changes with seq > since before going live
};

struct subscribed {
    std::string subscription;  ///< "s-<n>", unique per client
    /// The hub's position when it answered. Without `since`, events have seq > this. With
    /// `since`, the replay starts after `since` and runs on (past this seq, while the log
    /// grows) until it meets the live stream: one sequence either way, in seq order, without
    /// gap or duplicate.
    std::int64_t seq = 0;
};

/// A live query (realtime.md "observe"): `data` as the WebSocket frame carries it:
/// {"filter", "ordering", "limit", "offset"} (parse_query_json).
struct observe_request {
    std::string collection;
    json::object query;
    /// Set by a REST list with `?observe=<subscriber>`: who asks. Only the client's own
    /// principal may attach a live query to it (the same user; for an anonymous client, an
    /// anonymous caller from the same address: principal::owner_key()); anyone else gets the
    /// 404 of an unknown client.
    std::optional<principal> caller;
};

struct observed {
    std::string observer;              ///< "o-<n>", unique per client
    std::int64_t seq = 0;              ///< the snapshot the items are at
    json::array items;                 ///< presented records, in window order
    std::int64_t count = 0;            ///< matching rows ignoring limit/offset at that seq
};

/// The hub. Thread-safe: every public method may be called from any thread. One hub thread
/// reads the change log, matches, encodes and delivers; commands (subscribe, observe, ...) are
/// queued to it, so their `done` callbacks run on the hub thread, in the order of events:
/// `done` of subscribe/observe runs before any event of the new subscription/observer is
/// passed to deliver(), and `done` of unsubscribe/unobserve/detach after the last one. A door
/// that queues its reply from inside `done` therefore orders replies and events correctly.
/// The store and logger must outlive the hub; the hub sets the store's on_commit listener.
class hub {
public:
    hub(store& db, hub_hooks hooks, hub_options options, logger& log);
    ~hub();  ///< stop()
    hub(const hub&) = delete;
    hub& operator=(const hub&) = delete;

    /// Starts the hub thread at the store's last seq. REQUIRES: called once, before writes
    /// that clients should see.
    void start();
    /// Stops the hub thread; queued commands get a 503 problem. Idempotent.
    void stop();

    /// Registers a client; returns its subscriber id (random, unguessable; realtime.md
    /// "hello"), also the `?observe=` handle of REST lists. The hub keeps only a weak pointer.
    std::string attach(std::weak_ptr<event_sink> sink, principal who, event_encoding encoding);
    /// Drops a client and everything it subscribed. Unknown ids are ignored.
    void detach(const std::string& client);
    /// Changes the identity future events and live-query windows are authorized against
    /// (login/logout). Queued like the commands: a subscribe or observe called after it (from
    /// any thread, once it returned) is planned with the new identity.
    void set_principal(const std::string& client, principal who);

    /// Problems: 404 unknown client, unknown collection or (pk subscriptions) a record that is
    /// missing or not visible to the client; 400 bad action names or filter (naming the key);
    /// 410 when `since` is below the history floor, above the log's last seq or more than
    /// max_replay behind it; 429 over max_subscriptions. A `since` the hub has not read yet but
    /// the log holds (the client saw it on another node) waits for the hub to read up to it
    /// (503 if the log cannot be read meanwhile). With `since`, the replay follows `done` in
    /// pages (hub_options::replay_page_events/bytes), each after the sink's when_ready().
    /// Sinks see the subscription's events in seq order, replayed then live, with no gap and
    /// no duplicate, or resync() when that cannot be kept.
    void subscribe(const std::string& client, subscribe_request req,
                   std::function<void(result<subscribed>)> done);
    /// 404 when the client has no such subscription.
    void unsubscribe(const std::string& client, const std::string& subscription,
                     std::function<void(result<void>)> done);

    /// Lists the window now and keeps it: later changes arrive as added/changed/removed/moved
    /// diffs that turn the items into what a fresh list returns at each diff's seq. Problems:
    /// 404 unknown client (or one `req.caller` may not use) or collection; 400 bad query; 429
    /// over max_subscriptions; 400 for an SSE client.
    void observe(const std::string& client, observe_request req,
                 std::function<void(result<observed>)> done);
    void unobserve(const std::string& client, const std::string& observer,
                   std::function<void(result<void>)> done);

    /// Everything up to this seq has been handed to sinks, live-query diffs included. Advances
    /// only after a pass that reached the end of the log, so while the hub catches up it lags
    /// the events already delivered.
    std::int64_t seq() const noexcept;
    /// Attached clients.
    std::size_t clients() const noexcept;
    /// Resumes whose replay is still running (paged, not yet live).
    std::size_t replays() const noexcept;
    /// Events handed to sinks by replays since start.
    std::uint64_t replayed_events() const noexcept;

private:
    struct impl;
    std::unique_ptr<impl> impl_;
};

}  // namespace livebase
