#pragma once
// Shared by the HTTP server's loopback tests (server_*test.cpp): a real http_server on 127.0.0.1
// port 0, a real store and api behind it (http_server_test), and the synchronous test client.
#include "support/test_backend.hpp"
#include <gtest/gtest.h>

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/io_context.hpp>
#include <chrono>
#include <cstdio>
#include <filesystem>
#include <functional>
#include <livebase/api/api.hpp>
#include <livebase/core/ulid.hpp>
#include <livebase/http/server.hpp>
#include <livebase/store/store.hpp>
#include <memory>
#include <optional>
#include <string>
#include <string_view>
#include <system_error>
#include <thread>
#include <utility>
#include <vector>

#include "support/cars.hpp"
#include "support/http_client.hpp"
#include "support/wait.hpp"

inline livebase::collection_def cars_collection() {
    auto c = livebase::test::small_cars();
    livebase::test::open_to_everyone(c);
    return c;
}

inline std::string raw_get(std::string_view target, std::string_view extra_headers = "") {
    return "GET " + std::string(target) + " HTTP/1.1\r\nHost: localhost\r\n" +
           std::string(extra_headers) + "\r\n";
}

class http_server_test : public ::testing::Test {
protected:
    /// `setup` runs before listen() (set_upgrade_handler, set_hub).
    void start(livebase::server_options o = {},
               std::function<void(livebase::http_server&)> setup = {}) {
        dir_ = std::filesystem::temp_directory_path() / ("livebase-http-" + livebase::make_ulid());
        std::filesystem::create_directories(dir_);
        LIVEBASE_REQUIRE_BACKEND();
        auto opened =
            livebase::open_store(livebase::test::storage_url((dir_ / "test.db").string()));
        ASSERT_TRUE(opened) << opened.error().detail;
        store_ = std::move(*opened);
        auto c = cars_collection();
        ASSERT_EQ(livebase::finalize(c), "");
        reg_.add_collection(std::move(c));
        auto plan = store_->migrate(reg_.collections(), false, false);
        ASSERT_TRUE(plan) << plan.error().detail;
        api_ = std::make_unique<livebase::api>(reg_, *store_, log_, "/api");

        o.host = "127.0.0.1";
        o.port = 0;
        opts_ = o;
        server_ = std::make_unique<livebase::http_server>(ioc_, *api_, o, log_, metrics_);
        if (setup) setup(*server_);
        auto listening = server_->listen();
        ASSERT_TRUE(listening) << listening.error().detail;
        ASSERT_NE(server_->port(), 0);
        work_.emplace(ioc_.get_executor());
        for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
    }

    void TearDown() override {
        if (server_) {
            server_->close_all();
            livebase::test::eventually([&] { return server_->connections() == 0; },
                                       std::chrono::seconds(2));
        }
        work_.reset();
        ioc_.stop();
        for (auto& t : threads_) t.join();
        server_.reset();
        api_.reset();
        if (store_) store_->close();
        store_.reset();
        std::error_code ec;
        if (!dir_.empty()) std::filesystem::remove_all(dir_, ec);
        if (log_file_) std::fclose(log_file_);
    }

    livebase::testing::http_client client(
        std::chrono::milliseconds timeout = std::chrono::seconds(5)) {
        return livebase::testing::http_client(server_->port(), timeout);
    }

    std::string log_text() {
        std::fflush(log_file_);
        std::string out;
        std::rewind(log_file_);
        char buf[4096];
        for (std::size_t n; (n = std::fread(buf, 1, sizeof buf, log_file_)) > 0;)
            out.append(buf, n);
        std::fseek(log_file_, 0, SEEK_END);
        return out;
    }

    std::filesystem::path dir_;
    std::unique_ptr<livebase::store> store_;
    livebase::registry reg_;
    std::FILE* log_file_ = std::tmpfile();
    livebase::logger log_{log_file_};
    livebase::metrics metrics_;
    std::unique_ptr<livebase::api> api_;
    boost::asio::io_context ioc_;
    std::optional<boost::asio::executor_work_guard<boost::asio::io_context::executor_type>> work_;
    std::vector<std::thread> threads_;
    livebase::server_options opts_;
    std::unique_ptr<livebase::http_server> server_;
};

inline void expect_problem(const livebase::testing::http_response& r, int status) {
    EXPECT_EQ(r.status, status) << r.body;
    EXPECT_EQ(r.header("Content-Type"), "application/problem+json");
    auto body = r.json();
    ASSERT_TRUE(body.is_object()) << r.body;
    EXPECT_EQ(body.at("status").as_int64(), status);
    EXPECT_FALSE(body.at("title").as_string().empty());
}
