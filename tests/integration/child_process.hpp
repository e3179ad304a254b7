#pragma once
// A child process for tests that run the livebase binaries as users do.
#include <fcntl.h>
#include <signal.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

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

    child(const std::vector<std::string>& args, const std::filesystem::path& err_file,
          const std::vector<std::string>& extra_env = {})
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

}  // namespace livebase::testing
