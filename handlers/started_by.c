/*
 * handlers/started_by.c — launch provenance (RunStartedBy): normalising what
 * launchRun was sent, and reading back what a run recorded (started_by.h).
 *
 * The normalisation is the upstream client's (its protocol types say
 * harness and sessionId are trimmed, prompt visibly clipped at 8,192 code
 * points, detected only literal true), so a run launched through Anvil
 * shows the provenance the upstream would have shown. The recorded JSON is
 * the generated codec's encoding of the normalised struct, and reading it
 * back goes through the same codec: no member is parsed by hand.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "schema.h"
#include "started_by.h"

#define DETECTED_PATH "$.params.options.startedBy.detected"

/* The code point that starts at s (n > 0 bytes left), its byte length in
 * *len. Malformed or truncated UTF-8 reads as one U+FFFD byte, which is
 * not whitespace, so trimming stops there rather than splitting a
 * sequence. */
static uint32_t utf8_at(const unsigned char *s, size_t n, size_t *len)
{
    uint32_t c = s[0];
    size_t need = c < 0x80 ? 1 : (c & 0xE0) == 0xC0 ? 2 : (c & 0xF0) == 0xE0 ? 3
                : (c & 0xF8) == 0xF0 ? 4 : 0;
    *len = 1;
    if (need == 0 || need > n)
        return 0xFFFD;
    if (need == 1)
        return c;
    c &= 0x7Fu >> need;
    for (size_t i = 1; i < need; i++) {
        if ((s[i] & 0xC0) != 0x80)
            return 0xFFFD;
        c = (c << 6) | (s[i] & 0x3Fu);
    }
    *len = need;
    return c;
}

/* What JavaScript's trim() removes: WhiteSpace and LineTerminator. */
static bool js_space(uint32_t c)
{
    switch (c) {
    case 0x09: case 0x0A: case 0x0B: case 0x0C: case 0x0D: case 0x20: case 0xA0:
    case 0x1680: case 0x2028: case 0x2029: case 0x202F: case 0x205F: case 0x3000:
    case 0xFEFF:
        return true;
    default:
        return c >= 0x2000 && c <= 0x200A;
    }
}

/* A copy of s without surrounding whitespace, or NULL when nothing is left
 * (or memory ran out: then *oom is set). */
static char *trimmed(const char *s, bool *oom)
{
    const unsigned char *b = (const unsigned char *)s, *e = b + strlen(s);
    size_t len;
    while (b < e && js_space(utf8_at(b, (size_t)(e - b), &len)))
        b += len;
    while (e > b) {
        const unsigned char *p = e - 1;
        while (p > b && (*p & 0xC0) == 0x80 && e - p < 4)
            p--;
        if (!js_space(utf8_at(p, (size_t)(e - p), &len)) || p + len != e)
            break;
        e = p;
    }
    if (b == e)
        return NULL;
    char *d = strndup((const char *)b, (size_t)(e - b));
    if (!d)
        *oom = true;
    return d;
}

/* A copy of s with at most ANVIL_STARTED_BY_PROMPT_MAX code points: a
 * longer one keeps one fewer and ends in U+2026 HORIZONTAL ELLIPSIS, so a
 * reader can tell it was cut. NULL with *oom set when memory runs out. */
static char *clipped(const char *s, bool *oom)
{
    size_t n = 0, cut = 0, i = 0;
    for (; s[i]; i++) {
        if (((unsigned char)s[i] & 0xC0) == 0x80)
            continue;               /* inside a code point */
        if (n == ANVIL_STARTED_BY_PROMPT_MAX - 1)
            cut = i;
        if (++n > ANVIL_STARTED_BY_PROMPT_MAX)
            break;
    }
    bool clip = n > ANVIL_STARTED_BY_PROMPT_MAX;
    size_t keep = clip ? cut : i;
    char *d = malloc(keep + (clip ? 3 : 0) + 1);
    if (!d) {
        *oom = true;
        return NULL;
    }
    memcpy(d, s, keep);
    if (clip)
        memcpy(d + keep, "\xE2\x80\xA6", 3);
    d[keep + (clip ? 3 : 0)] = '\0';
    return d;
}

int anvil_started_by_normalize(anvil_call *call, const anvil_run_started_by *in, cJSON **out)
{
    *out = NULL;
    bool oom = false;
    anvil_run_started_by n = {
        .harness = in->harness ? trimmed(in->harness, &oom) : NULL,
        .session_id = in->session_id ? trimmed(in->session_id, &oom) : NULL,
        .prompt = in->prompt ? clipped(in->prompt, &oom) : NULL,
        .has_detected = in->has_detected,
        .detected = in->detected,
    };
    int rc = 0;
    if (oom) {
        rc = anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "out of memory");
    } else if (n.has_detected && !n.harness && !n.session_id) {
        /* "detected" qualifies an inferred harness or session; alone it
         * would claim a detection of nothing. */
        anvil_error_set(&call->err, ANVIL_ERR_INVALID_REQUEST,
                        DETECTED_PATH ": detected needs a non-blank harness or sessionId");
        anvil_error_detail_str(&call->err, "path", DETECTED_PATH);
        rc = -1;
    } else if (n.harness || n.session_id || n.prompt) {
        anvil_schema_error se;
        *out = anvil_schema_encode(&anvil_schema_run_started_by, &n, &se);
        if (!*out)
            rc = anvil_error_set(&call->err, ANVIL_ERR_INTERNAL, "startedBy: %s: %s", se.path,
                                 se.message);
    }
    anvil_schema_free(&anvil_schema_run_started_by, &n);
    return rc;
}

int anvil_started_by_view(anvil_call *call, const char *run_id, const char *json,
                          anvil_run_started_by *out, bool *has)
{
    *has = false;
    if (!json)
        return 0;
    cJSON *j = cJSON_Parse(json);
    anvil_schema_error se = { .message = "not JSON" };
    int rc = j ? anvil_schema_decode(&anvil_schema_run_started_by, j, out, "$.startedBy", &se) : -1;
    cJSON_Delete(j);
    if (rc != 0)
        return anvil_error_set(&call->err, ANVIL_ERR_INTERNAL,
                               "run %s: its recorded startedBy is not readable: %s", run_id,
                               se.message);
    *has = true;
    return 0;
}
