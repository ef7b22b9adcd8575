/*
 * runtime/base/cron_expr.h — five-field cron expressions and their next fire time.
 *
 * Syntax (docs/cron.md): "minute hour day-of-month month day-of-week" with
 * `*`, lists `1,5`, ranges `1-5`, steps (`*` or a range, then `/N`: every 15
 * minutes is star-slash-15; `1-30/2`), month names
 * JAN..DEC and weekday names SUN..SAT (case-insensitive), 0 or 7 = Sunday,
 * and the macros @yearly @annually @monthly @weekly @daily @midnight
 * @hourly. Times are UTC: there is no DST, every day has 1440 minutes.
 *
 * Day rule (Vixie cron): when both day-of-month and day-of-week are
 * restricted (their text does not start with `*`), a day matches when
 * EITHER matches; otherwise both must.
 */
#ifndef ANVIL_CRON_H
#define ANVIL_CRON_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef struct anvil_cron {
    uint64_t minutes;     /* bit 0..59 */
    uint32_t hours;       /* bit 0..23 */
    uint32_t doms;        /* bit 1..31 */
    uint16_t months;      /* bit 1..12 */
    uint8_t dows;         /* bit 0..6, 0 = Sunday */
    bool dom_star, dow_star;
} anvil_cron;

/* Parse `pattern`. 0, or -1 with a message naming the field in err, e.g.
 * "hour: 24 is out of range 0-23". */
int anvil_cron_parse(const char *pattern, anvil_cron *out, char *err, size_t errlen);

/* The first fire time (UTC ms, on a whole minute) strictly after
 * `after_ms`, or -1 when none within 400 years. */
int64_t anvil_cron_next(const anvil_cron *c, int64_t after_ms);

#endif
