// Resumes (subscribe with `since`) are replayed in pages, each read and encoded on a store
// reader while the hub thread goes on with passes. The subscription stays out of the indexes
// (passes do not offer it changes) until its replay reaches the hub's cursor: the replay reads
// what arrives meanwhile from the log, so live and replayed events meet without a gap or a
// duplicate, and nothing but one page per replay is ever held. The next page is read only
// when the client's sink says its send queue has room (event_sink::when_ready).
#include "realtime/hub_impl.hpp"

#include <algorithm>

namespace livebase {

namespace {

// Changes one replay page read scans at most (a filter that matches little must not make one
// read long), and changes it asks the store for at once at most. A page asks first for as
// many as the replay's previous page used (big records fill a page with a few; the first page
// asks for k_first_chunk), then twice as many each time, so it fetches few rows it does not use.
constexpr std::size_t k_page_scan = 4096;
constexpr std::size_t k_page_chunk = 256;

}  // namespace

// Queues the replay's next page. Pages are read one at a time across the hub, so replays
// never hold more than one of the store's readers (passes and REST need the others).
void hub::impl::want_page(subscription_state& sub) {
    replay_queue_.push_back(replay_ref{sub.owner->id, sub.id, sub.replay->token});
    pump_replays();
}

auto hub::impl::find_replay(const replay_ref& r) -> subscription_state* {
    client_state* c = find_client(r.client);
    if (!c) return nullptr;
    auto it = c->subscriptions.find(r.subscription);
    if (it == c->subscriptions.end()) return nullptr;
    subscription_state& sub = *it->second;
    if (!sub.replay || sub.replay->token != r.token) return nullptr;
    return &sub;
}

void hub::impl::pump_replays() {
    while (!page_reading_ && !replay_queue_.empty()) {
        replay_ref ref = std::move(replay_queue_.front());
        replay_queue_.pop_front();
        if (auto* sub = find_replay(ref)) read_page(*sub, std::move(ref));
    }
}

// Starts one page read on a store reader; its result comes back as a command (on_page).
void hub::impl::read_page(subscription_state& sub, replay_ref ref) {
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
auto hub::impl::replay_page(read_txn& t, const page_job& job) const -> page_result {
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

void hub::impl::on_page(const page_job& job, page_result page) {
    page_reading_ = false;
    if (auto* sub = find_replay(job.ref))
        guarded(log_, "a replay page failed", [&] { replayed_page(*sub, job, page); });
    pump_replays();
}

void hub::impl::replayed_page(subscription_state& sub, const page_job& job, page_result& page) {
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
    next_page_when_ready(*sink, replay_ref{c.id, sub.id, sub.replay->token});
}

// The next page once the client's queue has room. The notice may come from any thread,
// after the hub stopped or the subscription went: it only queues a command.
void hub::impl::next_page_when_ready(event_sink& sink, replay_ref ref) {
    auto s = s_;
    guarded(log_, "a realtime callback failed", [&] {
        sink.when_ready([s, self = this, ref = std::move(ref)] {
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
void hub::impl::go_live(subscription_state& sub) {
    sub.replay.reset();
    s_->replays.fetch_sub(1);
    index(sub);
    if (log_.enabled(log_level::debug))
        log_.debug("replay caught up", {{"client", sub.owner->id}, {"subscription", sub.id}, {"seq", cursor_}});
}

// The replay cannot go on without a gap: the subscription goes and the door closes the
// client, which resumes (or lists again on 410). One log line per client and episode.
void hub::impl::resync(subscription_state& sub, const char* why) {
    client_state& c = *sub.owner;
    log_.info("closing a resuming client for a resync",
              {{"client", c.id}, {"subscription", sub.id}, {"after", sub.replay->pos}, {"reason", why}});
    std::weak_ptr<event_sink> weak = c.sink;
    const std::string id = sub.id;
    unindex(sub);
    c.subscriptions.erase(id);
    if (auto sink = weak.lock()) guarded(log_, "a resync callback failed", [&] { sink->resync(); });
}

}  // namespace livebase
