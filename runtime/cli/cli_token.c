/*
 * runtime/cli/cli_token.c — `anvil token issue` and `anvil token revoke`.
 *
 * Owns the commands' flags, token generation and what they print. A new
 * token is 32 bytes from OpenSSL's RAND_bytes as "anvil_" + 64 hex digits;
 * only its sha256 reaches the database (store_tokens.c), and the token
 * itself is printed once, alone on stdout, so `$(anvil token issue ...)`
 * captures exactly the secret while the details go to stderr.
 *
 * The database is --db, else the `database` of the config (--config, or
 * ./anvil.yaml when present), else ./anvil.db.
 */
#include "anvil_contract.h"
#include "cli_token.h"
#include "scope.h"

#include <openssl/crypto.h>
#include <openssl/rand.h>
#include <stdbool.h>
#include <stddef.h>
#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>
#include <time.h>
#include <unistd.h>

#include "auth.h"
#include "config.h"
#include "store.h"

static const char USAGE[] =
    "usage: anvil token issue --role R --scopes a,b [--user U] [--ttl 24h]\n"
    "                         [--token-id ID] [--config FILE] [--db FILE]\n"
    "       anvil token revoke TOKEN_ID [--config FILE] [--db FILE]\n";

typedef struct token_opts {
    const char *role, *scopes, *user, *ttl, *token_id, *config, *db;
    const char *positional[2];
    int n_positional;
} token_opts;

static const struct {
    const char *name;
    size_t offset;
    bool issue_only;
} FLAGS[] = {
    {"role", offsetof(token_opts, role), true},
    {"scopes", offsetof(token_opts, scopes), true},
    {"user", offsetof(token_opts, user), true},
    {"ttl", offsetof(token_opts, ttl), true},
    {"token-id", offsetof(token_opts, token_id), true},
    {"config", offsetof(token_opts, config), false},
    {"db", offsetof(token_opts, db), false},
};

__attribute__((format(printf, 2, 3)))
static int usage_error(const char *cmd, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "anvil token %s: ", cmd);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", USAGE);
    return 2;
}

/* "--flag value" and "--flag=value"; "--" ends the flags. Returns 0 or an
 * exit status (2) after naming the bad flag. */
static int parse_args(int argc, char **argv, bool issue, token_opts *o)
{
    const char *cmd = argv[0];
    bool flags_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (flags_done || a[0] != '-' || !a[1]) {
            if (o->n_positional == 2)
                return usage_error(cmd, "unexpected argument %s", a);
            o->positional[o->n_positional++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            flags_done = true;
            continue;
        }
        if (a[1] != '-')
            return usage_error(cmd, "unknown option %s (options are --long-form)", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        size_t f = 0, n_flags = sizeof FLAGS / sizeof FLAGS[0];
        while (f < n_flags && !(strlen(FLAGS[f].name) == len && !strncmp(FLAGS[f].name, name, len)))
            f++;
        if (f == n_flags || (FLAGS[f].issue_only && !issue))
            return usage_error(cmd, "unknown option %s", a);
        const char **slot = (const char **)((char *)o + FLAGS[f].offset);
        if (*slot)
            return usage_error(cmd, "--%s given more than once", FLAGS[f].name);
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return usage_error(cmd, "--%s needs a value", FLAGS[f].name);
        *slot = value;
    }
    return 0;
}

static int64_t now_ms(void)
{
    struct timespec ts;
    clock_gettime(CLOCK_REALTIME, &ts);
    return (int64_t)ts.tv_sec * 1000 + ts.tv_nsec / 1000000;
}

static void format_time(int64_t ms, char out[32])
{
    time_t t = (time_t)(ms / 1000);
    struct tm tm;
    if (!gmtime_r(&t, &tm) || !strftime(out, 32, "%Y-%m-%dT%H:%M:%SZ", &tm))
        snprintf(out, 32, "@%lld ms", (long long)ms);
}

/*
 * The config is read when named, or when ./anvil.yaml exists and no --db
 * overrides it. A config with problems is refused: its database path (and
 * its token list, for revoke) cannot be trusted.
 */
static int load_context(const token_opts *o, anvil_config *cfg, bool *have_cfg, char **db)
{
    const char *file = o->config;
    if (!file && !o->db && access("anvil.yaml", F_OK) == 0)
        file = "anvil.yaml";
    *have_cfg = false;
    if (file) {
        anvil_diags diags = {0};
        if (anvil_config_load(file, cfg, &diags) != 0) {
            anvil_diags_print(&diags, stderr);
            fprintf(stderr, "anvil token: %s has problems; fix it or pass --db\n", file);
            anvil_diags_clear(&diags);
            anvil_config_clear(cfg);
            return 1;
        }
        anvil_diags_clear(&diags);
        *have_cfg = true;
    }
    const char *path = o->db ? o->db : *have_cfg ? cfg->database : "anvil.db";
    if (!(*db = strdup(path))) {
        fprintf(stderr, "anvil token: out of memory\n");
        if (*have_cfg)
            anvil_config_clear(cfg);
        return 1;
    }
    return 0;
}

/* Ids show up in hello payloads and logs: keep them short and printable. */
static bool valid_token_id(const char *s)
{
    size_t n = strlen(s);
    if (n < 1 || n > 128)
        return false;
    for (; *s; s++)
        if ((unsigned char)*s <= ' ' || (unsigned char)*s >= 0x7f)
            return false;
    return true;
}

static int generate_token(char out[6 + 64 + 1])
{
    unsigned char raw[32];
    if (RAND_bytes(raw, sizeof raw) != 1)
        return -1;
    memcpy(out, "anvil_", 6);
    for (size_t i = 0; i < sizeof raw; i++)
        snprintf(out + 6 + 2 * i, 3, "%02x", raw[i]);
    OPENSSL_cleanse(raw, sizeof raw);
    return 0;
}

static int run_issue(const token_opts *o)
{
    if (o->n_positional)
        return usage_error("issue", "unexpected argument %s", o->positional[0]);
    if (!o->role || !*o->role)
        return usage_error("issue", "%s", o->role ? "--role is empty" : "--role is required");
    if (!o->scopes)
        return usage_error("issue", "%s", "--scopes is required");
    if (o->user && !*o->user)
        return usage_error("issue", "%s", "--user is empty");
    if (o->token_id && !valid_token_id(o->token_id))
        return usage_error("issue", "--token-id \"%s\": use 1-128 printable characters, no spaces",
                           o->token_id);
    int64_t ttl = 0, now = now_ms();
    /* A bare number would be milliseconds (--ttl 24 = 24 ms): insist on a unit. */
    if (o->ttl && o->ttl[0] && o->ttl[strspn(o->ttl, "0123456789")] == '\0')
        return usage_error("issue", "--ttl %s: give a unit, e.g. %ss, %sm or %sh", o->ttl, o->ttl,
                           o->ttl, o->ttl);
    if (o->ttl && (anvil_parse_duration_ms(o->ttl, &ttl) != 0 || ttl <= 0))
        return usage_error("issue", "--ttl %s: expected a duration like 30m, 24h or 7d", o->ttl);
    if (o->ttl && ttl > INT64_MAX - now)
        return usage_error("issue", "--ttl %s: too large", o->ttl);

    anvil_token_grant g = {.role = (char *)o->role, .user_id = (char *)o->user,
                           .has_expires_at = o->ttl != NULL, .expires_at_ms = now + ttl};
    if (anvil_split_scopes(o->scopes, &g.scopes, &g.n_scopes) != 0) {
        fprintf(stderr, "anvil token issue: out of memory\n");
        return 1;
    }
    if (g.n_scopes == 0) {
        anvil_strv_free(g.scopes, g.n_scopes);
        return usage_error("issue", "%s", "--scopes is empty (give e.g. --scopes run:read,run:write)");
    }
    for (size_t i = 0; i < g.n_scopes; i++) {
        if (!anvil_scope_grant_known(&anvil_scopes, g.scopes[i])) {
            int urc = usage_error("issue", "--scopes: unknown scope \"%s\" (use a scope such as "
                                  "run:read, a legacy grant such as execute, a method name, "
                                  "\"prefix.*\" or \"*\")", g.scopes[i]);
            anvil_strv_free(g.scopes, g.n_scopes);
            return urc;
        }
    }

    anvil_config cfg;
    bool have_cfg;
    char *db = NULL, token[6 + 64 + 1], sha[65], default_id[17], err[256];
    int rc = load_context(o, &cfg, &have_cfg, &db);
    if (rc == 0 && generate_token(token) != 0) {
        fprintf(stderr, "anvil token issue: OpenSSL RAND_bytes failed\n");
        rc = 1;
    }
    anvil_store *s = NULL;
    if (rc == 0 && anvil_store_open(db, &s, err, sizeof err) != 0) {
        fprintf(stderr, "anvil token issue: %s\n", err);
        rc = 1;
    }
    if (rc == 0) {
        anvil_sha256_hex(token, strlen(token), sha);
        anvil_token_default_id(token, default_id);
        g.token_id = o->token_id ? (char *)o->token_id : default_id;
        int64_t revoked_at = 0;
        int rv = anvil_store_token_revoked(s, g.token_id, &revoked_at);
        if (rv != 0) {
            /* A token under a revoked id would be refused from its first use. */
            fprintf(stderr, "anvil token issue: %s\n",
                    rv < 0 ? anvil_store_errmsg(s) : "that token id has been revoked; choose another --token-id");
            rc = 1;
        } else if (anvil_store_token_insert(s, &g, sha, now, err, sizeof err) != 0) {
            fprintf(stderr, "anvil token issue: %s\n", err);
            rc = 1;
        }
    }
    if (rc == 0) {
        printf("%s\n", token);
        fflush(stdout);
        fprintf(stderr, "issued token id %s (stored as a sha256 hash in %s)\n", g.token_id, db);
        fprintf(stderr, "  role:    %s\n  scopes:  ", g.role);
        for (size_t i = 0; i < g.n_scopes; i++)
            fprintf(stderr, "%s%s", i ? ", " : "", g.scopes[i]);
        if (g.user_id)
            fprintf(stderr, "\n  user:    %s", g.user_id);
        char when[32];
        format_time(g.expires_at_ms, when);
        fprintf(stderr, "\n  expires: %s\n", g.has_expires_at ? when : "never");
        fprintf(stderr, "The token is shown only once; anvil keeps only its hash.\n");
    }
    OPENSSL_cleanse(token, sizeof token);
    anvil_store_close(s);
    anvil_strv_free(g.scopes, g.n_scopes);
    free(db);
    if (have_cfg)
        anvil_config_clear(&cfg);
    return rc;
}

static bool configured_id(const anvil_config *cfg, const char *id)
{
    for (size_t i = 0; i < cfg->auth.n_tokens; i++) {
        const anvil_token_grant *t = &cfg->auth.tokens[i];
        char def[17];
        if (!t->token_id && t->token)
            anvil_token_default_id(t->token, def);
        if (!strcmp(t->token_id ? t->token_id : def, id))
            return true;
    }
    return false;
}

static int run_revoke(const token_opts *o)
{
    if (o->n_positional != 1)
        return usage_error("revoke", "%s", o->n_positional ? "expected one TOKEN_ID"
                                                            : "missing TOKEN_ID");
    const char *id = o->positional[0];
    if (!valid_token_id(id))
        return usage_error("revoke", "\"%s\" is not a valid token id", id);
    anvil_config cfg;
    bool have_cfg;
    char *db = NULL, err[256];
    int rc = load_context(o, &cfg, &have_cfg, &db);
    anvil_store *s = NULL;
    if (rc == 0 && anvil_store_open(db, &s, err, sizeof err) != 0) {
        fprintf(stderr, "anvil token revoke: %s\n", err);
        rc = 1;
    }
    int64_t before = 0, now = now_ms();
    int already = rc == 0 ? anvil_store_token_revoked(s, id, &before) : 0;
    if (already < 0) {
        fprintf(stderr, "anvil token revoke: %s\n", anvil_store_errmsg(s));
        rc = 1;
    }
    bool issued = false;
    if (rc == 0 && anvil_store_token_revoke(s, id, now, &issued, err, sizeof err) != 0) {
        fprintf(stderr, "anvil token revoke: %s\n", err);
        rc = 1;
    }
    if (rc == 0) {
        bool configured = have_cfg && configured_id(&cfg, id);
        const char *what = issued && configured ? "issued and configured token"
                         : issued ? "issued token"
                         : configured ? "configured token" : NULL;
        char when[32];
        if (already) {
            format_time(before, when);
            printf("token id %s was already revoked at %s; nothing changed\n", id, when);
        } else if (what) {
            printf("revoked %s %s in %s\n", what, id, db);
        } else {
            printf("recorded revocation of token id %s in %s; no issued or configured "
                   "token has this id yet\n", id, db);
        }
    }
    anvil_store_close(s);
    free(db);
    if (have_cfg)
        anvil_config_clear(&cfg);
    return rc;
}

int anvil_cli_token(int argc, char **argv)
{
    if (argc < 1 || !argv[0]) {
        fputs(USAGE, stderr);
        return 2;
    }
    if (!strcmp(argv[0], "-h") || !strcmp(argv[0], "--help") || !strcmp(argv[0], "help")) {
        fputs(USAGE, stdout);
        return 0;
    }
    bool is_issue = !strcmp(argv[0], "issue");
    if (!is_issue && strcmp(argv[0], "revoke") != 0) {
        fprintf(stderr, "anvil token: unknown subcommand %s\n%s", argv[0], USAGE);
        return 2;
    }
    for (int i = 1; i < argc; i++) {
        if (!strcmp(argv[i], "-h") || !strcmp(argv[i], "--help")) {
            fputs(USAGE, stdout);
            return 0;
        }
    }
    token_opts o = {0};
    int rc = parse_args(argc, argv, is_issue, &o);
    if (rc != 0)
        return rc;
    return is_issue ? run_issue(&o) : run_revoke(&o);
}
