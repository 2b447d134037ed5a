#include "protocol/base/rfc3339.hpp"

#include <cstdio>

namespace xmpp {

std::string rfc3339(std::chrono::system_clock::time_point t) {
    std::int64_t ms = std::chrono::duration_cast<std::chrono::milliseconds>(t.time_since_epoch()).count();
    // Floor division, so instants before 1970 still print a valid time.
    std::int64_t secs = ms / 1000 - (ms % 1000 < 0 ? 1 : 0);
    const int millis = static_cast<int>(ms - secs * 1000);
    std::int64_t days = secs / 86400 - (secs % 86400 < 0 ? 1 : 0);
    const int in_day = static_cast<int>(secs - days * 86400);
    // The civil date of a day count (Howard Hinnant's days_from_civil, inverted): arithmetic
    // only. Every stored event is stamped, and gmtime_r took a lock and most of the time.
    days += 719468;
    const std::int64_t era = (days >= 0 ? days : days - 146096) / 146097;
    const int doe = static_cast<int>(days - era * 146097);                 // [0, 146096]
    const int yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;  // [0, 399]
    const int doy = doe - (365 * yoe + yoe / 4 - yoe / 100);                // [0, 365]
    const int mp = (5 * doy + 2) / 153;                                     // [0, 11], from March
    const int day = doy - (153 * mp + 2) / 5 + 1;
    const int month = mp < 10 ? mp + 3 : mp - 9;
    const std::int64_t year = yoe + era * 400 + (month <= 2);
    const int hour = in_day / 3600, minute = in_day / 60 % 60, second = in_day % 60;
    if (year >= 0 && year <= 9999) {
        // Digits by hand cost a tenth of snprintf.
        char out[] = "0000-00-00T00:00:00.000Z";
        auto put = [&out](int at, int value, int digits) {
            for (int k = digits - 1; k >= 0; --k, value /= 10) out[at + k] = static_cast<char>('0' + value % 10);
        };
        put(0, static_cast<int>(year), 4);
        put(5, month, 2);
        put(8, day, 2);
        put(11, hour, 2);
        put(14, minute, 2);
        put(17, second, 2);
        put(20, millis, 3);
        return std::string(out, sizeof out - 1);
    }
    char buf[96];  // room for any value the format could print, to keep -Wformat-truncation quiet
    std::snprintf(buf, sizeof buf, "%04lld-%02d-%02dT%02d:%02d:%02d.%03dZ", static_cast<long long>(year), month, day,
                  hour, minute, second, millis);
    return buf;
}

std::optional<std::int64_t> parse_datetime(std::string_view t) {
    auto digits = [&t](std::size_t pos, std::size_t n) -> std::optional<int> {
        if (pos + n > t.size()) return std::nullopt;
        int v = 0;
        for (std::size_t i = pos; i < pos + n; ++i) {
            if (t[i] < '0' || t[i] > '9') return std::nullopt;
            v = v * 10 + (t[i] - '0');
        }
        return v;
    };
    auto Y = digits(0, 4), M = digits(5, 2), D = digits(8, 2), h = digits(11, 2), m = digits(14, 2), s = digits(17, 2);
    if (!Y || !M || !D || !h || !m || !s || t[4] != '-' || t[7] != '-' || t[10] != 'T' || t[13] != ':' ||
        t[16] != ':' || *M < 1 || *M > 12 || *D < 1 || *D > 31 || *h > 23 || *m > 59 || *s > 60)
        return std::nullopt;
    std::size_t pos = 19;
    int ms = 0;
    if (pos < t.size() && t[pos] == '.') {
        std::size_t start = ++pos;
        while (pos < t.size() && t[pos] >= '0' && t[pos] <= '9') ++pos;
        if (pos == start) return std::nullopt;
        for (std::size_t i = start; i < start + 3; ++i) ms = ms * 10 + (i < pos ? t[i] - '0' : 0);
    }
    int offset_min = 0;
    if (pos < t.size() && t[pos] == 'Z') {
        ++pos;
    } else if (pos < t.size() && (t[pos] == '+' || t[pos] == '-')) {
        auto oh = digits(pos + 1, 2), om = digits(pos + 4, 2);
        if (!oh || !om || t[pos + 3] != ':') return std::nullopt;
        offset_min = (t[pos] == '-' ? -1 : 1) * (*oh * 60 + *om);
        pos += 6;
    } else {
        return std::nullopt;
    }
    if (pos != t.size()) return std::nullopt;
    // Days from the civil date (Howard Hinnant's algorithm), no time zone database needed.
    int y = *Y - (*M <= 2);
    int era = (y >= 0 ? y : y - 399) / 400;
    int yoe = y - era * 400;
    int doy = (153 * (*M + (*M > 2 ? -3 : 9)) + 2) / 5 + *D - 1;
    int doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    std::int64_t days = static_cast<std::int64_t>(era) * 146097 + doe - 719468;
    std::int64_t secs = days * 86400 + *h * 3600 + *m * 60 + *s - offset_min * 60;
    return secs * 1000 + ms;
}

}  // namespace xmpp
