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

#include "anvil_handlers.h"
#include "call.h"
#include "config.h"
#include "engine.h"
#include "method.h"
#include "rpc.h"
#include "store.h"

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size);

/* The services `anvil serve` hands the dispatcher, minus the listener: an
 * in-memory store and an engine without workflows, so every handler runs
 * for real (launchRun answers InvalidInput for any workflow name). */
static const anvil_services *fuzz_services(void)
{
    static anvil_config cfg;
    static anvil_services svc;
    static int ready;
    if (!ready) {
        char err[256];
        anvil_diags diags = { 0 };
        struct event_base *base;
        anvil_store *store;
        anvil_engine *engine;
        if (anvil_config_defaults(&cfg) != 0)
            abort();
        free(cfg.database);
        if (!(cfg.database = strdup(":memory:")) ||
            !(base = event_base_new()) ||
            anvil_store_open(":memory:", &store, err, sizeof err) != 0 ||
            anvil_engine_new(base, store, &cfg, &engine, &diags, err, sizeof err) != 0) {
            fprintf(stderr, "fuzz setup failed: %s\n", err);
            abort();
        }
        svc = (anvil_services){ .config = &cfg, .store = store, .engine = engine,
                                .handlers = anvil_handler_table };
        ready = 1;
    }
    return &svc;
}

int LLVMFuzzerTestOneInput(const uint8_t *data, size_t size)
{
    if (size == 0)
        return 0;
    const anvil_services *svc = fuzz_services();
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
    char *out = anvil_rpc_handle(svc, &p, &in, &status);
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
