/*
 * tests/unit/test_frame.c — runtime/contract/frame.c: the request frame
 * checks HTTP and the WebSocket share, their order, messages and paths,
 * and which id an error can still be answered with. The members are
 * checked by the generic codec against the contract's frame schemas
 * (RequestFrame, WsRequestFrame), so their messages are the codec's.
 */
#include <stdlib.h>
#include <string.h>

#include "anvil_contract.h"
#include "anvil_websocket.h"
#include "frame.h"
#include "unit.h"

/* Filled in main: the generated schema pointers are not constants. */
static anvil_frame_rules http, http_path, ws;

/* Read text under rules; the error's message (or "" when it passed), its
 * path detail in path_out, and the id the frame answered with in id_out. */
static char message[512], path_out[300], id_out[200];

static int rd(const char *text, const anvil_frame_rules *r)
{
    anvil_request_frame f;
    anvil_error e = { 0 };
    int rc = anvil_frame_read(text, strlen(text), r, &f, &e);
    snprintf(message, sizeof message, "%s", e.set ? e.message : "");
    const cJSON *p = e.details ? cJSON_GetObjectItemCaseSensitive(e.details, "path") : NULL;
    snprintf(path_out, sizeof path_out, "%s", cJSON_IsString(p) ? p->valuestring : "");
    snprintf(id_out, sizeof id_out, "%s", f.id ? f.id : "");
    if (rc == 0) {
        CHECK(!e.set);
        CHECK(f.root && f.method);
        CHECK(!f.params || cJSON_IsObject(f.params));
    } else {
        CHECK(e.set && e.code == ANVIL_ERR_INVALID_REQUEST);
    }
    anvil_error_clear(&e);
    cJSON_Delete(f.root);
    return rc;
}

static void test_json(void)
{
    CHECK(rd("not json", &http) != 0);
    CHECK_STR(message, "Request body is not valid JSON");
    CHECK(rd("not json", &ws) != 0);
    CHECK_STR(message, "Frame is not valid JSON");
    /* exactly one value: trailing data is refused on both transports */
    CHECK(rd("{\"id\":\"1\",\"method\":\"health\"} junk", &ws) != 0);
    CHECK_STR(message, "Frame is not valid JSON: unexpected data after the JSON value");
    CHECK(rd("{\"method\":\"health\"}{}", &http) != 0);
    CHECK_STR(message, "Request body is not valid JSON: unexpected data after the JSON value");
    CHECK(rd("{\"id\":\"1\",\"method\":\"health\"}\r\n ", &ws) == 0);
    CHECK(rd("[1]", &ws) != 0);
    CHECK_STR(message, "Frame must be a JSON object");
    CHECK(rd("[1]", &http) != 0);
    CHECK_STR(message, "Request body must be a JSON object");

    /* depth on the raw text, before parsing (cJSON alone would take it) */
    char deep[200] = "{\"id\":\"1\",\"method\":\"health\",\"params\":{\"a\":";
    size_t n = strlen(deep);
    for (int i = 0; i < 32; i++)
        deep[n++] = '[';
    for (int i = 0; i < 32; i++)
        deep[n++] = ']';
    deep[n++] = '}';
    deep[n++] = '}';
    deep[n] = '\0';
    CHECK(rd(deep, &ws) != 0);
    CHECK_STR(message, "JSON nesting depth exceeds the limit of 32");
    CHECK(rd("{\"id\":\"a\\u0000b\",\"method\":\"health\"}", &ws) != 0);
    CHECK_STR(message, "JSON strings must not contain \\u0000 (NUL)");

    /* bounds on the tree, with the path */
    char *wide = malloc(4096);
    strcpy(wide, "{\"id\":\"1\",\"method\":\"health\",\"params\":{\"l\":[");
    for (int i = 0; i < 257; i++)
        strcat(wide, i ? ",0" : "0");
    strcat(wide, "]}}");
    CHECK(rd(wide, &ws) != 0);
    CHECK_STR(path_out, "$.params.l");
    CHECK_STR(message, "$.params.l: array length 257 exceeds the limit of 256");
    free(wide);
}

static void test_members(void)
{
    CHECK(rd("{\"type\":\"req\",\"id\":\"a1\",\"method\":\"health\",\"params\":{}}", &ws) == 0);
    CHECK_STR(id_out, "a1");
    CHECK(rd("{\"id\":\"a1\",\"method\":\"runs.get\"}", &http) == 0);

    CHECK(rd("{\"id\":\"a1\",\"method\":\"health\",\"extra\":1}", &ws) != 0);
    CHECK_STR(path_out, "$.extra");
    CHECK_STR(message, "$.extra: unknown property \"extra\" (allowed: type, id, method, params)");
    CHECK(rd("{\"type\":\"res\",\"id\":\"a1\",\"method\":\"health\"}", &ws) != 0);
    CHECK_STR(message, "$.type: must be \"req\"");
    CHECK(rd("{\"id\":\"a1\",\"method\":\"health\",\"params\":[]}", &ws) != 0);
    CHECK_STR(message, "$.params: expected object, got array");
    CHECK(rd("{\"id\":\"a1\"}", &ws) != 0);
    CHECK_STR(message, "$.method: required property \"method\" is missing");
    CHECK(rd("{\"id\":\"a1\",\"method\":7}", &ws) != 0);
    CHECK_STR(message, "$.method: expected string, got integer");
    CHECK(rd("{\"id\":\"a1\",\"method\":\"Health\"}", &ws) != 0);
    CHECK_STR(message, "Invalid method name \"Health\"");
    CHECK_STR(path_out, "$.method");
    CHECK(rd("{\"id\":\"a1\",\"method\":\"runs.\"}", &http) != 0);
    CHECK(rd("{\"id\":\"a1\",\"method\":\"a..b\"}", &http) != 0);
    CHECK(rd("{\"id\":\"a1\",\"method\":\"\"}", &http) != 0);
}

static void test_id(void)
{
    /* WebSocket: required (WsRequestFrame). The first problem is
     * reported: members in the frame's order, then missing ones. */
    CHECK(rd("{\"type\":\"req\",\"method\":\"health\"}", &ws) != 0);
    CHECK_STR(message, "$.id: required property \"id\" is missing");
    CHECK(rd("{\"method\":\"health\",\"extra\":1}", &ws) != 0);
    CHECK_STR(path_out, "$.extra");
    CHECK(rd("{\"method\":\"health\"}", &http) == 0);
    CHECK(rd("{\"id\":7,\"method\":\"health\"}", &ws) != 0);
    CHECK_STR(message, "$.id: expected string, got integer");
    char id[300] = "{\"id\":\"";
    size_t n = strlen(id);
    memset(id + n, 'x', 129);
    strcpy(id + n + 129, "\",\"method\":\"health\"}");
    CHECK(rd(id, &ws) != 0);
    CHECK_STR(message, "$.id: must be at most 128 characters");
    CHECK_STR(id_out, "");
    id[n + 128] = '"';
    memmove(id + n + 129, id + n + 130, strlen(id + n + 130) + 1);
    CHECK(rd(id, &ws) == 0);
    CHECK_INT(strlen(id_out), 128);
    /* ...so a later error still answers with the frame's id */
    CHECK(rd("{\"id\":\"w1\",\"method\":\"health\",\"extra\":1}", &ws) != 0);
    CHECK_STR(id_out, "w1");

    /* 128 characters are code points, as the schema's maxLength counts */
    char wide_id[600] = "{\"id\":\"";
    n = strlen(wide_id);
    for (int i = 0; i < 128; i++, n += 2)
        memcpy(wide_id + n, "\xc3\xa9", 2);
    strcpy(wide_id + n, "\",\"method\":\"health\"}");
    CHECK(rd(wide_id, &ws) == 0);
    CHECK(strncmp(id_out, "\xc3\xa9\xc3\xa9", 4) == 0);   /* answered with it */

    /* HTTP: optional; an error still answers with a usable id */
    CHECK(rd("{\"method\":\"health\"}", &http) == 0);
    CHECK_STR(id_out, "");
    CHECK(rd("{\"id\":7,\"method\":\"health\",\"extra\":1}", &http) != 0);
    CHECK_STR(path_out, "$.id");
    CHECK_STR(id_out, "");
    CHECK(rd("{\"id\":\"h1\",\"method\":\"health\",\"extra\":1}", &http) != 0);
    CHECK_STR(path_out, "$.extra");
    CHECK_STR(id_out, "h1");
    CHECK(rd("{\"id\":\"h1\",\"method\":\"health\",\"params\":1}", &http) != 0);
    CHECK_STR(path_out, "$.params");
    CHECK_STR(id_out, "h1");
}

static void test_forced_method(void)
{
    anvil_request_frame f;
    anvil_error e = { 0 };
    /* no body, or only whitespace: no params */
    CHECK(anvil_frame_read(" \r\n", 3, &http_path, &f, &e) == 0);
    CHECK(f.bare && cJSON_IsObject(f.params) && f.params->child == NULL);
    CHECK_STR(f.method, "getRun");
    cJSON_Delete(f.root);
    CHECK(anvil_frame_read("", 0, &http_path, &f, &e) == 0);
    CHECK(f.bare);
    cJSON_Delete(f.root);
    /* bare params: no frame-member checks */
    const char *bare = "{\"runId\":\"r1\",\"extra\":1}";
    CHECK(anvil_frame_read(bare, strlen(bare), &http_path, &f, &e) == 0);
    CHECK(f.bare && f.params == f.root && f.id == NULL);
    cJSON_Delete(f.root);
    /* a body that names a method is a whole frame */
    const char *full = "{\"id\":\"p1\",\"method\":\"getRun\",\"params\":{\"runId\":\"r1\"}}";
    CHECK(anvil_frame_read(full, strlen(full), &http_path, &f, &e) == 0);
    CHECK(!f.bare);
    CHECK_STR(f.id, "p1");
    CHECK_STR(f.method, "getRun");
    CHECK(cJSON_IsObject(f.params));
    cJSON_Delete(f.root);
    CHECK(rd("{\"method\":\"getRun\",\"extra\":1}", &http_path) != 0);
    CHECK_STR(path_out, "$.extra");
    CHECK(!e.set);
}

int main(void)
{
    http = (anvil_frame_rules){ .noun = "Request body", .schema = anvil_http_request_frame_schema };
    http_path = (anvil_frame_rules){ .noun = "Request body", .forced_method = "getRun",
                                     .schema = anvil_http_request_frame_schema };
    ws = (anvil_frame_rules){ .noun = "Frame", .id_required = true, .schema = anvil_ws_req_frame_schema };
    CHECK(http.schema && ws.schema);
    test_json();
    test_members();
    test_id();
    test_forced_method();
    UNIT_DONE();
}
