/*
 * runtime/base/json_print.c — the compact printer (json_print.h).
 */
#include <math.h>
#include <stdbool.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "json_print.h"

typedef struct out {
    char *buf;
    size_t len, cap;
    bool failed;
} out;

static bool reserve(out *o, size_t more)
{
    if (o->failed)
        return false;
    if (o->len + more + 1 <= o->cap)
        return true;
    size_t cap = o->cap ? o->cap : 256;
    while (cap < o->len + more + 1)
        cap *= 2;
    char *b = realloc(o->buf, cap);
    if (!b) {
        o->failed = true;
        return false;
    }
    o->buf = b;
    o->cap = cap;
    return true;
}

static void put(out *o, const char *s, size_t n)
{
    if (reserve(o, n)) {
        memcpy(o->buf + o->len, s, n);
        o->len += n;
    }
}

static void put_number(out *o, double d)
{
    char tmp[40];
    int n;
    if (!isfinite(d)) {
        put(o, "null", 4);
        return;
    }
    if (floor(d) == d && fabs(d) < 9007199254740992.0) {
        /* Exact integer: digits by hand, no libc formatting. */
        int64_t v = (int64_t)d;
        uint64_t u = v < 0 ? (uint64_t)(-(v + 1)) + 1 : (uint64_t)v;
        char *p = tmp + sizeof tmp;
        do {
            *--p = (char)('0' + u % 10);
            u /= 10;
        } while (u);
        if (v < 0)
            *--p = '-';
        put(o, p, (size_t)(tmp + sizeof tmp - p));
        return;
    }
    n = snprintf(tmp, sizeof tmp, "%1.15g", d);
    if (strtod(tmp, NULL) != d)
        n = snprintf(tmp, sizeof tmp, "%1.17g", d);
    put(o, tmp, (size_t)n);
}

static void put_string(out *o, const char *s)
{
    static const char hex[] = "0123456789abcdef";
    if (!s)
        s = "";
    put(o, "\"", 1);
    const char *run = s;
    for (const unsigned char *p = (const unsigned char *)s; *p; p++) {
        const char *esc = NULL;
        char u[6];
        switch (*p) {
        case '"': esc = "\\\""; break;
        case '\\': esc = "\\\\"; break;
        case '\b': esc = "\\b"; break;
        case '\f': esc = "\\f"; break;
        case '\n': esc = "\\n"; break;
        case '\r': esc = "\\r"; break;
        case '\t': esc = "\\t"; break;
        default:
            if (*p < 0x20) {
                u[0] = '\\'; u[1] = 'u'; u[2] = '0'; u[3] = '0';
                u[4] = hex[*p >> 4]; u[5] = hex[*p & 15];
                put(o, run, (size_t)((const char *)p - run));
                put(o, u, 6);
                run = (const char *)p + 1;
            }
            continue;
        }
        put(o, run, (size_t)((const char *)p - run));
        put(o, esc, strlen(esc));
        run = (const char *)p + 1;
    }
    put(o, run, strlen(run));
    put(o, "\"", 1);
}

static void put_value(out *o, const cJSON *j, int depth)
{
    if (depth > 1000) {
        o->failed = true;
        return;
    }
    switch (j->type & 0xFF) {
    case cJSON_NULL: put(o, "null", 4); return;
    case cJSON_False: put(o, "false", 5); return;
    case cJSON_True: put(o, "true", 4); return;
    case cJSON_Number: put_number(o, j->valuedouble); return;
    case cJSON_String: put_string(o, j->valuestring); return;
    case cJSON_Raw:
        if (j->valuestring)
            put(o, j->valuestring, strlen(j->valuestring));
        else
            o->failed = true;
        return;
    case cJSON_Array:
        put(o, "[", 1);
        for (const cJSON *c = j->child; c; c = c->next) {
            put_value(o, c, depth + 1);
            if (c->next)
                put(o, ",", 1);
        }
        put(o, "]", 1);
        return;
    case cJSON_Object:
        put(o, "{", 1);
        for (const cJSON *c = j->child; c; c = c->next) {
            put_string(o, c->string);
            put(o, ":", 1);
            put_value(o, c, depth + 1);
            if (c->next)
                put(o, ",", 1);
        }
        put(o, "}", 1);
        return;
    default:
        o->failed = true;
    }
}

char *anvil_json_print(const cJSON *item)
{
    out o = { 0 };
    if (!item)
        return NULL;
    put_value(&o, item, 0);
    if (o.failed || !reserve(&o, 0)) {
        free(o.buf);
        return NULL;
    }
    o.buf[o.len] = '\0';
    return o.buf;
}

char *anvil_json_quote(const char *s)
{
    out o = { 0 };
    put_string(&o, s);
    if (o.failed || !reserve(&o, 0)) {
        free(o.buf);
        return NULL;
    }
    o.buf[o.len] = '\0';
    return o.buf;
}
