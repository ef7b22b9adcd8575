/*
 * runtime/engine/engine_task.c — task attempts (engine_task.h): static
 * outputs and /bin/sh commands, their streamed output, timeouts, retries
 * and kills.
 *
 * A `run:` task gets stdin {"input": ..., "outputs": {...}}, runs in the
 * run's workspace directory, and its last stdout line that parses as a JSON
 * object becomes the output row. A non-zero exit, a timeout, a kill, or a
 * row that does not match the task's outputSchema fails the attempt;
 * `retries` more attempts follow before the node fails.
 */
#include <assert.h>
#include <errno.h>
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include "clock.h"
#include "engine_mirror.h"
#include "engine_record.h"
#include "engine_registry.h"
#include "engine_task.h"
#include "json_print.h"
#include "log.h"
#include "store_runs.h"
#include "utf8.h"
#include "workspace.h"

#define DEFAULT_MAX_OUTPUT (1024 * 1024)

typedef struct attempt_ctx {
    run_rt *r;
    node_rt *n;
    int64_t attempt;
    anvil_task_ended_fn ended;
} attempt_ctx;


/* Inside a change: the attempt's start, i.e. the node running, its
 * attempt row and node.started. `node_row`: write the node's row too
 * (a change that ends the attempt as well writes it once, at the end). */
static bool start_rows(run_rt *r, node_rt *n, int64_t now, bool node_row)
{
    anvil_node_set_state(n, ANVIL_NODE_STATE_RUNNING);
    if (n->started_at_ms < 0)
        n->started_at_ms = now;
    free(n->error);
    n->error = NULL;
    cJSON *p = anvil_run_node_payload(r, n);
    if (p)
        cJSON_AddNumberToObject(p, "attempt", (double)n->attempts);
    bool ok = p && (!node_row || anvil_run_put_node(r, n) == 0) &&
              anvil_store_attempt_start(r->eng->store, r->rec.run_id, n->def->id, 0, n->attempts,
                                        now, r->rec.last_seq + 1) == 0;   /* node.started's seq */
    if (ok)
        return anvil_run_note(r, true, "node.started", p) == 0;
    cJSON_Delete(p);
    return false;
}

/* Record the attempt's start in a change of its own. */
static bool record_start(run_rt *r, node_rt *n)
{
    int64_t now = anvil_now_ms();
    if (anvil_run_begin(r) != 0) {
        /* The mirror moves anyway: the run is broken and reloaded. */
        anvil_node_set_state(n, ANVIL_NODE_STATE_RUNNING);
        return false;
    }
    return anvil_run_end(r, start_rows(r, n, now, true)) == 0;
}

/* The mirror's side of an attempt's end: the node's new state (pending
 * again when it will be retried). */
static anvil_node_state end_state(run_rt *r, node_rt *n, bool success, const char *error,
                                  int64_t now, bool *retry)
{
    /* Interrupted attempts are not charged to the retries. */
    *retry = !success && n->kill_to == ANVIL_NODE_STATE_PENDING && !r->rec.cancel_requested &&
             n->attempts - n->interrupted <= n->def->retries;
    n->interrupt_streak = 0;
    anvil_node_state to = success ? ANVIL_NODE_STATE_FINISHED
                        : n->kill_to != ANVIL_NODE_STATE_PENDING ? n->kill_to
                        : r->rec.cancel_requested ? ANVIL_NODE_STATE_CANCELLED
                        : *retry ? ANVIL_NODE_STATE_PENDING : ANVIL_NODE_STATE_FAILED;
    anvil_node_set_state(n, to);
    if (to != ANVIL_NODE_STATE_PENDING)
        n->finished_at_ms = now;
    free(n->error);
    n->error = error ? strdup(error) : NULL;
    return to;
}

/* What an attempt's end writes, inside a change: its attempt row, the
 * node's row, the output row (row_text, on success) and the event. */
typedef struct attempt_end {
    int64_t attempt;
    const char *state;           /* the attempt row's state */
    const char *row_text, *error;
    int64_t exit_code;
    const char *out, *err, *commit;
} attempt_end;

static bool end_rows(run_rt *r, node_rt *n, const attempt_end *a, anvil_node_state to, bool retry,
                     int64_t now)
{
    const char *event = to == ANVIL_NODE_STATE_FINISHED ? "node.finished"
                      : to == ANVIL_NODE_STATE_CANCELLED ? "node.cancelled"
                      : to == ANVIL_NODE_STATE_SKIPPED ? "node.skipped" : "node.failed";
    cJSON *p = anvil_run_node_payload(r, n);
    if (p) {
        cJSON_AddNumberToObject(p, "attempt", (double)a->attempt);
        if (a->error)
            cJSON_AddStringToObject(p, "error", a->error);
        if (to == ANVIL_NODE_STATE_PENDING || to == ANVIL_NODE_STATE_FAILED)
            cJSON_AddBoolToObject(p, "willRetry", retry);
    }
    anvil_store *s = r->eng->store;
    bool ok = p && anvil_store_attempt_finish(s, r->rec.run_id, n->def->id, 0, a->attempt, a->state,
                                              now, a->exit_code, a->error, a->out, a->err,
                                              a->commit) == 0 &&
              anvil_run_put_node(r, n) == 0 &&
              (!a->row_text || anvil_store_output_put(s, r->rec.run_id, n->def->id, 0, a->row_text,
                                                      now) == 0);
    if (ok)
        return anvil_run_note(r, true, event, p) == 0;
    cJSON_Delete(p);
    return false;
}

/* The row of a recorded success becomes the node's output for what
 * follows (row consumed). */
static void keep_output(run_rt *r, node_rt *n, cJSON *row)
{
    cJSON_DeleteItemFromObjectCaseSensitive(r->outputs, n->def->id);
    cJSON_AddItemToObject(r->outputs, n->def->id, row);
}

/* The attempt ended. Exactly one of: row (success), error (failure). */
static void record_end(run_rt *r, node_rt *n, int64_t attempt, const char *attempt_state,
                       cJSON *row, const char *error, int64_t exit_code, const char *out,
                       const char *err, const char *commit)
{
    int64_t now = anvil_now_ms();
    bool retry;
    anvil_node_state to = end_state(r, n, row != NULL, error, now, &retry);
    char *row_text = row ? anvil_json_print(row) : NULL;
    if ((row && !row_text) || anvil_run_begin(r) != 0) {
        free(row_text);
        cJSON_Delete(row);
        return;
    }
    attempt_end a = { attempt, attempt_state, row_text, error, exit_code, out, err, commit };
    bool ok = end_rows(r, n, &a, to, retry, now);
    free(row_text);
    if (anvil_run_end(r, ok) == 0 && row) {
        keep_output(r, n, row);
        row = NULL;
    }
    cJSON_Delete(row);
    n->kill_to = ANVIL_NODE_STATE_PENDING;
}

/* A static task that produced its row: its start and its end are one
 * change (the same events and frames as two, with one savepoint and one
 * write of the node's and the run's rows). */
static void record_static_success(run_rt *r, node_rt *n, cJSON *row)
{
    int64_t now = anvil_now_ms();
    char *row_text = anvil_json_print(row);
    if (!row_text || anvil_run_begin(r) != 0) {
        /* The mirror moves anyway: the run is broken and reloaded. */
        anvil_node_set_state(n, ANVIL_NODE_STATE_RUNNING);
        free(row_text);
        cJSON_Delete(row);
        return;
    }
    bool ok = start_rows(r, n, now, false);
    bool retry;
    anvil_node_state to = end_state(r, n, true, NULL, now, &retry);
    attempt_end a = { n->attempts, "succeeded", row_text, NULL, -1, NULL, NULL, NULL };
    ok = ok && end_rows(r, n, &a, to, retry, now);
    free(row_text);
    if (anvil_run_end(r, ok) == 0) {
        keep_output(r, n, row);
        row = NULL;
    }
    cJSON_Delete(row);
    n->kill_to = ANVIL_NODE_STATE_PENDING;
}

bool anvil_task_record_interrupted(run_rt *r, node_rt *n, const char *why, const char *out,
                                   const char *err, const char *commit)
{
    assert(n->def->kind == ANVIL_NODE_TASK && n->state == ANVIL_NODE_STATE_RUNNING);
    int64_t now = anvil_now_ms();
    n->interrupted++;
    n->interrupt_streak++;
    bool cancel = r->rec.cancel_requested;
    bool again = !cancel && n->interrupt_streak < ANVIL_TASK_MAX_INTERRUPTIONS;
    char msg[256];
    if (again || cancel)
        snprintf(msg, sizeof msg, "interrupted: %s", why);
    else
        snprintf(msg, sizeof msg, "interrupted %lld times in a row (%s); not run again",
                 (long long)n->interrupt_streak, why);
    anvil_node_set_state(n, again ? ANVIL_NODE_STATE_PENDING
                            : cancel ? ANVIL_NODE_STATE_CANCELLED : ANVIL_NODE_STATE_FAILED);
    if (!again)
        n->finished_at_ms = now;
    free(n->error);
    n->error = strdup(msg);
    if (anvil_run_begin(r) != 0)
        return false;
    cJSON *p = anvil_run_node_payload(r, n);
    if (p) {
        cJSON_AddNumberToObject(p, "attempt", (double)n->attempts);
        cJSON_AddStringToObject(p, "error", msg);
        cJSON_AddBoolToObject(p, "interrupted", true);
        cJSON_AddBoolToObject(p, "willRetry", again);
    }
    bool ok = p && anvil_store_attempt_finish(r->eng->store, r->rec.run_id, n->def->id, 0,
                                              n->attempts, "interrupted", now, -1, why, out,
                                              err, commit) == 0 &&
              anvil_run_put_node(r, n) == 0;
    if (ok)
        ok = anvil_run_note(r, true, cancel ? "node.cancelled" : "node.failed", p) == 0;
    else
        cJSON_Delete(p);
    return anvil_run_end(r, ok) == 0;
}

static void on_output(void *ctx, anvil_proc_stream stream, const char *data, size_t len)
{
    attempt_ctx *a = ctx;
    run_rt *r = a->r;
    char *text = anvil_utf8_clean(data, len);
    if (!text || anvil_run_begin(r) != 0) {
        free(text);
        return;
    }
    cJSON *p = anvil_run_node_payload(r, a->n);
    if (p) {
        cJSON_AddNumberToObject(p, "attempt", (double)a->attempt);
        cJSON_AddStringToObject(p, "stream", stream == ANVIL_PROC_STDOUT ? "stdout" : "stderr");
        cJSON_AddStringToObject(p, "data", text);
    }
    free(text);
    anvil_run_end(r, p && anvil_run_note(r, false, "task.output", p) == 0);
}

/* Commit what the attempt left in the workspace (workspace.h). The new
 * commit becomes the mirror's workspace head, written with the attempt's
 * end in one transaction. A failed commit is logged and leaves the
 * attempt without one: the run goes on, and its diff answers VcsError. */
static const char *commit_attempt(run_rt *r, node_rt *n, int64_t attempt, const char *how,
                                  char out[ANVIL_COMMIT_HEX])
{
    if (!r->wf->version_workspace)
        return NULL;
    anvil_engine *e = r->eng;
    char *dir = anvil_workspace_dir(e->workspace_root, r->rec.run_id);
    char *git = anvil_workspace_gitdir(e->workspace_root, r->rec.run_id);
    char msg[512], err[256];
    snprintf(msg, sizeof msg, "run %s: node %s iteration 0 attempt %lld %s\n",
             r->rec.run_id, n->def->id, (long long)attempt, how);
    int rc = dir && git ? anvil_workspace_commit(git, dir, r->rec.workspace_head, msg, out, err,
                                                 sizeof err)
                        : (snprintf(err, sizeof err, "out of memory"), -1);
    free(dir);
    free(git);
    char *head = rc == 0 ? strdup(out) : NULL;
    if (!head) {
        anvil_log_run(ANVIL_LOG_WARN, r->rec.run_id,
                      "run %s: node %s attempt %lld: workspace not committed: %s",
                      r->rec.run_id, n->def->id, (long long)attempt, rc == 0 ? "out of memory" : err);
        return NULL;
    }
    free(r->rec.workspace_head);
    r->rec.workspace_head = head;
    return out;
}

/* Hold a produced row to the task's outputSchema (output_schema.h). A
 * row that matches loses the members the schema does not declare, as the
 * upstream's rows do; one that does not is freed and why says where it
 * differs (the attempt then fails, and its retries apply). note (may be
 * empty) is added to that message. Returns the row, or NULL. */
static cJSON *conform_row(const anvil_wf_node *def, cJSON *row, const char *note, char *why,
                          size_t whylen)
{
    char problems[768];
    if (!row || !def->output_schema)
        return row;
    if (anvil_output_schema_check(def->output_schema, row, NULL, problems, sizeof problems) == 0) {
        anvil_output_schema_strip(def->output_schema, row);
        return row;
    }
    snprintf(why, whylen, "output does not match outputSchema: %s%s", problems, note);
    cJSON_Delete(row);
    return NULL;
}

static void on_exit_cb(void *ctx, const anvil_proc_result *res)
{
    attempt_ctx *a = ctx;
    run_rt *r = a->r;
    node_rt *n = a->n;
    int64_t attempt = a->attempt;
    anvil_task_ended_fn ended = a->ended;
    free(a);
    n->proc = NULL;
    n->proc_ctx = NULL;
    r->running_tasks--;
    assert(r->running_tasks >= 0);
    /* A broken run waits for its tasks before it can be reloaded: the
     * last one just ended, so do it now rather than at the backoff. */
    if (r->broken && r->running_tasks == 0)
        anvil_engine_repair_soon(r->eng);

    char *out = anvil_utf8_clean(res->out ? res->out : "", res->out_len);
    char *err = anvil_utf8_clean(res->err ? res->err : "", res->err_len);
    char commit_buf[ANVIL_COMMIT_HEX];
    if (res->killed && n->interrupting) {
        assert(attempt == n->attempts);
        n->interrupting = false;
        const char *commit = commit_attempt(r, n, attempt, "(interrupted)", commit_buf);
        anvil_task_record_interrupted(r, n, "the server stopped while the task was running", out,
                                      err, commit);
        free(out);
        free(err);
        ended(r);
        return;
    }
    char why[1024];
    cJSON *row = NULL;
    const char *state = "failed";
    if (res->killed) {
        snprintf(why, sizeof why, "%s", r->rec.cancel_requested ? "cancelled" : "stopped");
        state = "cancelled";
    } else if (res->timed_out) {
        snprintf(why, sizeof why, "timed out after %lld ms", (long long)res->duration_ms);
        state = "timed_out";
    } else if (res->term_signal) {
        snprintf(why, sizeof why, "killed by signal %d", res->term_signal);
    } else if (res->exit_code != 0) {
        snprintf(why, sizeof why, "exited with status %d", res->exit_code);
    } else {
        row = res->json_line ? cJSON_Parse(res->json_line) : NULL;
        if (!row)
            row = cJSON_CreateObject();   /* no JSON line: an empty row */
        row = conform_row(n->def, row, res->json_line ? "" : " (the command printed no JSON "
                          "object line, so its row was {})", why, sizeof why);
        state = row ? "succeeded" : "failed";
    }
    if (res->killed && n->kill_to == ANVIL_NODE_STATE_PENDING)
        n->kill_to = r->rec.cancel_requested ? ANVIL_NODE_STATE_CANCELLED : ANVIL_NODE_STATE_SKIPPED;
    char how[64];
    snprintf(how, sizeof how, "(%s)", state);
    const char *commit = commit_attempt(r, n, attempt, how, commit_buf);
    record_end(r, n, attempt, state, row, row ? NULL : why, res->term_signal ? -1 : res->exit_code,
               out, err, commit);
    free(out);
    free(err);
    ended(r);
}

static void start_static(run_rt *r, node_rt *n)
{
    char err[1024];
    cJSON *row = anvil_template_expand_json(n->def->output, r->input, r->outputs, err, sizeof err);
    if (row && !cJSON_IsObject(row)) {
        cJSON_Delete(row);
        row = NULL;
        snprintf(err, sizeof err, "output did not expand to an object");
    }
    row = conform_row(n->def, row, "", err, sizeof err);
    if (row) {
        record_static_success(r, n, row);
        return;
    }
    if (record_start(r, n))
        record_end(r, n, n->attempts, "failed", NULL, err, -1, NULL, NULL, NULL);
}

static void start_process(run_rt *r, node_rt *n, anvil_task_ended_fn ended)
{
    anvil_engine *e = r->eng;
    char err[256];
    char *cmd = anvil_template_expand(n->def->run, ANVIL_TEMPLATE_SHELL, r->input, r->outputs, err,
                                      sizeof err);
    if (!record_start(r, n)) {
        free(cmd);
        return;
    }
    /* The attempt's start is durable before its process exists: after a
     * crash, recovery must know of every process it may have left. */
    if (anvil_store_flush(e->store) != 0 || r->broken) {
        free(cmd);
        return;
    }
    if (!cmd) {
        record_end(r, n, n->attempts, "failed", NULL, err, -1, NULL, NULL, NULL);
        return;
    }
    char dir[4096];
    snprintf(dir, sizeof dir, "%s/%s", e->workspace_root, r->rec.run_id);
    if (anvil_workspace_make_dir(dir) != 0) {
        snprintf(err, sizeof err, "cannot create workspace %.180s: %s", dir, strerror(errno));
        free(cmd);
        record_end(r, n, n->attempts, "failed", NULL, err, -1, NULL, NULL, NULL);
        return;
    }
    cJSON *in = cJSON_CreateObject();
    if (in) {
        cJSON_AddItemToObject(in, "input", cJSON_Duplicate(r->input, true));
        cJSON_AddItemToObject(in, "outputs", cJSON_Duplicate(r->outputs, true));
    }
    char *stdin_text = in ? anvil_json_print(in) : NULL;
    cJSON_Delete(in);
    int64_t timeout = n->def->timeout_ms > 0 ? n->def->timeout_ms : r->tool_timeout_ms;
    char env_run[160], env_node[160];
    snprintf(env_run, sizeof env_run, "ANVIL_RUN_ID=%s", r->rec.run_id);
    snprintf(env_node, sizeof env_node, "ANVIL_NODE_ID=%s", n->def->id);
    char *env[] = { env_run, env_node, NULL };
    attempt_ctx *a = calloc(1, sizeof *a);
    if (!a || !stdin_text) {
        free(a);
        free(stdin_text);
        free(cmd);
        record_end(r, n, n->attempts, "failed", NULL, "out of memory", -1, NULL, NULL, NULL);
        return;
    }
    a->r = r;
    a->n = n;
    a->attempt = n->attempts;
    a->ended = ended;
    anvil_proc_opts o = {
        .command = cmd, .cwd = dir, .stdin_data = stdin_text, .stdin_len = strlen(stdin_text),
        .max_output_bytes = (size_t)(r->max_output_bytes > 0 ? r->max_output_bytes : DEFAULT_MAX_OUTPUT),
        .timeout_ms = timeout, .env = env, .on_output = on_output, .on_exit = on_exit_cb, .ctx = a,
    };
    n->proc_ctx = a;
    int rc = anvil_proc_spawn(&o, &n->proc, err, sizeof err);
    free(cmd);
    free(stdin_text);
    if (rc != 0) {
        free(a);
        n->proc = NULL;
        n->proc_ctx = NULL;
        record_end(r, n, n->attempts, "failed", NULL, err, -1, NULL, NULL, NULL);
        return;
    }
    n->proc_started_ms = anvil_mono_ms();
    r->running_tasks++;
}

void anvil_task_start(run_rt *r, node_rt *n, anvil_task_ended_fn ended)
{
    assert(n->def->kind == ANVIL_NODE_TASK && n->state == ANVIL_NODE_STATE_PENDING && !n->proc);
    n->attempts++;
    n->kill_to = ANVIL_NODE_STATE_PENDING;
    if (n->def->run)
        start_process(r, n, ended);
    else
        start_static(r, n);
}

void anvil_task_kill(node_rt *n)
{
    if (!n->proc)
        return;
    if (n->kill_to == ANVIL_NODE_STATE_PENDING)
        n->kill_to = n->run && n->run->rec.cancel_requested ? ANVIL_NODE_STATE_CANCELLED
                                                            : ANVIL_NODE_STATE_SKIPPED;
    anvil_proc_kill(n->proc);
}

void anvil_task_interrupt(node_rt *n)
{
    if (!n->proc)
        return;
    n->interrupting = true;
    anvil_proc_kill(n->proc);
}

static void heartbeat_run(run_rt *r, void *ctx)
{
    (void)ctx;
    if (r->running_tasks == 0)
        return;
    for (size_t i = 0; i < r->wf->n_nodes; i++) {
        node_rt *n = &r->nodes[i];
        if (!n->proc || anvil_run_begin(r) != 0)
            continue;
        cJSON *p = anvil_run_node_payload(r, n);
        if (p) {
            cJSON_AddNumberToObject(p, "attempt", (double)n->attempts);
            cJSON_AddNumberToObject(p, "elapsedMs", (double)(anvil_mono_ms() - n->proc_started_ms));
        }
        anvil_run_end(r, p && anvil_run_note(r, false, "task.heartbeat", p) == 0);
    }
}

void anvil_task_heartbeats(anvil_engine *e)
{
    anvil_registry_each(e, heartbeat_run, NULL);
}
