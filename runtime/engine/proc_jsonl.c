/*
 * runtime/engine/proc_jsonl.c — the last-JSON-line tracker of the process module.
 *
 * A task's output row is the last stdout line that parses as a JSON object.
 * Owns the per-child line buffer: only lines whose first non-space byte is
 * '{' are buffered at all, so bulk non-JSON output costs no copying, and
 * lines over the limit are dropped as soon as they cross it.
 */
#include <stdlib.h>
#include <string.h>

#include <cjson/cJSON.h>

#include "proc_internal.h"

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\v' || c == '\f';
}

static void line_reset(anvil_proc_jsonl *j)
{
    j->len = 0;
    j->raw = 0;
    j->started = false;
    j->skip = false;
}

/* Appends a piece of the current line (no '\n' in it). */
static void line_append(anvil_proc_jsonl *j, const char *d, size_t n)
{
    if (j->skip)
        return;
    j->raw += n;
    if (j->raw > j->limit) {
        j->skip = true; /* overlong: never a candidate */
        j->len = 0;
        return;
    }
    if (!j->started) {
        while (n && is_space(*d)) {
            d++;
            n--;
        }
        if (!n)
            return;
        j->started = true;
        if (*d != '{') {
            j->skip = true;
            return;
        }
    }
    if (j->len + n + 1 > j->alloc) {
        size_t na = j->alloc ? j->alloc : 256;
        while (na < j->len + n + 1)
            na *= 2;
        char *nb = realloc(j->line, na);
        if (!nb) { /* out of memory: lose this candidate, not the process */
            j->skip = true;
            return;
        }
        j->line = nb;
        j->alloc = na;
    }
    memcpy(j->line + j->len, d, n);
    j->len += n;
}

void anvil_proc_jsonl_end(anvil_proc_jsonl *j)
{
    if (j->started && !j->skip) {
        size_t n = j->len;
        while (n && is_space(j->line[n - 1])) /* includes the '\r' of CRLF */
            n--;
        /* An embedded NUL would let cJSON accept a prefix of the line. */
        if (n && j->line[n - 1] == '}' && !memchr(j->line, '\0', n)) {
            j->line[n] = '\0';
            /* Require the whole line to be the value: `{"a":1} {"b":2}`
             * ends in '}' but is not one object. */
            cJSON *v = cJSON_ParseWithOpts(j->line, NULL, 1);
            if (v && cJSON_IsObject(v)) {
                char *copy = malloc(n + 1);
                if (copy) {
                    memcpy(copy, j->line, n + 1);
                    free(j->best);
                    j->best = copy;
                }
            }
            cJSON_Delete(v);
        }
    }
    line_reset(j);
}

void anvil_proc_jsonl_feed(anvil_proc_jsonl *j, const char *d, size_t n)
{
    while (n) {
        const char *nl = memchr(d, '\n', n);
        size_t seg = nl ? (size_t)(nl - d) : n;
        line_append(j, d, seg);
        if (!nl)
            break;
        anvil_proc_jsonl_end(j);
        d += seg + 1;
        n -= seg + 1;
    }
}

void anvil_proc_jsonl_free(anvil_proc_jsonl *j)
{
    free(j->line);
    free(j->best);
    j->line = j->best = NULL;
    j->len = j->alloc = 0;
}
