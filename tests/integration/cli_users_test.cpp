// `livebase users create|passwd|disable|enable|promote|demote|delete|list` as administrators
// run them.
#include "support/test_app.hpp"
#include "support/child_process.hpp"

#include <livebase/auth/auth.hpp>

#include <fcntl.h>
#include <spawn.h>
#include <sys/wait.h>
#include <unistd.h>

#include <chrono>
#include <fstream>
#include <future>
#include <thread>

extern char** environ;

using namespace livebase;
using namespace livebase::testing;
using namespace livebase::test;

namespace {

/// Runs the binary with `input` on stdin (a file, so not a terminal), waiting at most 60 s.
run_result run(const temp_dir& d, std::vector<std::string> args, const std::string& input = "") {
    args.insert(args.begin(), LIVEBASE_BINARY);
    return run_binary(d.path(), args, input);
}

std::vector<json::object> json_lines(const std::string& text) {
    std::vector<json::object> out;
    std::size_t pos = 0;
    while (pos < text.size()) {
        auto end = text.find('\n', pos);
        if (end == std::string::npos) end = text.size();
        if (end > pos) {
            auto v = parse_json(std::string_view(text).substr(pos, end - pos));
            EXPECT_TRUE(v && v->is_object()) << text;
            if (v && v->is_object()) out.push_back(v->get_object());
        }
        pos = end + 1;
    }
    return out;
}

class cli_users : public ::testing::Test {
protected:
    void SetUp() override {
        cfg = (d.path() / "app.toml").string();
        db_path = d.path() / "app.db";
        // Only what the command needs: the storage, and a collection whose table must survive.
        std::ofstream(cfg) << "[storage]\nurl = \"sqlite:" << db_path.string()
                           << "\"\n\n[collections.cars]\nfields.brand = { type = \"string\" }\n";
    }
    run_result users(std::vector<std::string> args, const std::string& input = "") {
        args.insert(args.begin(), "users");
        args.insert(args.begin(), cfg);
        args.insert(args.begin(), "-c");
        return run(d, std::move(args), input);
    }
    temp_dir d;
    std::string cfg;
    std::filesystem::path db_path;
};

TEST_F(cli_users, create_list_passwd_disable) {
    auto r = users({"create", "alice", "--admin", "--password-stdin"}, "first password\n");
    ASSERT_EQ(r.status, 0) << r.err;
    auto created = json_lines(r.out);
    ASSERT_EQ(created.size(), 1u) << r.out;
    EXPECT_EQ(get_string(created[0], "username"), "alice");
    EXPECT_EQ(created[0].at("admin"), json::value(true));
    EXPECT_FALSE(created[0].contains("password_hash"));
    EXPECT_EQ(r.err.find("first password"), std::string::npos) << "never log a password";
    EXPECT_EQ(r.out.find("first password"), std::string::npos);

    // Without --password-stdin a non-terminal stdin is read the same way; CR LF is stripped.
    r = users({"create", "bob"}, "bob's password\r\n");
    ASSERT_EQ(r.status, 0) << r.err;

    r = users({"list"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto listed = json_lines(r.out);
    ASSERT_EQ(listed.size(), 2u) << r.out;
    EXPECT_EQ(get_string(listed[0], "username"), "alice");
    EXPECT_EQ(get_string(listed[1], "username"), "bob");
    EXPECT_EQ(listed[1].at("admin"), json::value(false));
    for (const auto& u : listed) EXPECT_FALSE(u.contains("password_hash"));

    // The stored hashes check out against the given passwords (CR stripped).
    {
        logger log(stderr, log_format::json, log_level::error);
        auto db = open_store("sqlite:" + db_path.string(), &log);
        ASSERT_TRUE(db.has_value()) << db.error().detail;
        auto all = (*db)->list_sync(users_collection(), query{});
        ASSERT_TRUE(all.has_value());
        for (const auto& u : all->items) {
            auto name = get_string(u, "username");
            auto hash = get_string(u, "password_hash");
            EXPECT_TRUE(verify_password(hash, name == "alice" ? "first password" : "bob's password")) << name;
        }
        (*db)->close();
    }

    r = users({"passwd", "bob", "--password-stdin"}, "new password\n");
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(r.err.find("new password"), std::string::npos);
    r = users({"disable", "bob"});
    ASSERT_EQ(r.status, 0) << r.err;
    r = users({"list"});
    listed = json_lines(r.out);
    ASSERT_EQ(listed.size(), 2u);
    EXPECT_EQ(listed[1].at("disabled"), json::value(true));
}

/// Logs `name` in through an authenticator on the command's database, as the server would.
result<login_grant> login_on(const std::filesystem::path& db_path, const std::string& name, const std::string& password) {
    logger log(stderr, log_format::json, log_level::error);
    auto db = open_store("sqlite:" + db_path.string(), &log);
    if (!db) return std::move(db).error();
    std::promise<result<login_grant>> got;
    {
        authenticator auth(**db, auth_settings{}, log);
        auth.login(name, password, [&got](result<login_grant> r) { got.set_value(std::move(r)); });
        auto f = got.get_future();
        if (f.wait_for(std::chrono::seconds(60)) != std::future_status::ready) {
            (*db)->close();
            return problem::internal();
        }
        auto r = f.get();
        (*db)->close();
        return r;
    }
}

std::size_t token_rows(const std::filesystem::path& db_path) {
    logger log(stderr, log_format::json, log_level::error);
    auto db = open_store("sqlite:" + db_path.string(), &log);
    EXPECT_TRUE(db.has_value());
    if (!db) return 0;
    auto all = (*db)->list_sync(tokens_collection(), query{});
    (*db)->close();
    return all ? all->items.size() : 0;
}

TEST_F(cli_users, enable_promote_demote_delete) {
    ASSERT_EQ(users({"create", "erin", "--password-stdin"}, "erin's password\n").status, 0);
    ASSERT_EQ(users({"disable", "erin"}).status, 0);
    auto refused = login_on(db_path, "erin", "erin's password");
    ASSERT_FALSE(refused.has_value());
    EXPECT_EQ(refused.error().status, 401);

    auto r = users({"enable", "erin"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_NE(r.err.find("user enabled"), std::string::npos) << r.err;
    auto grant = login_on(db_path, "erin", "erin's password");
    ASSERT_TRUE(grant.has_value()) << grant.error().detail;
    EXPECT_FALSE(grant->who.admin);

    r = users({"promote", "erin"});
    ASSERT_EQ(r.status, 0) << r.err;
    auto listed = json_lines(users({"list"}).out);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].at("admin"), json::value(true));
    EXPECT_EQ(listed[0].at("disabled"), json::value(false));
    EXPECT_EQ(token_rows(db_path), 1u) << "a promotion keeps the user's tokens";

    r = users({"demote", "erin"});
    ASSERT_EQ(r.status, 0) << r.err;
    listed = json_lines(users({"list"}).out);
    ASSERT_EQ(listed.size(), 1u);
    EXPECT_EQ(listed[0].at("admin"), json::value(false));

    r = users({"delete", "erin"});
    ASSERT_EQ(r.status, 0) << r.err;
    EXPECT_EQ(json_lines(users({"list"}).out).size(), 0u);
    EXPECT_EQ(token_rows(db_path), 0u) << "the user's tokens go with the user";
    EXPECT_FALSE(login_on(db_path, "erin", "erin's password").has_value());

    for (const char* cmd : {"enable", "promote", "demote", "delete"}) {
        auto missing = users({cmd, "erin"});
        EXPECT_EQ(missing.status, 1) << cmd;
        EXPECT_NE(missing.err.find("No user named"), std::string::npos) << cmd << ": " << missing.err;
        EXPECT_NE(users({cmd}).status, 0) << cmd << ": NAME is required";
    }
}

TEST_F(cli_users, errors_exit_one) {
    ASSERT_EQ(users({"create", "alice", "--password-stdin"}, "long enough\n").status, 0);
    auto dup = users({"create", "alice", "--password-stdin"}, "long enough\n");
    EXPECT_EQ(dup.status, 1);
    EXPECT_NE(dup.err.find("A user with that username already exists."), std::string::npos) << dup.err;
    EXPECT_EQ(dup.out, "");

    auto short_pw = users({"create", "carol", "--password-stdin"}, "short\n");
    EXPECT_EQ(short_pw.status, 1);
    EXPECT_NE(short_pw.err.find("password"), std::string::npos) << short_pw.err;
    EXPECT_EQ(short_pw.err.find("short\\n"), std::string::npos);

    auto bad_name = users({"create", "not a name", "--password-stdin"}, "long enough\n");
    EXPECT_EQ(bad_name.status, 1);

    auto no_input = users({"create", "dave", "--password-stdin"}, "");
    EXPECT_EQ(no_input.status, 1);

    EXPECT_EQ(users({"passwd", "nobody", "--password-stdin"}, "long enough\n").status, 1);
    EXPECT_EQ(users({"disable", "nobody"}).status, 1);
    EXPECT_NE(users({"create"}).status, 0) << "NAME is required";
    EXPECT_NE(users({}).status, 0) << "a users subcommand is required";

    auto listed = users({"list"});
    ASSERT_EQ(listed.status, 0) << listed.err;
    EXPECT_EQ(json_lines(listed.out).size(), 1u) << listed.out;
}

TEST_F(cli_users, leaves_other_tables_alone) {
    // The server's tables exist first (migrate), the users command adds nothing destructive.
    auto m = run(d, {"migrate", "-c", cfg});
    ASSERT_EQ(m.status, 0) << m.err;
    ASSERT_EQ(users({"create", "alice", "--password-stdin"}, "long enough\n").status, 0);
    auto check = run(d, {"check", "-c", cfg});
    ASSERT_EQ(check.status, 0) << check.err;
    EXPECT_NE(check.out.find("nothing to do"), std::string::npos) << check.out;
}

}  // namespace

namespace {

// A damaged SQLite file is found by `check` (exit 1, the damage named) and refused by `serve`
// (it does not start on it), instead of serving 500s and writing into a malformed file.
TEST_F(cli_users, check_finds_a_damaged_database_and_serve_refuses_it) {
    for (auto name : {"alice", "bob", "carol"})
        ASSERT_EQ(users({"create", name, "--password-stdin"}, "a good password\n").status, 0);
    auto ok = run(d, {"-c", cfg, "check"});
    ASSERT_EQ(ok.status, 0) << ok.err;
    auto full_ok = run(d, {"-c", cfg, "check", "--full"});
    ASSERT_EQ(full_ok.status, 0) << full_ok.err;

    // Garbage over every page after the first (the file header and the schema stay readable).
    const auto size = std::filesystem::file_size(db_path);
    ASSERT_GT(size, 8192u);
    {
        std::fstream f(db_path, std::ios::in | std::ios::out | std::ios::binary);
        f.seekp(4096);
        const std::string junk(size - 4096, '\xA5');
        f.write(junk.data(), static_cast<std::streamsize>(junk.size()));
    }
    auto bad = run(d, {"-c", cfg, "check"});
    EXPECT_EQ(bad.status, 1) << bad.out << bad.err;
    EXPECT_NE(bad.err.find("damaged"), std::string::npos) << bad.err;
    {
        std::ofstream(cfg, std::ios::app) << "\n[server]\nlisten = \"127.0.0.1:0\"\n";
    }
    auto serve = run(d, {"-c", cfg, "serve"});
    EXPECT_EQ(serve.status, 1) << serve.err;
    EXPECT_NE(serve.err.find("damaged"), std::string::npos) << serve.err;
}

}  // namespace
