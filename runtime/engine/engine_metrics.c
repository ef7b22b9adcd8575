/*
 * runtime/engine/engine_metrics.c — see engine_metrics.h. Counted from the
 * events as they are published, that is once their change is durable: a
 * change a failed commit lost counts nothing.
 */
#include "engine_metrics.h"

#include <string.h>

#include "anvil_statuses.h"

static anvil_counter m_events, m_started, m_requested, m_approved, m_denied, m_signals;
static anvil_counter m_finished[ANVIL_RUN_STATUS__COUNT];

void anvil_engine_metrics_event(const char *event, const cJSON *payload)
{
    anvil_counter_inc(&m_events);
    if (!strcmp(event, "run.started")) {
        anvil_counter_inc(&m_started);
    } else if (!strcmp(event, "run.completed")) {
        const cJSON *st = cJSON_GetObjectItemCaseSensitive(payload, "status");
        anvil_run_status s;
        if (cJSON_IsString(st) && anvil_run_status_parse(st->valuestring, &s))
            anvil_counter_inc(&m_finished[s]);
    } else if (!strcmp(event, "approval.requested")) {
        anvil_counter_inc(&m_requested);
    } else if (!strcmp(event, "approval.decided")) {
        anvil_counter_inc(cJSON_IsTrue(cJSON_GetObjectItemCaseSensitive(payload, "approved"))
                              ? &m_approved : &m_denied);
    }
}

void anvil_engine_metrics_signal(void)
{
    anvil_counter_inc(&m_signals);
}

static void one(anvil_metrics_out *o, const char *name, const char *help, const anvil_counter *c)
{
    anvil_metrics_single(o, name, "counter", help, (double)anvil_counter_get(c));
}

void anvil_engine_metrics_render(anvil_metrics_out *o)
{
    one(o, "anvil_runs_started_total", "Runs launched (durable run.started).", &m_started);
    anvil_metrics_family(o, "anvil_runs_finished_total", "counter",
                         "Runs that ended, by status (durable run.completed).");
    for (int s = 0; s < ANVIL_RUN_STATUS__COUNT; s++) {
        if (!anvil_run_status_terminal((anvil_run_status)s))
            continue;
        const char *labels[] = { "status", anvil_run_status_name((anvil_run_status)s), NULL };
        anvil_metrics_sample(o, "anvil_runs_finished_total", labels,
                             (double)anvil_counter_get(&m_finished[s]));
    }
    one(o, "anvil_approvals_requested_total", "Approvals requested.", &m_requested);
    anvil_metrics_family(o, "anvil_approvals_decided_total", "counter",
                         "Approvals decided, by decision.");
    const char *yes[] = { "decision", "approved", NULL }, *no[] = { "decision", "denied", NULL };
    anvil_metrics_sample(o, "anvil_approvals_decided_total", yes, (double)anvil_counter_get(&m_approved));
    anvil_metrics_sample(o, "anvil_approvals_decided_total", no, (double)anvil_counter_get(&m_denied));
    one(o, "anvil_signals_received_total", "Signals the engine accepted for a run.", &m_signals);
    one(o, "anvil_run_events_published_total", "Run events published after their commit.", &m_events);
}
