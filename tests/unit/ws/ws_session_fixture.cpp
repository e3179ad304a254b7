#include "unit/ws/ws_session_fixture.hpp"

#include <boost/asio/executor_work_guard.hpp>
#include <boost/asio/strand.hpp>
#include <boost/beast/core/bind_handler.hpp>
#include <boost/beast/http/read.hpp>
#include <sstream>

namespace livebase::ws_test {

namespace net = boost::asio;
namespace beast = boost::beast;
namespace bhttp = beast::http;
using tcp = net::ip::tcp;

namespace {

/// Reads one HTTP request and hands the connection to the ws_server.
class upgrade_reader : public std::enable_shared_from_this<upgrade_reader> {
public:
    upgrade_reader(tcp::socket&& s, ws_server& ws) : stream_(std::move(s)), ws_(ws) {}
    void run() {
        stream_.expires_after(std::chrono::seconds(30));
        bhttp::async_read(stream_, buffer_, req_,
                          beast::bind_front_handler(&upgrade_reader::on_read, shared_from_this()));
    }

private:
    void on_read(beast::error_code ec, std::size_t) {
        if (ec) return;
        stream_.expires_never();
        ws_.accept(
            websocket_upgrade{std::move(stream_), std::move(req_), std::move(buffer_), "test-rid"});
    }
    beast::tcp_stream stream_;
    ws_server& ws_;
    beast::flat_buffer buffer_;
    bhttp::request<bhttp::string_body> req_;
};

}  // namespace

struct ws_session_test::listener : std::enable_shared_from_this<listener> {
    listener(net::io_context& ioc, ws_server& ws)
        : ioc(ioc), acceptor(net::make_strand(ioc)), ws(ws) {
        tcp::endpoint ep(net::ip::make_address("127.0.0.1"), 0);
        acceptor.open(ep.protocol());
        acceptor.set_option(net::socket_base::reuse_address(true));
        acceptor.bind(ep);
        acceptor.listen();
    }
    void accept() {
        acceptor.async_accept(net::make_strand(ioc),
                              [self = shared_from_this()](beast::error_code ec, tcp::socket s) {
                                  if (ec) return;
                                  std::make_shared<upgrade_reader>(std::move(s), self->ws)->run();
                                  self->accept();
                              });
    }
    void stop() {
        net::post(acceptor.get_executor(), [self = shared_from_this()] {
            beast::error_code ec;
            self->acceptor.close(ec);
        });
    }
    net::io_context& ioc;
    tcp::acceptor acceptor;
    ws_server& ws;
};

ws_session_test::ws_session_test() {
    auto cars = test::small_cars();
    cars.fields.push_back(test::make_field("notes", field_type::text));
    cars.max_page_size = 1000;
    // The session tests write anonymously; rules are auth_ws_test's subject.
    test::open_to_everyone(cars);
    EXPECT_EQ(finalize(cars), "");
    reg_.add_collection(std::move(cars));
}

ws_session_test::~ws_session_test() { stop(); }

void ws_session_test::start(ws_options o, hub_options ho) {
    db_ = test::open_or_die(dir_.file("ws.db"));
    ASSERT_TRUE(db_);
    if (with_auth_ && !reg_.find(users_collection().name)) reg_.add_collection(users_collection());
    auto collections = reg_.collections();
    if (with_auth_) collections.push_back(&tokens_collection());
    auto plan = db_->migrate(collections, false, false);
    ASSERT_TRUE(plan) << plan.error().detail;
    api_ = std::make_unique<livebase::api>(reg_, *db_, log_);
    if (with_auth_) {
        auth_ = std::make_unique<authenticator>(*db_, auth_settings{}, log_);
        api_->enable_auth(*auth_, false);
        o.gate.auth = auth_.get();
    }
    hub_hooks hooks;
    hooks.find_collection = [this](std::string_view name) { return reg_.find(name); };
    hooks.present = [](const collection_def& c, const json::object& stored) {
        return present_record(c, stored);
    };
    if (auth_) hooks.on_change = [a = auth_.get()](const change& ch) { return a->on_change(ch); };
    hub_ = std::make_unique<hub>(*db_, hooks, ho, log_);
    hub_->start();
    ws_ = std::make_unique<ws_server>(*api_, *hub_, o, log_, metrics_);
    listener_ = std::make_shared<listener>(ioc_, *ws_);
    port_ = listener_->acceptor.local_endpoint().port();
    listener_->accept();
    work_.emplace(ioc_.get_executor());
    for (int i = 0; i < 2; ++i) threads_.emplace_back([this] { ioc_.run(); });
}

void ws_session_test::stop() {
    if (stopped_ || !ws_) return;
    stopped_ = true;
    listener_->stop();
    ws_->close_all();
    eventually([this] { return ws_->sockets() == 0; });
    work_.reset();
    ioc_.stop();
    for (auto& t : threads_) t.join();
    threads_.clear();
    hub_->stop();
    // Reads still queued hold sessions (their completions do): they must finish, and the
    // sessions go, while the io_context and its WebSocket service still exist.
    db_->close();
}

std::unique_ptr<testing::ws_client> ws_session_test::connect(testing::ws_connect_options o) {
    auto c = std::make_unique<testing::ws_client>();
    auto r = c->connect(port_, std::move(o));
    EXPECT_TRUE(r) << (r ? "" : r.error().detail);
    return c;
}

json::object ws_session_test::create_car(json::object fields) {
    operation op;
    op.kind = op_kind::create;
    op.collection = "cars";
    op.method = "POST";
    op.input = std::move(fields);
    auto o = api_->execute_sync(std::move(op));
    EXPECT_EQ(o.status, 201) << json::serialize(o.body);
    return o.body.is_object() ? o.body.get_object() : json::object{};
}

double ws_session_test::gauge(const std::string& name) const {
    std::istringstream in(metrics_.render());
    std::string line;
    while (std::getline(in, line)) {
        if (line.rfind(name + " ", 0) == 0) return std::stod(line.substr(name.size() + 1));
    }
    return -1;
}

bool ws_session_test::eventually(const std::function<bool()>& cond) { return test::eventually(cond, k_deadline); }

}  // namespace livebase::ws_test
