/*
 * tests/unit/test_auth.c — the auth modes of runtime/auth/auth.c.
 *
 * Headers come from a fake accessor, database tokens from a fake store, and
 * the config is built on the heap so anvil_auth_config_clear is checked by
 * the leak sanitizer. Expected digests were computed outside this code with
 * `printf %s TOKEN | sha256sum`.
 */
#include <stdint.h>
#include <stdlib.h>
#include <string.h>

#include "auth.h"
#include "jwt.h"
#include "unit.h"

#define OP_TOKEN "operator-token-123"
#define OP_TOKEN_ID "87da15d130f4d764"   /* sha256sum prefix */
#define DB_TOKEN "db-issued-token-xyz"
#define DB_TOKEN_SHA "50d42744830baf0720cd34dc2b2d9e0fcd27668b9560af4e21993e3201c5e97c"
#define DB_TOKEN_ID "50d42744830baf07"
#define NOW_MS 1800000000000LL
#define NOW_S 1800000000LL

/* Produced with basenc + `openssl dgst -sha256 -hmac outside-secret`; see
 * test_jwt.c. Its token id is the sha256sum prefix of the whole string. */
#define OUTSIDE_TOKEN                                                                \
    "eyJhbGciOiJIUzI1NiIsInR5cCI6IkpXVCJ9."                                          \
    "eyJzdWIiOiJ1c2VyOmFsaWNlIiwiaXNzIjoiYW52aWwtdGVzdCIsImF1ZCI6WyJvdGhlciIsImFu"   \
    "dmlsIl0sInJvbGUiOiJhZG1pbiIsInNjb3BlIjoicnVuOnJlYWQsIGNyb246d3JpdGUiLCJleHAi"   \
    "OjQxMDI0NDQ4MDAsIm5iZiI6MTcwMDAwMDAwMH0."                                       \
    "8uXjan8uuDawahE37fan3f4lvfNjNMoQ67PD-1NTO7I"
#define OUTSIDE_TOKEN_ID "573d471aee6cbfec"

/* ---- fakes ---------------------------------------------------------------- */

typedef struct headers {
    const char *names[8];
    const char *values[8];
    int lookups;
} headers;

static int lower(int c)
{
    return c >= 'A' && c <= 'Z' ? c - 'A' + 'a' : c;
}

static bool name_eq(const char *a, const char *b)
{
    while (*a && *b && lower((unsigned char)*a) == lower((unsigned char)*b)) {
        a++;
        b++;
    }
    return *a == '\0' && *b == '\0';
}

static const char *get_header(void *ctx, const char *name)
{
    headers *h = ctx;
    h->lookups++;
    for (int i = 0; i < 8 && h->names[i]; i++) {
        if (name_eq(h->names[i], name))
            return h->values[i];
    }
    return NULL;
}

static headers hdr1(const char *name, const char *value)
{
    headers h = { { name }, { value }, 0 };
    return h;
}

static char *xstrdup(const char *s)
{
    if (!s)
        return NULL;
    char *p = malloc(strlen(s) + 1);
    if (p)
        strcpy(p, s);
    return p;
}

static char **strv(const char *a, const char *b, size_t *n)
{
    char **v = calloc(2, sizeof *v);
    *n = 0;
    if (a)
        v[(*n)++] = xstrdup(a);
    if (b)
        v[(*n)++] = xstrdup(b);
    return v;
}

typedef struct fake_store {
    int lookup_rc;          /* what lookup returns */
    int lookups;
    char last_sha[65];
    bool grant_expired;
    bool grant_has_id;
    int revoked_rc;         /* what revoked returns */
    int revoked_calls;
    char last_id[64];
    int64_t revoked_at;
} fake_store;

static int fake_lookup(void *ctx, const char *sha256_hex, anvil_token_grant *out)
{
    fake_store *f = ctx;
    f->lookups++;
    snprintf(f->last_sha, sizeof f->last_sha, "%s", sha256_hex);
    if (f->lookup_rc != 1 || strcmp(sha256_hex, DB_TOKEN_SHA) != 0)
        return f->lookup_rc == 1 ? 0 : f->lookup_rc;
    out->role = xstrdup("ci");
    out->user_id = xstrdup("user:ci");
    out->token_id = f->grant_has_id ? xstrdup("db-row-7") : NULL;
    out->scopes = strv("run:write", "cron:read", &out->n_scopes);
    out->has_expires_at = true;
    out->expires_at_ms = f->grant_expired ? NOW_MS - 1 : NOW_MS + 1;
    return 1;
}

static int fake_revoked(void *ctx, const char *token_id, int64_t *revoked_at_ms)
{
    fake_store *f = ctx;
    f->revoked_calls++;
    snprintf(f->last_id, sizeof f->last_id, "%s", token_id);
    if (f->revoked_rc == 1)
        *revoked_at_ms = f->revoked_at;
    return f->revoked_rc;
}

/* ---- helpers -------------------------------------------------------------- */

static anvil_auth_status run(const anvil_auth_config *cfg, const anvil_token_store *store,
                             headers *h, const char *explicit_token, int64_t now_ms,
                             anvil_principal *p, anvil_auth_failure *why)
{
    anvil_auth_request req = { get_header, h, explicit_token };
    anvil_auth_status st = anvil_auth_authenticate(cfg, store, &req, now_ms, p, why);
    if (st != ANVIL_AUTH_OK) {
        /* Failure leaves the principal empty. */
        CHECK(p->role == NULL && p->user_id == NULL && p->token_id == NULL);
        CHECK(p->scopes == NULL && p->n_scopes == 0);
        CHECK(why->message[0] != '\0');
    } else {
        CHECK(p->role != NULL);
    }
    return st;
}

static bool has_scopes(const anvil_principal *p, const char *a, const char *b)
{
    size_t want = (a != NULL) + (b != NULL);
    if (p->n_scopes != want)
        return false;
    if (a && strcmp(p->scopes[0], a) != 0)
        return false;
    if (b && strcmp(p->scopes[1], b) != 0)
        return false;
    return true;
}

/* ---- helpers under test --------------------------------------------------- */

static void test_hashes(void)
{
    char hex[65], id[17];
    anvil_sha256_hex("abc", 3, hex);
    CHECK_STR(hex, "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad");
    anvil_sha256_hex(DB_TOKEN, strlen(DB_TOKEN), hex);
    CHECK_STR(hex, DB_TOKEN_SHA);
    anvil_token_default_id(OP_TOKEN, id);
    CHECK_STR(id, OP_TOKEN_ID);
    anvil_token_default_id(NULL, id);
    CHECK_STR(id, "");

    CHECK(anvil_ct_equal("abc", 3, "abc", 3));
    CHECK(!anvil_ct_equal("abc", 3, "abd", 3));
    CHECK(!anvil_ct_equal("abc", 3, "abcd", 4));
    CHECK(anvil_ct_equal("", 0, "", 0));
    CHECK(!anvil_ct_equal(NULL, 2, "ab", 2));
}

static void test_split(void)
{
    char **v = NULL;
    size_t n = 99;
    CHECK_INT(anvil_split_scopes("a b,c", &v, &n), 0);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_STR(v[0], "a");
        CHECK_STR(v[1], "b");
        CHECK_STR(v[2], "c");
    }
    anvil_strv_free(v, n);

    CHECK_INT(anvil_split_scopes(" ,run:read,, cron:write\t ,\tx ", &v, &n), 0);
    CHECK_INT(n, 3);
    if (n == 3) {
        CHECK_STR(v[0], "run:read");
        CHECK_STR(v[1], "cron:write");
        CHECK_STR(v[2], "x");
    }
    anvil_strv_free(v, n);

    CHECK_INT(anvil_split_scopes(" , ,\t", &v, &n), 0);
    CHECK_INT(n, 0);
    anvil_strv_free(v, n);
    CHECK_INT(anvil_split_scopes("", &v, &n), 0);
    CHECK_INT(n, 0);
    CHECK_INT(anvil_split_scopes(NULL, &v, &n), 0);
    CHECK_INT(n, 0);
    CHECK(v == NULL);
    CHECK_INT(anvil_split_scopes("a", NULL, &n), -1);
    anvil_strv_free(NULL, 0);
}

static void test_bearer(void)
{
    struct { const char *name, *value, *want; } cases[] = {
        { "Authorization", "Bearer abc", "abc" },
        { "authorization", "bearer abc", "abc" },
        { "AUTHORIZATION", "BEARER abc", "abc" },
        { "Authorization", "BeArEr\tabc", "abc" },
        { "Authorization", "  Bearer    abc", "abc" },
        /* No Bearer scheme: the whole value is the token. */
        { "Authorization", "abc", "abc" },
        { "Authorization", "Basic dXNlcjpwYXNz", "Basic dXNlcjpwYXNz" },
        { "Authorization", "Bearerabc", "Bearerabc" },
        { "Authorization", "Bearer", NULL },
        { "Authorization", "Bearer    ", NULL },
        { "Authorization", "", NULL },
        { "x-smithers-key", "k-123", "k-123" },
        { "X-Smithers-Key", "  k-123", "k-123" },
        { "x-smithers-key", " \t", NULL },
        { "x-other", "Bearer abc", NULL },
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        headers h = hdr1(cases[i].name, cases[i].value);
        const char *t = anvil_auth_bearer_token(get_header, &h);
        if (cases[i].want) {
            CHECK_STR(t, cases[i].want);
        } else {
            CHECK(t == NULL);
        }
    }

    /* Trailing whitespace: the span excludes it, the plain call cannot. */
    headers h = hdr1("authorization", "Bearer abc  \t");
    size_t n = 0;
    const char *t = anvil_auth_bearer_span(get_header, &h, &n);
    CHECK_INT(n, 3);
    CHECK(t && strncmp(t, "abc", 3) == 0);
    CHECK_STR(anvil_auth_bearer_token(get_header, &h), "abc  \t");

    /* Authorization wins over x-smithers-key; a blank one falls back. */
    headers both = { { "x-smithers-key", "authorization" }, { "key", "Bearer auth" }, 0 };
    CHECK_STR(anvil_auth_bearer_token(get_header, &both), "auth");
    headers blank = { { "authorization", "x-smithers-key" }, { "Bearer ", "key" }, 0 };
    CHECK_STR(anvil_auth_bearer_token(get_header, &blank), "key");

    headers none = { { NULL }, { NULL }, 0 };
    CHECK(anvil_auth_bearer_token(get_header, &none) == NULL);
    CHECK(anvil_auth_bearer_token(NULL, &none) == NULL);
    CHECK(anvil_auth_bearer_span(NULL, NULL, &n) == NULL);
    CHECK_INT(n, 0);
}

/* ---- modes ---------------------------------------------------------------- */

static void test_open(void)
{
    anvil_auth_config cfg;
    memset(&cfg, 0, sizeof cfg);
    anvil_principal p;
    anvil_auth_failure why;
    headers none = { { NULL }, { NULL }, 0 };
    CHECK_INT(run(&cfg, NULL, &none, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.role, "operator");
    CHECK(has_scopes(&p, "*", NULL));
    CHECK(p.user_id == NULL && p.token_id == NULL);
    anvil_principal_clear(&p);
    /* A wrong token changes nothing in open mode. */
    headers junk = hdr1("authorization", "Bearer junk");
    CHECK_INT(run(&cfg, NULL, &junk, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    anvil_principal_clear(&p);
}

static void token_config(anvil_auth_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->mode = ANVIL_AUTH_TOKEN;
    cfg->n_tokens = 5;
    cfg->tokens = calloc(cfg->n_tokens, sizeof *cfg->tokens);
    anvil_token_grant *t = cfg->tokens;

    t[0].token = xstrdup("viewer-token");
    t[0].token_id = xstrdup("viewer-id");
    t[0].role = xstrdup("viewer");
    t[0].scopes = strv("run:read", NULL, &t[0].n_scopes);

    t[1].token = xstrdup(OP_TOKEN);
    t[1].role = xstrdup("operator");
    t[1].scopes = strv("*", NULL, &t[1].n_scopes);
    t[1].user_id = xstrdup("user:op");

    t[2].token = xstrdup("expiring-token");
    t[2].role = xstrdup("ops");
    t[2].has_expires_at = true;
    t[2].expires_at_ms = NOW_MS;

    t[3].token = xstrdup("revoked-token");
    t[3].role = xstrdup("ops");
    t[3].has_revoked_at = true;
    t[3].revoked_at_ms = NOW_MS;
    t[3].has_expires_at = true;
    t[3].expires_at_ms = NOW_MS - 5;

    /* Duplicate of t[1]'s secret: the first configured grant wins. */
    t[4].token = xstrdup(OP_TOKEN);
    t[4].role = xstrdup("shadow");
}

static void test_token_mode(void)
{
    anvil_auth_config cfg;
    token_config(&cfg);
    anvil_principal p;
    anvil_auth_failure why;

    headers h = hdr1("Authorization", "Bearer " OP_TOKEN);
    CHECK_INT(run(&cfg, NULL, &h, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.role, "operator");
    CHECK_STR(p.user_id, "user:op");
    CHECK_STR(p.token_id, OP_TOKEN_ID);
    CHECK(has_scopes(&p, "*", NULL));

    /* Deep copy, then clear both (twice, to check clear is idempotent). */
    anvil_principal c;
    CHECK_INT(anvil_principal_copy(&c, &p), 0);
    CHECK(c.role != p.role && c.scopes != p.scopes && c.scopes[0] != p.scopes[0]);
    CHECK_STR(c.role, "operator");
    CHECK_STR(c.user_id, "user:op");
    CHECK_STR(c.token_id, OP_TOKEN_ID);
    CHECK(has_scopes(&c, "*", NULL));
    anvil_principal_clear(&p);
    CHECK_STR(c.role, "operator");
    anvil_principal_clear(&c);
    anvil_principal_clear(&c);
    CHECK(c.role == NULL && c.n_scopes == 0);
    CHECK_INT(anvil_principal_copy(NULL, &c), -1);

    headers key = hdr1("x-smithers-key", " viewer-token ");
    CHECK_INT(run(&cfg, NULL, &key, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.role, "viewer");
    CHECK_STR(p.token_id, "viewer-id");
    CHECK(p.user_id == NULL);
    CHECK(has_scopes(&p, "run:read", NULL));
    anvil_principal_clear(&p);

    /* Explicit WebSocket token beats the headers; blank falls back to them. */
    headers wrong = hdr1("authorization", "Bearer nope");
    CHECK_INT(run(&cfg, NULL, &wrong, "  viewer-token\n", NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.role, "viewer");
    anvil_principal_clear(&p);
    CHECK_INT(run(&cfg, NULL, &h, "   ", NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.role, "operator");
    anvil_principal_clear(&p);

    CHECK_INT(run(&cfg, NULL, &wrong, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Invalid token");
    CHECK(!why.refresh_hint);
    /* Prefixes and extensions of a real token are not it. */
    headers prefix = hdr1("authorization", "Bearer operator-token-12");
    CHECK_INT(run(&cfg, NULL, &prefix, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    headers longer = hdr1("authorization", "Bearer operator-token-1234");
    CHECK_INT(run(&cfg, NULL, &longer, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);

    headers none = { { NULL }, { NULL }, 0 };
    CHECK_INT(run(&cfg, NULL, &none, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Missing bearer token");
    CHECK(!why.refresh_hint);
    headers empty = hdr1("authorization", "Bearer  ");
    CHECK_INT(run(&cfg, NULL, &empty, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Missing bearer token");

    /* expires_at_ms == now is already expired; a millisecond earlier is not. */
    headers exp = hdr1("authorization", "Bearer expiring-token");
    CHECK_INT(run(&cfg, NULL, &exp, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Token expired; issue a refreshed token.");
    CHECK(why.refresh_hint);
    CHECK_INT(run(&cfg, NULL, &exp, NULL, NOW_MS - 1, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.role, "ops");
    CHECK(p.n_scopes == 0);
    anvil_principal_clear(&p);

    /* Revocation is reported before expiry. */
    headers rev = hdr1("authorization", "Bearer revoked-token");
    CHECK_INT(run(&cfg, NULL, &rev, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Token has been revoked");
    CHECK(why.refresh_hint);
    CHECK_INT(run(&cfg, NULL, &rev, NULL, NOW_MS - 10, &p, &why), ANVIL_AUTH_OK);
    anvil_principal_clear(&p);
    CHECK_INT(run(&cfg, NULL, &rev, NULL, NOW_MS - 1, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Token expired; issue a refreshed token.");

    anvil_auth_config_clear(&cfg);
    CHECK(cfg.tokens == NULL && cfg.n_tokens == 0 && cfg.mode == ANVIL_AUTH_OPEN);
    anvil_auth_config_clear(&cfg);
}

static void test_token_store(void)
{
    anvil_auth_config cfg;
    token_config(&cfg);
    anvil_principal p;
    anvil_auth_failure why;
    fake_store f;
    memset(&f, 0, sizeof f);
    anvil_token_store store = { fake_lookup, fake_revoked, &f };

    /* A configured token never reaches the lookup, but is revocable. */
    headers op = hdr1("authorization", "Bearer " OP_TOKEN);
    CHECK_INT(run(&cfg, &store, &op, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_INT(f.lookups, 0);
    CHECK_INT(f.revoked_calls, 1);
    CHECK_STR(f.last_id, OP_TOKEN_ID);
    anvil_principal_clear(&p);

    f.revoked_rc = 1;
    f.revoked_at = NOW_MS - 1000;
    CHECK_INT(run(&cfg, &store, &op, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Token has been revoked");
    CHECK(why.refresh_hint);
    /* The revoke is asked by the configured token id when there is one. */
    headers viewer = hdr1("authorization", "Bearer viewer-token");
    CHECK_INT(run(&cfg, &store, &viewer, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(f.last_id, "viewer-id");
    f.revoked_rc = -1;
    CHECK_INT(run(&cfg, &store, &op, NULL, NOW_MS, &p, &why), ANVIL_AUTH_FAILED);
    f.revoked_rc = 0;

    /* Database token: looked up by the sha256 of the presented token. */
    f.lookup_rc = 1;
    headers db = hdr1("authorization", "Bearer " DB_TOKEN);
    CHECK_INT(run(&cfg, &store, &db, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_INT(f.lookups, 1);
    CHECK_STR(f.last_sha, DB_TOKEN_SHA);
    CHECK_STR(p.role, "ci");
    CHECK_STR(p.user_id, "user:ci");
    CHECK_STR(p.token_id, DB_TOKEN_ID);
    CHECK(has_scopes(&p, "run:write", "cron:read"));
    CHECK_STR(f.last_id, DB_TOKEN_ID);
    anvil_principal_clear(&p);

    f.grant_has_id = true;
    CHECK_INT(run(&cfg, &store, &db, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.token_id, "db-row-7");
    CHECK_STR(f.last_id, "db-row-7");
    anvil_principal_clear(&p);

    f.grant_expired = true;
    CHECK_INT(run(&cfg, &store, &db, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Token expired; issue a refreshed token.");
    f.grant_expired = false;

    f.revoked_rc = 1;
    CHECK_INT(run(&cfg, &store, &db, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Token has been revoked");
    f.revoked_rc = 0;

    /* Unknown to both, and a failing store. */
    headers other = hdr1("authorization", "Bearer unknown-token");
    CHECK_INT(run(&cfg, &store, &other, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Invalid token");
    f.lookup_rc = 0;
    CHECK_INT(run(&cfg, &store, &db, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Invalid token");
    f.lookup_rc = -1;
    CHECK_INT(run(&cfg, &store, &db, NULL, NOW_MS, &p, &why), ANVIL_AUTH_FAILED);

    /* A store with no callbacks is the same as none. */
    anvil_token_store empty = { NULL, NULL, NULL };
    CHECK_INT(run(&cfg, &empty, &db, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_INT(run(&cfg, &empty, &op, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    anvil_principal_clear(&p);

    anvil_auth_config_clear(&cfg);
}

static void jwt_config(anvil_auth_config *cfg)
{
    memset(cfg, 0, sizeof *cfg);
    cfg->mode = ANVIL_AUTH_JWT;
    cfg->jwt.secret = xstrdup("jwt-secret");
    cfg->jwt.clock_skew_seconds = 60;
    cfg->jwt.default_scopes = strv("run:read", "observability:read", &cfg->jwt.n_default_scopes);
}

/* Authenticate with a token signed over payload by our signer. */
static anvil_auth_status jwt_run(const anvil_auth_config *cfg, const char *payload,
                                 anvil_principal *p, anvil_auth_failure *why)
{
    char *tok = anvil_jwt_sign_hs256(payload, "jwt-secret");
    CHECK(tok != NULL);
    headers h = hdr1("authorization", "Bearer ");
    anvil_auth_status st = run(cfg, NULL, &h, tok, NOW_MS, p, why);
    free(tok);
    return st;
}

static void test_jwt_mode(void)
{
    anvil_auth_config cfg;
    jwt_config(&cfg);
    anvil_principal p;
    anvil_auth_failure why;

    CHECK_INT(jwt_run(&cfg, "{\"sub\":\"u1\",\"role\":\"dev\",\"scope\":[\"run:write\",\" cron:read \",3,\"\"]}",
                      &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.role, "dev");
    CHECK_STR(p.user_id, "u1");
    CHECK(has_scopes(&p, "run:write", "cron:read"));
    CHECK(p.token_id && strlen(p.token_id) == 16);
    anvil_principal_clear(&p);

    CHECK_INT(jwt_run(&cfg, "{\"scope\":\"a b\"}", &p, &why), ANVIL_AUTH_OK);
    CHECK(has_scopes(&p, "a", "b"));
    CHECK_STR(p.role, "operator");
    CHECK(p.user_id == NULL);
    anvil_principal_clear(&p);
    CHECK_INT(jwt_run(&cfg, "{\"scope\":\"a,b\"}", &p, &why), ANVIL_AUTH_OK);
    CHECK(has_scopes(&p, "a", "b"));
    anvil_principal_clear(&p);

    /* No usable scopes -> defaults; wrong-typed role/sub -> defaults. */
    const char *defaulting[] = {
        "{}", "{\"scope\":\"\"}", "{\"scope\":\" , \"}", "{\"scope\":[]}",
        "{\"scope\":{\"a\":1}}", "{\"scope\":7,\"role\":5,\"sub\":9}", "{\"role\":\"\"}",
    };
    for (size_t i = 0; i < sizeof defaulting / sizeof defaulting[0]; i++) {
        CHECK_INT(jwt_run(&cfg, defaulting[i], &p, &why), ANVIL_AUTH_OK);
        CHECK(has_scopes(&p, "run:read", "observability:read"));
        CHECK_STR(p.role, "operator");
        CHECK(p.user_id == NULL);
        anvil_principal_clear(&p);
    }

    /* Custom claim names and a configured default role. */
    cfg.jwt.scopes_claim = xstrdup("perms");
    cfg.jwt.role_claim = xstrdup("grp");
    cfg.jwt.user_claim = xstrdup("email");
    cfg.jwt.default_role = xstrdup("guest");
    CHECK_INT(jwt_run(&cfg, "{\"perms\":\"x\",\"grp\":\"g\",\"email\":\"e@x\",\"scope\":\"no\","
                            "\"role\":\"no\",\"sub\":\"no\"}", &p, &why), ANVIL_AUTH_OK);
    CHECK(has_scopes(&p, "x", NULL));
    CHECK_STR(p.role, "g");
    CHECK_STR(p.user_id, "e@x");
    anvil_principal_clear(&p);
    CHECK_INT(jwt_run(&cfg, "{\"role\":\"admin\"}", &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.role, "guest");
    anvil_principal_clear(&p);

    /* Expiry carries the refresh hint; skew comes from the config. */
    char payload[128];
    snprintf(payload, sizeof payload, "{\"exp\":%lld}", NOW_S - 61);
    CHECK_INT(jwt_run(&cfg, payload, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Token expired");
    CHECK(why.refresh_hint);
    snprintf(payload, sizeof payload, "{\"exp\":%lld}", NOW_S - 60);
    CHECK_INT(jwt_run(&cfg, payload, &p, &why), ANVIL_AUTH_OK);
    anvil_principal_clear(&p);
    cfg.jwt.clock_skew_seconds = 0;
    CHECK_INT(jwt_run(&cfg, payload, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    snprintf(payload, sizeof payload, "{\"nbf\":%lld}", NOW_S + 1);
    CHECK_INT(jwt_run(&cfg, payload, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Token not yet valid");
    CHECK(!why.refresh_hint);
    cfg.jwt.clock_skew_seconds = 60;
    CHECK_INT(jwt_run(&cfg, payload, &p, &why), ANVIL_AUTH_OK);
    anvil_principal_clear(&p);

    /* Signed with another secret, alg none, missing. */
    char *other = anvil_jwt_sign_hs256("{}", "not-the-secret");
    headers h = { { NULL }, { NULL }, 0 };
    CHECK_INT(run(&cfg, NULL, &h, other, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK(!why.refresh_hint);
    free(other);
    CHECK_INT(run(&cfg, NULL, &h, "eyJhbGciOiJub25lIn0.e30.", NOW_MS, &p, &why),
              ANVIL_AUTH_UNAUTHORIZED);
    CHECK_INT(run(&cfg, NULL, &h, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Missing bearer token");
    CHECK_INT(run(&cfg, NULL, &h, "not.a.jwt", NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);

    /* Without a secret nothing can be verified: an internal failure. */
    free(cfg.jwt.secret);
    cfg.jwt.secret = NULL;
    CHECK_INT(jwt_run(&cfg, "{}", &p, &why), ANVIL_AUTH_FAILED);
    anvil_auth_config_clear(&cfg);
}

static void test_jwt_outside(void)
{
    anvil_auth_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.mode = ANVIL_AUTH_JWT;
    cfg.jwt.secret = xstrdup("outside-secret");
    cfg.jwt.issuer = xstrdup("anvil-test");
    cfg.jwt.audience = xstrdup("anvil");
    anvil_principal p;
    anvil_auth_failure why;

    headers h = hdr1("authorization", "Bearer " OUTSIDE_TOKEN);
    CHECK_INT(run(&cfg, NULL, &h, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.role, "admin");
    CHECK_STR(p.user_id, "user:alice");
    CHECK(has_scopes(&p, "run:read", "cron:write"));
    CHECK_STR(p.token_id, OUTSIDE_TOKEN_ID);
    anvil_principal_clear(&p);

    /* Before its nbf (1700000000) even with the default 0 skew here. */
    CHECK_INT(run(&cfg, NULL, &h, NULL, 1699999999000LL, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Token not yet valid");

    free(cfg.jwt.audience);
    cfg.jwt.audience = xstrdup("console");
    CHECK_INT(run(&cfg, NULL, &h, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Invalid token audience");
    free(cfg.jwt.audience);
    cfg.jwt.audience = NULL;
    free(cfg.jwt.issuer);
    cfg.jwt.issuer = xstrdup("someone-else");
    CHECK_INT(run(&cfg, NULL, &h, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Invalid token issuer");
    anvil_auth_config_clear(&cfg);
}

static void test_proxy(void)
{
    anvil_auth_config cfg;
    memset(&cfg, 0, sizeof cfg);
    cfg.mode = ANVIL_AUTH_TRUSTED_PROXY;
    anvil_principal p;
    anvil_auth_failure why;

    headers full = {
        { "X-User-Id", "x-user-scopes", "X-USER-ROLE", "x-smithers-token-id" },
        { " alice ", "run:read, cron:read", "viewer", "tid-1" }, 0,
    };
    /* Bearer tokens are irrelevant here, even an explicit one. */
    CHECK_INT(run(&cfg, NULL, &full, "ignored", NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.user_id, "alice");
    CHECK_STR(p.role, "viewer");
    CHECK_STR(p.token_id, "tid-1");
    CHECK(has_scopes(&p, "run:read", "cron:read"));
    anvil_principal_clear(&p);

    headers user_only = hdr1("x-user-id", "bob");
    CHECK_INT(run(&cfg, NULL, &user_only, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.role, "operator");
    CHECK(p.n_scopes == 0 && p.scopes == NULL);
    CHECK(p.token_id == NULL);
    anvil_principal_clear(&p);

    headers none = { { NULL }, { NULL }, 0 };
    CHECK_INT(run(&cfg, NULL, &none, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Missing trusted identity header x-user-id");
    CHECK(!why.refresh_hint);
    headers blank = { { "x-user-id", "x-user-scopes" }, { "  ", "*" }, 0 };
    CHECK_INT(run(&cfg, NULL, &blank, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);

    /* Configured header names and defaults. */
    cfg.proxy.user_header = xstrdup("cf-access-email");
    cfg.proxy.scopes_header = xstrdup("cf-scopes");
    cfg.proxy.role_header = xstrdup("cf-role");
    cfg.proxy.default_role = xstrdup("member");
    cfg.proxy.default_scopes = strv("run:read", NULL, &cfg.proxy.n_default_scopes);
    cfg.proxy.allowed_origins = strv("https://a.example", NULL, &cfg.proxy.n_allowed_origins);
    CHECK_INT(run(&cfg, NULL, &full, NULL, NOW_MS, &p, &why), ANVIL_AUTH_UNAUTHORIZED);
    CHECK_STR(why.message, "Missing trusted identity header cf-access-email");
    headers custom = { { "cf-access-email", "cf-scopes", "cf-role" }, { "c@x", " , ", " " }, 0 };
    CHECK_INT(run(&cfg, NULL, &custom, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK_STR(p.user_id, "c@x");
    CHECK_STR(p.role, "member");
    CHECK(has_scopes(&p, "run:read", NULL));
    anvil_principal_clear(&p);
    custom.values[1] = "signal:submit approval:submit";
    custom.values[2] = "lead";
    CHECK_INT(run(&cfg, NULL, &custom, NULL, NOW_MS, &p, &why), ANVIL_AUTH_OK);
    CHECK(has_scopes(&p, "signal:submit", "approval:submit"));
    CHECK_STR(p.role, "lead");
    anvil_principal_clear(&p);
    anvil_auth_config_clear(&cfg);
}

static void test_bad_input(void)
{
    anvil_auth_config cfg;
    memset(&cfg, 0, sizeof cfg);
    anvil_principal p;
    anvil_auth_failure why;
    headers none = { { NULL }, { NULL }, 0 };
    anvil_auth_request req = { get_header, &none, NULL };
    anvil_auth_request no_fn = { NULL, NULL, NULL };

    CHECK_INT(anvil_auth_authenticate(NULL, NULL, &req, NOW_MS, &p, &why), ANVIL_AUTH_FAILED);
    CHECK_INT(anvil_auth_authenticate(&cfg, NULL, NULL, NOW_MS, &p, &why), ANVIL_AUTH_FAILED);
    CHECK_INT(anvil_auth_authenticate(&cfg, NULL, &no_fn, NOW_MS, &p, &why), ANVIL_AUTH_FAILED);
    CHECK_INT(anvil_auth_authenticate(&cfg, NULL, &req, NOW_MS, NULL, &why), ANVIL_AUTH_FAILED);
    /* why is optional. */
    CHECK_INT(anvil_auth_authenticate(&cfg, NULL, &req, NOW_MS, &p, NULL), ANVIL_AUTH_OK);
    anvil_principal_clear(&p);
    cfg.mode = (anvil_auth_mode)42;
    CHECK_INT(anvil_auth_authenticate(&cfg, NULL, &req, NOW_MS, &p, &why), ANVIL_AUTH_FAILED);

    anvil_token_grant g;
    memset(&g, 0, sizeof g);
    g.token = xstrdup("t");
    g.scopes = strv("a", "b", &g.n_scopes);
    anvil_token_grant_clear(&g);
    CHECK(g.token == NULL && g.scopes == NULL && g.n_scopes == 0);
    anvil_token_grant_clear(&g);
    anvil_token_grant_clear(NULL);
    anvil_principal_clear(NULL);
    anvil_auth_config_clear(NULL);
}

int main(void)
{
    test_hashes();
    test_split();
    test_bearer();
    test_open();
    test_token_mode();
    test_token_store();
    test_jwt_mode();
    test_jwt_outside();
    test_proxy();
    test_bad_input();
    UNIT_DONE();
}
