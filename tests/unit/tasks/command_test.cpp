// Command tasks: small /bin/sh scripts written to the temp dir, run by the worker pool.
#include "unit/tasks/worker_pool_test_fixture.hpp"

#include <sys/stat.h>
#include <sys/wait.h>

#include <cerrno>

#include <fstream>

namespace livebase {
namespace {

using namespace std::chrono_literals;

class command_test : public worker_pool_test {
protected:
    /// Starts the pool, submits `kind`, waits until the task says "ready", cancels it and waits
    /// until it finished: the finished task, and how long that took from the cancel.
    std::pair<json::object, std::chrono::steady_clock::duration> cancel_when_ready(const std::string& kind) {
        pool_->start();
        auto t = submit(kind);
        EXPECT_TRUE(test::eventually([&] { return get_string(stored(t), "message") == "ready"; }));
        auto start = std::chrono::steady_clock::now();
        EXPECT_TRUE(queue_.cancel(t).has_value());
        auto done = wait_finished(t);
        return {done, std::chrono::steady_clock::now() - start};
    }

    std::string script(const std::string& name, const std::string& body) {
        auto path = ts_.dir.file(name);
        std::ofstream(path) << "#!/bin/sh\n" << body;
        ::chmod(path.c_str(), 0755);
        return path;
    }
    void add(const std::string& kind, const std::string& path, std::chrono::milliseconds kill_grace = 5000ms,
             std::optional<std::chrono::milliseconds> timeout = std::nullopt, int max_attempts = 3,
             std::size_t max_line = 1 << 20) {
        command_kind_def d;
        d.name = kind;
        d.command = {path};
        d.kill_grace = kill_grace;
        d.timeout = timeout;
        d.max_attempts = max_attempts;
        d.max_line = max_line;
        pool_->register_command(d);
    }
    std::string detail(const json::object& t) {
        return t.at("error").is_object() ? std::string(get_string(t.at("error").as_object(), "detail")) : "";
    }
};

TEST_F(command_test, progress_lines_and_a_result) {
    add("build", script("build.sh",
                        "read doc\n"
                        "echo '{\"progress\": 30, \"message\": \"painting\", \"eta\": 4}'\n"
                        "echo 'not json'\n"
                        "echo '{\"step\": \"paint\", \"state\": \"done\"}'\n"
                        "echo \"{\\\"result\\\": {\\\"got\\\": $doc}}\"\n"));
    pool_->start();
    auto t = submit("build", json::object{{"color", "red"}});
    auto done = wait_finished(t);
    ASSERT_EQ(get_string(done, "state"), "succeeded") << json::serialize(done);
    EXPECT_EQ(get_int(done, "result_status"), 200);
    const auto& got = done.at("result").as_object().at("got").as_object();
    EXPECT_EQ(get_string(got, "id"), t);
    EXPECT_EQ(get_string(got, "kind"), "build");
    EXPECT_EQ(got.at("input"), (json::object{{"color", "red"}}));
    EXPECT_EQ(get_int(got, "attempt"), 1);
    EXPECT_EQ(done.at("progress"), 30.0);
    EXPECT_EQ(get_string(done, "message"), "painting");
    EXPECT_EQ(done.at("eta"), 4.0);
    EXPECT_EQ(done.at("steps"), (json::array{json::object{{"name", "paint"}, {"state", "done"}}}));
}

TEST_F(command_test, exit_75_retries) {
    auto marker = ts_.dir.file("marker");
    add("flaky", script("flaky.sh",
                        "if [ ! -e '" + marker + "' ]; then touch '" + marker +
                            "'; echo 'busy' >&2; exit 75; fi\n"
                            "echo '{\"result\": \"ok\"}'\n"));
    pool_->start();
    auto done = wait_finished(submit("flaky"));
    EXPECT_EQ(get_string(done, "state"), "succeeded") << json::serialize(done);
    EXPECT_EQ(get_int(done, "attempt"), 2);
    EXPECT_EQ(done.at("result"), json::value("ok"));
}

TEST_F(command_test, a_failing_exit_keeps_the_last_stderr_lines) {
    add("fail", script("fail.sh",
                       "i=1\nwhile [ $i -le 30 ]; do echo \"line $i\" >&2; i=$((i+1)); done\nexit 3\n"));
    pool_->start();
    auto done = wait_finished(submit("fail"));
    EXPECT_EQ(get_string(done, "state"), "failed");
    EXPECT_EQ(get_int(done, "attempt"), 1) << "not retried";
    auto d = detail(done);
    EXPECT_EQ(d.find("line 10\n"), std::string::npos) << d;
    EXPECT_EQ(d.rfind("line 11\n", 0), 0u) << d;
    EXPECT_NE(d.find("line 30"), std::string::npos) << d;
}

TEST_F(command_test, exit_0_without_a_result_fails) {
    add("quiet", script("quiet.sh", "echo '{\"progress\": 100}'\nexit 0\n"));
    pool_->start();
    auto done = wait_finished(submit("quiet"));
    EXPECT_EQ(get_string(done, "state"), "failed");
    EXPECT_EQ(detail(done), "The command wrote no result.");
}

TEST_F(command_test, a_missing_program_fails) {
    add("missing", ts_.dir.file("no-such-program"));
    pool_->start();
    auto done = wait_finished(submit("missing"));
    EXPECT_EQ(get_string(done, "state"), "failed");
    EXPECT_NE(detail(done).find("no-such-program"), std::string::npos);
}

TEST_F(command_test, cancelling_a_sleeping_command) {
    add("sleepy", script("sleepy.sh", "echo '{\"message\": \"ready\"}'\nsleep 10\necho '{\"result\": 1}'\n"));
    auto [done, took] = cancel_when_ready("sleepy");
    EXPECT_EQ(get_string(done, "state"), "cancelled");
    EXPECT_LT(took, 2s);
}

TEST_F(command_test, a_command_ignoring_sigterm_is_killed_after_the_grace) {
    add("stubborn", script("stubborn.sh",
                           "trap '' TERM\necho '{\"message\": \"ready\"}'\n"
                           "while true; do sleep 0.05; done\n"),
        300ms);
    auto [done, took] = cancel_when_ready("stubborn");
    EXPECT_EQ(get_string(done, "state"), "cancelled");
    EXPECT_GE(took, 300ms);
    EXPECT_LT(took, 3s);
    errno = 0;
    EXPECT_EQ(::waitpid(-1, nullptr, WNOHANG), -1) << "no child left behind";
    EXPECT_EQ(errno, ECHILD);
}

TEST_F(command_test, a_timed_out_command_fails_with_timed_out) {
    add("slow", script("slow.sh", "sleep 10\n"), 200ms, 150ms, 1);
    pool_->start();
    auto done = wait_finished(submit("slow"));
    EXPECT_EQ(get_string(done, "state"), "failed");
    EXPECT_EQ(get_string(done.at("error").as_object(), "type"), "/problems/task-timeout");
}

TEST_F(command_test, an_oversized_line_fails_the_attempt) {
    add("chatty", script("chatty.sh", "head -c 5000 /dev/zero | tr '\\0' 'a'\necho\nsleep 10\n"), 5000ms,
        std::nullopt, 3, 1000);
    pool_->start();
    auto start = std::chrono::steady_clock::now();
    auto done = wait_finished(submit("chatty"));
    EXPECT_EQ(get_string(done, "state"), "failed");
    EXPECT_NE(detail(done).find("over 1000 bytes"), std::string::npos) << detail(done);
    EXPECT_LT(std::chrono::steady_clock::now() - start, 3s) << "the child is killed at once";
}

TEST_F(command_test, a_large_input_is_written_without_blocking) {
    std::string big(300'000, 'x');
    add("cat", script("cat.sh", "wc -c >/dev/null\necho '{\"result\": \"read\"}'\n"));
    pool_->start();
    auto done = wait_finished(submit("cat", json::value(big)));
    EXPECT_EQ(get_string(done, "state"), "succeeded") << detail(done);
}

}  // namespace
}  // namespace livebase
