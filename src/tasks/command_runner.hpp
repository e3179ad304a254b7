#pragma once
// Runs one attempt of a command task: a child process without a shell, the task JSON on stdin,
// JSON lines on stdout, the last stderr lines kept for the failure detail.
#include <livebase/tasks/task.hpp>

#include <chrono>
#include <cstddef>
#include <optional>
#include <string>
#include <vector>

namespace livebase::tasks_detail {

struct command_spec {
    std::vector<std::string> argv;                 ///< argv[0] is searched in PATH when it has no '/'
    std::chrono::milliseconds kill_grace{5000};    ///< SIGTERM -> SIGKILL
    std::size_t max_line = 1 << 20;                ///< longest stdout line
    std::size_t stderr_lines = 20;                 ///< stderr lines kept
    std::size_t stderr_line_bytes = 1024;          ///< bytes kept per stderr line
};

struct command_result {
    enum class end {
        exited,          ///< exit_code holds the status
        signaled,        ///< killed by a signal it was not sent by us (signal holds it)
        stopped,         ///< we stopped it because ctx.cancelled() turned true
        line_too_long,   ///< a stdout line exceeded max_line (the child was killed)
        spawn_failed,    ///< error holds why
    };
    end how = end::exited;
    int exit_code = 0;
    int signal = 0;
    std::optional<json::value> result;             ///< the last {"result": ...} line
    std::vector<std::string> stderr_tail;          ///< last lines of stderr, oldest first
    std::string error;
};

/// Runs `spec.argv` with `stdin_doc` on stdin (then closed). Progress, message, eta and step
/// lines go to `ctx`; ctx.cancelled() is polled every few ms: once true the process group gets
/// SIGTERM, and SIGKILL after kill_grace. Always reaps the child before returning.
command_result run_command(const command_spec& spec, const std::string& stdin_doc,
                           task_context& ctx);

}  // namespace livebase::tasks_detail
