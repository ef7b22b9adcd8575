/*
 * runtime/server/webhooks.c — POST /webhooks/{workflow} (see webhooks.h).
 *
 * A delivery is checked (workflow, signature, delivery id, body), then
 * acts: signals the waiting runs, or starts a run. With a delivery id the
 * first answer is recorded and replayed to repeats; and since a crash can
 * come between acting and recording, each effect carries the delivery's
 * key in its own row (the run's idempotency key, the signal's delivery
 * key), so a repeat whose answer is missing finds what was done instead
 * of doing it again.
 */
#include <assert.h>
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "metrics.h"
#include "clock.h"
#include "config.h"
#include "engine.h"
#include "json_bounds.h"
#include "json_parse.h"
#include "json_print.h"
#include "log.h"
#include "store_runs.h"
#include "store_webhooks.h"
#include "webhooks.h"

#define SHA256_HEX 64

bool anvil_webhook_signature_ok(const char *secret, const char *prefix, const char *header_value,
                                const char *body, size_t body_len)
{
    if (!secret || !header_value)
        return false;
    size_t plen = prefix ? strlen(prefix) : 0;
    if (plen && strncmp(header_value, prefix, plen) != 0)
        return false;
    const char *got = header_value + plen;
    if (strlen(got) != SHA256_HEX)
        return false;
    unsigned char mac[EVP_MAX_MD_SIZE];
    unsigned int mac_len = 0;
    size_t klen = strlen(secret);
    if (klen > 0x7fffffff ||
        !HMAC(EVP_sha256(), secret, (int)klen, (const unsigned char *)body, body_len, mac, &mac_len) ||
        mac_len * 2 != SHA256_HEX)
        return false;
    static const char hex[] = "0123456789abcdef";
    char want[SHA256_HEX], have[SHA256_HEX];
    for (unsigned int i = 0; i < mac_len; i++) {
        want[2 * i] = hex[mac[i] >> 4];
        want[2 * i + 1] = hex[mac[i] & 15];
    }
    for (size_t i = 0; i < SHA256_HEX; i++)
        have[i] = (char)tolower((unsigned char)got[i]);
    return CRYPTO_memcmp(want, have, SHA256_HEX) == 0;
}

const cJSON *anvil_webhook_path_get(const cJSON *root, const char *path)
{
    if (!path || !*path)
        return root;
    const cJSON *cur = root;
    const char *p = path;
    while (cur && *p) {
        const char *dot = strchr(p, '.');
        size_t len = dot ? (size_t)(dot - p) : strlen(p);
        char key[256];
        if (len == 0 || len >= sizeof key)
            return NULL;
        memcpy(key, p, len);
        key[len] = '\0';
        if (cJSON_IsObject(cur)) {
            cur = cJSON_GetObjectItemCaseSensitive(cur, key);
        } else if (cJSON_IsArray(cur)) {
            if (strspn(key, "0123456789") != len || len > 9)
                return NULL;
            cur = cJSON_GetArrayItem(cur, atoi(key));
        } else {
            return NULL;
        }
        p += len;
        if (*p == '.')
            p++;
    }
    return cur;
}

/* A correlation id from a JSON value: strings as they are, integral numbers
 * without a fraction, anything else (bool, object, array) as JSON text; null
 * or missing gives NULL. */
static char *stringify(const cJSON *v, bool *oom)
{
    *oom = false;
    char *s = NULL;
    if (!v || cJSON_IsNull(v))
        return NULL;
    if (cJSON_IsString(v)) {
        s = strdup(v->valuestring);
    } else if (cJSON_IsNumber(v) && v->valuedouble == floor(v->valuedouble) &&
               fabs(v->valuedouble) < 9007199254740992.0) {
        char buf[32];
        snprintf(buf, sizeof buf, "%lld", (long long)v->valuedouble);
        s = strdup(buf);
    } else {
        s = cJSON_PrintUnformatted(v);
    }
    if (!s)
        *oom = true;
    return s;
}

static const anvil_workflow_ref *find_ref(const anvil_config *cfg, const char *name)
{
    for (size_t i = 0; i < cfg->n_workflows; i++)
        if (strcmp(cfg->workflows[i].name, name) == 0)
            return &cfg->workflows[i];
    return NULL;
}

static cJSON *parse_body(const char *body, size_t body_len, anvil_error *err)
{
    anvil_json_bounds bounds = anvil_json_bounds_default();
    char msg[160], path[256];
    if (anvil_json_check_depth(body, body_len, bounds.max_depth, msg, sizeof msg) != 0) {
        anvil_error_set(err, ANVIL_ERR_INVALID_REQUEST, "%s", msg);
        return NULL;
    }
    anvil_json_parse_status parsed;
    cJSON *root = anvil_json_parse_exact(body, body_len, &parsed);
    if (!root) {
        anvil_error_set(err, ANVIL_ERR_INVALID_REQUEST, "Webhook body is not valid JSON");
        return NULL;
    }
    if (anvil_json_check_tree(root, &bounds, "$", msg, sizeof msg, path, sizeof path) != 0) {
        anvil_error_set(err, ANVIL_ERR_INVALID_REQUEST, "%s", msg);
        anvil_error_detail_str(err, "path", path);
        cJSON_Delete(root);
        return NULL;
    }
    return root;
}

/* ---- delivery ids ------------------------------------------------------------ */

bool anvil_webhook_delivery_id_ok(const char *id)
{
    size_t n = 0;
    for (; id[n]; n++) {
        unsigned char ch = (unsigned char)id[n];
        if (ch < 0x21 || ch > 0x7e || n >= ANVIL_WEBHOOK_DELIVERY_ID_MAX)
            return false;
    }
    return n > 0;
}

/* "headers.<name>" in lower case: where the bad value was, for `path`. */
static void header_path(const char *name, char *out, size_t outlen)
{
    static const char prefix[] = "headers.";
    assert(outlen > sizeof prefix);
    snprintf(out, outlen, "%s%s", prefix, name);
    for (char *p = out + sizeof prefix - 1; *p; p++)
        *p = (char)tolower((unsigned char)*p);
}

/* The delivery's id from the configured header: NULL (and 0) when it is
 * not sent; 400 InvalidRequest with `path` when it is sent twice, empty,
 * too long or not printable ASCII - a key nobody can compare reliably. */
static int read_delivery_id(const anvil_http_head *head, const char *name, const char **id,
                            anvil_error *err)
{
    *id = anvil_http_header_get(head, name);
    if (!*id)
        return 0;
    char path[160];
    header_path(name, path, sizeof path);
    size_t count = anvil_http_header_count(head, name);
    if (count > 1)
        anvil_error_set(err, ANVIL_ERR_INVALID_REQUEST,
                        "%s: the delivery id header was sent %zu times; send it once", path, count);
    else if (!anvil_webhook_delivery_id_ok(*id))
        anvil_error_set(err, ANVIL_ERR_INVALID_REQUEST,
                        "%s: a delivery id must be 1 to %d printable ASCII characters without "
                        "spaces", path, ANVIL_WEBHOOK_DELIVERY_ID_MAX);
    else
        return 0;
    anvil_error_detail_str(err, "path", path);
    *id = NULL;
    return -1;
}

static bool body_sha256(const char *body, size_t len, char hex[SHA256_HEX + 1])
{
    unsigned char md[EVP_MAX_MD_SIZE];
    unsigned int md_len = 0;
    if (!EVP_Digest(body, len, md, &md_len, EVP_sha256(), NULL) || md_len * 2 != SHA256_HEX)
        return false;
    for (unsigned int i = 0; i < md_len; i++)
        snprintf(hex + 2 * i, 3, "%02x", md[i]);
    return true;
}

/* ---- acting on a delivery ----------------------------------------------------- */

/* One delivery being acted on. */
typedef struct delivery {
    anvil_engine *e;
    const char *wf;
    const anvil_webhook_config *h;
    const char *by;              /* "webhook:<workflow>": who signals, who launches */
    const char *key;             /* "webhook:<delivery id>", or NULL without an id */
    cJSON *list;                 /* `delivered`, owned */
    char *started;               /* startedRunId, owned, or NULL */
    bool oom;                    /* a store callback could not add to list */
} delivery;

static bool listed(const cJSON *list, const char *run_id)
{
    const cJSON *it;
    cJSON_ArrayForEach(it, list) {
        const cJSON *r = cJSON_GetObjectItemCaseSensitive(it, "runId");
        if (cJSON_IsString(r) && strcmp(r->valuestring, run_id) == 0)
            return true;
    }
    return false;
}

static bool add_delivery(cJSON *list, const char *run_id, const char *name, const char *corr,
                         int64_t seq, int64_t received_at_ms)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return false;
    }
    return cJSON_AddStringToObject(o, "runId", run_id) &&
           cJSON_AddNumberToObject(o, "seq", (double)seq) &&
           cJSON_AddStringToObject(o, "signalName", name) &&
           (corr ? cJSON_AddStringToObject(o, "correlationId", corr)
                 : cJSON_AddNullToObject(o, "correlationId")) &&
           cJSON_AddNumberToObject(o, "receivedAtMs", (double)received_at_ms);
}

static int add_prior_signal(void *ctx, const anvil_delivery_signal *sig)
{
    delivery *d = ctx;
    /* The engine stores "no correlation id" as "". */
    const char *corr = sig->correlation_id && sig->correlation_id[0] ? sig->correlation_id : NULL;
    if (listed(d->list, sig->run_id))
        return 0;
    if (!add_delivery(d->list, sig->run_id, sig->signal_name ? sig->signal_name : d->h->signal_name,
                      corr, sig->seq, sig->received_at_ms))
        d->oom = true;
    return d->oom;
}

/* What an earlier attempt at this delivery did, from the keys in the
 * rows: the run it started, the signals it recorded. */
static int find_prior_effects(delivery *d, anvil_error *err)
{
    anvil_store *st = anvil_engine_store(d->e);
    if (anvil_store_run_by_idempotency(st, d->wf, d->key, &d->started) < 0 ||
        anvil_store_signals_by_delivery(st, d->wf, d->key, add_prior_signal, d) < 0)
        return anvil_store_error(st, err, NULL);
    return d->oom ? anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory") : 0;
}

static int signal_run(delivery *d, const char *run_id, const char *corr, const cJSON *payload,
                      anvil_signal_receipt *rc, anvil_error *err)
{
    const char *name = d->h->signal_name;
    return d->key ? anvil_engine_signal_once(d->e, run_id, name, corr, payload, d->by, d->key, rc, err)
                  : anvil_engine_signal(d->e, run_id, name, corr, payload, d->by, rc, err);
}

/* Signal the run named at runIdPath: it must exist and belong to the
 * workflow. */
static int signal_one(delivery *d, const char *run_id, const char *corr, const cJSON *payload,
                      anvil_error *err)
{
    if (listed(d->list, run_id))
        return 0;   /* an earlier attempt signalled it */
    anvil_store *st = anvil_engine_store(d->e);
    anvil_run_record rec;
    int found = anvil_store_run_get(st, run_id, &rec);
    if (found < 0)
        return anvil_store_error(st, err, NULL);
    bool mine = found == 1 && rec.workflow && strcmp(rec.workflow, d->wf) == 0;
    if (found == 1)
        anvil_run_record_clear(&rec);
    if (!mine)
        return anvil_error_set(err, ANVIL_ERR_RUN_NOT_FOUND, "Run not found for workflow %s: %s",
                               d->wf, run_id);
    anvil_signal_receipt rc;
    if (signal_run(d, run_id, corr, payload, &rc, err) != 0)
        return -1;
    if (!add_delivery(d->list, run_id, d->h->signal_name, corr, rc.seq, rc.received_at_ms))
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    return 0;
}

static int signal_waiting(delivery *d, const char *corr, const cJSON *payload, anvil_error *err)
{
    anvil_signal_delivery *got = NULL;
    size_t n = 0;
    int rc = anvil_engine_signal_waiting(d->e, d->wf, d->h->signal_name, corr, payload, d->by,
                                         d->key, &got, &n, err);
    for (size_t i = 0; i < n; i++) {
        if (listed(d->list, got[i].run_id))
            continue;
        if (!add_delivery(d->list, got[i].run_id, d->h->signal_name, corr, got[i].receipt.seq,
                          got[i].receipt.received_at_ms) && rc == 0)
            rc = anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    }
    anvil_signal_deliveries_free(got, n);
    return rc;
}

static int deliver(delivery *d, const cJSON *root, anvil_error *err)
{
    const anvil_webhook_config *h = d->h;
    bool oom = false;
    char *corr = h->signal_correlation_path
                     ? stringify(anvil_webhook_path_get(root, h->signal_correlation_path), &oom)
                     : NULL;
    const cJSON *payload = h->signal_payload_path
                               ? anvil_webhook_path_get(root, h->signal_payload_path)
                               : root;
    const cJSON *rid = h->signal_run_id_path
                           ? anvil_webhook_path_get(root, h->signal_run_id_path)
                           : NULL;
    int rc;
    if (oom)
        rc = anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    else if (cJSON_IsString(rid) && rid->valuestring[0])
        rc = signal_one(d, rid->valuestring, corr, payload, err);
    else
        rc = signal_waiting(d, corr, payload, err);
    free(corr);
    return rc;
}

static int start_run(delivery *d, const cJSON *root, anvil_error *err)
{
    const char *input_path = d->h->run_input_path;
    const cJSON *input = anvil_webhook_path_get(root, input_path);
    if (!cJSON_IsObject(input)) {
        anvil_error_set(err, ANVIL_ERR_INVALID_INPUT, "%s%s%s must be a JSON object to start a run",
                        input_path ? "The value at inputPath " : "The webhook body",
                        input_path ? input_path : "",
                        !input && input_path ? " (missing)" : "");
        return -1;
    }
    static char star[] = "*";
    char *scopes[] = {star};
    /* Problems with the input are named where they are in the body. */
    char at[300];
    bool nested = input_path && *input_path;
    snprintf(at, sizeof at, "$%s%.280s", nested ? "." : "", nested ? input_path : "");
    anvil_launch l = {
        .workflow = d->wf,
        .input = input,
        .input_at = at,
        .idempotency_key = d->key,   /* the run and its delivery are one write */
        .triggered_by = d->by,
        .role = "system",
        .scopes = scopes,
        .n_scopes = 1,
    };
    bool existing = false;
    return anvil_engine_launch(d->e, &l, &d->started, &existing, err);
}

/* Signal, else start a run; with a key, first take in what an earlier
 * attempt did: a run it started means it is done (a run is started only
 * when nothing was signalled); signals it recorded are listed and not sent
 * again. */
static int act(delivery *d, const cJSON *root, anvil_error *err)
{
    if (d->key && find_prior_effects(d, err) != 0)
        return -1;
    if (d->started)
        return 0;
    if (d->h->signal_name && deliver(d, root, err) != 0)
        return -1;
    if (d->h->run_enabled && cJSON_GetArraySize(d->list) == 0)
        return start_run(d, root, err);
    return 0;
}

static char *reply_text(delivery *d, bool verified)
{
    cJSON *reply = cJSON_CreateObject();
    char *text = NULL;
    if (reply && cJSON_AddBoolToObject(reply, "ok", 1) &&
        cJSON_AddStringToObject(reply, "workflow", d->wf) &&
        cJSON_AddBoolToObject(reply, "verified", verified) &&
        cJSON_AddItemToObject(reply, "delivered", d->list)) {
        d->list = NULL;
        if (!d->started || cJSON_AddStringToObject(reply, "startedRunId", d->started))
            text = anvil_json_print(reply);
    }
    cJSON_Delete(reply);
    return text;
}

/* ---- the first answer ------------------------------------------------------- */

/* 1 with *out filled when this delivery id was answered within the
 * retention window, 0 when not, -1 with err. */
static int replay(anvil_store *st, const char *wf, const char *id, const char *sha,
                  anvil_webhook_answer *out, anvil_error *err)
{
    anvil_webhook_delivery prior;
    int found = anvil_store_webhook_delivery_get(st, wf, id, anvil_now_ms() -
                                                 ANVIL_WEBHOOK_DELIVERY_RETENTION_MS, &prior);
    if (found < 0)
        return anvil_store_error(st, err, NULL);
    if (found == 0)
        return 0;
    /* The id alone names the delivery (the rule, and GitHub's: a
     * redelivery keeps it); a different body under it is the sender's
     * mistake, worth a line in the log, not a second run. */
    if (strcmp(prior.body_sha256, sha) != 0)
        anvil_log(ANVIL_LOG_WARN, "webhook %s: delivery %s repeated with a different body; "
                  "answered with the first delivery's result", wf, id);
    out->status = prior.status;
    out->body = prior.reply_json;
    out->replayed = true;
    prior.reply_json = NULL;
    anvil_webhook_delivery_clear(&prior);
    return 1;
}

/* Record the answer, and prune a bounded batch of rows past the window,
 * in one transaction. A failure is logged, not answered: the delivery's
 * effects are durable and keyed, so a repeat finds them anyway. */
static void record(anvil_store *st, const char *wf, const char *id, const char *sha,
                   const char *text)
{
    int64_t now = anvil_now_ms();
    anvil_webhook_delivery rec = {
        .received_at_ms = now, .body_sha256 = (char *)sha, .status = 200, .reply_json = (char *)text,
    };
    if (anvil_store_begin(st) == 0 &&
        anvil_store_webhook_deliveries_prune(st, now - ANVIL_WEBHOOK_DELIVERY_RETENTION_MS,
                                             ANVIL_WEBHOOK_PRUNE_BATCH) >= 0 &&
        anvil_store_webhook_delivery_put(st, wf, id, &rec) == 0 && anvil_store_commit(st) == 0)
        return;
    anvil_log(ANVIL_LOG_WARN, "webhook %s: the answer to delivery %s was not recorded (%s); a "
              "repeat will find what it did from its runs and signals", wf, id,
              anvil_store_errmsg(st));
    anvil_store_rollback(st);
}

/* ---- one delivery --------------------------------------------------------------- */

void anvil_webhook_answer_clear(anvil_webhook_answer *a)
{
    free(a->body);
    memset(a, 0, sizeof *a);
}

/* 401 unless the signature is right; *verified says whether one was
 * checked (a webhook without a secret takes unsigned deliveries). */
static int check_signature(const anvil_webhook_config *h, const anvil_http_head *head,
                           const char *body, size_t body_len, bool *verified, anvil_error *err)
{
    *verified = false;
    if (!h->secret)
        return 0;
    const char *hdr = h->signature_header ? h->signature_header : "x-hub-signature-256";
    const char *value = anvil_http_header_get(head, hdr);
    if (!value)
        return anvil_error_set(err, ANVIL_ERR_UNAUTHORIZED, "Missing webhook signature header %s", hdr);
    if (!anvil_webhook_signature_ok(h->secret, h->signature_prefix ? h->signature_prefix : "sha256=",
                                    value, body, body_len))
        return anvil_error_set(err, ANVIL_ERR_UNAUTHORIZED, "Webhook signature does not match");
    *verified = true;
    return 0;
}

/* Act on a parsed delivery and answer it; a delivery id gets its answer
 * recorded. */
static int answer(const anvil_services *svc, const char *workflow, const anvil_webhook_config *h,
                  bool verified, const char *id, const char *sha, const cJSON *root,
                  anvil_webhook_answer *out, anvil_error *err)
{
    char by[300], key[16 + ANVIL_WEBHOOK_DELIVERY_ID_MAX];
    snprintf(by, sizeof by, "webhook:%s", workflow);
    if (id)
        snprintf(key, sizeof key, "webhook:%s", id);
    delivery d = { .e = svc->engine, .wf = workflow, .h = h, .by = by, .key = id ? key : NULL,
                   .list = cJSON_CreateArray() };
    int rc = d.list ? act(&d, root, err) : anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    char *text = rc == 0 ? reply_text(&d, verified) : NULL;
    if (rc == 0 && !text)
        rc = anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    if (rc == 0 && id)
        record(svc->store, workflow, id, sha, text);
    if (rc == 0) {
        out->status = 200;
        out->body = text;
    } else {
        free(text);
    }
    cJSON_Delete(d.list);
    free(d.started);
    return rc;
}

static int handle(const anvil_services *svc, const char *workflow, const anvil_http_head *head,
                  const char *body, size_t body_len, anvil_webhook_answer *out, anvil_error *err)
{
    memset(out, 0, sizeof *out);
    const anvil_workflow_ref *ref = find_ref(svc->config, workflow);
    if (!ref || !ref->has_webhook)
        return anvil_error_set(err, ANVIL_ERR_NOT_FOUND, "No webhook for workflow: %.200s", workflow);
    const anvil_webhook_config *h = &ref->webhook;
    bool verified;
    if (check_signature(h, head, body, body_len, &verified, err) != 0)
        return -1;
    if (!svc->engine)
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "the run engine is not running");
    /* Only a signed delivery is recorded: an unsigned one could claim any
     * id and so have the real delivery answered instead of acted on. */
    const char *id = NULL;
    if (verified && h->delivery_id_header &&
        read_delivery_id(head, h->delivery_id_header, &id, err) != 0)
        return -1;
    char sha[SHA256_HEX + 1] = "";
    if (id && !body_sha256(body, body_len, sha))
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "cannot hash the webhook body");
    if (id) {
        int seen = replay(svc->store, workflow, id, sha, out, err);
        if (seen != 0)
            return seen < 0 ? -1 : 0;
    }
    cJSON *root = parse_body(body, body_len, err);
    if (!root)
        return -1;
    int rc = answer(svc, workflow, h, verified, id, sha, root, out, err);
    cJSON_Delete(root);
    return rc;
}

/* Deliveries by the status class answered (docs/metrics.md). */
static anvil_counter m_deliveries[6];

int anvil_webhook_handle(const anvil_services *svc, const char *workflow, const anvil_http_head *head,
                         const char *body, size_t body_len, anvil_webhook_answer *out,
                         anvil_error *err)
{
    int rc = handle(svc, workflow, head, body, body_len, out, err);
    int status = rc == 0 ? out->status : anvil_error_http_status(err);
    if (status >= 100 && status < 600)
        anvil_counter_inc(&m_deliveries[status / 100]);
    return rc;
}

void anvil_webhook_metrics_render(anvil_metrics_out *o)
{
    static const char *const classes[] = { NULL, "1xx", "2xx", "3xx", "4xx", "5xx" };
    anvil_metrics_family(o, "anvil_webhook_deliveries_total", "counter",
                         "Webhook deliveries, by the status class answered.");
    for (int i = 2; i <= 5; i++) {
        const char *labels[] = { "code", classes[i], NULL };
        anvil_metrics_sample(o, "anvil_webhook_deliveries_total", labels,
                             (double)anvil_counter_get(&m_deliveries[i]));
    }
}
