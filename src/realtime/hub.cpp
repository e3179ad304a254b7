// The realtime hub. One thread owns every client, subscription and live query; the public
// methods only queue commands to it. A pass reads the change log after the hub's cursor in one
// read transaction (plus, when it reached the end of the log, the re-lists of touched live
// queries at that snapshot), then matches, encodes and delivers outside the store. The write
// path only learns of commits through a non-blocking listener.
//
// This file: the public face, the command queue, the hub thread's loop, start and stop. The
// other members of hub::impl live in the files hub_impl.hpp lists.
#include "realtime/hub_impl.hpp"

#include <sodium.h>

#include <algorithm>
#include <future>
#include <limits>

namespace livebase {

namespace {

// Commands that answer through `done` wait in a bounded queue; beyond it they get 503 at once.
// attach/detach/set_principal have no answer to refuse with, so they are always queued; doors
// make them a few times per socket (connect, login/logout, close), which bounds them.
constexpr std::size_t k_max_commands = 100000;

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

}  // namespace

hub::impl::impl(store& db, hub_hooks hooks, hub_options options, logger& log)
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

// Queues a command that answers through `fail`/its own `done`; refused (503 through
// `fail`, on this thread) when stopped or when too many such commands wait.
void hub::impl::push_answered(std::function<void()> run, std::function<void(problem)> fail) {
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
void hub::impl::push_locked(std::function<void()> run) {
    if (s_->stopping) return;
    s_->commands.push_back(command{std::move(run), {}});
    s_->cv.notify_one();
}

void hub::impl::start() {
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

void hub::impl::stop() {
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

void hub::impl::fail_pending() {
    std::deque<command> left;
    {
        std::lock_guard<std::mutex> lock(s_->mu);
        left.swap(s_->commands);
        s_->answered_commands = 0;
    }
    for (auto& c : left)
        if (c.fail) guarded(log_, "a realtime callback failed", [&] { c.fail(stopped_problem()); });
}

void hub::impl::run() {
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
bool hub::impl::blocking_read(const std::function<void(read_txn&)>& fn) {
    std::promise<bool> done;
    auto f = done.get_future();
    db_.read([&](read_txn& t) { done.set_value(guarded(log_, "a realtime read failed", [&] { fn(t); })); });
    return f.get();
}

auto hub::impl::collection(const collection_def& def) -> collection_state& {
    auto& slot = colls_[def.name];
    if (!slot) {
        slot = std::make_unique<collection_state>();
        slot->def = &def;
        slot->stream = realtime_detail::json_string(def.name);
    }
    return *slot;
}

auto hub::impl::find_client(const std::string& id) -> client_state* {
    auto it = clients_.find(id);
    return it == clients_.end() ? nullptr : it->second.get();
}


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
