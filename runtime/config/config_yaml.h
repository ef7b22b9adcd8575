/*
 * runtime/config/config_yaml.h — the YAML readers shared by the loaders of
 * anvil.yaml (config*.c) and of workflow files (workflow.c); no other layer
 * includes this.
 *
 * The config is checked by walking a libyaml document with small typed
 * readers. Each reader reports its own problem (file:line:col, key path,
 * what was expected) and returns false, so section parsers stay a list of
 * "read this key into that field" lines and every problem is collected.
 */
#ifndef ANVIL_CONFIG_YAML_H
#define ANVIL_CONFIG_YAML_H

#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>
#include <yaml.h>

#include <cjson/cJSON.h>

#include "diag.h"

/* Long enough for any path we build; longer user-supplied names truncate. */
#define ANVIL_CFG_PATH_MAX 256

typedef struct anvil_cfg_ctx {
    yaml_document_t *doc;
    const char *file;         /* config path as shown in diagnostics */
    const char *dir;          /* directory of the config file; NULL = cwd */
    anvil_diags *diags;
    bool oom_reported;
} anvil_cfg_ctx;

/* Report a problem at node n (n may be NULL: no position). */
void anvil_cfg_error(anvil_cfg_ctx *c, const yaml_node_t *n, const char *fmt, ...)
    __attribute__((format(printf, 3, 4)));
/* Report out of memory once per load; later OOMs add nothing new. */
void anvil_cfg_oom(anvil_cfg_ctx *c);

yaml_node_t *anvil_cfg_node(anvil_cfg_ctx *c, int id);
bool anvil_cfg_is_null(const yaml_node_t *n);
/* "parent.key", or "key" when parent is empty. */
void anvil_cfg_path(char *out, const char *parent, const char *key);
/* Token strings are secrets and appear as map keys; show only a prefix. */
const char *anvil_cfg_key_display(const char *key, bool redact, char buf[16]);

/*
 * Check that n is a mapping whose keys are unique non-empty strings and,
 * when known is non-NULL (NULL-terminated), each one of known. Reports every
 * problem; returns false only when n is not a mapping at all.
 */
bool anvil_cfg_check_map(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                         const char *const *known, bool redact_keys);
/* Report each key of a checked mapping that is not in known
 * (NULL-terminated), naming the allowed ones: the workflow files' style,
 * where a short fixed list helps more than a guess. */
void anvil_cfg_unknown_keys(anvil_cfg_ctx *c, yaml_node_t *map, const char *path,
                            const char *const *known);
/* Whether pair i of a checked mapping is the first with its key (later
 * duplicates were already reported and are skipped by callers). */
bool anvil_cfg_first_key(anvil_cfg_ctx *c, yaml_node_t *map, size_t i);
/* Value of key in mapping (first occurrence) or NULL. */
yaml_node_t *anvil_cfg_get(anvil_cfg_ctx *c, yaml_node_t *map, const char *key);

/* Typed readers: on success replace *out (freeing the old value). On a type
 * problem they report it and leave *out alone. */
bool anvil_cfg_string(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                      bool allow_empty, char **out);
bool anvil_cfg_int(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                   int64_t min, int64_t max, int64_t *out);
bool anvil_cfg_bool(anvil_cfg_ctx *c, yaml_node_t *n, const char *path, bool *out);
/* A scalar as JSON, by the YAML 1.2 core schema: plain null, ~ and empty
 * are null; plain true/false (any case style) booleans; plain numbers
 * numbers; everything else, and everything quoted, a string. Reports
 * lists, mappings, NUL characters and numbers out of range under path;
 * NULL then (or on OOM, reported). The caller owns the result. */
cJSON *anvil_cfg_scalar_json(anvil_cfg_ctx *c, yaml_node_t *n, const char *path);
/* A list of non-empty strings; null counts as the empty list. */
bool anvil_cfg_strlist(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                       char ***out, size_t *n_out);
/* A URL path: string starting with '/'. */
bool anvil_cfg_url_path(anvil_cfg_ctx *c, yaml_node_t *n, const char *path, char **out);

/* What the user wrote, for "expected X, got Y": "null", "a list", "a
 * mapping", "an empty string" or the (quoted, when it was quoted) value
 * cut to 40 bytes. Returns buf or a static string. */
const char *anvil_cfg_describe(const yaml_node_t *n, char buf[80]);

/* Replace *dst with a copy of src; false on OOM (reported). */
bool anvil_cfg_set_str(anvil_cfg_ctx *c, char **dst, const char *src);
/* Resolve p against c->dir; absolute paths and ":memory:" are kept. */
char *anvil_cfg_resolve(const anvil_cfg_ctx *c, const char *p);

/* A list of browser origins (scheme://host[:port], no path: the WebSocket
 * check compares the Origin header byte for byte). */
bool anvil_cfg_origins(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                       char ***out, size_t *n_out);

/* Limits of what the loaders read (docs/config.md): a bigger file, or
 * deeper nesting, is a problem reported with its position, not a slow
 * load. */
#define ANVIL_CONFIG_MAX_BYTES (1024 * 1024)      /* anvil.yaml */
#define ANVIL_WORKFLOW_MAX_BYTES (1024 * 1024)    /* each workflow file */
#define ANVIL_CFG_MAX_NESTING 256                 /* lists and mappings inside each other */

/* Read a whole regular file of at most max_bytes into *out (malloc'd,
 * NUL-terminated, the caller frees it) and its length into *len. A FIFO,
 * device or directory is refused without blocking. 0; -2 when it cannot
 * be opened (why is the system's reason, e.g. "No such file or
 * directory"); -1 for anything else, with the whole reason in why ("not a
 * regular file (a FIFO)", "file is N bytes; the limit is M", ...). */
int anvil_cfg_read_file(const char *file, size_t max_bytes, char **out, size_t *len,
                        char *why, size_t whylen);

/* Parse len bytes of YAML read from `file` into doc: nested at most
 * ANVIL_CFG_MAX_NESTING deep, one document. 0, or -1 after reporting. */
int anvil_cfg_parse_yaml(anvil_diags *d, const char *file, const char *what, const char *text,
                         size_t len, yaml_document_t *doc);

/* anvil_cfg_read_file then anvil_cfg_parse_yaml: a regular file (never a FIFO, device or
 * directory: those are reported, not opened for reading) of at most
 * max_bytes, nested at most ANVIL_CFG_MAX_NESTING deep, holding one
 * document. Problems are reported under `what` (a key path, or NULL).
 * Returns 0 (free doc with yaml_document_delete), or -1 after reporting. */
int anvil_cfg_load_yaml(anvil_diags *d, const char *file, const char *what, size_t max_bytes,
                        yaml_document_t *doc);

#endif
