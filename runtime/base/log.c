/*
 * runtime/base/log.c — timestamped stderr lines, text or JSON (log.h).
 *
 * Each line is formatted whole into one buffer and written with one
 * fwrite, so lines of the loop and the WebSocket thread never interleave.
 */
#include <stdarg.h>
#include <stdbool.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>

#include "json_print.h"
#include "log.h"
#include "utf8.h"

/* A message escapes to at most 6 bytes per byte; the fields are bounded
 * (ids, a request path), so a line never fills the buffer in practice. */
enum { MSG_MAX = 4096, LINE_MAX_BYTES = 64 * 1024 };

static anvil_log_level min_level = ANVIL_LOG_INFO;
static anvil_log_format format = ANVIL_LOG_FORMAT_TEXT;
static _Thread_local anvil_log_ctx ctx;

void anvil_log_set_level(anvil_log_level level)
{
    min_level = level;
}

void anvil_log_set_format(anvil_log_format f)
{
    format = f;
}

int anvil_log_format_parse(const char *name)
{
    if (!strcmp(name, "text"))
        return ANVIL_LOG_FORMAT_TEXT;
    if (!strcmp(name, "json"))
        return ANVIL_LOG_FORMAT_JSON;
    return -1;
}

anvil_log_ctx anvil_log_ctx_push(const anvil_log_ctx *add)
{
    anvil_log_ctx prev = ctx;
    if (add->request_id)
        ctx.request_id = add->request_id;
    if (add->conn_id)
        ctx.conn_id = add->conn_id;
    if (add->method)
        ctx.method = add->method;
    return prev;
}

void anvil_log_ctx_restore(anvil_log_ctx prev)
{
    ctx = prev;
}

typedef struct line {
    char buf[LINE_MAX_BYTES];
    size_t len;
    bool full;
} line;

static void put(line *l, const char *s, size_t n)
{
    if (l->len + n >= sizeof l->buf) {
        n = sizeof l->buf - 1 - l->len;
        l->full = true;
    }
    memcpy(l->buf + l->len, s, n);
    l->len += n;
}

static void puts_(line *l, const char *s)
{
    put(l, s, strlen(s));
}

/* A JSON string: quotes, escapes, and U+FFFD for bytes that are not UTF-8,
 * so a strict parser reads every line. */
static void put_json_string(line *l, const char *s)
{
    char *clean = anvil_utf8_clean(s, strlen(s));
    char *quoted = clean ? anvil_json_quote(clean) : NULL;
    puts_(l, quoted ? quoted : "\"\"");
    if (!quoted)
        l->full = true;   /* out of memory: the line says so instead */
    free(quoted);
    free(clean);
}

static void put_field(line *l, const char *key, const char *value)
{
    if (!value)
        return;
    if (format == ANVIL_LOG_FORMAT_JSON) {
        put(l, ",", 1);
        put_json_string(l, key);
        put(l, ":", 1);
        put_json_string(l, value);
        return;
    }
    put(l, " ", 1);
    puts_(l, key);
    put(l, "=", 1);
    /* Quoted when a reader splitting on spaces would cut it. */
    if (!*value || strpbrk(value, " \t\"=")) {
        put_json_string(l, value);
    } else {
        puts_(l, value);
    }
}

static void emit(anvil_log_level level, const char *run_id, const char *const *fields,
                 const char *fmt, va_list ap) __attribute__((format(printf, 4, 0)));

static void emit(anvil_log_level level, const char *run_id, const char *const *fields,
                 const char *fmt, va_list ap)
{
    static const char *names[] = { "debug", "info", "warn", "error" };
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    struct tm tm;
    gmtime_r(&ts.tv_sec, &tm);
    char stamp[40], date[24];
    strftime(date, sizeof date, "%Y-%m-%dT%H:%M:%S", &tm);
    snprintf(stamp, sizeof stamp, "%s.%03ldZ", date, ts.tv_nsec / 1000000L);
    char msg[MSG_MAX];
    int n = vsnprintf(msg, sizeof msg, fmt, ap);
    if (n >= (int)sizeof msg)   /* said, not silently cut */
        memcpy(msg + sizeof msg - 16, " [truncated]", 13);

    static _Thread_local line l;
    l.len = 0;
    l.full = false;
    if (format == ANVIL_LOG_FORMAT_JSON) {
        puts_(&l, "{\"time\":\"");
        puts_(&l, stamp);
        puts_(&l, "\",\"level\":\"");
        puts_(&l, names[level]);
        puts_(&l, "\",\"msg\":");
        put_json_string(&l, msg);
    } else {
        char head[64];
        snprintf(head, sizeof head, "%s %-5s ", stamp, names[level]);
        puts_(&l, head);
        puts_(&l, msg);
    }
    put_field(&l, "requestId", ctx.request_id);
    put_field(&l, "connId", ctx.conn_id);
    put_field(&l, "method", ctx.method);
    put_field(&l, "runId", run_id);
    for (size_t i = 0; fields && fields[i]; i += 2) {
        /* The context's own fields win: a JSON key appears once. */
        const char *k = fields[i];
        bool taken = (!strcmp(k, "requestId") && ctx.request_id) ||
                     (!strcmp(k, "connId") && ctx.conn_id) || (!strcmp(k, "method") && ctx.method) ||
                     (!strcmp(k, "runId") && run_id);
        if (!taken)
            put_field(&l, k, fields[i + 1]);
    }
    if (format == ANVIL_LOG_FORMAT_JSON)
        put(&l, "}", 1);
    if (l.full) {
        /* Never half a line, and never JSON cut in a string. */
        l.len = 0;
        l.full = false;
        puts_(&l, format == ANVIL_LOG_FORMAT_JSON ? "{\"time\":\"" : stamp);
        if (format == ANVIL_LOG_FORMAT_JSON) {
            puts_(&l, stamp);
            puts_(&l, "\",\"level\":\"error\",\"msg\":\"a log line too long to write (or out of memory)\"}");
        } else {
            puts_(&l, " error a log line too long to write (or out of memory)");
        }
    }
    put(&l, "\n", 1);
    fwrite(l.buf, 1, l.len, stderr);
}

void anvil_log(anvil_log_level level, const char *fmt, ...)
{
    if (level < min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, NULL, NULL, fmt, ap);
    va_end(ap);
}

void anvil_log_run(anvil_log_level level, const char *run_id, const char *fmt, ...)
{
    if (level < min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, run_id, NULL, fmt, ap);
    va_end(ap);
}

void anvil_log_fields(anvil_log_level level, const char *const *fields, const char *fmt, ...)
{
    if (level < min_level)
        return;
    va_list ap;
    va_start(ap, fmt);
    emit(level, NULL, fields, fmt, ap);
    va_end(ap);
}
