/*
 * runtime/base/log.h — one line per message on stderr, as text or JSON.
 *
 * text: `2026-12-03T23:52:06.253Z info  message key=value ...`
 * json: `{"time":"2026-12-03T23:52:06.253Z","level":"info","msg":"message",...}`
 *
 * Besides time, level and message, a line carries the fields that exist
 * where it is logged: the request id, connection id and method of the call
 * being handled (set by the transports and the RPC pipeline through the
 * per-thread context below), the run id (anvil_log_run), and the fields of
 * an access-log line (anvil_log_fields). docs/config.md#logs lists them.
 */
#ifndef ANVIL_LOG_H
#define ANVIL_LOG_H

typedef enum anvil_log_level { ANVIL_LOG_DEBUG, ANVIL_LOG_INFO, ANVIL_LOG_WARN, ANVIL_LOG_ERROR } anvil_log_level;
typedef enum anvil_log_format { ANVIL_LOG_FORMAT_TEXT, ANVIL_LOG_FORMAT_JSON } anvil_log_format;

void anvil_log(anvil_log_level level, const char *fmt, ...) __attribute__((format(printf, 2, 3)));
/* A line about one run: it carries runId (run_id may be NULL). */
void anvil_log_run(anvil_log_level level, const char *run_id, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* A line with extra fields: `fields` holds key, value, key, value, ...,
 * NULL (a NULL value skips its key). */
void anvil_log_fields(anvil_log_level level, const char *const *fields, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));

/* Messages below `level` are dropped (default INFO; ANVIL_LOG=debug). */
void anvil_log_set_level(anvil_log_level level);
/* Default text. Set before threads start. */
void anvil_log_set_format(anvil_log_format format);
/* "text" / "json" -> format; -1 when neither. */
int anvil_log_format_parse(const char *name);

/* What the lines logged on this thread are about, until restored. The
 * strings are borrowed and must outlive the restore. */
typedef struct anvil_log_ctx {
    const char *request_id;
    const char *conn_id;
    const char *method;
} anvil_log_ctx;

/* Set the non-NULL fields of *add; returns the context as it was. */
anvil_log_ctx anvil_log_ctx_push(const anvil_log_ctx *add);
void anvil_log_ctx_restore(anvil_log_ctx prev);

#endif
