// The floor under fan-out at many sockets: the cost of one loopback send per socket, without
// livebase. Opens N TCP connections over 127.0.0.1, then R times sends one small frame-sized
// message (--bytes, default 200) on every server-side socket from one thread while a child
// process (the "clients") drains them with epoll, and prints per round the sender's time per
// send, the time until the last byte arrived, and medians.
//
//   loopback_floor [--sockets 10000] [--rounds 20] [--bytes 200]
//
// One event to 10,000 sockets costs at least 10,000 x (this per-send time) on the sending side,
// whatever the server does above the socket; with client and server on 2 shared cores the
// receiving side's cost competes for the same cores.
#include <arpa/inet.h>
#include <fcntl.h>
#include <netinet/in.h>
#include <netinet/tcp.h>
#include <sys/epoll.h>
#include <sys/resource.h>
#include <sys/socket.h>
#include <sys/wait.h>
#include <unistd.h>

#include <algorithm>
#include <atomic>
#include <chrono>
#include <cstdio>
#include <cstdlib>
#include <cstring>
#include <string>
#include <thread>
#include <vector>

namespace {

using steady = std::chrono::steady_clock;

[[noreturn]] void die(const char* what) {
    std::perror(what);
    std::exit(1);
}

double median(std::vector<double> v) {
    std::sort(v.begin(), v.end());
    return v.empty() ? 0 : v[v.size() / 2];
}

}  // namespace

int main(int argc, char** argv) {
    std::size_t sockets = 10000, rounds = 20, bytes = 200;
    for (int i = 1; i + 1 < argc; i += 2) {
        std::string k = argv[i];
        const auto v = std::strtoull(argv[i + 1], nullptr, 10);
        if (k == "--sockets") sockets = v;
        else if (k == "--rounds") rounds = v;
        else if (k == "--bytes") bytes = v;
        else {
            std::fprintf(stderr, "unknown option %s\n", k.c_str());
            return 2;
        }
    }
    // The receiving sockets live in a child process (the "clients"), so each side needs only N
    // descriptors; the child tells the parent through a pipe when a round has fully arrived.
    rlimit rl{};
    getrlimit(RLIMIT_NOFILE, &rl);
    rl.rlim_cur = rl.rlim_max;
    setrlimit(RLIMIT_NOFILE, &rl);
    if (rl.rlim_cur < sockets + 16) {
        std::fprintf(stderr, "need %zu descriptors, have %llu\n", sockets + 16,
                     static_cast<unsigned long long>(rl.rlim_cur));
        return 1;
    }

    const int listener = socket(AF_INET, SOCK_STREAM, 0);
    if (listener < 0) die("socket");
    sockaddr_in addr{};
    addr.sin_family = AF_INET;
    addr.sin_addr.s_addr = htonl(INADDR_LOOPBACK);
    if (bind(listener, reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die("bind");
    if (listen(listener, 4096) < 0) die("listen");
    socklen_t len = sizeof addr;
    getsockname(listener, reinterpret_cast<sockaddr*>(&addr), &len);

    int done_pipe[2];
    if (pipe(done_pipe) < 0) die("pipe");
    const pid_t child = fork();
    if (child < 0) die("fork");
    if (child == 0) {
        close(listener);
        close(done_pipe[0]);
        std::vector<int> client(sockets);
        const int ep = epoll_create1(0);
        for (std::size_t i = 0; i < sockets; ++i) {
            client[i] = socket(AF_INET, SOCK_STREAM, 0);
            if (client[i] < 0) die("socket");
            if (connect(client[i], reinterpret_cast<sockaddr*>(&addr), sizeof addr) < 0) die("connect");
            fcntl(client[i], F_SETFL, O_NONBLOCK);
            epoll_event ev{};
            ev.events = EPOLLIN;
            ev.data.fd = client[i];
            epoll_ctl(ep, EPOLL_CTL_ADD, client[i], &ev);
        }
        std::vector<epoll_event> evs(1024);
        char buf[65536];
        std::size_t received = 0, round_bytes = sockets * bytes, next = round_bytes;
        const std::size_t total = rounds * round_bytes;
        while (received < total) {
            const int n = epoll_wait(ep, evs.data(), static_cast<int>(evs.size()), 1000);
            for (int i = 0; i < n; ++i)
                for (;;) {
                    const ssize_t r = recv(evs[static_cast<std::size_t>(i)].data.fd, buf, sizeof buf, 0);
                    if (r == 0) _exit(0);  // the parent went away
                    if (r < 0) break;
                    received += static_cast<std::size_t>(r);
                }
            while (received >= next && next <= total) {
                const char one = 1;
                if (write(done_pipe[1], &one, 1) != 1) _exit(1);
                next += round_bytes;
            }
        }
        _exit(0);
    }
    close(done_pipe[1]);
    std::vector<int> server(sockets);
    const int one = 1;
    for (std::size_t i = 0; i < sockets; ++i) {
        server[i] = accept(listener, nullptr, nullptr);
        if (server[i] < 0) die("accept");
        setsockopt(server[i], IPPROTO_TCP, TCP_NODELAY, &one, sizeof one);
    }

    const std::string msg(bytes, 'x');
    std::vector<double> per_send_us, all_ms;
    for (std::size_t r = 0; r < rounds; ++r) {
        const auto t0 = steady::now();
        for (std::size_t i = 0; i < sockets; ++i)
            if (send(server[i], msg.data(), msg.size(), MSG_NOSIGNAL) != static_cast<ssize_t>(msg.size()))
                die("send");
        const auto t1 = steady::now();
        char ack;
        if (read(done_pipe[0], &ack, 1) != 1) die("the receiving process failed");
        const auto t2 = steady::now();
        per_send_us.push_back(std::chrono::duration<double, std::micro>(t1 - t0).count() /
                              static_cast<double>(sockets));
        all_ms.push_back(std::chrono::duration<double, std::milli>(t2 - t0).count());
        std::printf("round %zu: %.2f us per send, all %zu received after %.1f ms\n", r + 1,
                    per_send_us.back(), sockets, all_ms.back());
    }
    for (int fd : server) close(fd);
    waitpid(child, nullptr, 0);
    std::printf("median: %.2f us per loopback send; one message to all %zu sockets: %.1f ms\n",
                median(per_send_us), sockets, median(all_ms));
    std::printf("RESULT sockets=%zu us_per_send=%.3f all_ms=%.2f\n", sockets, median(per_send_us),
                median(all_ms));
    return 0;
}
