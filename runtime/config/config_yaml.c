/*
 * runtime/config/config_yaml.c — typed readers over a libyaml document for config*.c.
 *
 * Owns: reporting a problem at a node's position, mapping key checks (unknown,
 * duplicate, "did you mean"), scalar readers (string, integer, boolean, list),
 * path resolution against the config directory, and loading a YAML file with
 * syntax errors turned into diagnostics. Knows no config key names.
 *
 * libyaml's document API tags every plain scalar as a string, so types are
 * decided here from the scalar's style and text: integers and booleans must
 * be plain (unquoted) scalars.
 */
#include "config_yaml.h"

#include <ctype.h>
#include <errno.h>
#include <fcntl.h>
#include <math.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <strings.h>
#include <sys/stat.h>
#include <unistd.h>

static int line_of(const yaml_node_t *n) { return n ? (int)n->start_mark.line + 1 : 0; }
static int col_of(const yaml_node_t *n) { return n ? (int)n->start_mark.column + 1 : 0; }

void anvil_cfg_error(anvil_cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
{
    char msg[1024];
    va_list ap;
    va_start(ap, fmt);
    vsnprintf(msg, sizeof msg, fmt, ap);
    va_end(ap);
    anvil_diags_add(c->diags, c->file, line_of(n), col_of(n), "%s", msg);
}

void anvil_cfg_oom(anvil_cfg_ctx *c)
{
    if (!c->oom_reported)
        anvil_diags_add(c->diags, c->file, 0, 0, "out of memory while loading");
    c->oom_reported = true;
}

yaml_node_t *anvil_cfg_node(anvil_cfg_ctx *c, int id)
{
    return yaml_document_get_node(c->doc, id);
}

static bool is_plain(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE &&
           n->data.scalar.style == YAML_PLAIN_SCALAR_STYLE;
}

bool anvil_cfg_is_null(const yaml_node_t *n)
{
    if (!is_plain(n))
        return false;
    const char *v = (const char *)n->data.scalar.value;
    return !*v || !strcmp(v, "~") || !strcmp(v, "null") || !strcmp(v, "Null") ||
           !strcmp(v, "NULL");
}

/* What the user wrote, for "expected X, got Y". Quoting is called out
 * because a quoted number or boolean is a string in YAML. */
const char *anvil_cfg_describe(const yaml_node_t *n, char buf[80])
{
    if (!n || anvil_cfg_is_null(n))
        return "null";
    if (n->type == YAML_SEQUENCE_NODE)
        return "a list";
    if (n->type == YAML_MAPPING_NODE)
        return "a mapping";
    const char *v = (const char *)n->data.scalar.value;
    if (!*v)
        return "an empty string";
    snprintf(buf, 80, "%s\"%.40s%s\"", is_plain(n) ? "" : "the quoted string ", v,
             strlen(v) > 40 ? "..." : "");
    return buf;
}

void anvil_cfg_path(char *out, const char *parent, const char *key)
{
    if (parent && *parent)
        snprintf(out, ANVIL_CFG_PATH_MAX, "%s.%s", parent, key);
    else
        snprintf(out, ANVIL_CFG_PATH_MAX, "%s", key);
}

const char *anvil_cfg_key_display(const char *key, bool redact, char buf[16])
{
    if (!redact || strlen(key) <= 8)
        return key;
    snprintf(buf, 16, "%.4s***", key);
    return buf;
}

static const char *scalar(const yaml_node_t *n)
{
    return n && n->type == YAML_SCALAR_NODE ? (const char *)n->data.scalar.value : NULL;
}

/* Case-insensitive edit distance, so "heartbeatms" suggests "heartbeatMs". */
static size_t distance(const char *a, const char *b)
{
    size_t la = strlen(a), lb = strlen(b);
    if (la > 64 || lb > 64)
        return (size_t)-1;
    size_t row[65];
    for (size_t j = 0; j <= lb; j++)
        row[j] = j;
    for (size_t i = 1; i <= la; i++) {
        size_t diag = row[0];
        row[0] = i;
        for (size_t j = 1; j <= lb; j++) {
            size_t up = row[j];
            size_t cost = tolower((unsigned char)a[i - 1]) != tolower((unsigned char)b[j - 1]);
            size_t best = diag + cost;
            if (up + 1 < best) best = up + 1;
            if (row[j - 1] + 1 < best) best = row[j - 1] + 1;
            row[j] = best;
            diag = up;
        }
    }
    return row[lb];
}

static const char *suggest(const char *key, const char *const *known)
{
    const char *best = NULL;
    size_t best_d = 3;
    for (size_t i = 0; known[i]; i++) {
        size_t d = distance(key, known[i]);
        if (d < best_d && d < strlen(known[i])) {
            best = known[i];
            best_d = d;
        }
    }
    return best;
}

static yaml_node_t *pair_key(anvil_cfg_ctx *c, yaml_node_t *map, size_t i)
{
    return anvil_cfg_node(c, map->data.mapping.pairs.start[i].key);
}

bool anvil_cfg_first_key(anvil_cfg_ctx *c, yaml_node_t *map, size_t i)
{
    const char *k = scalar(pair_key(c, map, i));
    if (!k)
        return false;
    for (size_t j = 0; j < i; j++) {
        const char *o = scalar(pair_key(c, map, j));
        if (o && !strcmp(o, k))
            return false;
    }
    return true;
}

bool anvil_cfg_check_map(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                         const char *const *known, bool redact_keys)
{
    if (!n || n->type != YAML_MAPPING_NODE) {
        char buf[80];
        anvil_cfg_error(c, n, "%s: expected a mapping, got %s", *path ? path : "top level",
                        anvil_cfg_describe(n, buf));
        return false;
    }
    size_t count = (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *k = pair_key(c, n, i);
        const char *key = scalar(k);
        char full[ANVIL_CFG_PATH_MAX], buf[16];
        if (!key || !*key || anvil_cfg_is_null(k)) {
            anvil_cfg_error(c, k, "%s: keys must be non-empty strings", *path ? path : "top level");
            continue;
        }
        anvil_cfg_path(full, path, anvil_cfg_key_display(key, redact_keys, buf));
        if (!anvil_cfg_first_key(c, n, i)) {
            int first = 0;
            for (size_t j = 0; j < i && !first; j++) {
                const char *o = scalar(pair_key(c, n, j));
                if (o && !strcmp(o, key))
                    first = line_of(pair_key(c, n, j));
            }
            anvil_cfg_error(c, k, "%s: duplicate key (first defined at line %d)", full, first);
            continue;
        }
        if (!known)
            continue;
        bool found = false;
        for (size_t j = 0; known[j] && !found; j++)
            found = !strcmp(known[j], key);
        if (!found) {
            const char *s = suggest(key, known);
            if (s)
                anvil_cfg_error(c, k, "%s: unknown key (did you mean '%s'?)", full, s);
            else
                anvil_cfg_error(c, k, "%s: unknown key", full);
        }
    }
    return true;
}

static void join(char *out, size_t len, const char *const *words)
{
    size_t used = 0;
    out[0] = '\0';
    for (size_t i = 0; words[i] && used < len; i++) {
        int n = snprintf(out + used, len - used, "%s%s", i ? ", " : "", words[i]);
        if (n < 0)
            return;
        used += (size_t)n;
    }
}

void anvil_cfg_unknown_keys(anvil_cfg_ctx *c, yaml_node_t *map, const char *path,
                            const char *const *known)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return;
    size_t count = (size_t)(map->data.mapping.pairs.top - map->data.mapping.pairs.start);
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *k = pair_key(c, map, i);
        const char *key = scalar(k);
        if (!key || !*key || anvil_cfg_is_null(k) || !anvil_cfg_first_key(c, map, i))
            continue;   /* reported by anvil_cfg_check_map */
        bool found = false;
        for (size_t j = 0; known[j] && !found; j++)
            found = !strcmp(known[j], key);
        if (!found) {
            char full[ANVIL_CFG_PATH_MAX], allowed[256];
            anvil_cfg_path(full, path, key);
            join(allowed, sizeof allowed, known);
            anvil_cfg_error(c, k, "%s: unknown key (allowed: %s)", full, allowed);
        }
    }
}

yaml_node_t *anvil_cfg_get(anvil_cfg_ctx *c, yaml_node_t *map, const char *key)
{
    if (!map || map->type != YAML_MAPPING_NODE)
        return NULL;
    for (yaml_node_pair_t *p = map->data.mapping.pairs.start;
         p < map->data.mapping.pairs.top; p++) {
        const char *k = scalar(anvil_cfg_node(c, p->key));
        if (k && !strcmp(k, key))
            return anvil_cfg_node(c, p->value);
    }
    return NULL;
}

bool anvil_cfg_set_str(anvil_cfg_ctx *c, char **dst, const char *src)
{
    char *copy = strdup(src);
    if (!copy) {
        anvil_cfg_oom(c);
        return false;
    }
    free(*dst);
    *dst = copy;
    return true;
}

bool anvil_cfg_string(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                      bool allow_empty, char **out)
{
    const char *v = scalar(n);
    char buf[80];
    if (!v || anvil_cfg_is_null(n)) {
        anvil_cfg_error(c, n, "%s: expected a string, got %s", path, anvil_cfg_describe(n, buf));
        return false;
    }
    /* libyaml keeps "\0" escapes; a C string would silently end there. */
    if (strlen(v) != n->data.scalar.length) {
        anvil_cfg_error(c, n, "%s: strings must not contain NUL characters", path);
        return false;
    }
    if (!*v && !allow_empty) {
        anvil_cfg_error(c, n, "%s: must not be empty", path);
        return false;
    }
    return anvil_cfg_set_str(c, out, v);
}

/* YAML 1.2 core schema numbers: [-+]?(digits[.digits]|.digits)([eE][-+]?digits)? */
static bool looks_number(const char *s)
{
    const char *p = s + (*s == '-' || *s == '+');
    bool digits = false;
    while (isdigit((unsigned char)*p))
        p++, digits = true;
    if (*p == '.')
        for (p++; isdigit((unsigned char)*p); p++)
            digits = true;
    if (!digits)
        return false;
    if (*p == 'e' || *p == 'E') {
        p++;
        p += (*p == '-' || *p == '+');
        if (!isdigit((unsigned char)*p))
            return false;
        while (isdigit((unsigned char)*p))
            p++;
    }
    return *p == '\0';
}

static bool is_word(const char *v, const char *lower, const char *title, const char *upper)
{
    return !strcmp(v, lower) || !strcmp(v, title) || !strcmp(v, upper);
}

cJSON *anvil_cfg_scalar_json(anvil_cfg_ctx *c, yaml_node_t *n, const char *path)
{
    const char *v = scalar(n);
    char buf[80];
    if (!v) {
        anvil_cfg_error(c, n, "%s: expected a single value, got %s", path,
                        anvil_cfg_describe(n, buf));
        return NULL;
    }
    if (strlen(v) != n->data.scalar.length) {
        anvil_cfg_error(c, n, "%s: strings must not contain NUL characters", path);
        return NULL;
    }
    cJSON *j;
    if (anvil_cfg_is_null(n)) {
        j = cJSON_CreateNull();
    } else if (is_plain(n) && is_word(v, "true", "True", "TRUE")) {
        j = cJSON_CreateTrue();
    } else if (is_plain(n) && is_word(v, "false", "False", "FALSE")) {
        j = cJSON_CreateFalse();
    } else if (is_plain(n) && looks_number(v)) {
        double d = strtod(v, NULL);
        if (!isfinite(d)) {
            anvil_cfg_error(c, n, "%s: number %.40s is out of range", path, v);
            return NULL;
        }
        j = cJSON_CreateNumber(d);
    } else {
        j = cJSON_CreateString(v);
    }
    if (!j)
        anvil_cfg_oom(c);
    return j;
}

static const char *int_kind(int64_t min)
{
    return min >= 1 ? "a positive integer" : min == 0 ? "a non-negative integer" : "an integer";
}

bool anvil_cfg_int(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                   int64_t min, int64_t max, int64_t *out)
{
    const char *v = is_plain(n) ? scalar(n) : NULL;
    const char *digits = v && *v == '-' ? v + 1 : v;
    bool ok = digits && *digits;
    for (const char *p = digits; ok && *p; p++)
        ok = isdigit((unsigned char)*p);
    if (!ok) {
        char buf[80];
        anvil_cfg_error(c, n, "%s: expected %s, got %s", path, int_kind(min), anvil_cfg_describe(n, buf));
        return false;
    }
    errno = 0;
    long long x = strtoll(v, NULL, 10);
    if (errno == ERANGE || x > max) {
        anvil_cfg_error(c, n, "%s: %.40s is too large (maximum %lld)", path, v, (long long)max);
        return false;
    }
    if (x < min) {
        anvil_cfg_error(c, n, "%s: must be %s, got %lld", path, int_kind(min), x);
        return false;
    }
    *out = x;
    return true;
}

bool anvil_cfg_bool(anvil_cfg_ctx *c, yaml_node_t *n, const char *path, bool *out)
{
    const char *v = is_plain(n) ? scalar(n) : NULL;
    if (v && (!strcmp(v, "true") || !strcmp(v, "True") || !strcmp(v, "TRUE"))) {
        *out = true;
        return true;
    }
    if (v && (!strcmp(v, "false") || !strcmp(v, "False") || !strcmp(v, "FALSE"))) {
        *out = false;
        return true;
    }
    char buf[80];
    anvil_cfg_error(c, n, "%s: expected true or false, got %s", path, anvil_cfg_describe(n, buf));
    return false;
}

static void free_strv(char **v, size_t n)
{
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

bool anvil_cfg_strlist(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                       char ***out, size_t *n_out)
{
    size_t count = 0;
    char buf[80];
    if (n && n->type == YAML_SEQUENCE_NODE)
        count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
    else if (!anvil_cfg_is_null(n)) {
        anvil_cfg_error(c, n, "%s: expected a list of strings, got %s", path, anvil_cfg_describe(n, buf));
        return false;
    }
    char **v = calloc(count ? count : 1, sizeof *v);
    if (!v) {
        anvil_cfg_oom(c);
        return false;
    }
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *item = anvil_cfg_node(c, n->data.sequence.items.start[i]);
        const char *s = scalar(item);
        if (!s || anvil_cfg_is_null(item) || !*s) {
            anvil_cfg_error(c, item, "%s[%zu]: expected a non-empty string, got %s", path, i,
                            anvil_cfg_describe(item, buf));
            ok = false;
        } else if (ok && !(v[i] = strdup(s))) {
            anvil_cfg_oom(c);
            ok = false;
        }
    }
    if (!ok) {
        free_strv(v, count);
        return false;
    }
    free_strv(*out, *n_out);
    *out = v;
    *n_out = count;
    return true;
}

/* The WebSocket check compares the Origin header byte for byte, so a trailing
 * slash or path would never match; catch that here. */
static bool valid_origin(const char *o)
{
    const char *sep = strstr(o, "://");
    if (!sep || sep == o)
        return false;
    for (const char *q = o; q < sep; q++)
        if (!isalnum((unsigned char)*q) && *q != '+' && *q != '-' && *q != '.')
            return false;
    const char *host = sep + 3;
    if (!*host)
        return false;
    for (const char *q = host; *q; q++)
        if (*q == '/' || *q == '?' || *q == '#' || *q == '@' || isspace((unsigned char)*q))
            return false;
    return true;
}

bool anvil_cfg_origins(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                       char ***out, size_t *n_out)
{
    char **v = NULL;
    size_t count = 0;
    if (!anvil_cfg_strlist(c, n, path, &v, &count))
        return false;
    bool ok = true;
    for (size_t i = 0; i < count; i++) {
        if (!valid_origin(v[i])) {
            anvil_cfg_error(c, anvil_cfg_node(c, n->data.sequence.items.start[i]),
                            "%s[%zu]: expected an origin like https://example.com "
                            "(scheme://host[:port], no path), got \"%.80s\"", path, i, v[i]);
            ok = false;
        }
    }
    if (ok) {
        for (size_t i = 0; i < *n_out; i++)
            free((*out)[i]);
        free(*out);
        *out = v;
        *n_out = count;
        return true;
    }
    free_strv(v, count);
    return false;
}

bool anvil_cfg_url_path(anvil_cfg_ctx *c, yaml_node_t *n, const char *path, char **out)
{
    char *tmp = NULL;
    if (!anvil_cfg_string(c, n, path, false, &tmp))
        return false;
    if (tmp[0] != '/' || strpbrk(tmp, " \t?#")) {
        anvil_cfg_error(c, n, "%s: expected a URL path starting with '/', got \"%.60s\"", path, tmp);
        free(tmp);
        return false;
    }
    free(*out);
    *out = tmp;
    return true;
}

char *anvil_cfg_resolve(const anvil_cfg_ctx *c, const char *p)
{
    if (!c->dir || p[0] == '/' || !strcmp(p, ":memory:"))
        return strdup(p);
    size_t ld = strlen(c->dir), lp = strlen(p);
    bool slash = ld && c->dir[ld - 1] == '/';
    char *out = malloc(ld + lp + 2);
    if (out)
        sprintf(out, "%s%s%s", c->dir, slash ? "" : "/", p);
    return out;
}

static void report_parser(anvil_diags *d, const char *file, const char *what,
                          const yaml_parser_t *p)
{
    const char *sep = what ? ": " : "";
    what = what ? what : "";
    if (p->error == YAML_MEMORY_ERROR) {
        anvil_diags_add(d, file, 0, 0, "%s%sout of memory while parsing YAML", what, sep);
    } else if (p->error == YAML_READER_ERROR) {
        anvil_diags_add(d, file, 0, 0, "%s%sYAML syntax error: %s (at byte %zu)", what, sep,
                        p->problem ? p->problem : "unreadable input", p->problem_offset);
    } else if (p->context) {
        anvil_diags_add(d, file, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
                        "%s%sYAML syntax error: %s (%s at line %d, column %d)", what, sep,
                        p->problem ? p->problem : "invalid YAML", p->context,
                        (int)p->context_mark.line + 1, (int)p->context_mark.column + 1);
    } else {
        anvil_diags_add(d, file, (int)p->problem_mark.line + 1, (int)p->problem_mark.column + 1,
                        "%s%sYAML syntax error: %s", what, sep,
                        p->problem ? p->problem : "invalid YAML");
    }
}

/* O_NONBLOCK so that opening a FIFO returns at once instead of waiting for
 * a writer; the type and size come from fstat on the opened fd, so what
 * was checked is what is read. */
int anvil_cfg_read_file(const char *file, size_t max_bytes, char **out, size_t *len,
                        char *why, size_t whylen)
{
    *out = NULL;
    *len = 0;
    int fd = open(file, O_RDONLY | O_NONBLOCK | O_CLOEXEC | O_NOCTTY);
    if (fd < 0) {
        snprintf(why, whylen, "%s", strerror(errno));
        return -2;
    }
    struct stat st;
    if (fstat(fd, &st) != 0) {
        snprintf(why, whylen, "cannot stat: %s", strerror(errno));
        close(fd);
        return -1;
    }
    if (!S_ISREG(st.st_mode)) {
        snprintf(why, whylen, "not a regular file (%s)",
                 S_ISDIR(st.st_mode) ? "a directory" : S_ISFIFO(st.st_mode) ? "a FIFO"
                 : S_ISSOCK(st.st_mode) ? "a socket" : "a device or other special file");
        close(fd);
        return -1;
    }
    if ((uint64_t)st.st_size > max_bytes) {
        snprintf(why, whylen, "file is %lld bytes; the limit is %zu", (long long)st.st_size,
                 max_bytes);
        close(fd);
        return -1;
    }
    /* One byte more than allowed, to notice a file that grew since fstat. */
    char *buf = malloc(max_bytes + 2);
    size_t n = 0;
    int rc = buf ? 0 : -1;
    if (!buf)
        snprintf(why, whylen, "out of memory");
    while (rc == 0 && n <= max_bytes) {
        ssize_t r = read(fd, buf + n, max_bytes + 1 - n);
        if (r < 0 && errno == EINTR)
            continue;
        if (r < 0) {
            snprintf(why, whylen, "cannot read: %s", strerror(errno));
            rc = -1;
        } else if (r == 0) {
            break;
        } else {
            n += (size_t)r;
        }
    }
    if (rc == 0 && n > max_bytes) {
        snprintf(why, whylen, "file grew past the limit of %zu bytes while being read", max_bytes);
        rc = -1;
    }
    close(fd);
    if (rc != 0) {
        free(buf);
        return -1;
    }
    buf[n] = '\0';
    *out = buf;
    *len = n;
    return 0;
}

/* libyaml's scanner spends time proportional to the open nesting on every
 * token, so a file of 20,000 nested '[' takes seconds to load. Walk the
 * events first and stop at the first level past the limit: with the depth
 * bounded, both passes are linear in the file. 0, 1 when too deep
 * (reported), -1 on a syntax error (left for the loading pass to report). */
static int check_nesting(anvil_diags *d, const char *file, const char *what,
                         const unsigned char *text, size_t len)
{
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser))
        return -1;
    yaml_parser_set_input_string(&parser, text, len);
    int depth = 0, rc = 0;
    for (;;) {
        yaml_event_t ev;
        if (!yaml_parser_parse(&parser, &ev)) {
            rc = -1;
            break;
        }
        yaml_event_type_t t = ev.type;
        if (t == YAML_SEQUENCE_START_EVENT || t == YAML_MAPPING_START_EVENT) {
            if (++depth > ANVIL_CFG_MAX_NESTING) {
                anvil_diags_add(d, file, (int)ev.start_mark.line + 1, (int)ev.start_mark.column + 1,
                                "%s%snested deeper than %d levels", what ? what : "",
                                what ? ": " : "", ANVIL_CFG_MAX_NESTING);
                rc = 1;
            }
        } else if (t == YAML_SEQUENCE_END_EVENT || t == YAML_MAPPING_END_EVENT) {
            depth--;
        }
        yaml_event_delete(&ev);
        if (rc != 0 || t == YAML_STREAM_END_EVENT)
            break;
    }
    yaml_parser_delete(&parser);
    return rc;
}

int anvil_cfg_load_yaml(anvil_diags *d, const char *file, const char *what, size_t max_bytes,
                        yaml_document_t *doc)
{
    memset(doc, 0, sizeof *doc);
    char *text = NULL, why[160];
    size_t len = 0;
    int read = anvil_cfg_read_file(file, max_bytes, &text, &len, why, sizeof why);
    if (read != 0) {
        anvil_diags_add(d, file, 0, 0, "%s%s%s%s", what ? what : "", what ? ": " : "",
                        read == -2 ? "cannot open: " : "", why);
        return -1;
    }
    int rc = anvil_cfg_parse_yaml(d, file, what, text, len, doc);
    free(text);
    return rc;
}

int anvil_cfg_parse_yaml(anvil_diags *d, const char *file, const char *what, const char *text,
                         size_t len, yaml_document_t *doc)
{
    memset(doc, 0, sizeof *doc);
    if (check_nesting(d, file, what, (const unsigned char *)text, len) == 1)
        return -1;
    yaml_parser_t parser;
    if (!yaml_parser_initialize(&parser)) {
        anvil_diags_add(d, file, 0, 0, "out of memory while parsing YAML");
        return -1;
    }
    yaml_parser_set_input_string(&parser, (const unsigned char *)text, len);
    int rc = 0;
    if (!yaml_parser_load(&parser, doc)) {
        report_parser(d, file, what, &parser);
        rc = -1;
    } else if (yaml_document_get_root_node(doc)) {
        /* A second document would be silently ignored; say so instead. */
        yaml_document_t extra;
        if (!yaml_parser_load(&parser, &extra)) {
            report_parser(d, file, what, &parser);
        } else {
            yaml_node_t *root = yaml_document_get_root_node(&extra);
            if (root)
                anvil_diags_add(d, file, (int)root->start_mark.line + 1,
                                (int)root->start_mark.column + 1,
                                "%s%sonly one YAML document is allowed", what ? what : "",
                                what ? ": " : "");
            yaml_document_delete(&extra);
        }
    }
    yaml_parser_delete(&parser);
    return rc;
}
