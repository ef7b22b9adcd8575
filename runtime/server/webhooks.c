/*
 * runtime/server/webhooks.c — POST /webhooks/{workflow} (see webhooks.h).
 */
#include <ctype.h>
#include <math.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>
#include <openssl/hmac.h>

#include "config.h"
#include "engine.h"
#include "json_bounds.h"
#include "json_parse.h"
#include "store_runs.h"
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

static bool add_delivery(cJSON *list, const char *run_id, const char *name, const char *corr,
                         const anvil_signal_receipt *rc)
{
    cJSON *o = cJSON_CreateObject();
    if (!o || !cJSON_AddItemToArray(list, o)) {
        cJSON_Delete(o);
        return false;
    }
    return cJSON_AddStringToObject(o, "runId", run_id) &&
           cJSON_AddNumberToObject(o, "seq", (double)rc->seq) &&
           cJSON_AddStringToObject(o, "signalName", name) &&
           (corr ? cJSON_AddStringToObject(o, "correlationId", corr)
                 : cJSON_AddNullToObject(o, "correlationId")) &&
           cJSON_AddNumberToObject(o, "receivedAtMs", (double)rc->received_at_ms);
}

/* Signal the run named at runIdPath: it must exist and belong to `wf`. */
static int signal_one(anvil_engine *e, const char *wf, const char *run_id, const char *name,
                      const char *corr, const cJSON *payload, const char *by, cJSON *list,
                      anvil_error *err)
{
    anvil_run_record rec;
    int found = anvil_store_run_get(anvil_engine_store(e), run_id, &rec);
    if (found < 0)
        return anvil_store_error(anvil_engine_store(e), err, NULL);
    bool mine = found == 1 && rec.workflow && strcmp(rec.workflow, wf) == 0;
    if (found == 1)
        anvil_run_record_clear(&rec);
    if (!mine)
        return anvil_error_set(err, ANVIL_ERR_RUN_NOT_FOUND, "Run not found for workflow %s: %s",
                               wf, run_id);
    anvil_signal_receipt rc;
    if (anvil_engine_signal(e, run_id, name, corr, payload, by, &rc, err) != 0)
        return -1;
    if (!add_delivery(list, run_id, name, corr, &rc))
        return anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    return 0;
}

static int deliver(anvil_engine *e, const char *wf, const anvil_webhook_config *h,
                   const cJSON *root, const char *by, cJSON *list, anvil_error *err)
{
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
    int rc = 0;
    if (oom) {
        rc = anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    } else if (cJSON_IsString(rid) && rid->valuestring[0]) {
        rc = signal_one(e, wf, rid->valuestring, h->signal_name, corr, payload, by, list, err);
    } else {
        anvil_signal_delivery *d = NULL;
        size_t n = 0;
        rc = anvil_engine_signal_waiting(e, wf, h->signal_name, corr, payload, by, NULL, &d, &n, err);
        for (size_t i = 0; i < n; i++) {
            if (!add_delivery(list, d[i].run_id, h->signal_name, corr, &d[i].receipt) && rc == 0)
                rc = anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
        }
        anvil_signal_deliveries_free(d, n);
    }
    free(corr);
    return rc;
}

static int start_run(anvil_engine *e, const char *wf, const anvil_webhook_config *h,
                     const cJSON *root, const char *by, char **run_id, anvil_error *err)
{
    const cJSON *input = anvil_webhook_path_get(root, h->run_input_path);
    if (!cJSON_IsObject(input)) {
        anvil_error_set(err, ANVIL_ERR_INVALID_INPUT, "%s%s%s must be a JSON object to start a run",
                        h->run_input_path ? "The value at inputPath " : "The webhook body",
                        h->run_input_path ? h->run_input_path : "",
                        !input && h->run_input_path ? " (missing)" : "");
        return -1;
    }
    static char star[] = "*";
    char *scopes[] = {star};
    anvil_launch l = {
        .workflow = wf,
        .input = input,
        .triggered_by = by,
        .role = "system",
        .scopes = scopes,
        .n_scopes = 1,
    };
    bool existing = false;
    return anvil_engine_launch(e, &l, run_id, &existing, err);
}

cJSON *anvil_webhook_handle(const anvil_services *svc, const char *workflow, const anvil_http_head *head,
                            const char *body, size_t body_len, anvil_error *err)
{
    const anvil_workflow_ref *ref = find_ref(svc->config, workflow);
    if (!ref || !ref->has_webhook) {
        anvil_error_set(err, ANVIL_ERR_NOT_FOUND, "No webhook for workflow: %.200s", workflow);
        return NULL;
    }
    const anvil_webhook_config *h = &ref->webhook;
    bool verified = false;
    if (h->secret) {
        const char *hdr = h->signature_header ? h->signature_header : "x-hub-signature-256";
        const char *value = anvil_http_header_get(head, hdr);
        if (!value) {
            anvil_error_set(err, ANVIL_ERR_UNAUTHORIZED, "Missing webhook signature header %s", hdr);
            return NULL;
        }
        if (!anvil_webhook_signature_ok(h->secret, h->signature_prefix ? h->signature_prefix
                                                                       : "sha256=",
                                        value, body, body_len)) {
            anvil_error_set(err, ANVIL_ERR_UNAUTHORIZED, "Webhook signature does not match");
            return NULL;
        }
        verified = true;
    }
    if (!svc->engine) {
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "the run engine is not running");
        return NULL;
    }
    cJSON *root = parse_body(body, body_len, err);
    if (!root)
        return NULL;
    char by[300];
    snprintf(by, sizeof by, "webhook:%s", workflow);
    cJSON *reply = cJSON_CreateObject();
    cJSON *list = cJSON_CreateArray();
    char *started = NULL;
    bool ok = reply && list;
    if (ok && h->signal_name)
        ok = deliver(svc->engine, workflow, h, root, by, list, err) == 0;
    else if (!ok)
        anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    if (ok && h->run_enabled && cJSON_GetArraySize(list) == 0)
        ok = start_run(svc->engine, workflow, h, root, by, &started, err) == 0;
    if (ok) {
        ok = cJSON_AddBoolToObject(reply, "ok", 1) &&
             cJSON_AddStringToObject(reply, "workflow", workflow) &&
             cJSON_AddBoolToObject(reply, "verified", verified) &&
             cJSON_AddItemToObject(reply, "delivered", list) &&
             (list = NULL, true) &&
             (!started || cJSON_AddStringToObject(reply, "startedRunId", started));
        if (!ok)
            anvil_error_set(err, ANVIL_ERR_INTERNAL, "out of memory");
    }
    free(started);
    cJSON_Delete(list);
    cJSON_Delete(root);
    if (!ok) {
        cJSON_Delete(reply);
        return NULL;
    }
    return reply;
}
