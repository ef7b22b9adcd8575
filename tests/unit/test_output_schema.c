/*
 * tests/unit/test_output_schema.c — task output schemas: the check of rows
 * against declared fields (every rule and the exact message of each
 * mismatch, several at once, cutting long messages), dropping undeclared
 * members, the type vocabulary, and loading `outputSchema` from workflow
 * files with every load-time diagnostic at its line and column (the
 * declaration's own shape, a static row that cannot match, references to
 * fields that cannot exist). Also the strict check a workflow's
 * inputSchema holds launch input to: paths under the caller's root,
 * undeclared members refused, the first problem's path on its own.
 *
 * Fixtures live in tests/unit/fixtures/workflows/, found through
 * ANVIL_SOURCE_DIR (passed by tests/CMakeLists.txt).
 */
#include "output_schema.h"
#include "workflow.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

#ifndef ANVIL_SOURCE_DIR
#define ANVIL_SOURCE_DIR "."
#endif

/* ---- building schemas in C ------------------------------------------------ */

typedef struct field_spec {
    const char *name;
    anvil_field_type type;
    bool optional, nullable;
    const char *enum_json;   /* or NULL */
} field_spec;

static anvil_output_schema *schema_of(const field_spec *specs, size_t n)
{
    anvil_output_schema *s = calloc(1, sizeof *s);
    s->fields = calloc(n ? n : 1, sizeof *s->fields);
    for (size_t i = 0; i < n; i++) {
        anvil_output_field *f = &s->fields[s->n_fields++];
        f->name = strdup(specs[i].name);
        f->type = specs[i].type;
        f->optional = specs[i].optional;
        f->nullable = specs[i].nullable;
        f->enum_values = specs[i].enum_json ? cJSON_Parse(specs[i].enum_json) : NULL;
    }
    return s;
}

/* Check row_json against s; want NULL means it must match. */
static void expect(const anvil_output_schema *s, const char *row_json, const char *want)
{
    cJSON *row = cJSON_Parse(row_json);
    char err[1024] = "untouched";
    CHECK(row != NULL);
    int rc = anvil_output_schema_check(s, row, NULL, err, sizeof err);
    CHECK_INT(rc, want ? -1 : 0);
    CHECK_STR(err, want ? want : "");
    if ((rc == 0) != (want == NULL))
        fprintf(stderr, "  row %s\n", row_json);
    cJSON_Delete(row);
}

/* ---- the check ------------------------------------------------------------ */

static const field_spec review[] = {
    {"summary", ANVIL_FIELD_STRING, false, false, NULL},
    {"score", ANVIL_FIELD_NUMBER, true, true, NULL},
    {"level", ANVIL_FIELD_STRING, false, false, "[\"low\",\"medium\",\"high\"]"},
    {"count", ANVIL_FIELD_INTEGER, true, false, NULL},
};

static void test_check_rules(void)
{
    anvil_output_schema *s = schema_of(review, 4);
    expect(s, "{\"summary\":\"ok\",\"score\":0.5,\"level\":\"low\",\"count\":3}", NULL);
    /* optional may be absent; nullable may be null */
    expect(s, "{\"summary\":\"ok\",\"level\":\"high\"}", NULL);
    expect(s, "{\"summary\":\"ok\",\"score\":null,\"level\":\"high\"}", NULL);
    /* undeclared members do not fail the check (they are dropped) */
    expect(s, "{\"summary\":\"ok\",\"level\":\"low\",\"extra\":[1]}", NULL);
    /* integers: 3.0 is 3; 2^53 is the edge */
    expect(s, "{\"summary\":\"ok\",\"level\":\"low\",\"count\":3.0}", NULL);
    expect(s, "{\"summary\":\"ok\",\"level\":\"low\",\"count\":9007199254740992}", NULL);

    expect(s, "{\"level\":\"low\"}", "$.summary: missing (a required string)");
    expect(s, "{\"summary\":\"ok\",\"level\":\"low\",\"score\":\"12\"}",
           "$.score: expected number, got string \"12\"");
    expect(s, "{\"summary\":null,\"level\":\"low\"}",
           "$.summary: expected string, got null (the field is not nullable)");
    /* optional is not nullable */
    expect(s, "{\"summary\":\"ok\",\"level\":\"low\",\"count\":null}",
           "$.count: expected integer, got null (the field is not nullable)");
    expect(s, "{\"summary\":\"ok\",\"level\":\"low\",\"count\":2.5}",
           "$.count: expected integer (a whole number within +/-2^53), got number 2.5");
    expect(s, "{\"summary\":\"ok\",\"level\":\"low\",\"count\":1e300}",
           "$.count: expected integer (a whole number within +/-2^53), got number 1e+300");
    expect(s, "{\"summary\":\"ok\",\"level\":\"low\",\"count\":\"3\"}",
           "$.count: expected integer, got string \"3\"");
    expect(s, "{\"summary\":\"ok\",\"level\":\"urgent\"}",
           "$.level: expected one of \"low\", \"medium\", \"high\", got string \"urgent\"");
    expect(s, "{\"summary\":{\"a\":1},\"level\":[\"low\"]}",
           "$.summary: expected string, got object; $.level: expected string, got array");
    /* every problem, in declaration order */
    expect(s, "{\"score\":true,\"level\":\"LOW\",\"count\":-0.5}",
           "$.summary: missing (a required string); $.score: expected number, got boolean true; "
           "$.level: expected one of \"low\", \"medium\", \"high\", got string \"LOW\"; "
           "$.count: expected integer (a whole number within +/-2^53), got number -0.5");
    expect(s, "[1]", "$: expected object, got array");
    expect(s, "\"text\"", "$: expected object, got string \"text\"");
    anvil_output_schema_free(s);
}

static void test_check_types(void)
{
    static const field_spec all[] = {
        {"b", ANVIL_FIELD_BOOLEAN, false, false, NULL},
        {"o", ANVIL_FIELD_OBJECT, false, false, NULL},
        {"a", ANVIL_FIELD_ARRAY, false, false, NULL},
        {"z", ANVIL_FIELD_NULL, false, false, NULL},
        {"u", ANVIL_FIELD_UNKNOWN, false, false, NULL},
        {"n", ANVIL_FIELD_NUMBER, false, true, "[1,2.5]"},
        {"t", ANVIL_FIELD_BOOLEAN, true, false, "[true]"},
    };
    anvil_output_schema *s = schema_of(all, 7);
    expect(s, "{\"b\":false,\"o\":{},\"a\":[],\"z\":null,\"u\":null,\"n\":2.5,\"t\":true}", NULL);
    expect(s, "{\"b\":true,\"o\":{\"x\":[1]},\"a\":[{}],\"z\":null,\"u\":\"any\",\"n\":1.0}", NULL);
    expect(s, "{\"b\":true,\"o\":{},\"a\":[],\"z\":null,\"u\":[],\"n\":null}", NULL);
    expect(s, "{\"b\":0,\"o\":[],\"a\":{},\"z\":0,\"u\":1,\"n\":3,\"t\":false}",
           "$.b: expected boolean, got number 0; $.o: expected object, got array; "
           "$.a: expected array, got object; $.z: expected null, got number 0; "
           "$.n: expected one of 1, 2.5, got number 3; $.t: expected one of true, got boolean false");
    /* unknown is required all the same */
    expect(s, "{\"b\":true,\"o\":{},\"a\":[],\"z\":null,\"n\":1}", "$.u: missing (a required unknown)");
    anvil_output_schema_free(s);
}

static void test_check_messages(void)
{
    static const field_spec one[] = {{"name", ANVIL_FIELD_NUMBER, false, false, NULL}};
    anvil_output_schema *s = schema_of(one, 1);
    /* a long value is cut at 40 bytes, on a UTF-8 boundary */
    char row[256];
    snprintf(row, sizeof row, "{\"name\":\"%s\"}",
             "aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa\xc3\xa9\xc3\xa9\xc3\xa9zzzz");
    expect(s, row, "$.name: expected number, got string \"aaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaaa...");

    /* a message longer than the buffer ends in "...", NUL-terminated */
    static const field_spec many[] = {
        {"first", ANVIL_FIELD_STRING, false, false, NULL},
        {"second", ANVIL_FIELD_STRING, false, false, NULL},
        {"third", ANVIL_FIELD_STRING, false, false, NULL},
    };
    anvil_output_schema *m = schema_of(many, 3);
    cJSON *empty = cJSON_CreateObject();
    char small[40];
    memset(small, 'x', sizeof small);
    CHECK_INT(anvil_output_schema_check(m, empty, NULL, small, sizeof small), -1);
    /* the first problem fits; the cut falls at the second */
    CHECK_STR(small, "$.first: missing (a required string)...");
    /* the cut backs off a split UTF-8 character */
    static const field_spec wide[] = {{"w", ANVIL_FIELD_NUMBER, false, false, NULL}};
    anvil_output_schema *ws = schema_of(wide, 1);
    cJSON *r = cJSON_Parse("{\"w\":\"\xc3\xa9\xc3\xa9\xc3\xa9\xc3\xa9\"}");
    char cut[39];   /* '$.w: expected number, got string "' is 34 bytes, then 2 per char */
    CHECK_INT(anvil_output_schema_check(ws, r, NULL, cut, sizeof cut), -1);
    CHECK_STR(cut, "$.w: expected number, got string \"...");
    /* no buffer at all is fine */
    CHECK_INT(anvil_output_schema_check(m, empty, NULL, NULL, 0), -1);
    cJSON_Delete(r);
    cJSON_Delete(empty);
    anvil_output_schema_free(ws);
    anvil_output_schema_free(m);
    anvil_output_schema_free(s);
}

static bool defer_strings(const cJSON *v)
{
    return cJSON_IsString(v);
}

static void test_check_defer(void)
{
    anvil_output_schema *s = schema_of(review, 4);
    cJSON *row = cJSON_Parse("{\"summary\":\"${x}\",\"level\":\"${y}\",\"count\":1.5}");
    char err[256];
    CHECK_INT(anvil_output_schema_check(s, row, defer_strings, err, sizeof err), -1);
    CHECK_STR(err, "$.count: expected integer (a whole number within +/-2^53), got number 1.5");
    cJSON_ReplaceItemInObject(row, "count", cJSON_CreateNumber(1));
    CHECK_INT(anvil_output_schema_check(s, row, defer_strings, err, sizeof err), 0);
    /* deferred values still count as present; a missing field is missing */
    cJSON_DeleteItemFromObject(row, "summary");
    CHECK_INT(anvil_output_schema_check(s, row, defer_strings, err, sizeof err), -1);
    CHECK_STR(err, "$.summary: missing (a required string)");
    cJSON_Delete(row);
    anvil_output_schema_free(s);
}

static void test_strip(void)
{
    anvil_output_schema *s = schema_of(review, 4);
    cJSON *row = cJSON_Parse("{\"extra\":1,\"summary\":\"ok\",\"level\":\"low\",\"nested\":{},"
                             "\"summary\":\"second\",\"score\":null}");
    anvil_output_schema_strip(s, row);
    char *text = cJSON_PrintUnformatted(row);
    CHECK_STR(text, "{\"summary\":\"ok\",\"level\":\"low\",\"score\":null}");
    free(text);
    cJSON_Delete(row);
    /* an empty schema keeps nothing; non-objects and NULL are left alone */
    anvil_output_schema *none = schema_of(NULL, 0);
    row = cJSON_Parse("{\"a\":1,\"b\":2}");
    anvil_output_schema_strip(none, row);
    CHECK_INT(cJSON_GetArraySize(row), 0);
    cJSON_Delete(row);
    row = cJSON_Parse("[1,2]");
    anvil_output_schema_strip(none, row);
    anvil_output_schema_strip(NULL, row);
    CHECK_INT(cJSON_GetArraySize(row), 2);
    cJSON_Delete(row);
    anvil_output_schema_free(none);
    anvil_output_schema_free(s);
    anvil_output_schema_free(NULL);
}

static void test_vocabulary(void)
{
    static const char *const names[] = {"string", "number", "integer", "boolean", "object",
                                        "array", "null", "unknown"};
    static const char *const wire[] = {"string", "number", "number", "boolean", "object",
                                       "array", "null", "unknown"};
    for (int i = 0; i < 8; i++) {
        anvil_field_type t = ANVIL_FIELD_UNKNOWN;
        CHECK(anvil_field_type_parse(names[i], &t));
        CHECK_INT(t, i);
        CHECK_STR(anvil_field_type_name(t), names[i]);
        CHECK_STR(anvil_field_type_wire(t), wire[i]);
        CHECK_INT(anvil_field_type_has_enum(t), i <= 3);
    }
    anvil_field_type t;
    CHECK(!anvil_field_type_parse("float", &t));
    CHECK(!anvil_field_type_parse("String", &t));
    CHECK(!anvil_field_type_parse("", &t));
    CHECK(!anvil_field_type_parse(NULL, &t));

    CHECK(anvil_output_field_name_valid("a"));
    CHECK(anvil_output_field_name_valid("_private"));
    CHECK(anvil_output_field_name_valid("camelCase_and-dash9"));
    char longest[ANVIL_OUTPUT_NAME_MAX + 2];
    memset(longest, 'n', sizeof longest - 1);
    longest[sizeof longest - 1] = '\0';
    CHECK(!anvil_output_field_name_valid(longest));   /* 65 characters */
    longest[ANVIL_OUTPUT_NAME_MAX] = '\0';
    CHECK(anvil_output_field_name_valid(longest));    /* 64 */
    CHECK(!anvil_output_field_name_valid(""));
    CHECK(!anvil_output_field_name_valid(NULL));
    CHECK(!anvil_output_field_name_valid("9lives"));
    CHECK(!anvil_output_field_name_valid("-dash"));
    CHECK(!anvil_output_field_name_valid("a.b"));
    CHECK(!anvil_output_field_name_valid("a b"));
    CHECK(!anvil_output_field_name_valid("$ref"));

    anvil_output_schema *s = schema_of(review, 4);
    CHECK(anvil_output_schema_field(s, "score.x", 5) == &s->fields[1]);
    CHECK(anvil_output_schema_field(s, "scor", 4) == NULL);
    CHECK(anvil_output_schema_field(s, "scores", 6) == NULL);
    CHECK(anvil_output_schema_field(NULL, "score", 5) == NULL);
    anvil_output_schema_free(s);
}

/* ---- loading from workflow files ----------------------------------------- */

static const char *fx(const char *name)
{
    static char buf[1024];
    snprintf(buf, sizeof buf, "%s/tests/unit/fixtures/workflows/%s", ANVIL_SOURCE_DIR, name);
    return buf;
}

static bool has_diag(const anvil_diags *d, int line, int col, const char *msg)
{
    for (size_t i = 0; i < d->n; i++)
        if (d->items[i].line == line && d->items[i].column == col &&
            !strcmp(d->items[i].message, msg))
            return true;
    return false;
}

#define CHECK_DIAG(d, line, col, msg) do { \
    bool found_ = has_diag((d), (line), (col), (msg)); \
    CHECK(found_); \
    if (!found_) { \
        fprintf(stderr, "  wanted %d:%d: %s\n  got:\n", (line), (col), (msg)); \
        anvil_diags_print((d), stderr); \
    } \
} while (0)

#define F "fields.outputSchema.fields"

static void test_load_diagnostics(void)
{
    anvil_workflow *wf = (anvil_workflow *)1;
    anvil_diags d = {0};
    CHECK_INT(anvil_workflow_load(fx("bad_output_schema.yaml"), &wf, &d), -1);
    CHECK(wf == NULL);
    CHECK_INT(d.n, 28);
    CHECK_DIAG(&d, 7, 46, "shape.outputSchema.strict: unknown key (allowed: fields)");
    CHECK_DIAG(&d, 7, 33, "shape.outputSchema.fields: expected a list of fields, got a mapping");
    /* one pointed message for the JSON Schema form, and nothing else there */
    CHECK_DIAG(&d, 11, 23, "json-schema.outputSchema: 'type' belongs to a JSON Schema; declare "
                           "its fields instead: fields: [{name, type, optional, "
                           "nullable, description, enum}] (docs/workflows.md)");
    CHECK_DIAG(&d, 17, 41, F "[0].colour: unknown key (allowed: name, type, optional, nullable, "
                           "description, enum)");
    CHECK_DIAG(&d, 18, 15, F "[1].name: missing (every field needs a name)");
    CHECK_DIAG(&d, 19, 15, F "[2].type: missing (one of string, number, integer, boolean, "
                           "object, array, null or unknown)");
    CHECK_DIAG(&d, 20, 32, F "[3].type: unknown type \"float\" (expected string, number, "
                           "integer, boolean, object, array, null or unknown)");
    CHECK_DIAG(&d, 21, 23, F "[4].name: invalid field name '1abc' (1-64 letters, digits, '_' "
                           "or '-', starting with a letter or '_')");
    CHECK_DIAG(&d, 22, 23, F "[5].name: duplicate field name 'ok' (first declared at line 17)");
    CHECK_DIAG(&d, 23, 48, F "[6].enum: only string, number, integer and boolean fields have an "
                           "enum (this field is object)");
    CHECK_DIAG(&d, 24, 47, F "[7].enum: give 1 to 256 values (got 0)");
    CHECK_DIAG(&d, 25, 51, F "[8].enum[1]: null is not an enum value (declare the field "
                           "nullable: true to allow null)");
    CHECK_DIAG(&d, 26, 51, F "[9].enum[1]: expected a string (the field's type), got the number "
                           "1 (quote it to make it a string)");
    CHECK_DIAG(&d, 26, 54, F "[9].enum[2]: expected a string (the field's type), got the boolean "
                           "true (quote it to make it a string)");
    CHECK_DIAG(&d, 27, 48, F "[10].enum[0]: expected a number (the field's type), got the quoted "
                           "string \"1\"");
    CHECK_DIAG(&d, 27, 53, F "[10].enum[1]: expected a number (the field's type), got \"x\"");
    CHECK_DIAG(&d, 28, 52, F "[11].enum[1]: expected an integer (the field's type), got the "
                           "number 1.5");
    CHECK_DIAG(&d, 29, 54, F "[12].enum[2]: \"a\" is already in the enum");
    CHECK_DIAG(&d, 30, 49, F "[13].enum[0]: expected a single value, got a list");
    CHECK_DIAG(&d, 31, 51, F "[14].optional: expected true or false, got \"yes\"");
    CHECK_DIAG(&d, 31, 66, F "[14].nullable: expected true or false, got the quoted string "
                           "\"true\"");
    CHECK_DIAG(&d, 32, 54, F "[15].description: expected a string, got a list");
    CHECK_DIAG(&d, 33, 15, F "[16]: expected a mapping, got the quoted string \"just a string\"");
    CHECK_DIAG(&d, 34, 23, F "[17].name: strings must not contain NUL characters");
    /* a static row: what is written is checked; templates wait for the run */
    CHECK_DIAG(&d, 37, 17, "static.output: does not match outputSchema: $.n: expected number, got "
                           "string \"12\"; $.level: expected one of \"low\", \"high\", got string "
                           "\"urgent\"; $.cnt: expected integer (a whole number within +/-2^53), "
                           "got number 2.5; $.must: missing (a required string)");
    CHECK_DIAG(&d, 37, 17, "static.output.extra: not declared in outputSchema (undeclared members "
                           "are dropped from the row)");
    /* references past the declared fields */
    CHECK_DIAG(&d, 47, 14, "refs.run: ${outputs.static.typo}: task 'static' declares no output "
                           "field 'typo' (its outputSchema has: n, level, tmpl, cnt, must)");
    CHECK_DIAG(&d, 47, 14, "refs.run: ${outputs.static.n.deep}: output field 'n' of task 'static' "
                           "is a number, which has no members");
    anvil_diags_clear(&d);
}

/* What the loader accepts: empty field lists, templated static rows whose
 * written parts fit, references into object fields and whole rows. */
static void test_load_valid(void)
{
    anvil_workflow *wf = NULL;
    anvil_diags d = {0};
    CHECK_INT(anvil_workflow_load(fx("valid_output_schema.yaml"), &wf, &d), 0);
    CHECK_INT(d.n, 0);
    anvil_diags_print(&d, stderr);
    anvil_diags_clear(&d);
    if (!wf)
        return;
    const anvil_wf_node *none = anvil_workflow_node(wf, "none");
    CHECK(none && none->output_schema && none->output_schema->n_fields == 0);
    const anvil_wf_node *st = anvil_workflow_node(wf, "static");
    CHECK(st && st->output_schema && st->output_schema->n_fields == 4);
    const anvil_wf_node *plain = anvil_workflow_node(wf, "plain");
    CHECK(plain && plain->output_schema == NULL);
    anvil_workflow_free(wf);
}

/* Strict-check obj_json under root; want/want_path NULL mean it matches. */
static void expect_strict(const anvil_output_schema *s, const char *obj_json, const char *root,
                          const char *want, const char *want_path)
{
    cJSON *obj = cJSON_Parse(obj_json);
    char err[1024] = "untouched", path[256] = "untouched";
    CHECK(obj != NULL);
    int rc = anvil_output_schema_check_strict(s, obj, root, err, sizeof err, path, sizeof path);
    CHECK_INT(rc, want ? -1 : 0);
    CHECK_STR(err, want ? want : "");
    CHECK_STR(path, want_path ? want_path : "");
    cJSON_Delete(obj);
}

static void test_check_strict(void)
{
    static const field_spec in[] = {
        {"sha", ANVIL_FIELD_STRING, false, false, NULL},
        {"count", ANVIL_FIELD_INTEGER, true, false, NULL},
        {"mode", ANVIL_FIELD_STRING, true, true, "[\"fast\",\"full\"]"},
    };
    anvil_output_schema *s = schema_of(in, 3);
    const char *at = "$.params.input";
    expect_strict(s, "{\"sha\":\"abc\"}", at, NULL, NULL);
    expect_strict(s, "{\"sha\":\"abc\",\"count\":2,\"mode\":null}", at, NULL, NULL);
    expect_strict(s, "{}", at, "$.params.input.sha: missing (a required string)",
                  "$.params.input.sha");
    /* the console needs integer vs number: 1.5 is refused for an integer */
    expect_strict(s, "{\"sha\":\"abc\",\"count\":1.5}", at,
                  "$.params.input.count: expected integer (a whole number within +/-2^53), got "
                  "number 1.5", "$.params.input.count");
    expect_strict(s, "{\"sha\":\"abc\",\"mode\":\"slow\"}", at,
                  "$.params.input.mode: expected one of \"fast\", \"full\", got string \"slow\"",
                  "$.params.input.mode");
    /* an undeclared member is a problem (the lenient check drops it), after
     * the declared fields' problems */
    expect_strict(s, "{\"shaa\":\"abc\"}", at,
                  "$.params.input.sha: missing (a required string); $.params.input.shaa: not a "
                  "declared field (declared: sha, count, mode)", "$.params.input.sha");
    expect_strict(s, "{\"sha\":\"abc\",\"a.b: c\":1}", at,
                  "$.params.input[\"a.b: c\"]: not a declared field (declared: sha, count, mode)",
                  "$.params.input[\"a.b: c\"]");
    /* not an object; NULL root is "$" */
    expect_strict(s, "[1]", at, "$.params.input: expected object, got array", "$.params.input");
    expect_strict(s, "{\"x\":1}", NULL, "$.sha: missing (a required string); $.x: not a declared "
                  "field (declared: sha, count, mode)", "$.sha");
    anvil_output_schema_free(s);

    /* nothing declared: every member is undeclared */
    anvil_output_schema *none = schema_of(NULL, 0);
    expect_strict(none, "{}", at, NULL, NULL);
    expect_strict(none, "{\"a\":1}", at, "$.params.input.a: not a declared field (declared: none)",
                  "$.params.input.a");
    anvil_output_schema_free(none);
}

int main(void)
{
    test_check_rules();
    test_check_types();
    test_check_messages();
    test_check_defer();
    test_strip();
    test_check_strict();
    test_vocabulary();
    test_load_diagnostics();
    test_load_valid();
    UNIT_DONE();
}
