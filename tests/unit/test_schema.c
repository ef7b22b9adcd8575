/*
 * tests/unit/test_schema.c — the generic codec on every generated schema.
 *
 * For each method's request and response descriptor the test synthesizes a
 * valid JSON instance from the descriptor itself (every optional member
 * present), decodes it, encodes it back and requires the same JSON. Then it
 * breaks the instance one member at a time — wrong type, missing required
 * member, unknown member, out-of-range number, bad enum — and requires
 * InvalidRequest-style failures whose path names that member. A final block
 * pins down hand-checked cases on real schemas.
 */
#include <math.h>
#include <stddef.h>
#include <stdlib.h>
#include <string.h>

#include "anvil_contract.h"
#include "anvil_types.h"
#include "anvil_websocket.h"
#include "method.h"
#include "schema.h"
#include "unit.h"

static cJSON *synth(const anvil_schema *s, int depth);

static cJSON *synth_json(unsigned mask)
{
    if (mask & ANVIL_JT_OBJECT) {
        cJSON *o = cJSON_CreateObject();
        cJSON_AddStringToObject(o, "free", "form");
        return o;
    }
    if (mask & ANVIL_JT_ARRAY)
        return cJSON_CreateArray();
    if (mask & ANVIL_JT_STRING)
        return cJSON_CreateString("s");
    if (mask & (ANVIL_JT_NUMBER | ANVIL_JT_INTEGER))
        return cJSON_CreateNumber(3);
    if (mask & ANVIL_JT_BOOLEAN)
        return cJSON_CreateTrue();
    return cJSON_CreateNull();
}

static cJSON *synth(const anvil_schema *s, int depth)
{
    if (s->const_json)
        return cJSON_Parse(s->const_json);
    switch (s->kind) {
    case ANVIL_KIND_STRING:
        return cJSON_CreateString(s->n_enum ? s->enum_values[0] : "value");
    case ANVIL_KIND_INTEGER:
        return cJSON_CreateNumber(s->has_minimum ? s->minimum + 1 : 7);
    case ANVIL_KIND_NUMBER:
        return cJSON_CreateNumber(s->has_minimum ? s->minimum + 0.5 : 1.5);
    case ANVIL_KIND_BOOLEAN:
        return cJSON_CreateTrue();
    case ANVIL_KIND_OBJECT: {
        cJSON *o = cJSON_CreateObject();
        for (size_t i = 0; i < s->n_fields; i++)
            cJSON_AddItemToObject(o, s->fields[i].name, synth(s->fields[i].schema, depth + 1));
        if (s->additional)
            cJSON_AddStringToObject(o, "extraMember", "kept");
        return o;
    }
    case ANVIL_KIND_ARRAY: {
        cJSON *a = cJSON_CreateArray();
        if (depth < 6)
            cJSON_AddItemToArray(a, synth(s->items, depth + 1));
        return a;
    }
    case ANVIL_KIND_JSON:
        return synth_json(s->json_types);
    }
    return cJSON_CreateNull();
}

/* A JSON value of a type the schema does not accept, or NULL if every type
 * is accepted. */
static cJSON *wrong_type(const anvil_schema *s)
{
    switch (s->kind) {
    case ANVIL_KIND_STRING:
        return cJSON_CreateNumber(1);
    case ANVIL_KIND_INTEGER:
        return cJSON_CreateString("1");
    case ANVIL_KIND_NUMBER:
        return cJSON_CreateString("1.5");
    case ANVIL_KIND_BOOLEAN:
        return cJSON_CreateString("true");
    case ANVIL_KIND_OBJECT:
        return cJSON_CreateArray();
    case ANVIL_KIND_ARRAY:
        return cJSON_CreateObject();
    case ANVIL_KIND_JSON:
        if (!(s->json_types & ANVIL_JT_STRING))
            return cJSON_CreateString("x");
        if (!(s->json_types & ANVIL_JT_BOOLEAN))
            return cJSON_CreateTrue();
        if (!(s->json_types & ANVIL_JT_ARRAY))
            return cJSON_CreateArray();
        return NULL;
    }
    return NULL;
}

/* Decode j, and check it without decoding: the verdict, path and message
 * must be the same (anvil_schema_check is decode's walk without a
 * destination). */
static int decode(const anvil_schema *s, const cJSON *j, anvil_schema_error *err)
{
    void *v = calloc(1, s->size);
    int rc = anvil_schema_decode(s, j, v, "$", err);
    anvil_schema_free(s, v);
    free(v);
    anvil_schema_error cerr;
    int crc = anvil_schema_check(s, j, "$", &cerr);
    CHECK(crc == rc);
    if (rc != 0 && crc != 0 && (strcmp(cerr.path, err->path) != 0 || strcmp(cerr.message, err->message) != 0)) {
        fprintf(stderr, "%s: check says %s: %s, decode %s: %s\n", s->name, cerr.path, cerr.message, err->path,
                err->message);
        CHECK(!"check and decode disagree");
    }
    return rc;
}

static void expect_fail_at(const anvil_schema *s, const cJSON *j, const char *path, const char *what)
{
    anvil_schema_error err;
    int rc = decode(s, j, &err);
    if (rc == 0) {
        unit_checks++;
        unit_failures++;
        fprintf(stderr, "%s: %s at %s was accepted\n", s->name, what, path);
        return;
    }
    if (strncmp(err.path, path, strlen(path)) != 0) {
        unit_checks++;
        unit_failures++;
        fprintf(stderr, "%s: %s: error path %s, expected %s (%s)\n", s->name, what, err.path, path,
                err.message);
        return;
    }
    unit_checks++;
}

static void roundtrip(const anvil_schema *s)
{
    cJSON *j = synth(s, 0);
    void *v = calloc(1, s->size);
    anvil_schema_error err;
    int rc = anvil_schema_decode(s, j, v, "$", &err);
    CHECK(rc == 0);
    if (rc != 0) {
        fprintf(stderr, "  %s: synthesized instance rejected at %s: %s\n", s->name, err.path, err.message);
    } else {
        cJSON *back = anvil_schema_encode(s, v, &err);
        CHECK(back != NULL);
        if (back && !cJSON_Compare(j, back, true)) {
            char *a = cJSON_PrintUnformatted(j), *b = cJSON_PrintUnformatted(back);
            fprintf(stderr, "  %s: round trip differs:\n    in:  %s\n    out: %s\n", s->name, a, b);
            free(a);
            free(b);
            CHECK(!"round trip must reproduce the instance");
        }
        cJSON_Delete(back);
    }
    anvil_schema_free(s, v);
    free(v);

    /* Mutations, one member at a time, for object schemas. */
    if (s->kind == ANVIL_KIND_OBJECT) {
        for (size_t i = 0; i < s->n_fields; i++) {
            const anvil_field *f = &s->fields[i];
            char path[300];
            snprintf(path, sizeof path, "$.%s", f->name);
            cJSON *bad = wrong_type(f->schema);
            if (bad && !f->schema->const_json) {
                cJSON *m = cJSON_Duplicate(j, true);
                cJSON_ReplaceItemInObjectCaseSensitive(m, f->name, bad);
                expect_fail_at(s, m, path, "wrong type");
                cJSON_Delete(m);
            } else {
                cJSON_Delete(bad);
            }
            if (f->required) {
                cJSON *m = cJSON_Duplicate(j, true);
                cJSON_DeleteItemFromObjectCaseSensitive(m, f->name);
                expect_fail_at(s, m, path, "missing required member");
                cJSON_Delete(m);
            } else {
                /* optional members may be left out */
                cJSON *m = cJSON_Duplicate(j, true);
                cJSON_DeleteItemFromObjectCaseSensitive(m, f->name);
                anvil_schema_error e2;
                CHECK(decode(s, m, &e2) == 0);
                cJSON_Delete(m);
            }
            if (f->schema->has_minimum) {
                cJSON *m = cJSON_Duplicate(j, true);
                cJSON_ReplaceItemInObjectCaseSensitive(m, f->name,
                                                       cJSON_CreateNumber(f->schema->minimum - 1));
                expect_fail_at(s, m, path, "below minimum");
                cJSON_Delete(m);
            }
            if (f->schema->n_enum) {
                cJSON *m = cJSON_Duplicate(j, true);
                cJSON_ReplaceItemInObjectCaseSensitive(m, f->name, cJSON_CreateString("not-in-enum"));
                expect_fail_at(s, m, path, "value outside the enum");
                cJSON_Delete(m);
            }
        }
        if (!s->additional) {
            cJSON *m = cJSON_Duplicate(j, true);
            cJSON_AddStringToObject(m, "surpriseMember", "x");
            expect_fail_at(s, m, "$.surpriseMember", "unknown member");
            cJSON_Delete(m);
        }
        cJSON *arr = cJSON_CreateArray();
        expect_fail_at(s, arr, "$", "array instead of object");
        cJSON_Delete(arr);
    }
    cJSON_Delete(j);
}

/* The WebSocket's schemas (x-anvil-websocket) get the same treatment. */
static void test_websocket_schemas(void)
{
    const anvil_schema *const frames[] = {
        anvil_ws_req_frame_schema, anvil_ws_res_frame_schema, anvil_ws_event_frame_schema,
        anvil_http_request_frame_schema, anvil_ws_connect_params_schema, anvil_ws_connect_result_schema,
    };
    for (size_t i = 0; i < sizeof frames / sizeof frames[0]; i++) {
        CHECK(frames[i] != NULL);
        if (frames[i])
            roundtrip(frames[i]);
    }
    for (size_t i = 0; i < ANVIL_WS_EVENT__COUNT; i++) {
        CHECK(anvil_ws_events[i].name && anvil_ws_events[i].payload);
        CHECK(i == 0 || strcmp(anvil_ws_events[i - 1].name, anvil_ws_events[i].name) < 0);
        roundtrip(anvil_ws_events[i].payload);
    }
}

static void test_every_method_schema(void)
{
    for (size_t i = 0; i < anvil_n_methods; i++) {
        roundtrip(anvil_methods[i].request);
        roundtrip(anvil_methods[i].response);
        /* The runtime's checks index per-schema tables by these sizes. */
        CHECK(anvil_methods[i].request->size > 0);
        CHECK(anvil_methods[i].response->size > 0);
    }
}

static cJSON *parse(const char *text)
{
    cJSON *j = cJSON_Parse(text);
    if (!j)
        fprintf(stderr, "bad test JSON: %s\n", text);
    return j;
}

static void test_launch_run(void)
{
    cJSON *j = parse("{\"workflow\":\"deploy\",\"input\":{\"sha\":\"abc\"},"
                     "\"options\":{\"runId\":\"deploy-1\",\"idempotencyKey\":\"k\"}}");
    anvil_launch_run_request r = { 0 };
    anvil_schema_error err;
    CHECK(anvil_schema_decode(&anvil_schema_launch_run_request, j, &r, "$.params", &err) == 0);
    CHECK_STR(r.workflow, "deploy");
    CHECK(r.has_options);
    CHECK_STR(r.options.run_id, "deploy-1");
    CHECK_STR(r.options.idempotency_key, "k");
    CHECK(cJSON_IsObject(r.input));
    CHECK_STR(cJSON_GetObjectItemCaseSensitive(r.input, "sha")->valuestring, "abc");
    anvil_schema_free(&anvil_schema_launch_run_request, &r);
    CHECK(r.workflow == NULL && r.input == NULL);
    cJSON_Delete(j);

    /* input must be an object, not any JSON */
    j = parse("{\"workflow\":\"deploy\",\"input\":[1]}");
    CHECK(anvil_schema_decode(&anvil_schema_launch_run_request, j, &r, "$.params", &err) != 0);
    CHECK_STR(err.path, "$.params.input");
    CHECK_STR(err.message, "expected object, got array");
    cJSON_Delete(j);

    j = parse("{\"workflow\":\"deploy\",\"options\":{\"runId\":\"a\",\"nope\":1}}");
    CHECK(anvil_schema_decode(&anvil_schema_launch_run_request, j, &r, "$.params", &err) != 0);
    CHECK_STR(err.path, "$.params.options.nope");
    CHECK(strstr(err.message, "allowed: runId, idempotencyKey") != NULL);
    cJSON_Delete(j);

    j = parse("{\"input\":{}}");
    CHECK(anvil_schema_decode(&anvil_schema_launch_run_request, j, &r, "$.params", &err) != 0);
    CHECK_STR(err.path, "$.params.workflow");
    CHECK_STR(err.message, "required property \"workflow\" is missing");
    cJSON_Delete(j);

    /* duplicate members are refused rather than silently picking one */
    j = parse("{\"workflow\":\"a\",\"workflow\":\"b\"}");
    CHECK(anvil_schema_decode(&anvil_schema_launch_run_request, j, &r, "$.params", &err) != 0);
    CHECK(strstr(err.message, "duplicate") != NULL);
    cJSON_Delete(j);
}

static void test_numbers_and_consts(void)
{
    anvil_schema_error err;
    anvil_rewind_run_request r = { 0 };
    cJSON *j = parse("{\"runId\":\"r\",\"frameNo\":4,\"confirm\":true}");
    CHECK(anvil_schema_decode(&anvil_schema_rewind_run_request, j, &r, "$", &err) == 0);
    CHECK_INT(r.frame_no, 4);
    CHECK(r.confirm);
    anvil_schema_free(&anvil_schema_rewind_run_request, &r);
    cJSON_Delete(j);

    static const struct { const char *json; const char *path; const char *msg; } bad[] = {
        { "{\"runId\":\"r\",\"frameNo\":4,\"confirm\":false}", "$.confirm", "must be true" },
        { "{\"runId\":\"r\",\"frameNo\":-1,\"confirm\":true}", "$.frameNo", "must be >= 0" },
        { "{\"runId\":\"r\",\"frameNo\":1.5,\"confirm\":true}", "$.frameNo", "expected integer, got number" },
        { "{\"runId\":\"r\",\"frameNo\":1e300,\"confirm\":true}", "$.frameNo", "integer is outside the exact range +/-2^53" },
        { "{\"runId\":\"r\",\"frameNo\":\"4\",\"confirm\":true}", "$.frameNo", "expected integer, got string" },
        { "{\"runId\":null,\"frameNo\":4,\"confirm\":true}", "$.runId", "expected string, got null" },
    };
    for (size_t i = 0; i < sizeof bad / sizeof bad[0]; i++) {
        j = parse(bad[i].json);
        memset(&r, 0, sizeof r);
        CHECK(anvil_schema_decode(&anvil_schema_rewind_run_request, j, &r, "$", &err) != 0);
        CHECK_STR(err.path, bad[i].path);
        CHECK_STR(err.message, bad[i].msg);
        cJSON_Delete(j);
    }
    /* 4.0 is an integer in JSON Schema */
    j = parse("{\"runId\":\"r\",\"frameNo\":4.0,\"confirm\":true}");
    CHECK(anvil_schema_decode(&anvil_schema_rewind_run_request, j, &r, "$", &err) == 0);
    anvil_schema_free(&anvil_schema_rewind_run_request, &r);
    cJSON_Delete(j);
}

static void test_any_json_and_nullable(void)
{
    anvil_schema_error err;
    /* decision.value is "any JSON", null included, and null differs from absent */
    const char *values[] = { "null", "1", "1.5", "\"s\"", "true", "[1,[2]]", "{\"a\":{}}" };
    for (size_t i = 0; i < sizeof values / sizeof values[0]; i++) {
        char text[200];
        snprintf(text, sizeof text,
                 "{\"runId\":\"r\",\"nodeId\":\"n\",\"decision\":{\"approved\":true,\"value\":%s}}", values[i]);
        cJSON *j = parse(text);
        anvil_submit_approval_request r = { 0 };
        CHECK(anvil_schema_decode(&anvil_schema_submit_approval_request, j, &r, "$", &err) == 0);
        CHECK(r.decision.value != NULL);
        cJSON *want = parse(values[i]);
        CHECK(cJSON_Compare(r.decision.value, want, true));
        cJSON_Delete(want);
        CHECK(!r.has_iteration);
        anvil_schema_free(&anvil_schema_submit_approval_request, &r);
        cJSON_Delete(j);
    }
    cJSON *j = parse("{\"runId\":\"r\",\"nodeId\":\"n\",\"decision\":{\"approved\":false}}");
    anvil_submit_approval_request r = { 0 };
    CHECK(anvil_schema_decode(&anvil_schema_submit_approval_request, j, &r, "$", &err) == 0);
    CHECK(r.decision.value == NULL);
    CHECK(!r.decision.approved);
    anvil_schema_free(&anvil_schema_submit_approval_request, &r);
    cJSON_Delete(j);

    /* afterSeq: integer-or-null, required: absent encodes as null */
    anvil_stream_run_events_response res = { 0 };
    res.stream_id = strdup("s1");
    res.run_id = strdup("r1");
    res.current_seq = 5;
    cJSON *out = anvil_schema_encode(&anvil_schema_stream_run_events_response, &res, &err);
    CHECK(out != NULL);
    CHECK(cJSON_IsNull(cJSON_GetObjectItemCaseSensitive(out, "afterSeq")));
    cJSON_Delete(out);
    res.has_after_seq = true;
    res.after_seq = 41;
    out = anvil_schema_encode(&anvil_schema_stream_run_events_response, &res, &err);
    CHECK(out && cJSON_GetObjectItemCaseSensitive(out, "afterSeq")->valuedouble == 41);
    cJSON_Delete(out);
    anvil_schema_free(&anvil_schema_stream_run_events_response, &res);

    /* a missing required response member is a handler bug, not success */
    anvil_launch_run_response lr = { 0 };
    lr.run_id = strdup("r");
    out = anvil_schema_encode(&anvil_schema_launch_run_response, &lr, &err);
    CHECK(out == NULL);
    CHECK_STR(err.path, "$.workflow");
    anvil_schema_free(&anvil_schema_launch_run_response, &lr);
}

static void test_arrays(void)
{
    anvil_schema_error err;
    cJSON *j = parse("[{\"runId\":\"a\",\"status\":\"finished\",\"createdAtMs\":1710000000000,"
                     "\"system\":false,\"x\":1},{\"runId\":\"b\",\"status\":\"running\",\"system\":false}]");
    anvil_list_runs_response r = { 0 };
    CHECK(anvil_schema_decode(&anvil_schema_list_runs_response, j, &r, "$", &err) == 0);
    CHECK_INT(r.count, 2);
    if (r.count == 2) {
        CHECK_STR(r.items[0].run_id, "a");
        CHECK_INT(r.items[0].created_at_ms, 1710000000000LL);
        CHECK(r.items[0]._extra != NULL);
        CHECK(!r.items[1].has_created_at_ms);
    }
    cJSON *back = anvil_schema_encode(&anvil_schema_list_runs_response, &r, &err);
    CHECK(back && cJSON_Compare(back, j, true));
    cJSON_Delete(back);
    anvil_schema_free(&anvil_schema_list_runs_response, &r);
    cJSON_Delete(j);

    j = parse("[{\"runId\":\"a\",\"status\":\"x\",\"system\":false},{\"runId\":7,\"status\":\"x\"}]");
    CHECK(anvil_schema_decode(&anvil_schema_list_runs_response, j, &r, "$", &err) != 0);
    CHECK_STR(err.path, "$[1].runId");
    cJSON_Delete(j);
}

static void test_enum_message(void)
{
    anvil_schema_error err;
    cJSON *j = parse("{\"runId\":\"r\",\"status\":\"paused\"}");
    anvil_resume_run_response r = { 0 };
    CHECK(anvil_schema_decode(&anvil_schema_resume_run_response, j, &r, "$", &err) != 0);
    CHECK_STR(err.path, "$.status");
    CHECK_STR(err.message, "must be one of \"resume_requested\", \"already_terminal\"");
    cJSON_Delete(j);
}

/* A member name too long for the 256-byte path marks the path "..." while
 * it is being decoded; the mark used to stay for every later error, so a
 * failure at a short path was reported as truncated. Hand-built descriptor
 * so the case does not depend on the contract's current shapes. */
typedef struct loose {
    int64_t n;
    bool has_n;
    cJSON *_extra;
} loose;

static const anvil_schema loose_int = {
    .name = "int", .kind = ANVIL_KIND_INTEGER, .size = sizeof(int64_t),
    .min_length = -1, .max_length = -1, .extra_offset = -1,
};
static const anvil_field loose_fields[] = {
    { "n", &loose_int, offsetof(loose, n), offsetof(loose, has_n), false },
};
static const anvil_schema loose_schema = {
    .name = "Loose", .kind = ANVIL_KIND_OBJECT, .size = sizeof(loose),
    .min_length = -1, .max_length = -1, .fields = loose_fields, .n_fields = 1,
    .additional = true, .extra_offset = offsetof(loose, _extra),
};

static void test_path_truncation(void)
{
    anvil_schema_error err;
    char long_name[400];
    memset(long_name, 'k', sizeof long_name - 1);
    long_name[sizeof long_name - 1] = '\0';

    cJSON *j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, long_name, 1);   /* kept as an extra member */
    cJSON_AddStringToObject(j, "n", "not a number");
    loose v = { 0 };
    CHECK(anvil_schema_decode(&loose_schema, j, &v, "$", &err) != 0);
    CHECK_STR(err.path, "$.n");
    CHECK(v._extra == NULL);
    cJSON_Delete(j);

    j = cJSON_CreateObject();
    cJSON_AddNumberToObject(j, long_name, 1);
    cJSON_AddNumberToObject(j, "n", 5);
    memset(&v, 0, sizeof v);
    CHECK(anvil_schema_decode(&loose_schema, j, &v, "$", &err) == 0);
    CHECK_INT(v.n, 5);
    CHECK(v._extra != NULL);
    anvil_schema_free(&loose_schema, &v);
    cJSON_Delete(j);
}

int main(void)
{
    test_every_method_schema();
    test_websocket_schemas();
    test_launch_run();
    test_numbers_and_consts();
    test_any_json_and_nullable();
    test_arrays();
    test_enum_message();
    test_path_truncation();
    UNIT_DONE();
}
