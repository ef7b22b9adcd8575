/*
 * tests/fuzz/fuzz_frame.c — libFuzzer target for frame decoding and
 * validation: bounds, frame members, method table, scope check, generated
 * decoders, handlers and encoders, exactly as an HTTP request reaches them.
 *
 * Input layout: byte 0 picks the route (0 = POST /rpc with a full frame,
 * otherwise POST /v1/rpc/{method} for method byte % n); the rest is the body.
 * Every response must be a JSON object with the frame members, whatever the
 * input; anything else aborts so the fuzzer reports it.
 */
#include <stdint.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "config.h"
#include "engine.h"
#include "gateway.h"
#include "method.h"
#include "rpc.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* A gateway as `anvil serve` builds it, minus the listener: an in-memory
 * store and an engine without workflows, so every handler runs for real
 * (launchRun answers InvalidInput for any workflow name). */
static anvil_gateway *fuzz_gateway(void)
{
    static anvil_gateway gw;
    static int ready;
    if (!ready) {
        char err[256];
        anvil_diags diags = { 0 };
        if (anvil_config_defaults(&gw.cfg) != 0)
            abort();
        free(gw.cfg.database);
        if (!(gw.cfg.database = strdup(":memory:")) ||
            !(gw.base = event_base_new()) ||
            anvil_store_open(":memory:", &gw.store, err, sizeof err) != 0 ||
            anvil_engine_new(gw.base, gw.store, &gw.cfg, &gw.engine, &diags, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz setup failed: %s\n", err);
            abort();
        }
        ready = 1;
    }
    return &gw;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    anvil_gateway *gw = fuzz_gateway();
    char *scopes[] = { "*" };
    anvil_principal p = { .role = "operator", .scopes = scopes, .n_scopes = 1 };
    const char *forced = NULL;
    if (data[0] != 0)
        forced = anvil_methods[data[0] % anvil_n_methods].name;
    /* The HTTP layer hands the dispatcher a NUL-terminated copy. */
    char *body = malloc(size);
    if (!body)
        return 0;
    memcpy(body, data + 1, size - 1);
    body[size - 1] = '\0';
    anvil_rpc_input in = {
        .forced_method = forced, .body = body, .body_len = size - 1,
        .request_id = "fuzz", .transport = ANVIL_TRANSPORT_HTTP,
    };
    int status = 0;
    char *out = anvil_rpc_handle(gw, &p, &in, &status);
    free(body);
    if (!out)
        return 0;   /* out of memory is the only NULL */
    cJSON *frame = cJSON_Parse(out);
    if (!frame || !cJSON_IsObject(frame) ||
        !cJSON_IsString(cJSON_GetObjectItemCaseSensitive(frame, "type")) ||
        !cJSON_IsBool(cJSON_GetObjectItemCaseSensitive(frame, "ok")) ||
        status < 200 || status > 599) {
        fprintf(stderr, "malformed response frame (status %d): %s\n", status, out);
        abort();
    }
    cJSON_Delete(frame);
    free(out);
    return 0;
}
