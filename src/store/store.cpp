#include <livebase/store/store.hpp>

#include "store/pg/connection.hpp"

#include <future>

namespace livebase {

result<std::optional<json::object>> store::get_sync(const collection_def& c, std::string id) {
    std::promise<result<std::optional<json::object>>> p;
    auto f = p.get_future();
    read([&](read_txn& t) { p.set_value(t.get(c, id)); });
    return f.get();
}

result<page> store::list_sync(const collection_def& c, query q) {
    std::promise<result<page>> p;
    auto f = p.get_future();
    read([&](read_txn& t) { p.set_value(t.list(c, q)); });
    return f.get();
}

result<json::value> store::write_sync(write_fn fn) {
    std::promise<result<json::value>> p;
    auto f = p.get_future();
    write(std::move(fn), [&p](result<json::value> r) { p.set_value(std::move(r)); });
    return f.get();
}

std::string redacted_storage_url(std::string_view url) { return pg::redact_url(url); }

result<std::unique_ptr<store>> open_store(std::string_view url, logger* log, std::size_t readers,
                                          std::uint64_t max_size, integrity_check check,
                                          const postgres_timeouts& pg) {
    constexpr std::string_view sqlite_prefix = "sqlite:";
    if (url.substr(0, sqlite_prefix.size()) == sqlite_prefix) {
        auto path = url.substr(sqlite_prefix.size());
        // "sqlite://data/x.db" and "sqlite:///abs/x.db" mean "data/x.db" and "/abs/x.db".
        if (path.substr(0, 2) == "//") path.remove_prefix(2);
        if (path.empty()) return problem::bad_request("The storage URL \"" + std::string(url) + "\" names no file.");
        sqlite_options options;
        options.path = std::string(path);
        options.log = log;
        if (readers > 0) options.readers = readers;
        options.max_size = max_size;
        options.check = check;
        return open_sqlite_store(options);
    }
    if (url.substr(0, 13) == "postgresql://" || url.substr(0, 11) == "postgres://") {
        postgres_options options;
        options.url = std::string(url);
        options.log = log;
        if (readers > 0) options.readers = readers;
        options.timeouts = pg;
        return open_postgres_store(options);
    }
    auto colon = url.find(':');
    if (colon == std::string_view::npos)
        return problem::bad_request("The storage URL \"" + std::string(url) +
                                    "\" has no scheme; use \"sqlite:path\" or \"postgresql://...\".");
    return problem::bad_request("Unsupported storage URL scheme \"" + std::string(url.substr(0, colon)) +
                                "\"; use \"sqlite:path\" or \"postgresql://...\".");
}

}  // namespace livebase
