/*
 * runtime/base/cron_expr.c — cron expression parsing and next-fire computation
 * (cron.h). Pure functions: no clock, no I/O.
 */
#include <ctype.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>

#include "cron_expr.h"

typedef struct field_spec {
    const char *name;
    int lo, hi;
    const char *const *names;   /* names[i] is value lo + i (or NULL) */
} field_spec;

static const char *const month_names[] = {
    "JAN", "FEB", "MAR", "APR", "MAY", "JUN", "JUL", "AUG", "SEP", "OCT", "NOV", "DEC", NULL
};
static const char *const dow_names[] = { "SUN", "MON", "TUE", "WED", "THU", "FRI", "SAT", NULL };

static const field_spec fields[5] = {
    { "minute", 0, 59, NULL },
    { "hour", 0, 23, NULL },
    { "day-of-month", 1, 31, NULL },
    { "month", 1, 12, month_names },
    { "day-of-week", 0, 7, dow_names },
};

/* One value at *pp: a number or a name. 0 / -1 (err filled). */
static int parse_value(const field_spec *f, const char **pp, int *out, char *err, size_t errlen)
{
    const char *p = *pp;
    if (isdigit((unsigned char)*p)) {
        long v = 0;
        while (isdigit((unsigned char)*p)) {
            v = v * 10 + (*p - '0');
            if (v > 100000)
                v = 100000;
            p++;
        }
        if (v < f->lo || v > f->hi) {
            snprintf(err, errlen, "%s: %ld is out of range %d-%d", f->name, v, f->lo, f->hi);
            return -1;
        }
        *out = (int)v;
        *pp = p;
        return 0;
    }
    if (isalpha((unsigned char)*p)) {
        const char *s = p;
        while (isalpha((unsigned char)*p))
            p++;
        size_t n = (size_t)(p - s);
        for (int i = 0; f->names && f->names[i]; i++) {
            if (n == 3 && strncasecmp(s, f->names[i], 3) == 0) {
                *out = f->lo + i;
                if (f->names == dow_names)
                    *out = i;
                *pp = p;
                return 0;
            }
        }
        snprintf(err, errlen, "%s: unknown name \"%.*s\"", f->name, (int)(n > 20 ? 20 : n), s);
        return -1;
    }
    if (*p == '\0')
        snprintf(err, errlen, "%s: value missing", f->name);
    else
        snprintf(err, errlen, "%s: unexpected \"%c\"", f->name, *p);
    return -1;
}

/* Parse one field's text [s, e) into bits. */
static int parse_field(const field_spec *f, const char *text, uint64_t *bits, char *err,
                       size_t errlen)
{
    *bits = 0;
    const char *p = text;
    for (;;) {
        int lo, hi, step = 1;
        bool star = false;
        if (*p == '*') {
            star = true;
            lo = f->lo;
            hi = f->hi == 7 ? 6 : f->hi;
            p++;
        } else {
            if (parse_value(f, &p, &lo, err, errlen) != 0)
                return -1;
            hi = lo;
            if (*p == '-') {
                p++;
                if (parse_value(f, &p, &hi, err, errlen) != 0)
                    return -1;
                if (hi < lo) {
                    snprintf(err, errlen, "%s: range %d-%d is backwards", f->name, lo, hi);
                    return -1;
                }
            }
        }
        if (*p == '/') {
            p++;
            if (!isdigit((unsigned char)*p)) {
                snprintf(err, errlen, "%s: step must be a positive number", f->name);
                return -1;
            }
            long v = 0;
            while (isdigit((unsigned char)*p)) {
                v = v * 10 + (*p - '0');
                if (v > 100000)
                    v = 100000;
                p++;
            }
            if (v < 1 || v > f->hi - f->lo + 1) {
                snprintf(err, errlen, "%s: step %ld is out of range 1-%d", f->name, v,
                         f->hi - f->lo + 1);
                return -1;
            }
            step = (int)v;
            if (!star && hi == lo)
                hi = f->hi == 7 ? 6 : f->hi;   /* "5/10" = 5-max/10 (Vixie) */
        }
        for (int v = lo; v <= hi; v += step)
            *bits |= (uint64_t)1 << (f->hi == 7 && v == 7 ? 0 : v);
        if (*p == ',') {
            p++;
            continue;
        }
        if (*p == '\0')
            return 0;
        snprintf(err, errlen, "%s: unexpected \"%c\" in \"%.40s\"", f->name, *p, text);
        return -1;
    }
}

static const struct { const char *name; const char *expansion; } macros[] = {
    { "@yearly", "0 0 1 1 *" },  { "@annually", "0 0 1 1 *" }, { "@monthly", "0 0 1 * *" },
    { "@weekly", "0 0 * * 0" },  { "@daily", "0 0 * * *" },    { "@midnight", "0 0 * * *" },
    { "@hourly", "0 * * * *" },
};

static const int month_days[13] = { 0, 31, 29, 31, 30, 31, 30, 31, 31, 30, 31, 30, 31 };

int anvil_cron_parse(const char *pattern, anvil_cron *out, char *err, size_t errlen)
{
    memset(out, 0, sizeof *out);
    if (!pattern) {
        snprintf(err, errlen, "pattern: missing");
        return -1;
    }
    while (isspace((unsigned char)*pattern))
        pattern++;
    if (*pattern == '@') {
        size_t n = strlen(pattern);
        while (n > 0 && isspace((unsigned char)pattern[n - 1]))
            n--;
        for (size_t i = 0; i < sizeof macros / sizeof macros[0]; i++)
            if (strlen(macros[i].name) == n && strncasecmp(pattern, macros[i].name, n) == 0)
                return anvil_cron_parse(macros[i].expansion, out, err, errlen);
        snprintf(err, errlen,
                 "pattern: unknown macro \"%.*s\" (use @yearly, @annually, @monthly, @weekly, "
                 "@daily, @midnight or @hourly)", (int)(n > 20 ? 20 : n), pattern);
        return -1;
    }
    char buf[5][128];
    int nf = 0;
    const char *p = pattern;
    while (*p) {
        while (isspace((unsigned char)*p))
            p++;
        if (!*p)
            break;
        const char *s = p;
        while (*p && !isspace((unsigned char)*p))
            p++;
        if (nf == 5) {
            snprintf(err, errlen, "pattern: expected 5 fields (minute hour day-of-month month "
                     "day-of-week), got more");
            return -1;
        }
        size_t n = (size_t)(p - s);
        if (n >= sizeof buf[0]) {
            snprintf(err, errlen, "%s: too long", fields[nf].name);
            return -1;
        }
        memcpy(buf[nf], s, n);
        buf[nf][n] = '\0';
        nf++;
    }
    if (nf != 5) {
        snprintf(err, errlen, "pattern: expected 5 fields (minute hour day-of-month month "
                 "day-of-week), got %d", nf);
        return -1;
    }
    uint64_t bits[5];
    for (int i = 0; i < 5; i++)
        if (parse_field(&fields[i], buf[i], &bits[i], err, errlen) != 0)
            return -1;
    out->minutes = bits[0];
    out->hours = (uint32_t)bits[1];
    out->doms = (uint32_t)bits[2];
    out->months = (uint16_t)bits[3];
    out->dows = (uint8_t)bits[4];
    out->dom_star = buf[2][0] == '*';
    out->dow_star = buf[4][0] == '*';
    /* A day-of-month that no selected month has (e.g. "0 0 30 2 *") would
     * never fire; with day-of-week also restricted the OR rule still can. */
    if (out->dow_star) {
        bool any = false;
        for (int m = 1; m <= 12 && !any; m++)
            for (int d = 1; d <= month_days[m] && (out->months >> m & 1); d++)
                if (out->doms >> d & 1) {
                    any = true;
                    break;
                }
        if (!any) {
            snprintf(err, errlen, "day-of-month: no selected day occurs in the selected "
                     "month(s), so the pattern never fires");
            return -1;
        }
    }
    return 0;
}

/* Days since 1970-01-01 -> civil date (Howard Hinnant's algorithm). */
static void civil_from_days(int64_t z, int *y, int *m, int *d)
{
    z += 719468;
    int64_t era = (z >= 0 ? z : z - 146096) / 146097;
    int64_t doe = z - era * 146097;
    int64_t yoe = (doe - doe / 1460 + doe / 36524 - doe / 146096) / 365;
    int64_t yy = yoe + era * 400;
    int64_t doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    int64_t mp = (5 * doy + 2) / 153;
    *d = (int)(doy - (153 * mp + 2) / 5 + 1);
    *m = (int)(mp < 10 ? mp + 3 : mp - 9);
    *y = (int)(yy + (*m <= 2));
}

static bool day_matches(const anvil_cron *c, int64_t day)
{
    int y, m, d;
    civil_from_days(day, &y, &m, &d);
    (void)y;
    if (!(c->months >> m & 1))
        return false;
    int dow = (int)(((day % 7) + 11) % 7);   /* 1970-01-01 was a Thursday (4) */
    bool dom_ok = c->doms >> d & 1;
    bool dow_ok = c->dows >> dow & 1;
    if (!c->dom_star && !c->dow_star)
        return dom_ok || dow_ok;
    return dom_ok && dow_ok;
}

static int first_bit_from(uint64_t bits, int from, int max)
{
    for (int i = from; i <= max; i++)
        if (bits >> i & 1)
            return i;
    return -1;
}

int64_t anvil_cron_next(const anvil_cron *c, int64_t after_ms)
{
    int64_t minute = after_ms >= 0 ? after_ms / 60000 : -((-after_ms + 59999) / 60000);
    minute += 1;                                  /* strictly after */
    int64_t day = minute >= 0 ? minute / 1440 : -((-minute + 1439) / 1440);
    int start = (int)(minute - day * 1440);       /* minute of that day */
    for (int64_t i = 0; i < 146097; i++, day++, start = 0) {   /* 400 years */
        if (!day_matches(c, day))
            continue;
        for (int h = first_bit_from(c->hours, start / 60, 23); h >= 0;
             h = first_bit_from(c->hours, h + 1, 23)) {
            int from = h == start / 60 ? start % 60 : 0;
            int mi = first_bit_from(c->minutes, from, 59);
            if (mi >= 0)
                return (day * 1440 + h * 60 + mi) * 60000;
        }
    }
    return -1;
}
