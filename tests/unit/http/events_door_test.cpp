// Realtime over HTTP, the policy half: REST query strings -> the hub's filter and live-query
// JSON, and the problems a stream or live query answers before the hub sees it.
#include "support/cars.hpp"
#include "http/events_door.hpp"

#include <gtest/gtest.h>

#include <livebase/schema/query.hpp>

using namespace livebase;
using namespace livebase::http_detail;

namespace {

collection_def cars() {
    using test::make_field;
    collection_def c;
    c.name = "cars";
    c.fields = {make_field("brand", field_type::string), make_field("model", field_type::integer),
                make_field("price", field_type::number), make_field("sold", field_type::boolean),
                make_field("when", field_type::datetime)};
    EXPECT_EQ(finalize(c), "");
    return c;
}

std::string parameter_of(const problem& p) {
    auto it = p.extra.find("parameter");
    return it != p.extra.end() && it->value().is_string() ? std::string(it->value().get_string())
                                                          : "";
}

}  // namespace

TEST(events_door, filters_are_typed_like_the_list) {
    auto c = cars();
    auto r = decode_events_request(c,
                                   {{"brand", "Ford"},
                                    {"model__gte", "2014"},
                                    {"price__lt", "9.5"},
                                    {"sold", "true"},
                                    {"brand__in", "Ford,Opel"},
                                    {"when__isnull", "false"}},
                                   std::nullopt);
    ASSERT_TRUE(r) << r.error().detail;
    EXPECT_FALSE(r->since);
    const auto& f = r->filter;
    EXPECT_EQ(f.at("brand"), "Ford");
    EXPECT_TRUE(f.at("model__gte").is_int64());
    EXPECT_EQ(f.at("model__gte").get_int64(), 2014);
    EXPECT_TRUE(f.at("price__lt").is_double());
    EXPECT_EQ(f.at("sold"), true);
    EXPECT_EQ(f.at("brand__in"), (json::array{"Ford", "Opel"}));
    EXPECT_EQ(f.at("when__isnull"), false);

    // The hub parses what we built back into the same terms the list would use.
    auto terms = parse_filter_json(c, f);
    ASSERT_TRUE(terms) << terms.error().detail;
    auto list = parse_query_params(c, {{"brand", "Ford"},
                                       {"model__gte", "2014"},
                                       {"price__lt", "9.5"},
                                       {"sold", "true"},
                                       {"brand__in", "Ford,Opel"},
                                       {"when__isnull", "false"}});
    ASSERT_TRUE(list);
    ASSERT_EQ(terms->size(), list->filters.size());
    json::object rec{{"brand", "Ford"},
                     {"model", 2015},
                     {"price", 3.0},
                     {"sold", true},
                     {"when", "2026-01-01T00:00:00.000Z"}};
    EXPECT_TRUE(matches(*terms, rec));
    EXPECT_EQ(matches(*terms, rec), matches(list->filters, rec));
    rec["model"] = 2000;
    EXPECT_FALSE(matches(*terms, rec));
}

TEST(events_door, no_params_is_every_record) {
    auto r = decode_events_request(cars(), {}, std::nullopt);
    ASSERT_TRUE(r);
    EXPECT_TRUE(r->filter.empty());
    EXPECT_FALSE(r->since);
}

TEST(events_door, since_and_last_event_id) {
    auto c = cars();
    auto q = decode_events_request(c, {{"since", "42"}, {"brand", "Ford"}}, std::nullopt);
    ASSERT_TRUE(q);
    EXPECT_EQ(q->since, 42);
    EXPECT_EQ(q->filter.size(), 1u);
    // The header is the EventSource's progress: it wins over the URL it reconnects with.
    auto h = decode_events_request(c, {{"since", "42"}}, std::string_view("57"));
    ASSERT_TRUE(h);
    EXPECT_EQ(h->since, 57);
    auto zero = decode_events_request(c, {}, std::string_view("0"));
    ASSERT_TRUE(zero);
    EXPECT_EQ(zero->since, 0);

    for (const char* bad : {"-1", "x", "1.5", "", "99999999999999999999"}) {
        auto p = decode_events_request(c, {{"since", bad}}, std::nullopt);
        ASSERT_FALSE(p) << bad;
        EXPECT_EQ(p.error().status, 400);
        EXPECT_EQ(parameter_of(p.error()), "since");
        auto l = decode_events_request(c, {}, std::string_view(bad));
        if (std::string_view(bad).empty()) continue;
        ASSERT_FALSE(l) << bad;
        EXPECT_EQ(parameter_of(l.error()), "Last-Event-ID");
    }
    auto twice = decode_events_request(c, {{"since", "1"}, {"since", "2"}}, std::nullopt);
    ASSERT_FALSE(twice);
    EXPECT_EQ(parameter_of(twice.error()), "since");
}

TEST(events_door, problems_name_the_parameter) {
    auto c = cars();
    const std::pair<query_params, std::string> cases[] = {
        {{{"colour", "Blue"}}, "colour"},         // unknown field
        {{{"brand__near", "x"}}, "brand__near"},  // unknown lookup
        {{{"model", "new"}}, "model"},            // wrong type
        {{{"limit", "5"}}, "limit"},              // a stream has no page
        {{{"offset", "5"}}, "offset"},
        {{{"ordering", "brand"}}, "ordering"},
        {{{"fields", "brand"}}, "fields"},
        {{{"observe", "x"}}, "observe"},
        {{{"brand", "a"}, {"brand", "b"}}, "brand"},  // one value per key in a JSON filter
    };
    for (const auto& [params, name] : cases) {
        auto r = decode_events_request(c, params, std::nullopt);
        ASSERT_FALSE(r) << name;
        EXPECT_EQ(r.error().status, 400) << name;
        EXPECT_EQ(parameter_of(r.error()), name);
    }
}

TEST(events_door, observe_param) {
    auto none = observe_param({{"brand", "x"}});
    ASSERT_TRUE(none);
    EXPECT_FALSE(*none);
    auto one = observe_param({{"brand", "x"}, {"observe", "abc"}});
    ASSERT_TRUE(one);
    EXPECT_EQ(**one, "abc");
    auto empty = observe_param({{"observe", ""}});
    ASSERT_FALSE(empty);
    EXPECT_EQ(parameter_of(empty.error()), "observe");
    auto twice = observe_param({{"observe", "a"}, {"observe", "b"}});
    ASSERT_FALSE(twice);
    EXPECT_EQ(parameter_of(twice.error()), "observe");
}

TEST(events_door, observe_query_uses_the_list_rules) {
    auto c = cars();
    c.page_size = 10;
    c.max_page_size = 50;
    auto q = decode_observe_query(c, {{"brand", "Ford"},
                                      {"observe", "sub"},
                                      {"ordering", "-model,brand"},
                                      {"offset", "3"},
                                      {"model__gt", "2000"}});
    ASSERT_TRUE(q) << q.error().detail;
    EXPECT_EQ(q->at("filter"), (json::object{{"brand", "Ford"}, {"model__gt", 2000}}));
    EXPECT_EQ(q->at("ordering"), (json::array{"-model", "brand"}));
    EXPECT_EQ(q->at("limit"), 10);  // page_size
    EXPECT_EQ(q->at("offset"), 3);

    // What the hub parses equals what the list without `observe` parses.
    auto hub_view = parse_query_json(c, *q);
    ASSERT_TRUE(hub_view) << hub_view.error().detail;
    auto list_view = parse_query_params(
        c,
        {{"brand", "Ford"}, {"ordering", "-model,brand"}, {"offset", "3"}, {"model__gt", "2000"}});
    ASSERT_TRUE(list_view);
    EXPECT_EQ(hub_view->limit, list_view->limit);
    EXPECT_EQ(hub_view->offset, list_view->offset);
    ASSERT_EQ(hub_view->ordering.size(), 2u);
    EXPECT_TRUE(hub_view->ordering[0].descending);
    EXPECT_EQ(hub_view->filters.size(), list_view->filters.size());

    auto capped = decode_observe_query(c, {{"limit", "500"}});
    ASSERT_TRUE(capped);
    EXPECT_EQ(capped->at("limit"), 50);  // capped at max_page_size like the list
    auto fields = decode_observe_query(c, {{"fields", "brand"}});
    ASSERT_FALSE(fields);
    EXPECT_EQ(parameter_of(fields.error()), "fields");

    auto bad = decode_observe_query(c, {{"ordering", "nope"}});
    ASSERT_FALSE(bad);
    EXPECT_EQ(parameter_of(bad.error()), "ordering");
    auto bad_filter = decode_observe_query(c, {{"model", "x"}});
    ASSERT_FALSE(bad_filter);
    EXPECT_EQ(parameter_of(bad_filter.error()), "model");
}
