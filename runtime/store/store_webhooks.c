/*
 * runtime/store/store_webhooks.c — the SQL for webhook deliveries
 * (store_webhooks.h).
 */
#include <stdlib.h>
#include <string.h>

#include "store_sql.h"
#include "store_webhooks.h"

void anvil_webhook_delivery_clear(anvil_webhook_delivery *d)
{
    free(d->body_sha256);
    free(d->reply_json);
    memset(d, 0, sizeof *d);
}

static int delivery_row(void *ctx, sqlite3_stmt *st)
{
    anvil_webhook_delivery *d = ctx;
    d->received_at_ms = anvil_sql_int(st, 0, 0);
    d->body_sha256 = anvil_sql_text(st, 1);
    d->status = (int)anvil_sql_int(st, 2, 0);
    d->reply_json = anvil_sql_text(st, 3);
    return 1;
}

int anvil_store_webhook_delivery_get(anvil_store *s, const char *workflow,
                                     const char *delivery_id, int64_t since_ms,
                                     anvil_webhook_delivery *out)
{
    static const char sql[] =
        "SELECT received_at_ms, body_sha256, status, reply_json FROM webhook_deliveries"
        " WHERE workflow = ?1 AND delivery_id = ?2 AND received_at_ms >= ?3";
    memset(out, 0, sizeof *out);
    int n = anvil_sql_query(s, sql, delivery_row, out, "ssi", workflow, delivery_id, since_ms);
    if (n <= 0)
        return n;
    if (!out->body_sha256 || !out->reply_json) {
        anvil_webhook_delivery_clear(out);
        return -1;
    }
    return 1;
}

int anvil_store_webhook_delivery_put(anvil_store *s, const char *workflow,
                                     const char *delivery_id, const anvil_webhook_delivery *d)
{
    static const char sql[] =
        "INSERT INTO webhook_deliveries(workflow, delivery_id, received_at_ms, body_sha256,"
        " status, reply_json) VALUES (?1, ?2, ?3, ?4, ?5, ?6)"
        " ON CONFLICT(workflow, delivery_id) DO UPDATE SET"
        " received_at_ms = excluded.received_at_ms, body_sha256 = excluded.body_sha256,"
        " status = excluded.status, reply_json = excluded.reply_json";
    return anvil_sql_exec(s, sql, "ssisis", workflow, delivery_id, d->received_at_ms,
                          d->body_sha256, (int64_t)d->status, d->reply_json) < 0 ? -1 : 0;
}

int anvil_store_webhook_deliveries_prune(anvil_store *s, int64_t before_ms, int64_t limit)
{
    static const char sql[] =
        "DELETE FROM webhook_deliveries WHERE rowid IN (SELECT rowid FROM webhook_deliveries"
        " WHERE received_at_ms < ?1 ORDER BY received_at_ms LIMIT ?2)";
    return anvil_sql_exec(s, sql, "ii", before_ms, limit > 0 ? limit : 1);
}

typedef struct signal_each {
    anvil_delivery_signal_fn fn;
    void *ctx;
} signal_each;

static int each_signal(void *ctx, sqlite3_stmt *st)
{
    signal_each *e = ctx;
    anvil_delivery_signal sig = {
        .run_id = (const char *)sqlite3_column_text(st, 0),
        .seq = anvil_sql_int(st, 1, 0),
        .signal_name = (const char *)sqlite3_column_text(st, 2),
        .correlation_id = (const char *)sqlite3_column_text(st, 3),
        .received_at_ms = anvil_sql_int(st, 4, 0),
    };
    return sig.run_id ? e->fn(e->ctx, &sig) : -1;
}

int anvil_store_signals_by_delivery(anvil_store *s, const char *workflow,
                                    const char *delivery_key, anvil_delivery_signal_fn fn,
                                    void *ctx)
{
    static const char sql[] =
        "SELECT g.run_id, g.seq, g.signal_name, g.correlation_id, g.received_at_ms"
        " FROM signals g JOIN runs r ON r.run_id = g.run_id"
        " WHERE g.delivery_key = ?2 AND r.workflow = ?1"
        " ORDER BY g.received_at_ms, g.run_id";
    signal_each e = { fn, ctx };
    return anvil_sql_query(s, sql, each_signal, &e, "ss", workflow, delivery_key);
}
