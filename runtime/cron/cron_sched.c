/*
 * runtime/cron/cron_sched.c — config schedules to rows, and the poll timer
 * (cron_sched.h).
 */
#include <errno.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "metrics.h"
#include "clock.h"
#include "cron_expr.h"
#include "cron_sched.h"
#include "log.h"
#include "store_runs.h"

#define CRON_POLL_MIN_MS 1000
#define CRON_POLL_MAX_MS 15000

int64_t anvil_cron_now_ms(void)
{
    const char *path = getenv("ANVIL_TEST_CLOCK_FILE");
    if (!path || !*path)
        return anvil_now_ms();
    FILE *f = fopen(path, "r");
    char buf[64] = "";
    size_t n = f ? fread(buf, 1, sizeof buf - 1, f) : 0;
    if (f)
        fclose(f);
    buf[n] = '\0';
    char *end = NULL;
    errno = 0;
    long long v = strtoll(buf, &end, 10);
    if (n == 0 || end == buf || errno != 0 || v < 0) {
        anvil_log(ANVIL_LOG_WARN, "ANVIL_TEST_CLOCK_FILE %s: no integer ms; using the wall clock",
                  path);
        return anvil_now_ms();
    }
    return (int64_t)v;
}

/* ---- config schedules ----------------------------------------------------- */

typedef struct id_list {
    char **ids;
    size_t n, cap;
    bool oom;
} id_list;

static int collect_gateway_row(void *ctx, const anvil_cron_record *r)
{
    id_list *l = ctx;
    if (strncmp(r->cron_id, "gateway:", 8) != 0)
        return 0;
    if (l->n == l->cap) {
        size_t ncap = l->cap ? l->cap * 2 : 8;
        char **ids = realloc(l->ids, ncap * sizeof *ids);
        if (!ids) {
            l->oom = true;
            return 1;
        }
        l->ids = ids;
        l->cap = ncap;
    }
    if (!(l->ids[l->n] = strdup(r->cron_id))) {
        l->oom = true;
        return 1;
    }
    l->n++;
    return 0;
}

static const anvil_workflow_ref *scheduled_ref(const anvil_config *cfg, const char *cron_id)
{
    for (size_t i = 0; i < cfg->n_workflows; i++) {
        const anvil_workflow_ref *w = &cfg->workflows[i];
        if (w->schedule && strcmp(cron_id + 8, w->name) == 0)
            return w;
    }
    return NULL;
}

static int sync_config(anvil_cron_sched *cs, char *err, size_t errlen)
{
    anvil_store *s = cs->store;
    int64_t now = anvil_cron_now_ms();
    /* Rows of schedules that left the config go. */
    id_list l = { 0 };
    int rc = anvil_store_crons_list(s, NULL, collect_gateway_row, &l) < 0 || l.oom ? -1 : 0;
    for (size_t i = 0; rc == 0 && i < l.n; i++)
        if (!scheduled_ref(cs->cfg, l.ids[i])) {
            anvil_log(ANVIL_LOG_INFO, "cron %s: no longer scheduled in the config, removed",
                      l.ids[i]);
            rc = anvil_store_cron_delete(s, l.ids[i]) < 0 ? -1 : 0;
        }
    for (size_t i = 0; i < l.n; i++)
        free(l.ids[i]);
    free(l.ids);

    for (size_t i = 0; rc == 0 && i < cs->cfg->n_workflows; i++) {
        const anvil_workflow_ref *w = &cs->cfg->workflows[i];
        if (!w->schedule)
            continue;
        anvil_cron c;
        char perr[200];
        if (anvil_cron_parse(w->schedule, &c, perr, sizeof perr) != 0) {
            /* The config loader refuses a bad schedule; this guards the rows. */
            anvil_log(ANVIL_LOG_ERROR, "workflow %s: schedule \"%s\" ignored: %s", w->name,
                      w->schedule, perr);
            continue;
        }
        char id[300];
        snprintf(id, sizeof id, "gateway:%s", w->name);
        anvil_cron_record old;
        int found = anvil_store_cron_get(s, id, &old);
        if (found < 0) {
            rc = -1;
            break;
        }
        bool same = found == 1 && strcmp(old.pattern, w->schedule) == 0 &&
                    strcmp(old.workflow, w->name) == 0;
        if (!same) {
            anvil_cron_record r = {
                .cron_id = id, .workflow = w->name, .pattern = w->schedule,
                .enabled = found == 1 ? old.enabled : true,
                .next_run_at_ms = anvil_cron_next(&c, now),
                .last_run_at_ms = -1,
                .created_at_ms = anvil_now_ms(),
            };
            r.updated_at_ms = r.created_at_ms;
            rc = anvil_store_cron_put(s, &r);
            if (rc == 0)
                anvil_log(ANVIL_LOG_INFO, "cron %s: %s \"%s\"", id,
                          found == 1 ? "pattern changed to" : "scheduled", w->schedule);
        }
        if (found == 1)
            anvil_cron_record_clear(&old);
    }
    if (rc != 0)
        snprintf(err, errlen, "cron schedules: %s", anvil_store_errmsg(s));
    return rc;
}

/* ---- polling ----------------------------------------------------------------- */

typedef struct due_list {
    anvil_cron_record *rows;
    size_t n, cap;
    bool oom;
} due_list;

static int collect_due(void *ctx, const anvil_cron_record *r)
{
    due_list *d = ctx;
    if (d->n == d->cap) {
        size_t ncap = d->cap ? d->cap * 2 : 8;
        anvil_cron_record *rows = realloc(d->rows, ncap * sizeof *rows);
        if (!rows) {
            d->oom = true;
            return 1;
        }
        d->rows = rows;
        d->cap = ncap;
    }
    anvil_cron_record *c = &d->rows[d->n];
    *c = *r;
    c->cron_id = strdup(r->cron_id);
    c->workflow = strdup(r->workflow);
    c->pattern = strdup(r->pattern);
    d->n++;
    if (!c->cron_id || !c->workflow || !c->pattern) {
        d->oom = true;
        return 1;
    }
    return 0;
}

static char *const system_scopes[] = { "*" };

/* docs/metrics.md */
static anvil_counter m_fired, m_failed, m_manual, m_manual_failed;

void anvil_cron_metrics_manual(bool launched)
{
    anvil_counter_inc(launched ? &m_manual : &m_manual_failed);
}

void anvil_cron_metrics_render(anvil_metrics_out *o)
{
    anvil_metrics_family(o, "anvil_cron_fires_total", "counter",
                         "Cron fires, by trigger (schedule, or cronRun by hand) and result "
                         "(launched, or failed to launch).");
    static const char *const triggers[] = { "schedule", "schedule", "manual", "manual" };
    static const char *const results[] = { "launched", "failed", "launched", "failed" };
    const anvil_counter *counts[] = { &m_fired, &m_failed, &m_manual, &m_manual_failed };
    for (int i = 0; i < 4; i++) {
        const char *labels[] = { "trigger", triggers[i], "result", results[i], NULL };
        anvil_metrics_sample(o, "anvil_cron_fires_total", labels, (double)anvil_counter_get(counts[i]));
    }
}

static bool fire(anvil_cron_sched *cs, const anvil_cron_record *row, int64_t now)
{
    anvil_store *s = cs->store;
    anvil_cron c;
    char perr[200];
    int64_t next = -1;
    bool valid = anvil_cron_parse(row->pattern, &c, perr, sizeof perr) == 0;
    if (valid)
        next = anvil_cron_next(&c, now);
    else
        anvil_log(ANVIL_LOG_ERROR, "cron %s: bad pattern \"%s\": %s", row->cron_id, row->pattern,
                  perr);
    /* Advance first, in one transaction: a missed stretch fires once, and
     * no later poll sees this row due again for the same time. */
    if (anvil_store_begin(s) != 0)
        return false;
    if (anvil_store_cron_mark(s, row->cron_id, next, valid ? now : -1) < 0 ||
        anvil_store_commit(s) != 0) {
        anvil_store_rollback(s);
        anvil_log(ANVIL_LOG_ERROR, "cron %s: cannot advance: %s", row->cron_id,
                  anvil_store_errmsg(s));
        return false;
    }
    if (!valid || !cs->engine)
        return false;
    /* cron.triggered is recorded inside the launch transaction, right after
     * run.started, so even a run that ends inside the launch carries it. */
    cJSON *p = cJSON_CreateObject();
    if (p && (!cJSON_AddStringToObject(p, "cronId", row->cron_id) ||
              !cJSON_AddStringToObject(p, "workflow", row->workflow) ||
              !cJSON_AddNumberToObject(p, "scheduledAtMs", (double)row->next_run_at_ms) ||
              !cJSON_AddNumberToObject(p, "firedAtMs", (double)now))) {
        cJSON_Delete(p);
        p = NULL;
    }
    anvil_launch l = {
        .workflow = row->workflow,
        .input_at = "$.input",       /* none: a fire has no request to point into */
        .triggered_by = "cron:gateway",
        .role = "system",
        .scopes = system_scopes,
        .n_scopes = 1,
        .trigger_event = p ? "cron.triggered" : NULL,
        .trigger_payload = p,
    };
    char *run_id = NULL;
    bool existing = false, recorded = false;
    l.recorded = &recorded;
    anvil_error err = { 0 };
    int rc = anvil_engine_launch(cs->engine, &l, &run_id, &existing, &err);
    cJSON_Delete(p);
    if (rc != 0) {
        /* The launch was not recorded because of the database (a write
         * failed, the disk is full): put the row back as it was, so the
         * next poll fires it again instead of losing this fire. A launch
         * refused for good (its workflow is gone), or one whose run was
         * recorded before the call failed, is not retried. */
        bool retry = !recorded &&
                     (err.code == ANVIL_ERR_STORAGE_UNAVAILABLE || err.code == ANVIL_ERR_INTERNAL);
        bool restored = retry && anvil_store_begin(s) == 0 &&
                        anvil_store_cron_restore(s, row->cron_id, row->next_run_at_ms,
                                                 row->last_run_at_ms) >= 0 &&
                        anvil_store_commit(s) == 0;
        if (retry && !restored)
            anvil_store_rollback(s);
        anvil_log(ANVIL_LOG_ERROR, "cron %s: cannot launch %s: %s%s", row->cron_id, row->workflow,
                  err.message ? err.message : "error",
                  restored ? " (fires again at the next poll)" : " (this fire is lost)");
        anvil_error_clear(&err);
        anvil_counter_inc(&m_failed);
        return false;
    }
    anvil_counter_inc(&m_fired);
    anvil_log(ANVIL_LOG_INFO, "cron %s fired: run %s of %s", row->cron_id, run_id, row->workflow);
    free(run_id);
    return true;
}

int anvil_cron_sched_poll(anvil_cron_sched *cs)
{
    int64_t now = anvil_cron_now_ms();
    due_list d = { 0 };
    if (anvil_store_crons_due(cs->store, now, collect_due, &d) < 0)
        anvil_log(ANVIL_LOG_ERROR, "cron poll: %s", anvil_store_errmsg(cs->store));
    int fired = 0;
    for (size_t i = 0; i < d.n; i++) {
        if (!d.oom && fire(cs, &d.rows[i], now))
            fired++;
        anvil_cron_record_clear(&d.rows[i]);
    }
    free(d.rows);
    return fired;
}

static int64_t poll_interval_ms(const anvil_cron_sched *cs)
{
    int64_t ms = cs->cfg->heartbeat_ms;
    if (ms < CRON_POLL_MIN_MS)
        ms = CRON_POLL_MIN_MS;
    if (ms > CRON_POLL_MAX_MS)
        ms = CRON_POLL_MAX_MS;
    return ms;
}

static void on_poll(evutil_socket_t fd, short what, void *arg)
{
    (void)fd;
    (void)what;
    anvil_cron_sched_poll(arg);
}

int anvil_cron_sched_start(anvil_cron_sched *cs, char *err, size_t errlen)
{
    if (sync_config(cs, err, errlen) != 0)
        return -1;
    cs->timer = event_new(cs->base, -1, EV_PERSIST, on_poll, cs);
    int64_t ms = poll_interval_ms(cs);
    struct timeval tv = { (time_t)(ms / 1000), (suseconds_t)(ms % 1000) * 1000 };
    if (!cs->timer || event_add(cs->timer, &tv) != 0) {
        snprintf(err, errlen, "cannot start the cron timer");
        return -1;
    }
    return 0;
}

void anvil_cron_sched_stop(anvil_cron_sched *cs)
{
    if (cs->timer) {
        event_free(cs->timer);
        cs->timer = NULL;
    }
}
