/*
 * tests/unit/test_cron.c — cron parsing and next-fire times (runtime/base/cron_expr.c)
 * against a table of known cases, all in UTC.
 */
#include <stdint.h>
#include <stdio.h>
#include <string.h>

#include "cron_expr.h"
#include "unit.h"

/* UTC civil time -> ms since the epoch. */
static int64_t ms(int y, int m, int d, int h, int mi)
{
    y -= m <= 2;
    int64_t era = (y >= 0 ? y : y - 399) / 400;
    int64_t yoe = y - era * 400;
    int64_t doy = (153 * (m + (m > 2 ? -3 : 9)) + 2) / 5 + d - 1;
    int64_t doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    int64_t days = era * 146097 + doe - 719468;
    return ((days * 24 + h) * 60 + mi) * 60000;
}

typedef struct next_case {
    const char *pattern;
    int64_t after;
    int64_t expect;
} next_case;

static void check_next(int line, const char *pattern, int64_t after, int64_t expect)
{
    anvil_cron c;
    char err[200] = "";
    unit_checks++;
    if (anvil_cron_parse(pattern, &c, err, sizeof err) != 0) {
        unit_failures++;
        fprintf(stderr, "line %d: \"%s\" did not parse: %s\n", line, pattern, err);
        return;
    }
    int64_t got = anvil_cron_next(&c, after);
    if (got != expect) {
        unit_failures++;
        fprintf(stderr, "line %d: next(\"%s\", %lld) = %lld, expected %lld\n", line, pattern,
                (long long)after, (long long)got, (long long)expect);
    }
}

#define NEXT(p, a, e) check_next(__LINE__, p, a, e)

static void check_bad(int line, const char *pattern, const char *message)
{
    anvil_cron c;
    char err[200] = "";
    unit_checks++;
    if (anvil_cron_parse(pattern, &c, err, sizeof err) == 0) {
        unit_failures++;
        fprintf(stderr, "line %d: \"%s\" parsed, expected error \"%s\"\n", line, pattern, message);
    } else if (strcmp(err, message) != 0) {
        unit_failures++;
        fprintf(stderr, "line %d: \"%s\": error \"%s\", expected \"%s\"\n", line, pattern, err,
                message);
    }
}

#define BAD(p, m) check_bad(__LINE__, p, m)

int main(void)
{
    /* Basics: strictly after, whole minutes. */
    NEXT("* * * * *", ms(2024, 1, 1, 0, 0), ms(2024, 1, 1, 0, 1));
    NEXT("* * * * *", ms(2024, 1, 1, 0, 0) + 59999, ms(2024, 1, 1, 0, 1));
    NEXT("* * * * *", ms(2024, 1, 1, 0, 0) - 1, ms(2024, 1, 1, 0, 0));
    NEXT("0 * * * *", ms(2024, 1, 1, 0, 0), ms(2024, 1, 1, 1, 0));
    NEXT("@hourly", ms(2024, 1, 1, 0, 30), ms(2024, 1, 1, 1, 0));
    NEXT("@daily", ms(2024, 12, 31, 12, 0), ms(2025, 1, 1, 0, 0));
    NEXT("@midnight", ms(2024, 3, 5, 0, 0), ms(2024, 3, 6, 0, 0));
    NEXT("@weekly", ms(2024, 1, 1, 0, 0), ms(2024, 1, 7, 0, 0));   /* Mon -> Sun */
    NEXT("@monthly", ms(2024, 1, 15, 0, 0), ms(2024, 2, 1, 0, 0));
    NEXT("@yearly", ms(2024, 1, 1, 0, 0), ms(2025, 1, 1, 0, 0));
    NEXT("@ANNUALLY", ms(2024, 6, 1, 0, 0), ms(2025, 1, 1, 0, 0));
    /* Steps, ranges and lists. */
    NEXT("*/15 * * * *", ms(2024, 1, 1, 0, 14), ms(2024, 1, 1, 0, 15));
    NEXT("*/15 * * * *", ms(2024, 1, 1, 0, 45), ms(2024, 1, 1, 1, 0));
    NEXT("1-10/4 * * * *", ms(2024, 1, 1, 0, 5), ms(2024, 1, 1, 0, 9));
    NEXT("1-10/4 * * * *", ms(2024, 1, 1, 0, 9), ms(2024, 1, 1, 1, 1));
    NEXT("5,35 8-10 * * *", ms(2024, 1, 1, 10, 35), ms(2024, 1, 2, 8, 5));
    NEXT("30 23 * * *", ms(2024, 12, 31, 23, 30), ms(2025, 1, 1, 23, 30));
    NEXT("0 8 * * 1-5", ms(2024, 1, 5, 8, 0), ms(2024, 1, 8, 8, 0));   /* Fri -> Mon */
    /* Names, case-insensitive; 7 = Sunday. */
    NEXT("0 0 1 jun *", ms(2024, 1, 1, 0, 0), ms(2024, 6, 1, 0, 0));
    NEXT("0 0 * * Sat", ms(2024, 1, 1, 0, 0), ms(2024, 1, 6, 0, 0));
    NEXT("0 0 * * MON-wed", ms(2024, 1, 4, 0, 0), ms(2024, 1, 8, 0, 0));
    NEXT("0 0 * * 7", ms(2024, 1, 1, 0, 0), ms(2024, 1, 7, 0, 0));
    NEXT("0 0 * * 0", ms(2024, 1, 1, 0, 0), ms(2024, 1, 7, 0, 0));
    NEXT("0 0 1 JAN-MAR/2 *", ms(2024, 1, 1, 0, 0), ms(2024, 3, 1, 0, 0));
    /* Month ends: "31" skips the short months. */
    NEXT("0 0 31 * *", ms(2024, 1, 31, 0, 0), ms(2024, 3, 31, 0, 0));
    NEXT("0 0 31 * *", ms(2024, 4, 1, 0, 0), ms(2024, 5, 31, 0, 0));
    NEXT("0 0 31 * *", ms(2024, 8, 31, 0, 0), ms(2024, 10, 31, 0, 0));
    NEXT("0 0 30 * *", ms(2024, 1, 30, 0, 0), ms(2024, 3, 30, 0, 0));
    NEXT("59 23 31 12 *", ms(2024, 12, 31, 23, 59), ms(2025, 12, 31, 23, 59));
    /* Leap years: 2024 and 2000 are, 2100 is not. */
    NEXT("0 0 29 2 *", ms(2023, 1, 1, 0, 0), ms(2024, 2, 29, 0, 0));
    NEXT("0 0 29 2 *", ms(2024, 2, 29, 0, 0), ms(2028, 2, 29, 0, 0));
    NEXT("0 0 29 2 *", ms(1999, 3, 1, 0, 0), ms(2000, 2, 29, 0, 0));
    NEXT("0 0 29 2 *", ms(2096, 3, 1, 0, 0), ms(2104, 2, 29, 0, 0));
    NEXT("0 0 * 2 *", ms(2100, 2, 28, 0, 0), ms(2101, 2, 1, 0, 0));
    NEXT("0 12 * * *", ms(2024, 2, 28, 12, 0), ms(2024, 2, 29, 12, 0));
    NEXT("0 12 * * *", ms(2023, 2, 28, 12, 0), ms(2023, 3, 1, 12, 0));
    /* Day-of-month / day-of-week OR rule (both restricted). 2024-01-01 is
     * a Monday; "13 * FRI" fires on the 13th and on every Friday. */
    NEXT("0 0 13 * 5", ms(2024, 1, 1, 0, 0), ms(2024, 1, 5, 0, 0));
    NEXT("0 0 13 * 5", ms(2024, 1, 12, 0, 0), ms(2024, 1, 13, 0, 0));
    NEXT("0 0 1 * MON", ms(2024, 1, 1, 0, 0), ms(2024, 1, 8, 0, 0));
    /* ... but with either one `*` (or a step from `*`) both must match. */
    NEXT("0 0 * * 5", ms(2024, 1, 5, 0, 0), ms(2024, 1, 12, 0, 0));
    NEXT("0 0 13 * *", ms(2024, 1, 1, 0, 0), ms(2024, 1, 13, 0, 0));
    NEXT("0 0 */2 * 1", ms(2024, 1, 1, 0, 0), ms(2024, 1, 15, 0, 0));   /* odd-day Mondays */
    /* Whitespace is flexible. */
    NEXT("  0   0  1 1  * ", ms(2024, 1, 1, 0, 0), ms(2025, 1, 1, 0, 0));

    /* Invalid patterns name the field. */
    BAD("", "pattern: expected 5 fields (minute hour day-of-month month day-of-week), got 0");
    BAD("* * * *", "pattern: expected 5 fields (minute hour day-of-month month day-of-week), got 4");
    BAD("* * * * * *",
        "pattern: expected 5 fields (minute hour day-of-month month day-of-week), got more");
    BAD("60 * * * *", "minute: 60 is out of range 0-59");
    BAD("0 24 * * *", "hour: 24 is out of range 0-23");
    BAD("0 0 0 * *", "day-of-month: 0 is out of range 1-31");
    BAD("0 0 32 * *", "day-of-month: 32 is out of range 1-31");
    BAD("0 0 * 13 *", "month: 13 is out of range 1-12");
    BAD("0 0 * * 8", "day-of-week: 8 is out of range 0-7");
    BAD("0 0 * FOO *", "month: unknown name \"FOO\"");
    BAD("0 0 * * MONDAY", "day-of-week: unknown name \"MONDAY\"");
    BAD("0 0 MON * *", "day-of-month: unknown name \"MON\"");
    BAD("*/0 * * * *", "minute: step 0 is out of range 1-60");
    BAD("*/ * * * *", "minute: step must be a positive number");
    BAD("5-1 * * * *", "minute: range 5-1 is backwards");
    BAD("1,,2 * * * *", "minute: unexpected \",\"");
    BAD("1- * * * *", "minute: value missing");
    BAD("0 0 * * 1;2", "day-of-week: unexpected \";\" in \"1;2\"");
    BAD("@often", "pattern: unknown macro \"@often\" (use @yearly, @annually, @monthly, @weekly, "
                  "@daily, @midnight or @hourly)");
    BAD("0 0 30 2 *", "day-of-month: no selected day occurs in the selected month(s), so the "
                      "pattern never fires");
    /* ... while 31 in a month list that has one long month is fine. */
    anvil_cron c;
    char err[200];
    CHECK(anvil_cron_parse("0 0 31 2,3 *", &c, err, sizeof err) == 0);
    CHECK(anvil_cron_parse("0 0 30 2 MON", &c, err, sizeof err) == 0);   /* OR rule */
    CHECK(anvil_cron_parse(NULL, &c, err, sizeof err) == -1);
    UNIT_DONE();
}
