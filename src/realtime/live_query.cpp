#include <livebase/realtime/live_query.hpp>

#include <algorithm>
#include <unordered_map>

namespace livebase {

namespace {

using index_map = std::unordered_map<std::string_view, std::size_t>;

index_map index_of(const window& w) {
    index_map out;
    out.reserve(w.size());
    for (std::size_t i = 0; i < w.size(); ++i) out.emplace(w[i].pk, i);
    return out;
}

// Positions (into `seq`) of one longest strictly increasing subsequence (patience sorting).
std::vector<std::size_t> longest_increasing(const std::vector<std::size_t>& seq) {
    std::vector<std::size_t> tails;  // tails[k]: position of the smallest tail of a run of k+1
    std::vector<std::size_t> prev(seq.size(), seq.size());
    for (std::size_t i = 0; i < seq.size(); ++i) {
        auto it = std::lower_bound(tails.begin(), tails.end(), seq[i],
                                   [&](std::size_t pos, std::size_t v) { return seq[pos] < v; });
        if (it != tails.begin()) prev[i] = *(it - 1);
        if (it == tails.end())
            tails.push_back(i);
        else
            *it = i;
    }
    std::vector<std::size_t> out(tails.size());
    std::size_t at = tails.empty() ? seq.size() : tails.back();
    for (std::size_t k = out.size(); k-- > 0;) {
        out[k] = at;
        at = prev[at];
    }
    return out;
}

std::size_t find_pk(const std::vector<std::string_view>& v, std::string_view pk) {
    return static_cast<std::size_t>(std::find(v.begin(), v.end(), pk) - v.begin());
}

}  // namespace

std::vector<window_diff> diff_window(const window& from, const window& to) {
    std::vector<window_diff> out;
    const index_map in_to = index_of(to);
    const index_map in_from = index_of(from);

    for (std::size_t i = from.size(); i-- > 0;) {
        if (in_to.count(from[i].pk)) continue;
        window_diff d;
        d.msg = window_diff::kind::removed;
        d.order = i;
        d.pk = from[i].pk;
        out.push_back(std::move(d));
    }

    // The kept rows in their current order, and where each must end up relative to the others.
    std::vector<std::string_view> current;
    std::vector<std::size_t> target;
    for (const auto& row : from) {
        auto it = in_to.find(row.pk);
        if (it == in_to.end()) continue;
        current.push_back(row.pk);
        target.push_back(it->second);
    }
    std::vector<bool> stays_in_to(to.size(), false);
    for (auto pos : longest_increasing(target)) stays_in_to[target[pos]] = true;

    // Each moving row goes right after its predecessor in `to` among the kept rows. Taken in
    // `to` order, that predecessor is already in place, so the kept rows end in `to` order.
    std::string_view predecessor;
    bool has_predecessor = false;
    for (std::size_t j = 0; j < to.size(); ++j) {
        if (!in_from.count(to[j].pk)) continue;
        if (!stays_in_to[j]) {
            std::size_t at = find_pk(current, to[j].pk);
            current.erase(current.begin() + static_cast<std::ptrdiff_t>(at));
            std::size_t dest = has_predecessor ? find_pk(current, predecessor) + 1 : 0;
            current.insert(current.begin() + static_cast<std::ptrdiff_t>(dest), to[j].pk);
            if (dest != at) {
                window_diff d;
                d.msg = window_diff::kind::moved;
                d.from = at;
                d.order = dest;
                d.pk = to[j].pk;
                out.push_back(std::move(d));
            }
        }
        predecessor = to[j].pk;
        has_predecessor = true;
    }

    // With the kept rows in order, inserting the new ones in ascending index order keeps every
    // prefix equal to `to`'s.
    for (std::size_t j = 0; j < to.size(); ++j) {
        if (in_from.count(to[j].pk)) continue;
        window_diff d;
        d.msg = window_diff::kind::added;
        d.order = j;
        d.pk = to[j].pk;
        d.item = to[j].item;
        out.push_back(std::move(d));
    }

    for (std::size_t j = 0; j < to.size(); ++j) {
        auto it = in_from.find(to[j].pk);
        if (it == in_from.end() || from[it->second].item == to[j].item) continue;
        window_diff d;
        d.msg = window_diff::kind::changed;
        d.order = j;
        d.pk = to[j].pk;
        d.item = to[j].item;
        out.push_back(std::move(d));
    }
    return out;
}

bool apply_diffs(window& w, const std::vector<window_diff>& diffs) {
    for (const auto& d : diffs) {
        switch (d.msg) {
            case window_diff::kind::removed:
                if (d.order >= w.size() || w[d.order].pk != d.pk) return false;
                w.erase(w.begin() + static_cast<std::ptrdiff_t>(d.order));
                break;
            case window_diff::kind::added:
                if (d.order > w.size()) return false;
                w.insert(w.begin() + static_cast<std::ptrdiff_t>(d.order), window_row{d.pk, d.item});
                break;
            case window_diff::kind::moved: {
                if (d.from >= w.size() || w[d.from].pk != d.pk || d.order >= w.size()) return false;
                window_row row = std::move(w[d.from]);
                w.erase(w.begin() + static_cast<std::ptrdiff_t>(d.from));
                w.insert(w.begin() + static_cast<std::ptrdiff_t>(d.order), std::move(row));
                break;
            }
            case window_diff::kind::changed:
                if (d.order >= w.size() || w[d.order].pk != d.pk) return false;
                w[d.order].item = d.item;
                break;
        }
    }
    return true;
}

std::string_view to_string(window_diff::kind k) noexcept {
    switch (k) {
        case window_diff::kind::removed: return "removed";
        case window_diff::kind::added: return "added";
        case window_diff::kind::moved: return "moved";
        case window_diff::kind::changed: return "changed";
    }
    return "changed";
}

json::object to_json(const window_diff& d) {
    json::object o;
    o["msg"] = to_string(d.msg);
    o["order"] = static_cast<std::uint64_t>(d.order);
    if (d.msg == window_diff::kind::moved) o["from"] = static_cast<std::uint64_t>(d.from);
    o["pk"] = d.pk;
    if (d.msg == window_diff::kind::added || d.msg == window_diff::kind::changed) o["item"] = d.item;
    return o;
}

}  // namespace livebase
