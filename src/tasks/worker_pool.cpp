#include <livebase/tasks/worker_pool.hpp>

#include "tasks/command_runner.hpp"

#include <livebase/core/clock.hpp>
#include <livebase/core/ulid.hpp>

#include <unistd.h>

#include <algorithm>
#include <stdexcept>
#include <utility>

namespace livebase {

namespace {
using steady = std::chrono::steady_clock;

problem timed_out_problem() {
    return problem::make(504, "/problems/task-timeout", "Task timed out",
                        "The attempt did not finish within its timeout.");
}

std::string default_prefix() {
    char host[256] = {};
    if (::gethostname(host, sizeof host - 1) != 0) host[0] = '\0';
    return std::string(host) + ":" + std::to_string(::getpid()) + ":" + make_ulid().substr(16);
}
}  // namespace

/// Finishes a task inside the write of the operation it runs (see task_finish).
class queue_finish final : public task_finish {
public:
    queue_finish(task_queue& q, std::string id, std::string worker)
        : queue_(q), id_(std::move(id)), worker_(std::move(worker)) {}
    result<void> in_txn(write_txn& t, const outcome& out) override {
        auto r = task_queue::complete_in(t, id_, worker_, out, queue_.now());
        if (!r) return std::move(r).error();
        return {};
    }

private:
    task_queue& queue_;
    std::string id_, worker_;
};

/// The task_context of one running attempt. Progress calls record a pending patch under mu_;
/// the maintenance thread (or the final flush) writes it. Flags are atomics read anywhere.
class worker_pool::context final : public task_context {
public:
    context(task_queue& queue, json::object task, std::string worker, std::chrono::milliseconds timeout)
        : queue_(queue),
          worker_(std::move(worker)),
          id_(get_string(task, "id")),
          kind_(get_string(task, "kind")),
          attempt_(static_cast<int>(get_int(task, "attempt").value_or(1))),
          deadline_(steady::now() + timeout) {
        if (auto in = task.find("input"); in != task.end()) input_ = in->value();
        if (auto st = task.find("steps"); st != task.end() && st->value().is_array())
            steps_ = st->value().get_array();
        if (auto rq = task.find("request"); rq != task.end() && rq->value().is_object()) {
            if (auto w = rq->value().get_object().find("who");
                w != rq->value().get_object().end() && w->value().is_object()) {
                who_.user_id = std::string(get_string(w->value().get_object(), "user_id"));
                auto admin = w->value().get_object().find("admin");
                who_.admin = admin != w->value().get_object().end() && admin->value().is_bool() &&
                             admin->value().get_bool();
            }
        }
        if (who_.user_id.empty()) {
            auto owner = get_string(task, "owner");
            if (!owner.starts_with(k_anonymous_owner_prefix)) who_.user_id = std::string(owner);
        }
    }

    const std::string& id() const noexcept override { return id_; }
    const std::string& kind() const noexcept override { return kind_; }
    const json::value& input() const noexcept override { return input_; }
    int attempt() const noexcept override { return attempt_; }
    const principal& who() const noexcept override { return who_; }

    void progress(std::optional<double> percent) override {
        std::lock_guard lock(mu_);
        patch_.progress = percent ? json::value(std::clamp(*percent, 0.0, 100.0)) : json::value(nullptr);
    }
    void message(std::string_view text) override {
        std::lock_guard lock(mu_);
        patch_.message = json::value(json::string(text));
    }
    void eta(std::optional<double> seconds) override {
        std::lock_guard lock(mu_);
        patch_.eta = seconds ? json::value(std::max(*seconds, 0.0)) : json::value(nullptr);
    }
    void step(std::string_view name, std::string_view state) override {
        std::lock_guard lock(mu_);
        bool found = false;
        for (auto& s : steps_) {
            if (s.is_object() && get_string(s.get_object(), "name") == name) {
                s.get_object()["state"] = state;
                found = true;
            }
        }
        if (!found) steps_.push_back(json::object{{"name", name}, {"state", state}});
        patch_.steps = steps_;
    }
    bool cancelled() const noexcept override {
        return cancel_requested_.load() || timed_out_.load() || released_.load() || lost_.load();
    }
    std::shared_ptr<task_finish> finisher() override {
        std::lock_guard lock(mu_);
        if (!finish_) finish_ = std::make_shared<queue_finish>(queue_, id_, worker_);
        return finish_;
    }
    /// The task was finished by the operation's own write.
    bool finished_in_write() const {
        std::lock_guard lock(mu_);
        return finish_ && finish_->committed();
    }

    /// Takes the pending patch (empty when nothing changed since the last take).
    task_progress take_patch() {
        std::lock_guard lock(mu_);
        return std::exchange(patch_, task_progress{});
    }
    bool dirty() const {
        std::lock_guard lock(mu_);
        return !patch_.empty();
    }

    task_queue& queue_;
    const std::string worker_;
    std::atomic<bool> cancel_requested_{false};
    std::atomic<bool> timed_out_{false};
    std::atomic<bool> released_{false};  ///< handed back by stop(): record nothing
    std::atomic<bool> lost_{false};      ///< the lease is no longer ours
    std::mutex flush_mu_;                ///< one store write of this task's progress at a time
    steady::time_point last_flush_ = steady::now();
    steady::time_point last_heartbeat_ = steady::now();

private:
    std::string id_, kind_;
    int attempt_;
    json::value input_;
    principal who_;
    const steady::time_point deadline_;
    mutable std::mutex mu_;
    task_progress patch_;
    json::array steps_;
    std::shared_ptr<task_finish> finish_;

public:
    bool past_deadline() const noexcept { return steady::now() >= deadline_; }
};

worker_pool::worker_pool(task_queue& queue, worker_pool_options options)
    : queue_(queue), options_(std::move(options)) {
    prefix_ = options_.worker_id.empty() ? default_prefix() : options_.worker_id;
}

worker_pool::~worker_pool() { stop(); }

void worker_pool::register_handler(std::string kind, task_handler handler, task_kind_options options) {
    kind_names_.push_back(kind);
    kinds_[std::move(kind)] = kind_entry{std::move(handler), std::nullopt, options};
}

void worker_pool::register_command(command_kind_def def) {
    task_kind_options o;
    o.max_attempts = def.max_attempts;
    o.timeout = def.timeout;
    o.priority = def.priority;
    auto name = def.name;
    kind_names_.push_back(name);
    kinds_[std::move(name)] = kind_entry{{}, std::move(def), o};
}

bool worker_pool::known_kind(std::string_view kind) const { return kinds_.find(kind) != kinds_.end(); }

result<task_submission> worker_pool::make_submission(std::string_view kind, json::value input,
                                                     json::value request, const principal& who) const {
    auto it = kinds_.find(kind);
    if (it == kinds_.end()) return problem::bad_request("Unknown task kind: " + std::string(kind) + ".");
    task_submission s;
    s.kind = std::string(kind);
    s.input = std::move(input);
    s.request = std::move(request);
    s.who = who;
    s.max_attempts = std::max(1, it->second.options.max_attempts.value_or(options_.max_attempts));
    s.timeout = it->second.options.timeout.value_or(options_.timeout);
    s.priority = it->second.options.priority.value_or(0);
    return s;
}

result<json::object> worker_pool::submit(std::string_view kind, json::value input, json::value request,
                                         const principal& who) {
    auto s = make_submission(kind, std::move(input), std::move(request), who);
    if (!s) return std::move(s).error();
    return queue_.submit(*s);
}

void worker_pool::start() {
    std::lock_guard lock(lifecycle_mu_);
    if (started_) return;
    started_ = true;
    served_.clear();
    for (const auto& k : kind_names_)
        if (!options_.serves || options_.serves(k)) served_.push_back(k);
    limited_ = !options_.limits.empty();
    if (limited_) options_.prefetch = 0;  // a claimed task counts as running: claim only what runs
    for (std::size_t i = 0; i < options_.workers; ++i) workers_.emplace_back([this] { worker_main(); });
    maintenance_ = std::thread([this] { maintenance_main(); });
    if (options_.workers > 0 && !limited_) queue_.add_intake(this);
}

std::size_t worker_pool::running() const {
    std::lock_guard lock(mu_);
    return running_.size();
}

bool worker_pool::serves_kind(std::string_view kind) const {
    return known_kind(kind) && (!options_.serves || options_.serves(kind));
}

std::optional<claim_slot> worker_pool::reserve(std::string_view kind) {
    if (limited_ || !serves_kind(kind)) return std::nullopt;
    std::lock_guard lock(mu_);
    // Tasks that may be waiting in the store go first: the submission is stored pending.
    if (stopping_ || handing_back_ || backlog_ || claiming_) return std::nullopt;
    // An idle thread, or, while tasks run short, a place in the prefetch.
    std::size_t room = idle_;
    if (average_run_us_ < static_cast<double>(options_.prefetch_below.count())) room += options_.prefetch;
    if (room <= reserved_ + ready_.size()) return std::nullopt;
    ++reserved_;
    return claim_slot{prefix_, options_.lease};
}

void worker_pool::deliver(json::object task) {
    std::lock_guard lock(mu_);
    --reserved_;
    if (handing_back_) {
        hand_back({std::move(task)});
    } else {
        ready_.push_back({std::move(task), steady::now()});
    }
    if (stopping_) cv_.notify_all();  // stop() waits for reservations
    else cv_.notify_one();
}

void worker_pool::unreserve() {
    std::lock_guard lock(mu_);
    --reserved_;
    cv_.notify_all();
}

void worker_pool::work_available() {
    std::lock_guard lock(mu_);
    ++work_gen_;
    backlog_ = true;
    cv_.notify_one();  // one idle thread claims for every idle one
}

void worker_pool::hand_back(std::vector<json::object> tasks) {
    for (auto& t : tasks) {
        ++writes_in_flight_;
        std::string id(get_string(t, "id"));
        queue_.release_async(id, prefix_, [this, id](result<json::object> r) {
            if (!r)
                log(log_level::warn, "could not hand a task back", {{"task", id}, {"detail", r.error().detail}});
            write_done();
        });
    }
}

void worker_pool::write_done() {
    std::lock_guard lock(mu_);
    --writes_in_flight_;
    if (stopping_ && writes_in_flight_ == 0) cv_.notify_all();  // stop() waits for the last one
}

void worker_pool::stop() {
    std::lock_guard lifecycle(lifecycle_mu_);
    if (stopped_) return;
    stopped_ = true;
    queue_.remove_intake(this);  // no new reservations; those in flight still arrive
    std::vector<std::shared_ptr<context>> to_release;
    {
        std::unique_lock lock(mu_);
        stopping_ = true;
        cv_.notify_all();
        cv_.wait_for(lock, options_.shutdown_grace, [&] { return running_.empty(); });
        handing_back_ = true;  // a task claimed or delivered from now on hands itself back
        std::vector<json::object> unstarted;
        for (auto& r : ready_) unstarted.push_back(std::move(r.task));
        ready_.clear();
        hand_back(std::move(unstarted));
        for (auto& ctx : running_) ctx->released_ = true;
        to_release = running_;
    }
    for (auto& ctx : to_release) {
        std::lock_guard flush(ctx->flush_mu_);
        if (auto r = queue_.release(ctx->id(), ctx->worker_); !r)
            log(log_level::warn, "could not hand a task back", {{"task", ctx->id()}, {"detail", r.error().detail}});
    }
    for (auto& t : workers_) t.join();
    workers_.clear();
    {
        std::unique_lock lock(mu_);
        // Outcomes, hand-backs and submissions that reserved a worker all end in the store.
        cv_.wait(lock, [&] { return writes_in_flight_ == 0 && reserved_ == 0; });
        workers_joined_ = true;
        cv_.notify_all();
    }
    if (maintenance_.joinable()) maintenance_.join();
}

void worker_pool::log(log_level level, std::string_view msg, json::object fields) const {
    if (options_.log) options_.log->log(level, msg, fields);
}

void worker_pool::worker_main() {
    std::unique_lock lock(mu_);
    ++idle_;
    while (!stopping_) {
        if (!ready_.empty()) {
            ready_task next = std::move(ready_.front());
            ready_.pop_front();
            // A prefetched task that waited this long may soon lose its lease: another worker
            // takes it instead.
            if (steady::now() - next.since > options_.lease / 2) {
                hand_back({std::move(next.task)});
                continue;
            }
            --idle_;
            lock.unlock();
            started_count_.fetch_add(1, std::memory_order_relaxed);
            const auto started = steady::now();
            run_task(std::move(next.task));
            const double took = std::chrono::duration<double, std::micro>(steady::now() - started).count();
            lock.lock();
            average_run_us_ = average_run_us_ >= 1e9 ? took : 0.9 * average_run_us_ + 0.1 * took;
            ++idle_;
            // A limited queue's finished task frees a slot: claim again now, not at the next poll.
            if (limited_) backlog_ = true;
            continue;
        }
        if (served_.empty()) {  // a pool whose kinds all belong to other queues: only delivered tasks
            cv_.wait(lock);
            continue;
        }
        const auto now = steady::now();
        const auto next_poll = std::min(last_claim_ + options_.poll_interval, next_due_);
        const bool due = backlog_ || work_gen_ != claimed_gen_ || now >= next_poll;
        std::size_t want = idle_ > reserved_ ? idle_ - reserved_ : 0;
        if (want > 0 && average_run_us_ < static_cast<double>(options_.prefetch_below.count())) want += options_.prefetch;
        if (!claiming_ && due && want > 0) {
            claim_for_idle(lock, want);
            continue;
        }
        cv_.wait_until(lock, next_poll);
    }
    --idle_;
}

void worker_pool::claim_for_idle(std::unique_lock<std::mutex>& lock, std::size_t want) {
    claiming_ = true;
    claimed_gen_ = work_gen_;
    last_claim_ = steady::now();
    lock.unlock();
    std::int64_t next_due = 0;
    const std::int64_t wall = now_ms();
    auto claimed = queue_.claim_batch(prefix_, wall, options_.lease, served_, want, &next_due,
                                      limited_ ? &options_.limits : nullptr);
    lock.lock();
    claiming_ = false;
    // A delayed task (or a retry) due before the next poll wakes the idle workers on time.
    next_due_ = next_due > 0 && claimed ? last_claim_ + std::chrono::milliseconds(std::max<std::int64_t>(next_due - wall, 0))
                                        : steady::time_point::max();
    if (!claimed) {
        // Wait for the next wake-up or poll rather than retrying at once.
        backlog_ = false;
        log(log_level::error, "task claim failed", {{"detail", claimed.error().detail}});
    } else {
        // A full batch may have left more behind; a short one emptied what was due.
        backlog_ = claimed->size() == want;
        if (handing_back_) {
            hand_back(std::move(*claimed));
        } else {
            const auto now = steady::now();
            for (auto& t : *claimed) ready_.push_back({std::move(t), now});
        }
    }
    cv_.notify_all();
}

void worker_pool::flush(context& ctx) {
    std::lock_guard lock(ctx.flush_mu_);
    if (ctx.released_) return;
    auto patch = ctx.take_patch();
    auto hb = queue_.heartbeat(ctx.id(), ctx.worker_, options_.lease, patch);
    ctx.last_flush_ = ctx.last_heartbeat_ = steady::now();
    if (!hb) {
        log(log_level::warn, "task heartbeat failed", {{"task", ctx.id()}, {"detail", hb.error().detail}});
        return;
    }
    if (!hb->ours) ctx.lost_ = true;
    if (hb->cancel_requested) ctx.cancel_requested_ = true;
}

// One transaction for every task whose lease or progress is due.
void worker_pool::heartbeat_due(const std::vector<std::shared_ptr<context>>& tasks) {
    std::vector<std::unique_lock<std::mutex>> locks;
    std::vector<context*> sent;
    std::vector<heartbeat_request> requests;
    for (const auto& ctx : tasks) {
        std::unique_lock l(ctx->flush_mu_);
        if (ctx->released_) continue;
        requests.push_back({ctx->id(), ctx->worker_, ctx->take_patch()});
        sent.push_back(ctx.get());
        locks.push_back(std::move(l));
    }
    if (requests.empty()) return;
    auto answers = queue_.heartbeat_batch(requests, options_.lease);
    const auto now = steady::now();
    for (std::size_t i = 0; i < sent.size(); ++i) {
        sent[i]->last_flush_ = sent[i]->last_heartbeat_ = now;
        if (!answers || i >= answers->size()) continue;
        if (!(*answers)[i].ours) sent[i]->lost_ = true;
        if ((*answers)[i].cancel_requested) sent[i]->cancel_requested_ = true;
    }
    if (!answers)
        log(log_level::warn, "task heartbeat failed", {{"tasks", static_cast<std::int64_t>(sent.size())},
                                                      {"detail", answers.error().detail}});
}

void worker_pool::maintenance_main() {
    auto tick = std::max(std::chrono::milliseconds(5), std::min(options_.progress_interval, options_.lease / 3));
    auto heartbeat_every = options_.lease / 3;
    auto reap_every = options_.lease / 2;
    auto last_reap = steady::now() - reap_every;
    std::unique_lock lock(mu_);
    // Runs until stop() joined the workers: running tasks keep their leases during the grace.
    while (!workers_joined_) {
        auto tasks = running_;
        lock.unlock();
        auto now = steady::now();
        std::vector<std::shared_ptr<context>> due;
        for (auto& ctx : tasks) {
            if (ctx->past_deadline()) ctx->timed_out_ = true;
            if (now - ctx->last_heartbeat_ >= heartbeat_every ||
                (ctx->dirty() && now - ctx->last_flush_ >= options_.progress_interval))
                due.push_back(ctx);
        }
        heartbeat_due(due);
        if (now - last_reap >= reap_every) {
            last_reap = now;
            auto reaped = queue_.reap(now_ms());
            if (!reaped) log(log_level::warn, "task reap failed", {{"detail", reaped.error().detail}});
            auto purged = queue_.purge(now_ms(), options_.retention);
            if (!purged) log(log_level::warn, "task purge failed", {{"detail", purged.error().detail}});
        }
        lock.lock();
        if (workers_joined_) break;
        cv_.wait_for(lock, tick);
    }
}

namespace {
// What an attempt produced; decided once, recorded once.
enum run_verdict { succeeded, failed, retry, cancelled };
}  // namespace

void worker_pool::run_task(json::object task) {
    std::string kind(get_string(task, "kind"));
    auto entry = kinds_.find(kind);
    auto timeout = std::chrono::milliseconds(get_int(task, "timeout_ms").value_or(options_.timeout.count()));
    if (timeout.count() <= 0) timeout = options_.timeout;
    auto ctx = std::make_shared<context>(queue_, std::move(task), prefix_, timeout);
    {
        std::lock_guard lock(mu_);
        if (handing_back_) {  // stop() already handed the running tasks back: this one goes back unrun
            hand_back({json::object{{"id", ctx->id()}}});
            return;
        }
        running_.push_back(ctx);
    }
    if (entry == kinds_.end()) {  // cannot happen: claims filter by registered kinds
        record(ctx, failed, outcome{}, problem::internal("Unknown task kind."));
        return;
    }

    run_verdict v = failed;
    outcome out;
    problem p = problem::internal();

    if (entry->second.command) {
        const auto& def = *entry->second.command;
        tasks_detail::command_spec spec;
        spec.argv = def.command;
        spec.kill_grace = def.kill_grace;
        spec.max_line = def.max_line;
        json::object doc{{"id", ctx->id()}, {"kind", ctx->kind()}, {"input", ctx->input()},
                         {"attempt", ctx->attempt()}};
        auto r = tasks_detail::run_command(spec, to_json_text(doc) + "\n", *ctx);
        using end = tasks_detail::command_result::end;
        std::string tail;
        for (const auto& l : r.stderr_tail) tail += (tail.empty() ? "" : "\n") + l;
        if (r.how == end::exited && r.exit_code == 0 && r.result) {
            v = succeeded;
            out.status = 200;
            out.body = *r.result;
        } else if (r.how == end::stopped) {
            v = cancelled;
        } else if (r.how == end::line_too_long) {
            p = problem::make(500, "/problems/task-failed", "Task failed",
                             "The command wrote a line over " + std::to_string(def.max_line) + " bytes.");
        } else if (r.how == end::spawn_failed) {
            p = problem::make(500, "/problems/task-failed", "Task failed", r.error);
        } else if (r.how == end::exited && r.exit_code == 0) {
            p = problem::make(500, "/problems/task-failed", "Task failed", "The command wrote no result.");
        } else if (r.how == end::exited && r.exit_code == 75) {
            v = retry;
            p = problem::make(503, "/problems/task-retry", "Task failed, will retry",
                             tail.empty() ? "The command asked to be retried (exit 75)." : tail);
        } else {
            std::string why = r.how == end::exited ? "The command exited with status " + std::to_string(r.exit_code) + "."
                                                   : "The command was killed by signal " + std::to_string(r.signal) + ".";
            p = problem::make(500, "/problems/task-failed", "Task failed", tail.empty() ? why : tail);
        }
    } else {
        try {
            auto r = entry->second.handler(*ctx);
            if (r) {
                out = std::move(*r);
                v = succeeded;
            } else {
                p = std::move(r).error();
            }
        } catch (const task_cancelled&) {
            v = cancelled;
        } catch (const task_retry& e) {
            v = retry;
            p = problem::make(503, "/problems/task-retry", "Task failed, will retry", e.what());
        } catch (const std::exception& e) {
            log(log_level::error, "task handler threw", {{"task", ctx->id()}, {"kind", kind}, {"what", e.what()}});
            p = problem::internal();
        } catch (...) {
            log(log_level::error, "task handler threw", {{"task", ctx->id()}, {"kind", kind}});
            p = problem::internal();
        }
    }

    // A stop that was not asked for by the client is not a cancellation: a timeout fails the
    // attempt (retryable); a lost lease or a shutdown hand-back records nothing.
    if (v == cancelled && !ctx->cancel_requested_ && ctx->timed_out_) {
        v = retry;
        p = timed_out_problem();
    }

    record(ctx, v, out, p);
}

void worker_pool::record(const std::shared_ptr<context>& ctx, int v, const outcome& out, const problem& p) {
    {
        std::lock_guard lock(mu_);
        running_.erase(std::find(running_.begin(), running_.end(), ctx));
        cv_.notify_all();
    }
    if (ctx->released_ || ctx->lost_) return;
    if (ctx->finished_in_write()) {  // the operation's own write finished the task
        if (options_.on_finished) options_.on_finished(ctx->id());
        return;
    }
    if (ctx->dirty()) flush(*ctx);
    if (ctx->released_) return;

    const std::string id = ctx->id();
    auto done = [this, id](result<json::object> recorded) {
        if (!recorded) {
            log(log_level::warn, "could not record a task's outcome", {{"task", id}, {"detail", recorded.error().detail}});
        } else {
            auto state = task_state_from_string(get_string(*recorded, "state"));
            if (options_.on_finished && state && is_finished(*state)) options_.on_finished(id);
        }
        write_done();
    };
    {
        std::lock_guard lock(mu_);
        ++writes_in_flight_;
    }
    switch (v) {
        case succeeded: return queue_.complete_async(id, ctx->worker_, out, std::move(done));
        case cancelled: return queue_.finish_cancelled_async(id, ctx->worker_, std::move(done));
        case retry: return queue_.fail_async(id, ctx->worker_, p, true, std::move(done));
        default: return queue_.fail_async(id, ctx->worker_, p, false, std::move(done));
    }
}

}  // namespace livebase
