#pragma once
// A child process for tests that run the livebase binaries as users do.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <sys/socket.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <atomic>
#include <chrono>
#include <cstdint>
#include <filesystem>
#include <fstream>
#include <optional>
#include <regex>
#include <string>
#include <string_view>
#include <thread>
#include <vector>

extern char** environ;

namespace livebase::testing {

/// A child process with stdout/stderr captured to files and extra environment variables.
/// Killed (SIGKILL) and reaped on destruction.
struct child {
    pid_t pid = -1;
    std::filesystem::path err;

    /// Runs `args` (args[0]: the binary's path) with stderr to `err_file`, stdout to
    /// `err_file` + ".out" and, when `stdin_file` is given, stdin from it (never a terminal).
    child(const std::vector<std::string>& args, const std::filesystem::path& err_file,
          const std::vector<std::string>& extra_env = {}, const std::filesystem::path& stdin_file = {})
        : err(err_file) {
        std::vector<std::string> env_strings;
        for (char** e = environ; e && *e; ++e) {
            std::string_view kv(*e);
            // The test's own environment must not configure the child behind its back.
            if (kv.rfind("LIVEBASE_", 0) == 0 || kv.rfind("CARS_", 0) == 0) continue;
            env_strings.emplace_back(kv);
        }
        for (const auto& kv : extra_env) env_strings.push_back(kv);
        std::vector<char*> envp;
        for (auto& kv : env_strings) envp.push_back(kv.data());
        envp.push_back(nullptr);
        posix_spawn_file_actions_t fa;
        posix_spawn_file_actions_init(&fa);
        if (!stdin_file.empty()) posix_spawn_file_actions_addopen(&fa, 0, stdin_file.c_str(), O_RDONLY, 0);
        posix_spawn_file_actions_addopen(&fa, 2, err.c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        posix_spawn_file_actions_addopen(&fa, 1, (err.string() + ".out").c_str(), O_WRONLY | O_CREAT | O_TRUNC, 0644);
        std::vector<char*> argv;
        for (const auto& a : args) argv.push_back(const_cast<char*>(a.c_str()));
        argv.push_back(nullptr);
        if (posix_spawn(&pid, argv[0], &fa, nullptr, argv.data(), envp.data()) != 0) pid = -1;
        posix_spawn_file_actions_destroy(&fa);
    }
    child(const child&) = delete;
    child& operator=(const child&) = delete;
    ~child() { kill_now(); }

    void kill_now() {
        if (pid > 0) {
            kill(pid, SIGKILL);
            waitpid(pid, nullptr, 0);
            pid = -1;
        }
    }
    /// Exit status, or -1 on timeout / signal.
    int wait_exit(std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (pid > 0 && std::chrono::steady_clock::now() < deadline) {
            int st = 0;
            if (waitpid(pid, &st, WNOHANG) == pid) {
                pid = -1;
                return WIFEXITED(st) ? WEXITSTATUS(st) : -1;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return -1;
    }
    std::string stderr_text() const {
        std::ifstream f(err);
        return {std::istreambuf_iterator<char>(f), {}};
    }
    std::string stdout_text() const {
        std::ifstream f(err.string() + ".out");
        return {std::istreambuf_iterator<char>(f), {}};
    }
    /// Waits until stderr matches `re`; the first capture group, or nullopt on timeout / exit.
    std::optional<std::string> wait_log(const std::regex& re, std::chrono::milliseconds limit) {
        auto deadline = std::chrono::steady_clock::now() + limit;
        while (std::chrono::steady_clock::now() < deadline) {
            std::smatch m;
            auto text = stderr_text();
            if (std::regex_search(text, m, re)) return m.size() > 1 ? m[1].str() : m[0].str();
            if (pid > 0 && waitpid(pid, nullptr, WNOHANG) == pid) {
                pid = -1;
                return std::nullopt;
            }
            std::this_thread::sleep_for(std::chrono::milliseconds(20));
        }
        return std::nullopt;
    }
    /// Waits for the "listening" log line and returns its port (0 on timeout).
    std::uint16_t wait_port(std::chrono::milliseconds limit = std::chrono::seconds(15)) {
        static const std::regex re(R"re("msg":"listening".*"port":(\d+))re");
        auto port = wait_log(re, limit);
        return port ? static_cast<std::uint16_t>(std::stoi(*port)) : 0;
    }
};

/// What a finished command printed.
struct run_result {
    int status = -1;  ///< exit code, -1 on a signal or a hang
    std::string out, err;
};

/// Runs `args` to its end with `input` on stdin (a file in `dir`, so not a terminal), waiting
/// at most 60 s (then it is killed).
inline run_result run_binary(const std::filesystem::path& dir, const std::vector<std::string>& args,
                             const std::string& input = "") {
    static std::atomic<int> n{0};
    auto base = dir / ("run" + std::to_string(n++));
    std::ofstream(base.string() + ".in") << input;
    child c(args, base.string() + ".err", {}, base.string() + ".in");
    run_result r;
    if (c.pid <= 0) return r;
    r.status = c.wait_exit(std::chrono::seconds(60));
    c.kill_now();
    r.out = c.stdout_text();
    r.err = c.stderr_text();
    return r;
}

inline void write_file(const std::filesystem::path& p, const std::string& text) { std::ofstream(p) << text; }

/// A port free now on 127.0.0.1: a server restarts on the same address, as a node does.
inline std::uint16_t free_port() {
    int s = ::socket(AF_INET, SOCK_STREAM, 0);
    sockaddr_in a{};
    a.sin_family = AF_INET;
    a.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    a.sin_port = 0;
    socklen_t len = sizeof a;
    if (::bind(s, reinterpret_cast<sockaddr*>(&a), sizeof a) != 0 ||
        ::getsockname(s, reinterpret_cast<sockaddr*>(&a), &len) != 0) {
        ::close(s);
        return 0;
    }
    ::close(s);
    return ntohs(a.sin_port);
}

}  // namespace livebase::testing
