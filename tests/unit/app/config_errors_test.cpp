// Configuration errors: each names the file, the line and the key (bad types, unknown keys,
// fields, definitions, limits, TOML syntax, nesting, UTF-8), and garbage never throws.
#include "unit/app/config_test_support.hpp"

#include <gtest/gtest.h>

#include <livebase/app/config.hpp>
#include <string>

namespace livebase {
namespace {

TEST(ConfigErrors, BadTypes) {
    EXPECT_CONFIG_ERROR("[server]\nthreads = \"four\"\n",
                        "t.toml:2: server.threads: expected an integer, got a string");
    EXPECT_CONFIG_ERROR("[server]\n\nlisten = 8080\n",
                        "t.toml:3: server.listen: expected a string");
    EXPECT_CONFIG_ERROR("server = 1\n", "t.toml:1: server: expected a table");
    EXPECT_CONFIG_ERROR("[auth]\nsignup = \"yes\"\n",
                        "t.toml:2: auth.signup: expected true or false");
    EXPECT_CONFIG_ERROR("[server]\ncors_origins = \"*\"\n",
                        "t.toml:2: server.cors_origins: expected an array");
    EXPECT_CONFIG_ERROR("[server]\ncors_origins = [1]\n",
                        "t.toml:2: server.cors_origins: expected a string");
    EXPECT_CONFIG_ERROR("[tasks]\nworkers = -1\n", "t.toml:2: tasks.workers: must be at least 0");
    EXPECT_CONFIG_ERROR("[realtime]\nnode_timeout = \"500ms\"\n",
                        "t.toml:2: realtime.node_timeout: must be at least 1s");
    EXPECT_CONFIG_ERROR("[tasks]\nworkers = 100000\n",
                        "t.toml:2: tasks.workers: must be at most 1024");
    EXPECT_CONFIG_ERROR("[tasks]\nmax_attempts = 0\n",
                        "t.toml:2: tasks.max_attempts: must be at least 1");
    EXPECT_CONFIG_ERROR("[storage]\nurl = \"\"\n", "t.toml:2: storage.url: must not be empty");
    EXPECT_CONFIG_ERROR(
        "[collections.cars]\n"
        "fields.model = { type = \"integer\", min = \"1886\" }\n",
        "t.toml:2: collections.cars.fields.model.min: expected a number, got a string");
    EXPECT_CONFIG_ERROR("[collections.c]\nowned = 1\n",
                        "t.toml:2: collections.c.owned: expected true or false");
    EXPECT_CONFIG_ERROR("[collections.c]\npage_size = 0\n",
                        "t.toml:2: collections.c.page_size: must be at least 1");
    EXPECT_CONFIG_ERROR("[collections.c]\npage_size = 50\nmax_page_size = 10\n",
                        "t.toml:2: collections.c.page_size: is greater than max_page_size");
}

TEST(ConfigErrors, UnknownKeys) {
    EXPECT_CONFIG_ERROR("[sever]\nlisten = \":1\"\n", "t.toml:1: sever: unknown key");
    EXPECT_CONFIG_ERROR("[server]\nlisten_on = \":1\"\n",
                        "t.toml:2: server.listen_on: unknown key");
    EXPECT_CONFIG_ERROR("[auth]\nthrottle.anon = \"1/s\"\n",
                        "t.toml:2: auth.throttle.anon: unknown key");
    EXPECT_CONFIG_ERROR("[tasks]\nworker = 2\n", "t.toml:2: tasks.worker: unknown key");
    EXPECT_CONFIG_ERROR("[tasks.kinds.k]\ncmd = [\"x\"]\n",
                        "t.toml:2: tasks.kinds.k.cmd: unknown key");
    EXPECT_CONFIG_ERROR("[collections.c]\nfield.a = { type = \"string\" }\n",
                        "t.toml:2: collections.c.field: unknown key");
    EXPECT_CONFIG_ERROR("[collections.c]\n\nfields.a = { type = \"string\", maxlength = 3 }\n",
                        "t.toml:3: collections.c.fields.a.maxlength: unknown key");
    EXPECT_CONFIG_ERROR("[collections.c.actions.x]\nverb = \"GET\"\n",
                        "t.toml:2: collections.c.actions.x.verb: unknown key");
    EXPECT_CONFIG_ERROR("[endpoints.e]\npath = \"/e\"\ntask = \"t\"\nmethods = [\"GET\"]\n",
                        "t.toml:4: endpoints.e.methods: unknown key");
    EXPECT_CONFIG_ERROR("[collections.c]\nrules.destroy = \"owner\"\n",
                        "t.toml:2: collections.c.rules.destroy: unknown key");
    EXPECT_CONFIG_ERROR("[collections.c]\nasync.remove = \"always\"\n",
                        "t.toml:2: collections.c.async.remove: unknown key");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.\"a b\" = { type = \"string\", x = 1 }\n",
                        "t.toml:2: collections.c.fields.\"a b\"");
}

TEST(ConfigErrors, Fields) {
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { type = \"strin\" }\n",
                        "t.toml:2: collections.c.fields.a.type: unknown field type \"strin\"");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { required = true }\n",
                        "t.toml:2: collections.c.fields.a: missing key \"type\"");
    EXPECT_CONFIG_ERROR(
        "[collections.c]\nfields.a = { type = \"string\", min = 1 }\n",
        "t.toml:2: collections.c.fields.a.min: min applies only to integer and number fields");
    EXPECT_CONFIG_ERROR(
        "[collections.c]\nfields.a = { type = \"integer\", max_length = 1 }\n",
        "t.toml:2: collections.c.fields.a.max_length: max_length applies only to string and text");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { type = \"integer\", pattern = \"x\" }\n",
                        "t.toml:2: collections.c.fields.a.pattern:");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { type = \"string\", pattern = \"(\" }\n",
                        "t.toml:2: collections.c.fields.a.pattern: does not compile");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { type = \"integer\", min = 5, max = 1 }\n",
                        "t.toml:2: collections.c.fields.a.min: is greater than max");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { type = \"string\", min_length = -1 }\n",
                        "t.toml:2: collections.c.fields.a.min_length: must be at least 0");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { type = \"string\", choices = [] }\n",
                        "t.toml:2: collections.c.fields.a.choices: must not be empty");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { type = \"number\", default = nan }\n",
                        "t.toml:2: collections.c.fields.a.default: inf and nan");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { type = \"ref\" }\n",
                        "t.toml:2: collections.c.fields.a: a ref field needs `to`");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { type = \"ref\", to = \"nope\" }\n",
                        "t.toml:2: collections.c.fields.a.to: names no collection \"nope\"");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.a = { type = \"string\", to = \"c\" }\n",
                        "t.toml:2: collections.c.fields.a.to: to applies only to ref fields");
    EXPECT_CONFIG_ERROR(
        "[collections.c]\nfields.a = { type = \"ref\", to = \"c\", on_delete = \"drop\" }\n",
        "t.toml:2: collections.c.fields.a.on_delete: expected \"restrict\"");
    EXPECT_CONFIG_ERROR(
        "[collections.c]\nfields.a = { type = \"string\", read_only = true, write_only = true }\n",
        "t.toml:2: collections.c.fields.a.write_only:");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.id = { type = \"string\" }\n",
                        "t.toml:2: collections.c.fields.id: \"id\" is a server-managed field name");
    EXPECT_CONFIG_ERROR("[collections.c]\nfields.1a = { type = \"string\" }\n",
                        "t.toml:2: collections.c.fields.1a: a field name must be an identifier");
    EXPECT_CONFIG_ERROR("[collections.\"my cars\"]\n",
                        "t.toml:1: collections.\"my cars\": a collection name");
    EXPECT_CONFIG_ERROR("[collections.tasks]\n",
                        "t.toml:1: collections.tasks: \"tasks\" is reserved");
}

TEST(ConfigErrors, DuplicateFieldIsATomlErrorWithItsLine) {
    EXPECT_CONFIG_ERROR(
        "[collections.c]\n"
        "fields.a = { type = \"string\" }\n"
        "fields.a = { type = \"integer\" }\n",
        "t.toml:3: invalid TOML:");
}

TEST(ConfigErrors, SyntaxErrorNamesTheLine) {
    auto d = load_error("[server]\nlisten = \":1\"\n\nthreads = \n");
    EXPECT_EQ(d.rfind("t.toml:4: invalid TOML: ", 0), 0u) << d;
    // toml11's source excerpt follows the first line.
    EXPECT_NE(d.find("threads"), std::string::npos) << d;
    EXPECT_EQ(load_error("[a\n").rfind("t.toml:1: invalid TOML:", 0), 0u);
}

TEST(ConfigErrors, DefinitionChecksOfFinalizeNameTheKey) {
    // Checks done by finalize() (shared with the C++ API) are reported at the key they name.
    EXPECT_CONFIG_ERROR("\n[collections.c]\nfields.a = { type = \"integer\", default = \"x\" }\n",
                        "t.toml:3: collections.c.fields.a.default: ");
    EXPECT_CONFIG_ERROR(
        "[collections.c]\nfields.a = { type = \"string\" }\n\nfields.b__c = { type = \"string\" "
        "}\n",
        "t.toml:4: collections.c.fields.b__c: ");
    EXPECT_CONFIG_ERROR(
        "[collections.c]\nfields.a = { type = \"integer\", choices = [1, \"two\"] }\n",
        "t.toml:2: collections.c.fields.a.choices[1]: ");
    EXPECT_CONFIG_ERROR("[collections.c]\n\nindexes = [[\"owner\"]]\n",
                        "t.toml:3: collections.c.indexes[0]: ");
}

TEST(ConfigErrors, DurationsSizesRatesRules) {
    EXPECT_CONFIG_ERROR("[tasks]\ntimeout = \"10 parsecs\"\n",
                        "t.toml:2: tasks.timeout: invalid duration \"10 parsecs\"");
    EXPECT_CONFIG_ERROR("[tasks]\nlease = 0\n", "t.toml:2: tasks.lease: must be at least");
    EXPECT_CONFIG_ERROR("[tasks]\ntimeout = 1.5\n", "t.toml:2: tasks.timeout: expected a duration");
    EXPECT_CONFIG_ERROR("[server]\nmax_body = \"1 MiBB\"\n",
                        "t.toml:2: server.max_body: invalid size");
    EXPECT_CONFIG_ERROR("[server]\nmax_body = -1\n",
                        "t.toml:2: server.max_body: must not be negative");
    EXPECT_CONFIG_ERROR("[server]\nmax_body = 0\n",
                        "t.toml:2: server.max_body: must be at least 1");
    EXPECT_CONFIG_ERROR("[auth]\nthrottle.user = \"lots\"\n",
                        "t.toml:2: auth.throttle.user: invalid rate");
    EXPECT_CONFIG_ERROR("[auth]\nthrottle.user = \"0/s\"\n",
                        "t.toml:2: auth.throttle.user: invalid rate \"0/s\" (use e.g. \"120/min\", \"10/s\", \"2000/h\", \"50000/day\", or \"unlimited\")");
    EXPECT_CONFIG_ERROR("[server]\nlisten = \"localhost\"\n",
                        "t.toml:2: server.listen: invalid listen address");
    EXPECT_CONFIG_ERROR("[collections.c]\nrules.list = \"everyone\"\n",
                        "t.toml:2: collections.c.rules.list: unknown rule \"everyone\"");
    EXPECT_CONFIG_ERROR("[collections.c]\nasync.create = \"sometimes\"\n",
                        "t.toml:2: collections.c.async.create: unknown async mode");
    EXPECT_CONFIG_ERROR("[tasks.kinds.k]\ntimeout = \"soon\"\n",
                        "t.toml:2: tasks.kinds.k.timeout: invalid duration");
}

TEST(ConfigErrors, IndexesActionsEndpointsKinds) {
    EXPECT_CONFIG_ERROR(
        "[collections.c]\nfields.a = { type = \"string\" }\nindexes = [[\"a\", \"b\"]]\n",
        "t.toml:3: collections.c.indexes: index names unknown field \"b\"");
    EXPECT_CONFIG_ERROR("[collections.c]\nindexes = [[]]\n",
                        "t.toml:2: collections.c.indexes: an index must list");
    EXPECT_CONFIG_ERROR("[collections.c]\nindexes = [\"a\"]\n",
                        "t.toml:2: collections.c.indexes: expected an array");
    EXPECT_CONFIG_ERROR("[collections.c.actions.x]\nmethods = [\"PUT\"]\n",
                        "t.toml:2: collections.c.actions.x.methods: expected \"GET\" or \"POST\"");
    EXPECT_CONFIG_ERROR("[collections.c.actions.x]\nmethods = []\n",
                        "t.toml:2: collections.c.actions.x.methods: must list at least one method");
    EXPECT_CONFIG_ERROR("[collections.c.actions.x]\nrule = \"owners\"\n",
                        "t.toml:2: collections.c.actions.x.rule: unknown rule");
    EXPECT_CONFIG_ERROR("[endpoints.e]\npath = \"e\"\ntask = \"t\"\n",
                        "t.toml:2: endpoints.e.path: must start with \"/\"");
    EXPECT_CONFIG_ERROR("[endpoints.e]\ntask = \"t\"\n",
                        "t.toml:1: endpoints.e: missing key \"path\"");
    EXPECT_CONFIG_ERROR("[endpoints.e]\npath = \"/e\"\n",
                        "t.toml:1: endpoints.e: missing key \"task\"");
    EXPECT_CONFIG_ERROR("[endpoints.e]\npath = \"/e\"\ntask = \"t\"\nmethod = \"FETCH\"\n",
                        "t.toml:4: endpoints.e.method: expected one of");
    EXPECT_CONFIG_ERROR(
        "[endpoints.a]\npath = \"/e\"\ntask = \"t\"\n[endpoints.b]\npath = \"/e\"\ntask = \"u\"\n",
        "t.toml:4: endpoints.b: same method and path as endpoints.a");
    EXPECT_CONFIG_ERROR("[tasks.kinds.k]\ncommand = []\n",
                        "t.toml:2: tasks.kinds.k.command: must name a program");
    EXPECT_CONFIG_ERROR("[tasks.kinds.k]\ncommand = \"./run.sh\"\n",
                        "t.toml:2: tasks.kinds.k.command: expected an array");
}

TEST(ConfigErrors, DeepNestingIsRefusedBeforeParsing) {
    // Brackets inside strings and comments do not count.
    std::string deep =
        "a = \"[[[[\" # {{{{\nb = " + std::string(5000, '[') + std::string(5000, ']') + "\n";
    EXPECT_CONFIG_ERROR(deep,
                        "t.toml:2: invalid TOML: arrays and tables nested more than 64 levels");
    std::string tables = "x = '''\n[[[[[[\n'''\ny = ";
    for (int i = 0; i < 2000; ++i) tables += "{a=";
    EXPECT_CONFIG_ERROR(tables, "t.toml:4: invalid TOML: arrays and tables nested more than 64");
    // Moderate nesting still reaches the loader (and its own JSON depth limit).
    std::string json_default =
        "[collections.c]\nfields.j = { type = \"json\", default = " + std::string(40, '[') +
        std::string(40, ']') + " }\n";
    EXPECT_CONFIG_ERROR(json_default,
                        "t.toml:2: collections.c.fields.j.default: nested too deeply");
}

TEST(ConfigErrors, InvalidUtf8IsRefusedWithItsLine) {
    // toml11 3.7 reads out of bounds reporting invalid UTF-8 inside a multi-line string.
    EXPECT_CONFIG_ERROR("[server]\nbase_path = '''\n\xff'''\n",
                        "t.toml:3: invalid TOML: not valid UTF-8");
    EXPECT_CONFIG_ERROR("a = \"\xc3\x28\"\n", "t.toml:1: invalid TOML: not valid UTF-8");
    EXPECT_CONFIG_ERROR("a = \"\xed\xa0\x80\"\n", "t.toml:1: invalid TOML: not valid UTF-8");
    EXPECT_CONFIG_ERROR("a = \"\xf0\x9f\x98\"\n", "t.toml:1: invalid TOML: not valid UTF-8");
    auto c = load_ok("[storage]\nurl = \"sqlite:d\xc3\xa9j\xc3\xa0/\xf0\x9f\x9a\x97.db\"\n");
    EXPECT_EQ(c.storage.url, "sqlite:d\xc3\xa9j\xc3\xa0/\xf0\x9f\x9a\x97.db");
}

TEST(ConfigErrors, MissingFile) {
    auto r = load_config_file(k_data_dir + "does-not-exist.toml");
    ASSERT_FALSE(r.has_value());
    EXPECT_EQ(r.error().detail.rfind("cannot read " + k_data_dir + "does-not-exist.toml: ", 0), 0u)
        << r.error().detail;
}

TEST(ConfigErrors, NeverThrowsOnGarbage) {
    const char* inputs[] = {"\x01\x02\x03",
                            "[[[[",
                            "a = [[[[[[[1]]]]]]]",
                            "= 1",
                            "\"\\u0000\" = 1",
                            "[collections]\nx = 1\n",
                            "[collections.c]\nfields = 3\n",
                            "[collections.c]\nfields.a = 3\n",
                            "[tasks]\nkinds = 1\n",
                            "[tasks.kinds]\nk = 1\n",
                            "[endpoints]\ne = []\n",
                            "[collections.c]\nindexes = 1\n"};
    for (const char* in : inputs) {
        auto r = load_config_string(in, "g.toml");
        EXPECT_FALSE(r.has_value()) << in;
        if (!r) {
            EXPECT_EQ(r.error().detail.rfind("g.toml:", 0), 0u) << r.error().detail;
        }
    }
}

}  // namespace
}  // namespace livebase
