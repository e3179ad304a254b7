#include "tasks/command_runner.hpp"

#include <fcntl.h>
#include <poll.h>
#include <signal.h>
#include <spawn.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <cerrno>
#include <cstring>
#include <deque>

extern char** environ;

namespace livebase::tasks_detail {

namespace {

using clock = std::chrono::steady_clock;

class fd_guard {
public:
    fd_guard() = default;
    explicit fd_guard(int fd) : fd_(fd) {}
    ~fd_guard() { reset(); }
    fd_guard(const fd_guard&) = delete;
    fd_guard& operator=(const fd_guard&) = delete;
    int get() const noexcept { return fd_; }
    void reset(int fd = -1) noexcept {
        if (fd_ >= 0) ::close(fd_);
        fd_ = fd;
    }

private:
    int fd_ = -1;
};

void set_nonblocking(int fd) {
    int flags = ::fcntl(fd, F_GETFL);
    if (flags >= 0) ::fcntl(fd, F_SETFL, flags | O_NONBLOCK);
}

// Applies one stdout line to the context. Lines that are not JSON objects are ignored.
void apply_line(std::string_view line, task_context& ctx, std::optional<json::value>& result) {
    if (line.empty()) return;
    auto v = parse_json(line);
    if (!v || !v->is_object()) return;
    const auto& o = v->get_object();
    if (auto r = o.find("result"); r != o.end()) result = r->value();
    if (auto p = o.find("progress"); p != o.end()) {
        if (p->value().is_number()) ctx.progress(p->value().to_number<double>());
        else if (p->value().is_null()) ctx.progress(std::nullopt);
    }
    if (auto m = o.find("message"); m != o.end()) {
        if (m->value().is_string()) ctx.message(m->value().get_string());
    }
    if (auto e = o.find("eta"); e != o.end()) {
        if (e->value().is_number()) ctx.eta(e->value().to_number<double>());
        else if (e->value().is_null()) ctx.eta(std::nullopt);
    }
    auto step = get_string(o, "step");
    if (!step.empty()) {
        auto state = get_string(o, "state");
        ctx.step(step, state.empty() ? std::string_view("running") : state);
    }
}

struct stderr_tail {
    std::size_t max_lines;
    std::size_t max_bytes;
    std::deque<std::string> lines;
    std::string partial;

    void feed(std::string_view data) {
        for (char ch : data) {
            if (ch == '\n') {
                push();
            } else if (partial.size() < max_bytes) {
                partial.push_back(ch);
            }
        }
    }
    void push() {
        lines.push_back(std::move(partial));
        partial.clear();
        while (lines.size() > max_lines) lines.pop_front();
    }
    std::vector<std::string> finish() {
        if (!partial.empty()) push();
        return {lines.begin(), lines.end()};
    }
};

}  // namespace

command_result run_command(const command_spec& spec, const std::string& stdin_doc,
                           task_context& ctx) {
    command_result out;
    if (spec.argv.empty()) {
        out.how = command_result::end::spawn_failed;
        out.error = "The command is empty.";
        return out;
    }
    // stdin is a socket so a child that exits without reading gives EPIPE, not SIGPIPE
    // (send(MSG_NOSIGNAL)); stdout and stderr are pipes. Every parent end is close-on-exec.
    int in_pair[2], out_pipe[2], err_pipe[2];
    if (::socketpair(AF_UNIX, SOCK_STREAM | SOCK_CLOEXEC, 0, in_pair) != 0) {
        out.how = command_result::end::spawn_failed;
        out.error = std::string("socketpair: ") + std::strerror(errno);
        return out;
    }
    fd_guard in_parent(in_pair[0]), in_child(in_pair[1]);
    if (::pipe2(out_pipe, O_CLOEXEC) != 0) {
        out.how = command_result::end::spawn_failed;
        out.error = std::string("pipe: ") + std::strerror(errno);
        return out;
    }
    fd_guard out_parent(out_pipe[0]), out_child(out_pipe[1]);
    if (::pipe2(err_pipe, O_CLOEXEC) != 0) {
        out.how = command_result::end::spawn_failed;
        out.error = std::string("pipe: ") + std::strerror(errno);
        return out;
    }
    fd_guard err_parent(err_pipe[0]), err_child(err_pipe[1]);

    posix_spawn_file_actions_t actions;
    posix_spawn_file_actions_init(&actions);
    posix_spawn_file_actions_adddup2(&actions, in_child.get(), 0);
    posix_spawn_file_actions_adddup2(&actions, out_child.get(), 1);
    posix_spawn_file_actions_adddup2(&actions, err_child.get(), 2);
    posix_spawnattr_t attr;
    posix_spawnattr_init(&attr);
    // Its own process group, so SIGTERM/SIGKILL reach the children of a script too; default
    // signal dispositions and an empty mask whatever the server's threads block.
    sigset_t all, none;
    sigfillset(&all);
    sigemptyset(&none);
    posix_spawnattr_setsigdefault(&attr, &all);
    posix_spawnattr_setsigmask(&attr, &none);
    posix_spawnattr_setpgroup(&attr, 0);
    posix_spawnattr_setflags(&attr, POSIX_SPAWN_SETPGROUP | POSIX_SPAWN_SETSIGDEF | POSIX_SPAWN_SETSIGMASK);

    std::vector<char*> argv;
    for (const auto& a : spec.argv) argv.push_back(const_cast<char*>(a.c_str()));
    argv.push_back(nullptr);
    pid_t pid = -1;
    int rc = ::posix_spawnp(&pid, argv[0], &actions, &attr, argv.data(), environ);
    posix_spawn_file_actions_destroy(&actions);
    posix_spawnattr_destroy(&attr);
    in_child.reset();
    out_child.reset();
    err_child.reset();
    if (rc != 0) {
        out.how = command_result::end::spawn_failed;
        out.error = "Could not start " + spec.argv[0] + ": " + std::strerror(rc);
        return out;
    }

    set_nonblocking(in_parent.get());
    set_nonblocking(out_parent.get());
    set_nonblocking(err_parent.get());

    std::size_t written = 0;
    if (stdin_doc.empty()) in_parent.reset();
    std::string line;
    stderr_tail tail{spec.stderr_lines, spec.stderr_line_bytes, {}, {}};
    bool too_long = false;
    bool stop_sent = false;
    bool kill_sent = false;
    clock::time_point term_at{};
    bool reaped = false;
    int status = 0;
    char buf[65536];

    // Splits stdout into lines; a line over max_line sets too_long and drops the rest.
    auto feed_stdout = [&](std::string_view chunk) {
        while (!chunk.empty() && !too_long) {
            auto nl = chunk.find('\n');
            auto part = chunk.substr(0, nl);
            if (line.size() + part.size() > spec.max_line) {
                too_long = true;
                line.clear();
                return;
            }
            line.append(part);
            if (nl == std::string_view::npos) return;
            apply_line(line, ctx, out.result);
            line.clear();
            chunk.remove_prefix(nl + 1);
        }
    };

    auto signal_group = [pid](int sig) {
        if (::kill(-pid, sig) != 0) ::kill(pid, sig);
    };

    while (!reaped) {
        if (!stop_sent && (too_long || ctx.cancelled())) {
            stop_sent = true;
            term_at = clock::now();
            if (too_long) {
                signal_group(SIGKILL);
                kill_sent = true;
            } else {
                signal_group(SIGTERM);
            }
        }
        if (stop_sent && !kill_sent && clock::now() - term_at >= spec.kill_grace) {
            signal_group(SIGKILL);
            kill_sent = true;
        }

        pollfd fds[3];
        nfds_t n = 0;
        int out_i = -1, err_i = -1, in_i = -1;
        if (out_parent.get() >= 0) {
            out_i = static_cast<int>(n);
            fds[n++] = pollfd{out_parent.get(), POLLIN, 0};
        }
        if (err_parent.get() >= 0) {
            err_i = static_cast<int>(n);
            fds[n++] = pollfd{err_parent.get(), POLLIN, 0};
        }
        if (in_parent.get() >= 0) {
            in_i = static_cast<int>(n);
            fds[n++] = pollfd{in_parent.get(), POLLOUT, 0};
        }
        // Short timeout: the loop also watches cancellation and the child's exit (a grandchild
        // may hold the pipes open after the child is gone).
        int ready = ::poll(fds, n, 20);
        if (ready < 0 && errno != EINTR) break;
        if (ready > 0) {
            if (in_i >= 0 && fds[in_i].revents) {
                auto sent = ::send(in_parent.get(), stdin_doc.data() + written,
                                   stdin_doc.size() - written, MSG_NOSIGNAL);
                if (sent > 0) written += static_cast<std::size_t>(sent);
                if (sent < 0 && errno != EAGAIN && errno != EINTR) written = stdin_doc.size();
                if (written >= stdin_doc.size()) in_parent.reset();
            }
            if (out_i >= 0 && fds[out_i].revents) {
                auto got = ::read(out_parent.get(), buf, sizeof buf);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) {
                    out_parent.reset();
                } else if (got > 0) {
                    feed_stdout(std::string_view(buf, static_cast<std::size_t>(got)));
                }
            }
            if (err_i >= 0 && fds[err_i].revents) {
                auto got = ::read(err_parent.get(), buf, sizeof buf);
                if (got == 0 || (got < 0 && errno != EAGAIN && errno != EINTR)) err_parent.reset();
                else if (got > 0) tail.feed(std::string_view(buf, static_cast<std::size_t>(got)));
            }
        }
        pid_t w = ::waitpid(pid, &status, WNOHANG);
        if (w == pid || (w < 0 && errno == ECHILD)) reaped = true;
    }
    if (!reaped) {
        signal_group(SIGKILL);
        while (::waitpid(pid, &status, 0) < 0 && errno == EINTR) {
        }
    }
    // What the child wrote just before exiting is still in the pipes.
    if (out_parent.get() >= 0 && !too_long) {
        ssize_t got;
        while ((got = ::read(out_parent.get(), buf, sizeof buf)) > 0)
            feed_stdout(std::string_view(buf, static_cast<std::size_t>(got)));
    }
    if (!too_long && !line.empty()) apply_line(line, ctx, out.result);
    if (err_parent.get() >= 0) {
        ssize_t got;
        while ((got = ::read(err_parent.get(), buf, sizeof buf)) > 0)
            tail.feed(std::string_view(buf, static_cast<std::size_t>(got)));
    }
    out.stderr_tail = tail.finish();

    if (too_long) {
        out.how = command_result::end::line_too_long;
    } else if (stop_sent) {
        out.how = command_result::end::stopped;
    } else if (WIFEXITED(status)) {
        out.how = command_result::end::exited;
        out.exit_code = WEXITSTATUS(status);
    } else {
        out.how = command_result::end::signaled;
        out.signal = WIFSIGNALED(status) ? WTERMSIG(status) : 0;
    }
    return out;
}

}  // namespace livebase::tasks_detail
