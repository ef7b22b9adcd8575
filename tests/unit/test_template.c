/*
 * tests/unit/test_template.c — `${...}` expansion: text and shell modes,
 * the `$$` escape, nested paths, missing and non-string values, typed
 * single references in JSON, size bounds, and the load-time scan.
 *
 * Shell-mode results are also run through /bin/sh with harmless payloads
 * ("echo pwned"), so "cannot inject" is checked against a real shell, not
 * only against the quoting we expect.
 */
#include "workflow.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>

static cJSON *input, *outputs;

static char err[256];

/* Expand in a mode and compare; want NULL = must fail with err_want. */
static void expect(const char *tmpl, anvil_template_mode mode, const char *want,
                   const char *err_want)
{
    err[0] = '\0';
    char *got = anvil_template_expand(tmpl, mode, input, outputs, err, sizeof err);
    if (want) {
        CHECK_STR(got, want);
        if (!got)
            fprintf(stderr, "  template %s: %s\n", tmpl, err);
    } else {
        CHECK(got == NULL);
        CHECK_STR(err, err_want);
    }
    free(got);
}

#define TEXT ANVIL_TEMPLATE_TEXT
#define SHELL ANVIL_TEMPLATE_SHELL

static void setup(void)
{
    input = cJSON_Parse("{\"sha\":\"abc123\",\"n\":5,\"f\":2.5,\"t\":true,\"z\":null,"
                        "\"a\":{\"b\":{\"c\":\"deep\"}},\"items\":[\"zero\",\"one\",{\"k\":\"v\"}],"
                        "\"obj\":{\"x\":1,\"y\":[true,\"s\"]},\"quote\":\"it's\"}");
    outputs = cJSON_Parse("{\"build\":{\"artifact\":\"app.tar\",\"size\":10,\"ok\":true},"
                          "\"empty\":{}}");
    CHECK(input && outputs);
}

static void test_text(void)
{
    expect("plain text", TEXT, "plain text", NULL);
    expect("", TEXT, "", NULL);
    expect("sha=${input.sha}!", TEXT, "sha=abc123!", NULL);
    expect("${input.sha}${input.sha}", TEXT, "abc123abc123", NULL);
    expect("${input.a.b.c}", TEXT, "deep", NULL);
    expect("${input.items.1} ${input.items.2.k}", TEXT, "one v", NULL);
    expect("${outputs.build.artifact}", TEXT, "app.tar", NULL);
    /* Non-strings as compact JSON. */
    expect("n=${input.n} f=${input.f} t=${input.t} z=${input.z}", TEXT,
           "n=5 f=2.5 t=true z=null", NULL);
    expect("${input.obj}", TEXT, "{\"x\":1,\"y\":[true,\"s\"]}", NULL);
    expect("${input.items}", TEXT, "[\"zero\",\"one\",{\"k\":\"v\"}]", NULL);
    expect("${outputs.build}", TEXT, "{\"artifact\":\"app.tar\",\"size\":10,\"ok\":true}", NULL);
    expect("${outputs.empty}", TEXT, "{}", NULL);
    /* Escapes and lone dollars. */
    expect("cost: $$5", TEXT, "cost: $5", NULL);
    expect("$${input.sha}", TEXT, "${input.sha}", NULL);
    expect("$$$${input.sha}", TEXT, "$${input.sha}", NULL);
    expect("$$${input.sha}", TEXT, "$abc123", NULL);
    expect("a $ b $x $", TEXT, "a $ b $x $", NULL);
    expect("}{ ${input.sha}}", TEXT, "}{ abc123}", NULL);
    expect("it's ${input.quote}", TEXT, "it's it's", NULL);   /* no quoting in text */
}

static void test_missing_and_bad(void)
{
    expect("${input.nope}", TEXT, NULL, "input.nope is not set");
    expect("x ${input.a.b.missing} y", TEXT, NULL, "input.a.b.missing is not set");
    expect("${input.sha.more}", TEXT, NULL, "input.sha.more is not set");  /* into a string */
    expect("${input.items.3}", TEXT, NULL, "input.items.3 is not set");
    expect("${input.items.x}", TEXT, NULL, "input.items.x is not set");
    expect("${outputs.build.missing}", TEXT, NULL, "outputs.build.missing is not set");
    expect("${outputs.test}", TEXT, NULL, "outputs.test is not set");
    expect("${input.sha", TEXT, NULL, "unterminated reference '${input.sha' (missing '}')");
    expect("${}", TEXT, NULL, "empty reference '${}'");
    expect("${env.HOME}", TEXT, NULL,
           "unknown reference '${env.HOME}' (references start with input or outputs)");
    expect("${input.a b}", TEXT, NULL, "invalid reference '${input.a b}' (names of letters, "
                                       "digits, '_' and '-', separated by single dots)");
    expect("${input.}", TEXT, NULL, "invalid reference '${input.}' (names of letters, digits, "
                                    "'_' and '-', separated by single dots)");
    expect("${outputs}", TEXT, NULL, "'${outputs}' needs a node: write ${outputs.<node>} or "
                                     "${outputs.<node>.<field>}");

    /* No input at all, and no outputs yet. */
    char *s = anvil_template_expand("${input.sha}", TEXT, NULL, NULL, err, sizeof err);
    CHECK(s == NULL);
    CHECK_STR(err, "input.sha is not set");
    s = anvil_template_expand("${outputs.build.artifact}", TEXT, input, NULL, err, sizeof err);
    CHECK(s == NULL);
    CHECK_STR(err, "outputs.build.artifact is not set");
    /* err may be NULL. */
    CHECK(anvil_template_expand("${input.nope}", TEXT, input, outputs, NULL, 0) == NULL);
    CHECK(anvil_template_expand(NULL, TEXT, input, outputs, err, sizeof err) == NULL);
}

/* Run cmd with /bin/sh and return its stdout (malloc'd). */
static char *sh_output(const char *cmd)
{
    FILE *p = popen(cmd, "r");
    if (!p)
        return NULL;
    size_t cap = 4096, len = 0;
    char *out = malloc(cap);
    size_t got;
    while (out && (got = fread(out + len, 1, cap - len - 1, p)) > 0) {
        len += got;
        if (len + 1 == cap) {
            char *o2 = realloc(out, cap * 2);
            if (!o2) {
                free(out);
                out = NULL;
                break;
            }
            out = o2;
            cap *= 2;
        }
    }
    pclose(p);
    if (out)
        out[len] = '\0';
    return out;
}

static void test_shell(void)
{
    /* Exact quoting in each context. */
    expect("git tag ${input.sha}", SHELL, "git tag 'abc123'", NULL);
    expect("echo ${input.quote}", SHELL, "echo 'it'\\''s'", NULL);
    expect("echo 'v-${input.quote}'", SHELL, "echo 'v-it'\\''s'", NULL);
    expect("echo \"v-${input.quote}\"", SHELL, "echo \"v-\"'it'\\''s'\"\"", NULL);
    expect("echo ${input.n} ${input.obj}", SHELL, "echo '5' '{\"x\":1,\"y\":[true,\"s\"]}'", NULL);
    expect("echo $$HOME ${input.sha}", SHELL, "echo $HOME 'abc123'", NULL);

    /* The classic injection comes out as one quoted word. */
    cJSON *saved = input;
    input = cJSON_Parse("{\"v\":\"'; rm -rf /; '\"}");
    expect("echo ${input.v}", SHELL, "echo ''\\''; rm -rf /; '\\'''", NULL);
    expect("echo '${input.v}'", SHELL, "echo ''\\''; rm -rf /; '\\'''", NULL);
    expect("echo \"${input.v}\"", SHELL, "echo \"\"''\\''; rm -rf /; '\\'''\"\"", NULL);
    cJSON_Delete(input);

    /* Against a real shell: every payload must come back as exactly one
     * argument, whatever quotes the template put around the reference. */
    static const char *const payloads[] = {
        "'; echo pwned; '", "$(echo pwned)", "`echo pwned`", "\"; echo pwned; \"",
        "a  b\tc", "*", "x\necho pwned", "\\", "\\'", "'", "''", "$HOME", "-n", "",
        "it's \"quoted\" $x `y` \\z",
    };
    static const struct { const char *tmpl, *pre, *post; } forms[] = {
        {"printf '[%s]\\n' ${input.v}", "", ""},
        {"printf '[%s]\\n' pre-${input.v}-post", "pre-", "-post"},
        {"printf '[%s]\\n' 'pre-${input.v}-post'", "pre-", "-post"},
        {"printf '[%s]\\n' \"pre-${input.v}-post\"", "pre-", "-post"},
        {"printf '[%s]\\n' $$(echo in)${input.v}", "in", ""},
        {"printf '[%s]\\n' $$(echo ${input.v})", NULL, NULL},   /* word-split by the author */
    };
    for (size_t i = 0; i < sizeof payloads / sizeof payloads[0]; i++) {
        input = cJSON_CreateObject();
        cJSON_AddStringToObject(input, "v", payloads[i]);
        for (size_t f = 0; f < sizeof forms / sizeof forms[0]; f++) {
            char *cmd = anvil_template_expand(forms[f].tmpl, SHELL, input, outputs, err,
                                              sizeof err);
            CHECK(cmd != NULL);
            if (!cmd) {
                fprintf(stderr, "  %s: %s\n", forms[f].tmpl, err);
                continue;
            }
            char *got = sh_output(cmd);
            CHECK(got != NULL && !strstr(got, "pwned\n"));
            if (forms[f].pre && got) {
                char want[256];
                snprintf(want, sizeof want, "[%s%s%s]\n", forms[f].pre, payloads[i], forms[f].post);
                CHECK_STR(got, want);
                if (strcmp(got, want))
                    fprintf(stderr, "  command: %s\n", cmd);
            }
            free(got);
            free(cmd);
        }
        cJSON_Delete(input);
    }
    input = saved;

    /* Places a small tracker cannot quote for: refused, at load and at run. */
    static const struct { const char *tmpl, *why; } unsafe[] = {
        {"echo hi # ${input.sha}", "inside a shell comment"},
        {"echo hi;# ${input.sha}", "inside a shell comment"},
        {"cat <<EOF\n${input.sha}\nEOF", "after a '<<' heredoc"},
        {"echo `echo ${input.sha}`", "after a `...` command substitution"},
        {"echo \"`date`\" ${input.sha}", "after a `...` command substitution"},
        {"echo \"$$(echo ${input.sha})\"", "after a $(...) inside double quotes"},
        {"echo \\${input.sha}", "right after a backslash"},
        {"echo \"\\${input.sha}\"", "right after a backslash"},
        {"echo $$${input.sha}", "right after a '$'"},
    };
    for (size_t i = 0; i < sizeof unsafe / sizeof unsafe[0]; i++) {
        char want[256];
        snprintf(want, sizeof want, "'${input.sha}' cannot be quoted safely for the shell %s",
                 unsafe[i].why);
        expect(unsafe[i].tmpl, SHELL, NULL, want);
        err[0] = '\0';
        CHECK_INT(anvil_template_scan(unsafe[i].tmpl, SHELL, NULL, NULL, err, sizeof err), -1);
        CHECK_STR(err, want);
        /* The same text is fine where no shell reads it. */
        CHECK_INT(anvil_template_scan(unsafe[i].tmpl, TEXT, NULL, NULL, err, sizeof err), 0);
    }
    /* A comment ends at the newline; '#' inside a word is no comment. */
    expect("echo a # note\necho ${input.sha}", SHELL, "echo a # note\necho 'abc123'", NULL);
    expect("echo a#${input.sha}", SHELL, "echo a#'abc123'", NULL);
    expect("echo '# ${input.sha}'", SHELL, "echo '# abc123'", NULL);
    expect("echo $$(echo ${input.sha})", SHELL, "echo $(echo 'abc123')", NULL);
}

static void check_json_str(const cJSON *j, const char *want)
{
    char *s = j ? cJSON_PrintUnformatted(j) : NULL;
    CHECK_STR(s, want);
    free(s);
}

static void test_json(void)
{
    cJSON *t = cJSON_Parse(
        "{\"n\":\"${input.n}\",\"obj\":\"${input.obj}\",\"row\":\"${outputs.build}\","
        "\"z\":\"${input.z}\",\"text\":\"v${input.n}\",\"esc\":\"$${input.n}\","
        "\"two\":\"${input.n}${input.n}\",\"msg\":\"shipped ${input.sha}\","
        "\"list\":[\"${input.t}\",\"${input.a.b.c}\",7,null,false],"
        "\"${input.sha}\":\"keys are not expanded\",\"deep\":{\"x\":[{\"y\":\"${input.items.2}\"}]}}");
    CHECK(t != NULL);
    cJSON *got = anvil_template_expand_json(t, input, outputs, err, sizeof err);
    CHECK(got != NULL);
    check_json_str(got,
        "{\"n\":5,\"obj\":{\"x\":1,\"y\":[true,\"s\"]},"
        "\"row\":{\"artifact\":\"app.tar\",\"size\":10,\"ok\":true},\"z\":null,"
        "\"text\":\"v5\",\"esc\":\"${input.n}\",\"two\":\"55\",\"msg\":\"shipped abc123\","
        "\"list\":[true,\"deep\",7,null,false],"
        "\"${input.sha}\":\"keys are not expanded\",\"deep\":{\"x\":[{\"y\":{\"k\":\"v\"}}]}}");
    /* A deep copy: changing the result leaves template and input alone. */
    if (got) {
        cJSON *obj = cJSON_GetObjectItem(got, "obj");
        cJSON_AddNumberToObject(obj, "added", 1);
    }
    check_json_str(cJSON_GetObjectItem(input, "obj"), "{\"x\":1,\"y\":[true,\"s\"]}");
    check_json_str(cJSON_GetObjectItem(t, "n"), "\"${input.n}\"");
    cJSON_Delete(got);

    /* A single string template works too. */
    cJSON *s = cJSON_CreateString("${outputs.build.size}");
    got = anvil_template_expand_json(s, input, outputs, err, sizeof err);
    check_json_str(got, "10");
    cJSON_Delete(got);
    cJSON_Delete(s);

    /* Missing values fail the whole expansion with the reference named. */
    cJSON *bad = cJSON_Parse("{\"a\":[1,{\"b\":\"x ${outputs.build.nope}\"}]}");
    CHECK(anvil_template_expand_json(bad, input, outputs, err, sizeof err) == NULL);
    CHECK_STR(err, "outputs.build.nope is not set");
    cJSON_Delete(bad);
    bad = cJSON_Parse("{\"a\":\"${input.nope}\"}");
    CHECK(anvil_template_expand_json(bad, input, outputs, err, sizeof err) == NULL);
    CHECK_STR(err, "input.nope is not set");
    cJSON_Delete(bad);
    bad = cJSON_Parse("{\"a\":\"${input.sha\"}");
    CHECK(anvil_template_expand_json(bad, input, outputs, err, sizeof err) == NULL);
    CHECK_STR(err, "unterminated reference '${input.sha' (missing '}')");
    cJSON_Delete(bad);
    CHECK(anvil_template_expand_json(NULL, input, outputs, err, sizeof err) == NULL);
    cJSON_Delete(t);
}

static void test_bounds(void)
{
    /* 600 KiB value: one copy fits, two exceed the 1 MiB bound. */
    size_t big = 600 * 1024;
    char *blob = malloc(big + 1);
    if (!blob)
        return;
    memset(blob, 'x', big);
    blob[big] = '\0';
    cJSON *in = cJSON_CreateObject();
    cJSON_AddStringToObject(in, "big", blob);
    free(blob);
    char want[64];
    snprintf(want, sizeof want, "expansion is larger than %zu bytes",
             (size_t)ANVIL_TEMPLATE_MAX_BYTES);

    char *s = anvil_template_expand("${input.big}", TEXT, in, NULL, err, sizeof err);
    CHECK(s && strlen(s) == big);
    free(s);
    s = anvil_template_expand("${input.big}${input.big}", TEXT, in, NULL, err, sizeof err);
    CHECK(s == NULL);
    CHECK_STR(err, want);
    /* Shell quoting counts too: a value of quotes grows fourfold. */
    cJSON *q = cJSON_CreateObject();
    char *quotes = malloc(300 * 1024 + 1);
    if (quotes) {
        memset(quotes, '\'', 300 * 1024);
        quotes[300 * 1024] = '\0';
        cJSON_AddStringToObject(q, "q", quotes);
        free(quotes);
        s = anvil_template_expand("${input.q}", SHELL, q, NULL, err, sizeof err);
        CHECK(s == NULL);
        CHECK_STR(err, want);
    }
    cJSON_Delete(q);

    /* Typed copies and text both count against one budget per tree. */
    cJSON *t = cJSON_Parse("{\"a\":\"${input.big}\"}");
    cJSON *got = anvil_template_expand_json(t, in, NULL, err, sizeof err);
    CHECK(got != NULL);
    cJSON_Delete(got);
    cJSON_Delete(t);
    t = cJSON_Parse("{\"a\":\"${input.big}\",\"b\":[\"${input}\"]}");
    CHECK(anvil_template_expand_json(t, in, NULL, err, sizeof err) == NULL);
    CHECK_STR(err, want);
    cJSON_Delete(t);
    t = cJSON_Parse("{\"a\":\"${input.big}\",\"b\":\"text ${input.big}\"}");
    CHECK(anvil_template_expand_json(t, in, NULL, err, sizeof err) == NULL);
    CHECK_STR(err, want);
    cJSON_Delete(t);
    cJSON_Delete(in);
}

typedef struct seen {
    int n;
    char text[8][64];
} seen;

static void collect(void *ctx, const anvil_template_ref *ref)
{
    seen *s = ctx;
    if (s->n < 8)
        snprintf(s->text[s->n++], sizeof s->text[0], "%d|%.*s|%.*s|%zu", (int)ref->root,
                 (int)ref->expr_len, ref->expr, (int)ref->path_len, ref->path, ref->offset);
}

static void test_scan(void)
{
    seen s = {0};
    CHECK_INT(anvil_template_scan("a ${input} $${input.x} ${outputs.build.artifact.0} "
                                  "${input.a-b_c.9}", TEXT, collect, &s, err, sizeof err), 0);
    CHECK_INT(s.n, 3);
    CHECK_STR(s.text[0], "0|input||2");
    CHECK_STR(s.text[1], "1|outputs.build.artifact.0|build.artifact.0|23");
    CHECK_STR(s.text[2], "0|input.a-b_c.9|a-b_c.9|51");
    /* References before a syntax error are still reported. */
    s.n = 0;
    CHECK_INT(anvil_template_scan("${input.a} ${bad.x}", TEXT, collect, &s, err, sizeof err), -1);
    CHECK_INT(s.n, 1);
    CHECK_STR(err, "unknown reference '${bad.x}' (references start with input or outputs)");
    CHECK_INT(anvil_template_scan(NULL, TEXT, NULL, NULL, err, sizeof err), -1);
    /* Long references are shortened in messages. */
    char longref[200];
    snprintf(longref, sizeof longref, "${nope.%0120d}", 0);
    CHECK_INT(anvil_template_scan(longref, TEXT, NULL, NULL, err, sizeof err), -1);
    CHECK(strstr(err, "...}'") != NULL);
}

int main(void)
{
    setup();
    test_text();
    test_missing_and_bad();
    test_shell();
    test_json();
    test_bounds();
    test_scan();
    cJSON_Delete(input);
    cJSON_Delete(outputs);
    UNIT_DONE();
}
