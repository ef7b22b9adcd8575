/*
 * runtime/config/template.c — `${...}` references in workflow strings (workflow.h).
 *
 * Owns the reference syntax, shared by the loader's load-time check and the
 * run-time expansion so the two can never disagree; resolving a reference
 * against the launch input and the finished tasks' output rows; and
 * inserting values as text, as shell words, or as typed JSON. Knows nothing
 * about the workflow tree (which node may reference which is the loader's).
 *
 * Shell mode: values come from whoever launched the run, so they must never
 * become shell syntax. The template text is trusted (the author wrote it),
 * and a small tracker follows its quoting: outside quotes a value becomes
 * '...'; inside '...' its quotes become '\'' (close, escaped quote, reopen);
 * inside "..." we close the author's quote, insert '...', and reopen it.
 * Where a tracker this small cannot know how the shell will read the text
 * (comments, heredocs, backticks, $(...) inside double quotes, right after a
 * backslash or a '$') the reference is refused rather than guessed.
 */
#include "errbuf.h"
#include "workflow.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

/* Longest piece of a reference quoted back in a message. */
#define SHOW_MAX 60

static int show_len(size_t n) { return n > SHOW_MAX ? SHOW_MAX : (int)n; }
static const char *show_more(size_t n) { return n > SHOW_MAX ? "..." : ""; }

static bool seg_char(char ch)
{
    return (ch >= 'a' && ch <= 'z') || (ch >= 'A' && ch <= 'Z') || (ch >= '0' && ch <= '9') ||
           ch == '_' || ch == '-';
}

/* Parse the text between "${" and "}". */
static int parse_ref(const char *expr, size_t len, size_t offset, anvil_template_ref *ref,
                     char *err, size_t errlen)
{
    *ref = (anvil_template_ref){.expr = expr, .expr_len = len, .offset = offset};
    if (len == 0) {
        anvil_errbuf_set(err, errlen, "empty reference '${}'");
        return -1;
    }
    size_t seg = 0;
    for (size_t i = 0; i < len; i++) {
        if (expr[i] == '.' && seg > 0) {
            seg = 0;
        } else if (seg_char(expr[i])) {
            seg++;
        } else {
            seg = 0;
            break;
        }
    }
    if (seg == 0) {
        anvil_errbuf_set(err, errlen,
                "invalid reference '${%.*s%s}' (names of letters, digits, '_' and '-', "
                "separated by single dots)",
                show_len(len), expr, show_more(len));
        return -1;
    }
    const char *dot = memchr(expr, '.', len);
    size_t root_len = dot ? (size_t)(dot - expr) : len;
    if (root_len == 5 && !memcmp(expr, "input", 5)) {
        ref->root = ANVIL_TEMPLATE_INPUT;
    } else if (root_len == 7 && !memcmp(expr, "outputs", 7)) {
        ref->root = ANVIL_TEMPLATE_OUTPUTS;
    } else {
        anvil_errbuf_set(err, errlen, "unknown reference '${%.*s%s}' (references start with input or outputs)",
                show_len(len), expr, show_more(len));
        return -1;
    }
    ref->path = dot ? dot + 1 : expr + len;
    ref->path_len = dot ? len - root_len - 1 : 0;
    if (ref->root == ANVIL_TEMPLATE_OUTPUTS && ref->path_len == 0) {
        anvil_errbuf_set(err, errlen, "'${outputs}' needs a node: write ${outputs.<node>} or "
                             "${outputs.<node>.<field>}");
        return -1;
    }
    return 0;
}

/* ---- shell quoting context of the template text -------------------------- */

typedef enum { SH_PLAIN, SH_SINGLE, SH_DOUBLE } sh_quote;

typedef struct sh_ctx {
    sh_quote q;
    bool escaped;          /* previous char was an unquoted/double-quoted '\' */
    bool comment;          /* inside a '#' comment, until the newline */
    char prev;             /* previous char, 0 at the start or after escapes */
    const char *unsafe;    /* sticky: why no later reference can be quoted */
} sh_ctx;

static bool word_break(char ch)
{
    return ch == 0 || ch == ' ' || ch == '\t' || ch == '\n' || ch == ';' || ch == '&' ||
           ch == '|' || ch == '(' || ch == ')' || ch == '<' || ch == '>';
}

static void sh_step(sh_ctx *s, char ch)
{
    char prev = s->prev;
    s->prev = ch;
    if (s->q == SH_SINGLE) {
        if (ch == '\'')
            s->q = SH_PLAIN;
        return;
    }
    if (s->escaped) {
        s->escaped = false;
        s->prev = 0;       /* an escaped '$' or '<' starts nothing */
        return;
    }
    if (s->q == SH_DOUBLE) {
        if (ch == '\\')
            s->escaped = true;
        else if (ch == '"')
            s->q = SH_PLAIN;
        else if (ch == '`')
            s->unsafe = "after a `...` command substitution";
        else if (ch == '(' && prev == '$')
            s->unsafe = "after a $(...) inside double quotes";
        return;
    }
    if (s->comment) {
        if (ch == '\n')
            s->comment = false;
        return;
    }
    if (ch == '\\')
        s->escaped = true;
    else if (ch == '\'')
        s->q = SH_SINGLE;
    else if (ch == '"')
        s->q = SH_DOUBLE;
    else if (ch == '`')
        s->unsafe = "after a `...` command substitution";
    else if (ch == '<' && prev == '<')
        s->unsafe = "after a '<<' heredoc";
    else if (ch == '#' && word_break(prev))
        s->comment = true;
}

/* Why a reference cannot be quoted at this point, or NULL. */
static const char *sh_unsafe(const sh_ctx *s)
{
    if (s->unsafe)
        return s->unsafe;
    if (s->q == SH_SINGLE)
        return NULL;
    if (s->comment)
        return "inside a shell comment";
    if (s->escaped)
        return "right after a backslash";
    if (s->q == SH_PLAIN && s->prev == '$')
        return "right after a '$'";
    return NULL;
}

/* ---- the walk shared by scanning and expanding --------------------------- */

typedef int (*lit_fn)(void *ctx, const char *s, size_t n);
typedef int (*ref_cb)(void *ctx, const anvil_template_ref *ref, sh_quote q);

/* Split tmpl into literal text and references. In SHELL mode, also refuse
 * references the tracker cannot place. Returns 0, or -1 with err set (by the
 * walk, or by a callback that returned -1). */
static int walk(const char *tmpl, anvil_template_mode mode, lit_fn lit, ref_cb on_ref,
                void *ctx, char *err, size_t errlen)
{
    sh_ctx sh = {0};
    const char *p = tmpl, *run = tmpl;
    while (*p) {
        if (p[0] != '$' || (p[1] != '$' && p[1] != '{')) {
            if (mode == ANVIL_TEMPLATE_SHELL)
                sh_step(&sh, *p);
            p++;
            continue;
        }
        if (lit && p > run && lit(ctx, run, (size_t)(p - run)) != 0)
            return -1;
        if (p[1] == '$') {         /* "$$" is one literal '$' */
            if (mode == ANVIL_TEMPLATE_SHELL)
                sh_step(&sh, '$');
            if (lit && lit(ctx, "$", 1) != 0)
                return -1;
            p += 2;
            run = p;
            continue;
        }
        const char *close = strchr(p + 2, '}');
        if (!close) {
            size_t rest = strlen(p + 2);
            anvil_errbuf_set(err, errlen, "unterminated reference '${%.*s%s' (missing '}')",
                    show_len(rest), p + 2, show_more(rest));
            return -1;
        }
        anvil_template_ref ref;
        if (parse_ref(p + 2, (size_t)(close - p - 2), (size_t)(p - tmpl), &ref, err, errlen) != 0)
            return -1;
        if (mode == ANVIL_TEMPLATE_SHELL) {
            const char *why = sh_unsafe(&sh);
            if (why) {
                anvil_errbuf_set(err, errlen, "'${%.*s%s}' cannot be quoted safely for the shell %s",
                        show_len(ref.expr_len), ref.expr, show_more(ref.expr_len), why);
                return -1;
            }
        }
        if (on_ref && on_ref(ctx, &ref, sh.q) != 0)
            return -1;
        /* What follows an inserted value continues the word it ended. */
        sh.prev = '\'';
        p = close + 1;
        run = p;
    }
    if (lit && p > run && lit(ctx, run, (size_t)(p - run)) != 0)
        return -1;
    return 0;
}

typedef struct scan_ctx {
    anvil_template_ref_fn fn;
    void *ctx;
} scan_ctx;

static int scan_ref(void *ctx, const anvil_template_ref *ref, sh_quote q)
{
    (void)q;
    scan_ctx *s = ctx;
    if (s->fn)
        s->fn(s->ctx, ref);
    return 0;
}

int anvil_template_scan(const char *tmpl, anvil_template_mode mode, anvil_template_ref_fn fn,
                        void *ctx, char *err, size_t errlen)
{
    if (!tmpl) {
        anvil_errbuf_set(err, errlen, "no template");
        return -1;
    }
    scan_ctx s = {fn, ctx};
    return walk(tmpl, mode, NULL, scan_ref, &s, err, errlen);
}

/* ---- resolving ----------------------------------------------------------- */

static const cJSON *lookup(const cJSON *v, const char *seg, size_t n)
{
    if (cJSON_IsObject(v)) {
        for (const cJSON *c = v->child; c; c = c->next)
            if (c->string && strlen(c->string) == n && !memcmp(c->string, seg, n))
                return c;
        return NULL;
    }
    if (cJSON_IsArray(v) && n <= 9) {
        int idx = 0;
        for (size_t i = 0; i < n; i++) {
            if (seg[i] < '0' || seg[i] > '9')
                return NULL;
            idx = idx * 10 + (seg[i] - '0');
        }
        return cJSON_GetArrayItem(v, idx);
    }
    return NULL;
}

static const cJSON *resolve(const anvil_template_ref *ref, const cJSON *input,
                            const cJSON *outputs, char *err, size_t errlen)
{
    const cJSON *v = ref->root == ANVIL_TEMPLATE_INPUT ? input : outputs;
    const char *p = ref->path, *end = ref->path + ref->path_len;
    while (v && p < end) {
        const char *dot = memchr(p, '.', (size_t)(end - p));
        const char *seg_end = dot ? dot : end;
        v = lookup(v, p, (size_t)(seg_end - p));
        p = dot ? dot + 1 : end;
    }
    if (!v)
        anvil_errbuf_set(err, errlen, "%.*s%s is not set", show_len(ref->expr_len), ref->expr,
                show_more(ref->expr_len));
    return v;
}

/* ---- expanding into text ------------------------------------------------- */

typedef struct expand_ctx {
    char *s;
    size_t len, cap, limit;
    anvil_template_mode mode;
    const cJSON *input, *outputs;
    char *err;
    size_t errlen;
} expand_ctx;

static int put(expand_ctx *e, const char *s, size_t n)
{
    if (n > e->limit - e->len) {
        /* Name the overall bound: limit may be what is left of it. */
        anvil_errbuf_set(e->err, e->errlen, "expansion is larger than %zu bytes",
                (size_t)ANVIL_TEMPLATE_MAX_BYTES);
        return -1;
    }
    if (e->len + n + 1 > e->cap) {
        size_t cap = e->cap ? e->cap : 64;
        while (cap < e->len + n + 1)
            cap *= 2;
        char *s2 = realloc(e->s, cap);
        if (!s2) {
            anvil_errbuf_set(e->err, e->errlen, "out of memory expanding a template");
            return -1;
        }
        e->s = s2;
        e->cap = cap;
    }
    memcpy(e->s + e->len, s, n);
    e->len += n;
    e->s[e->len] = '\0';
    return 0;
}

static int put_lit(void *ctx, const char *s, size_t n) { return put(ctx, s, n); }

/* s as the inside of a '...' shell string: each ' becomes '\'' . */
static int put_single_quoted_body(expand_ctx *e, const char *s)
{
    for (const char *p = s; *p;) {
        const char *q = strchr(p, '\'');
        size_t n = q ? (size_t)(q - p) : strlen(p);
        if (put(e, p, n) != 0 || (q && put(e, "'\\''", 4) != 0))
            return -1;
        p = q ? q + 1 : p + n;
    }
    return 0;
}

static int put_value(expand_ctx *e, const char *text, sh_quote q)
{
    if (e->mode == ANVIL_TEMPLATE_TEXT)
        return put(e, text, strlen(text));
    switch (q) {
    case SH_SINGLE:
        return put_single_quoted_body(e, text);
    case SH_DOUBLE:   /* "abc ${x}" -> "abc "'x'"" */
        return put(e, "\"'", 2) || put_single_quoted_body(e, text) || put(e, "'\"", 2) ? -1 : 0;
    case SH_PLAIN:
    default:
        return put(e, "'", 1) || put_single_quoted_body(e, text) || put(e, "'", 1) ? -1 : 0;
    }
}

static int put_ref(void *ctx, const anvil_template_ref *ref, sh_quote q)
{
    expand_ctx *e = ctx;
    const cJSON *v = resolve(ref, e->input, e->outputs, e->err, e->errlen);
    if (!v)
        return -1;
    if (cJSON_IsString(v))
        return put_value(e, v->valuestring, q);
    char *text = cJSON_PrintUnformatted(v);
    if (!text) {
        anvil_errbuf_set(e->err, e->errlen, "out of memory expanding a template");
        return -1;
    }
    int rc = put_value(e, text, q);
    cJSON_free(text);
    return rc;
}

static char *expand_limited(const char *tmpl, anvil_template_mode mode, const cJSON *input,
                            const cJSON *outputs, size_t limit, char *err, size_t errlen)
{
    if (!tmpl) {
        anvil_errbuf_set(err, errlen, "no template");
        return NULL;
    }
    expand_ctx e = {.limit = limit, .mode = mode, .input = input, .outputs = outputs,
                    .err = err, .errlen = errlen};
    if (put(&e, "", 0) != 0 || walk(tmpl, mode, put_lit, put_ref, &e, err, errlen) != 0) {
        free(e.s);
        return NULL;
    }
    return e.s;
}

char *anvil_template_expand(const char *tmpl, anvil_template_mode mode,
                            const cJSON *input, const cJSON *outputs,
                            char *err, size_t errlen)
{
    return expand_limited(tmpl, mode, input, outputs, ANVIL_TEMPLATE_MAX_BYTES, err, errlen);
}

/* ---- expanding JSON ------------------------------------------------------ */

/* Rough bytes a value adds to a tree; stops counting past cap. */
static size_t json_size(const cJSON *v, size_t cap)
{
    size_t n = 16 + (v->string ? strlen(v->string) : 0) +
               (cJSON_IsString(v) && v->valuestring ? strlen(v->valuestring) : 0);
    for (const cJSON *c = v->child; c && n <= cap; c = c->next)
        n += json_size(c, cap - n);
    return n;
}

/* A string that is exactly one reference keeps the referenced value's type. */
static bool single_ref(const char *s, anvil_template_ref *ref)
{
    if (s[0] != '$' || s[1] != '{')
        return false;
    const char *close = strchr(s + 2, '}');
    return close && !close[1] && parse_ref(s + 2, (size_t)(close - s - 2), 0, ref, NULL, 0) == 0;
}

static bool spend(size_t *left, size_t n, char *err, size_t errlen)
{
    if (n > *left) {
        anvil_errbuf_set(err, errlen, "expansion is larger than %zu bytes", (size_t)ANVIL_TEMPLATE_MAX_BYTES);
        return false;
    }
    *left -= n;
    return true;
}

static cJSON *expand_node(const cJSON *t, const cJSON *input, const cJSON *outputs,
                          size_t *left, char *err, size_t errlen)
{
    anvil_template_ref ref;
    if (cJSON_IsString(t) && t->valuestring && single_ref(t->valuestring, &ref)) {
        const cJSON *v = resolve(&ref, input, outputs, err, errlen);
        if (!v || !spend(left, json_size(v, *left), err, errlen))
            return NULL;
        cJSON *copy = cJSON_Duplicate(v, 1);
        if (!copy)
            anvil_errbuf_set(err, errlen, "out of memory expanding a template");
        return copy;
    }
    if (cJSON_IsString(t) && t->valuestring) {
        char *s = expand_limited(t->valuestring, ANVIL_TEMPLATE_TEXT, input, outputs, *left,
                                 err, errlen);
        if (!s || !spend(left, strlen(s), err, errlen)) {
            free(s);
            return NULL;
        }
        cJSON *str = cJSON_CreateString(s);
        free(s);
        if (!str)
            anvil_errbuf_set(err, errlen, "out of memory expanding a template");
        return str;
    }
    if (!spend(left, 16, err, errlen))
        return NULL;
    if (!cJSON_IsArray(t) && !cJSON_IsObject(t)) {
        cJSON *copy = cJSON_Duplicate(t, 0);
        if (!copy)
            anvil_errbuf_set(err, errlen, "out of memory expanding a template");
        return copy;
    }
    cJSON *out = cJSON_IsArray(t) ? cJSON_CreateArray() : cJSON_CreateObject();
    if (!out) {
        anvil_errbuf_set(err, errlen, "out of memory expanding a template");
        return NULL;
    }
    for (const cJSON *c = t->child; c; c = c->next) {
        cJSON *item = expand_node(c, input, outputs, left, err, errlen);
        if (!item) {
            cJSON_Delete(out);
            return NULL;
        }
        bool ok = cJSON_IsArray(t) ? cJSON_AddItemToArray(out, item)
                                   : c->string && cJSON_AddItemToObject(out, c->string, item);
        if (!ok) {
            cJSON_Delete(item);
            cJSON_Delete(out);
            anvil_errbuf_set(err, errlen, "out of memory expanding a template");
            return NULL;
        }
    }
    return out;
}

cJSON *anvil_template_expand_json(const cJSON *tmpl, const cJSON *input,
                                  const cJSON *outputs, char *err, size_t errlen)
{
    if (!tmpl) {
        anvil_errbuf_set(err, errlen, "no template");
        return NULL;
    }
    size_t left = ANVIL_TEMPLATE_MAX_BYTES;
    return expand_node(tmpl, input, outputs, &left, err, errlen);
}
