/*
 * runtime/auth/auth.c — turns request credentials into an anvil_principal.
 *
 * Owns the four auth modes (open, token, jwt, trusted-proxy), bearer token
 * extraction, token ids, and the memory of principals, grants and the auth
 * config. JWT format and signature checks live in jwt.c; what a principal may
 * call is decided in scope.c. No SQL here: database tokens come through the
 * anvil_token_store callbacks.
 */
#include "auth.h"

#include <stdarg.h>
#include <stdio.h>
#include <stdlib.h>
#include <string.h>

#include <pthread.h>

#include <openssl/crypto.h>
#include <openssl/evp.h>

#include "jwt.h"

#define DIGEST_LEN 32

/* ---- small string helpers ------------------------------------------------ */

static bool is_space(char c)
{
    return c == ' ' || c == '\t' || c == '\r' || c == '\n';
}

static bool is_scope_sep(char c)
{
    return is_space(c) || c == ',';
}

/* Trim whitespace around s[0..n); returns the start, *out_n the new length. */
static const char *trim_span(const char *s, size_t n, size_t *out_n)
{
    while (n > 0 && is_space(*s)) {
        s++;
        n--;
    }
    while (n > 0 && is_space(s[n - 1]))
        n--;
    *out_n = n;
    return s;
}

static int dup_span(char **dst, const char *s, size_t n)
{
    char *p = malloc(n + 1);
    if (!p)
        return -1;
    memcpy(p, s, n);
    p[n] = '\0';
    *dst = p;
    return 0;
}

/* Copy an optional string: NULL stays NULL and is not a failure. */
static int dup_opt(char **dst, const char *s)
{
    *dst = NULL;
    return s ? dup_span(dst, s, strlen(s)) : 0;
}

static int strv_push(char ***v, size_t *n, const char *s, size_t len)
{
    char **grown = realloc(*v, (*n + 1) * sizeof *grown);
    if (!grown)
        return -1;
    *v = grown;
    if (dup_span(&grown[*n], s, len) != 0)
        return -1;
    (*n)++;
    return 0;
}

static int strv_copy(char ***dst, size_t *n_dst, char *const *src, size_t n)
{
    *dst = NULL;
    *n_dst = 0;
    for (size_t i = 0; i < n; i++) {
        if (!src[i])
            continue;
        if (strv_push(dst, n_dst, src[i], strlen(src[i])) != 0) {
            anvil_strv_free(*dst, *n_dst);
            *dst = NULL;
            *n_dst = 0;
            return -1;
        }
    }
    return 0;
}

void anvil_strv_free(char **v, size_t n)
{
    if (!v)
        return;
    for (size_t i = 0; i < n; i++)
        free(v[i]);
    free(v);
}

/* Free a string that held a secret, wiping it first so it does not linger
 * in freed heap memory. */
static void free_secret(char *s)
{
    if (s) {
        OPENSSL_cleanse(s, strlen(s));
        free(s);
    }
}

static const char *or_default(const char *s, const char *fallback)
{
    return s && *s ? s : fallback;
}

int anvil_split_scopes(const char *s, char ***out, size_t *n_out)
{
    if (!out || !n_out)
        return -1;
    *out = NULL;
    *n_out = 0;
    if (!s)
        return 0;
    while (*s) {
        while (*s && is_scope_sep(*s))
            s++;
        const char *start = s;
        while (*s && !is_scope_sep(*s))
            s++;
        if (s > start && strv_push(out, n_out, start, (size_t)(s - start)) != 0) {
            anvil_strv_free(*out, *n_out);
            *out = NULL;
            *n_out = 0;
            return -1;
        }
    }
    return 0;
}

/* ---- hashing and comparison ---------------------------------------------- */

/* OpenSSL 3 looks the algorithm up in its provider tables (under locks) on
 * every EVP_sha256() digest; fetching it once keeps a hash per request cheap. */
static EVP_MD *sha256_md;
static pthread_once_t sha256_once = PTHREAD_ONCE_INIT;

static void sha256_fetch(void)
{
    sha256_md = EVP_MD_fetch(NULL, "SHA256", NULL);
}

int anvil_sha256(const void *data, size_t len, unsigned char out[32])
{
    unsigned int olen = 0;
    if (!data && len > 0)
        return -1;
    pthread_once(&sha256_once, sha256_fetch);
    const EVP_MD *md = sha256_md ? sha256_md : EVP_sha256();
    if (!EVP_Digest(data ? data : "", len, out, &olen, md, NULL))
        return -1;
    return olen == DIGEST_LEN ? 0 : -1;
}

int anvil_auth_config_prepare(anvil_auth_config *cfg)
{
    for (size_t i = 0; i < cfg->n_tokens; i++) {
        anvil_token_grant *g = &cfg->tokens[i];
        g->has_token_sha256 = false;
        if (g->token && anvil_sha256(g->token, strlen(g->token), g->token_sha256) != 0)
            return -1;
        g->has_token_sha256 = g->token != NULL;
    }
    return 0;
}

static void hex_encode(const unsigned char *d, size_t n, char *out)
{
    static const char hex[] = "0123456789abcdef";
    for (size_t i = 0; i < n; i++) {
        out[2 * i] = hex[d[i] >> 4];
        out[2 * i + 1] = hex[d[i] & 15];
    }
    out[2 * n] = '\0';
}

void anvil_sha256_hex(const char *s, size_t len, char out[65])
{
    unsigned char d[DIGEST_LEN];
    if (anvil_sha256(s, len, d) != 0) {
        out[0] = '\0';
        return;
    }
    hex_encode(d, DIGEST_LEN, out);
}

void anvil_token_default_id(const char *token, char out[17])
{
    char hex[65];
    anvil_sha256_hex(token ? token : "", token ? strlen(token) : 0, hex);
    if (!token || !hex[0]) {
        out[0] = '\0';
        return;
    }
    memcpy(out, hex, 16);
    out[16] = '\0';
}

bool anvil_ct_equal(const void *a, size_t alen, const void *b, size_t blen)
{
    if (alen != blen)
        return false;
    if (alen == 0)
        return true;
    if (!a || !b)
        return false;
    return CRYPTO_memcmp(a, b, alen) == 0;
}

/* ---- bearer token extraction --------------------------------------------- */

/* "bearer" in any case followed by whitespace or the end of the value. */
static bool has_bearer_scheme(const char *s, size_t n)
{
    static const char scheme[] = "bearer";
    if (n < 6)
        return false;
    for (size_t i = 0; i < 6; i++) {
        char c = s[i];
        if (c >= 'A' && c <= 'Z')
            c = (char)(c - 'A' + 'a');
        if (c != scheme[i])
            return false;
    }
    return n == 6 || is_space(s[6]);
}

const char *anvil_auth_bearer_span(anvil_header_fn header, void *ctx, size_t *len_out)
{
    size_t n = 0;
    if (len_out)
        *len_out = 0;
    if (!header)
        return NULL;
    const char *v = header(ctx, "authorization");
    if (v) {
        const char *t = trim_span(v, strlen(v), &n);
        /* Without a Bearer scheme the whole value is the token, as the
         * reference server does for clients that send the bare key. */
        if (has_bearer_scheme(t, n))
            t = trim_span(t + 6, n - 6, &n);
        if (n > 0) {
            if (len_out)
                *len_out = n;
            return t;
        }
    }
    v = header(ctx, "x-smithers-key");
    if (v) {
        const char *t = trim_span(v, strlen(v), &n);
        if (n > 0) {
            if (len_out)
                *len_out = n;
            return t;
        }
    }
    return NULL;
}

const char *anvil_auth_bearer_token(anvil_header_fn header, void *ctx)
{
    size_t n;
    return anvil_auth_bearer_span(header, ctx, &n);
}

/* The token this request presents, trimmed and NUL-terminated (*out NULL when
 * there is none). An explicit token wins; a blank one falls back to the
 * headers. Returns 0, or -1 when out of memory. */
static int presented_token(const anvil_auth_request *req, char **out)
{
    size_t n = 0;
    const char *t = NULL;
    *out = NULL;
    if (req->token)
        t = trim_span(req->token, strlen(req->token), &n);
    if (n == 0)
        t = anvil_auth_bearer_span(req->header, req->header_ctx, &n);
    if (!t || n == 0)
        return 0;
    return dup_span(out, t, n);
}

/* ---- principals, grants, config ------------------------------------------ */

void anvil_principal_clear(anvil_principal *p)
{
    if (!p)
        return;
    free(p->role);
    free(p->user_id);
    free(p->token_id);
    anvil_strv_free(p->scopes, p->n_scopes);
    memset(p, 0, sizeof *p);
}

/* Fill an empty principal from borrowed values. On failure it stays empty. */
static int principal_fill(anvil_principal *p, const char *role, const char *user_id,
                          const char *token_id, char *const *scopes, size_t n_scopes)
{
    memset(p, 0, sizeof *p);
    if (dup_opt(&p->role, role) != 0 || dup_opt(&p->user_id, user_id) != 0 ||
        dup_opt(&p->token_id, token_id) != 0 ||
        strv_copy(&p->scopes, &p->n_scopes, scopes, n_scopes) != 0) {
        anvil_principal_clear(p);
        return -1;
    }
    return 0;
}

int anvil_principal_copy(anvil_principal *dst, const anvil_principal *src)
{
    if (!dst || !src)
        return -1;
    return principal_fill(dst, src->role, src->user_id, src->token_id,
                          src->scopes, src->n_scopes);
}

void anvil_token_grant_clear(anvil_token_grant *g)
{
    if (!g)
        return;
    free_secret(g->token);
    free(g->token_id);
    free(g->role);
    anvil_strv_free(g->scopes, g->n_scopes);
    free(g->user_id);
    memset(g, 0, sizeof *g);
}

void anvil_auth_config_clear(anvil_auth_config *cfg)
{
    if (!cfg)
        return;
    for (size_t i = 0; i < cfg->n_tokens; i++)
        anvil_token_grant_clear(&cfg->tokens[i]);
    free(cfg->tokens);

    anvil_jwt_config *j = &cfg->jwt;
    free(j->issuer);
    free(j->audience);
    free_secret(j->secret);
    free(j->scopes_claim);
    free(j->role_claim);
    free(j->user_claim);
    free(j->default_role);
    anvil_strv_free(j->default_scopes, j->n_default_scopes);

    anvil_proxy_config *p = &cfg->proxy;
    free(p->user_header);
    free(p->scopes_header);
    free(p->role_header);
    free(p->default_role);
    anvil_strv_free(p->default_scopes, p->n_default_scopes);
    anvil_strv_free(p->allowed_origins, p->n_allowed_origins);

    memset(cfg, 0, sizeof *cfg);
}

/* ---- authentication ------------------------------------------------------ */

static anvil_auth_status fail(anvil_auth_failure *why, anvil_auth_status st,
                              bool refresh, const char *reason, const char *fmt, ...)
    __attribute__((format(printf, 5, 6)));

static anvil_auth_status fail(anvil_auth_failure *why, anvil_auth_status st,
                              bool refresh, const char *reason, const char *fmt, ...)
{
    if (why) {
        why->reason = reason;
        va_list ap;
        va_start(ap, fmt);
        vsnprintf(why->message, sizeof why->message, fmt, ap);
        va_end(ap);
        why->refresh_hint = refresh;
    }
    return st;
}

static anvil_auth_status oom(anvil_auth_failure *why)
{
    return fail(why, ANVIL_AUTH_FAILED, false, "internal", "Out of memory");
}

static anvil_auth_status revoked(anvil_auth_failure *why)
{
    return fail(why, ANVIL_AUTH_UNAUTHORIZED, true, "revoked", "Token has been revoked");
}

/*
 * Find the configured grant for a token. Both sides are compared as sha256
 * digests: the digests always have the same length, so neither the length of
 * a configured token nor how much of it matched leaks through timing. Every
 * grant is compared even after a match for the same reason. Returns 0, or -1
 * when hashing fails.
 */
static int match_configured(const anvil_auth_config *cfg, const unsigned char digest[32],
                            const anvil_token_grant **match)
{
    bool hash_failed = false;
    *match = NULL;
    for (size_t i = 0; i < cfg->n_tokens; i++) {
        const anvil_token_grant *g = &cfg->tokens[i];
        unsigned char d[DIGEST_LEN];
        if (!g->token)
            continue;
        if (g->has_token_sha256) {
            memcpy(d, g->token_sha256, DIGEST_LEN);
        } else if (anvil_sha256(g->token, strlen(g->token), d) != 0) {
            hash_failed = true;
            continue;
        }
        bool eq = anvil_ct_equal(digest, DIGEST_LEN, d, DIGEST_LEN);
        if (eq && !*match)
            *match = g;
    }
    /* A grant we could not hash might have been the match: refusing as
     * "Invalid token" would be wrong, so report an internal failure. */
    return hash_failed && !*match ? -1 : 0;
}

static anvil_auth_status auth_token(const anvil_auth_config *cfg, const anvil_token_store *store,
                                    const char *token, int64_t now_ms,
                                    anvil_principal *out, anvil_auth_failure *why)
{
    unsigned char digest[DIGEST_LEN];
    const anvil_token_grant *g = NULL;
    anvil_token_grant db;
    memset(&db, 0, sizeof db);

    if (anvil_sha256(token, strlen(token), digest) != 0 ||
        match_configured(cfg, digest, &g) != 0)
        return fail(why, ANVIL_AUTH_FAILED, false, "internal", "Token hashing failed");

    if (!g && store && store->lookup) {
        char hex[65];
        hex_encode(digest, DIGEST_LEN, hex);
        int rc = store->lookup(store->ctx, hex, &db);
        if (rc < 0) {
            anvil_token_grant_clear(&db);
            return fail(why, ANVIL_AUTH_FAILED, false, "internal", "Token store lookup failed");
        }
        if (rc == 1)
            g = &db;
        else
            anvil_token_grant_clear(&db);
    }
    if (!g)
        return fail(why, ANVIL_AUTH_UNAUTHORIZED, false, "invalid", "Invalid token");

    anvil_auth_status st = ANVIL_AUTH_OK;
    char default_id[17];
    hex_encode(digest, 8, default_id);
    const char *token_id = or_default(g->token_id, default_id);

    if (g->has_revoked_at && g->revoked_at_ms <= now_ms) {
        st = revoked(why);
    } else if (g->has_expires_at && g->expires_at_ms <= now_ms) {
        st = fail(why, ANVIL_AUTH_UNAUTHORIZED, true, "expired", "Token expired; issue a refreshed token.");
    } else if (store && store->revoked) {
        int64_t at = 0;
        int rc = store->revoked(store->ctx, token_id, &at);
        /* Any revocation row revokes, whatever its time: `anvil token
         * revoke` stamps it with the current time, and a clock stepping back
         * must not bring the token back to life. */
        if (rc < 0)
            st = fail(why, ANVIL_AUTH_FAILED, false, "internal", "Token revocation check failed");
        else if (rc == 1)
            st = revoked(why);
    }
    if (st == ANVIL_AUTH_OK &&
        principal_fill(out, or_default(g->role, "operator"), g->user_id, token_id,
                       g->scopes, g->n_scopes) != 0)
        st = oom(why);
    anvil_token_grant_clear(&db);
    return st;
}

/* Scopes from a JWT claim: an array of strings, or one string of names
 * separated by spaces and/or commas. */
static int jwt_scopes(const cJSON *claim, char ***out, size_t *n)
{
    *out = NULL;
    *n = 0;
    if (cJSON_IsString(claim))
        return anvil_split_scopes(claim->valuestring, out, n);
    if (!cJSON_IsArray(claim))
        return 0;
    const cJSON *item;
    cJSON_ArrayForEach(item, claim) {
        if (!cJSON_IsString(item))
            continue;
        size_t len;
        const char *s = trim_span(item->valuestring, strlen(item->valuestring), &len);
        if (len > 0 && strv_push(out, n, s, len) != 0) {
            anvil_strv_free(*out, *n);
            *out = NULL;
            *n = 0;
            return -1;
        }
    }
    return 0;
}

static const char *claim_string(const cJSON *payload, const char *name)
{
    const cJSON *c = cJSON_GetObjectItemCaseSensitive(payload, name);
    return cJSON_IsString(c) && c->valuestring[0] ? c->valuestring : NULL;
}

static anvil_auth_status auth_jwt(const anvil_jwt_config *jc, const char *token,
                                  int64_t now_ms, anvil_principal *out,
                                  anvil_auth_failure *why)
{
    char msg[128];
    bool expired = false;
    cJSON *payload = NULL;
    int64_t now_s = now_ms / 1000 - (now_ms % 1000 < 0 ? 1 : 0);
    int64_t skew = jc->clock_skew_seconds < 0 ? 0 : jc->clock_skew_seconds;

    anvil_jwt_status js = anvil_jwt_verify_hs256(token, jc->secret, now_s, skew, jc->issuer,
                                                 jc->audience, &payload, msg, sizeof msg,
                                                 &expired);
    if (js == ANVIL_JWT_ERROR)
        return fail(why, ANVIL_AUTH_FAILED, false, "internal", "%s", msg);
    if (js != ANVIL_JWT_OK)
        return fail(why, ANVIL_AUTH_UNAUTHORIZED, expired, expired ? "expired" : "invalid", "%s", msg);

    char **scopes = NULL;
    size_t n_scopes = 0;
    anvil_auth_status st = ANVIL_AUTH_OK;
    const cJSON *sc = cJSON_GetObjectItemCaseSensitive(payload, or_default(jc->scopes_claim, "scope"));
    if (jwt_scopes(sc, &scopes, &n_scopes) != 0) {
        cJSON_Delete(payload);
        return oom(why);
    }
    const char *role = claim_string(payload, or_default(jc->role_claim, "role"));
    const char *user = claim_string(payload, or_default(jc->user_claim, "sub"));
    char token_id[17];
    anvil_token_default_id(token, token_id);
    if (!token_id[0] ||
        principal_fill(out, role ? role : or_default(jc->default_role, "operator"), user,
                       token_id, n_scopes ? scopes : jc->default_scopes,
                       n_scopes ? n_scopes : jc->n_default_scopes) != 0)
        st = oom(why);
    anvil_strv_free(scopes, n_scopes);
    cJSON_Delete(payload);
    return st;
}

/* A header value with surrounding whitespace removed, copied; *out is NULL
 * when the header is absent or blank. Returns 0 or -1 (out of memory). */
static int header_copy(const anvil_auth_request *req, const char *name, char **out)
{
    const char *v = req->header(req->header_ctx, name);
    size_t n = 0;
    *out = NULL;
    if (v)
        v = trim_span(v, strlen(v), &n);
    return n > 0 ? dup_span(out, v, n) : 0;
}

static anvil_auth_status auth_proxy(const anvil_proxy_config *pc, const anvil_auth_request *req,
                                    anvil_principal *out, anvil_auth_failure *why)
{
    const char *user_header = or_default(pc->user_header, "x-user-id");
    char *user = NULL, *scopes_raw = NULL, *role = NULL, *token_id = NULL;
    char **scopes = NULL;
    size_t n_scopes = 0;
    anvil_auth_status st = ANVIL_AUTH_OK;

    if (header_copy(req, user_header, &user) != 0 ||
        header_copy(req, or_default(pc->scopes_header, "x-user-scopes"), &scopes_raw) != 0 ||
        header_copy(req, or_default(pc->role_header, "x-user-role"), &role) != 0 ||
        header_copy(req, "x-smithers-token-id", &token_id) != 0 ||
        anvil_split_scopes(scopes_raw, &scopes, &n_scopes) != 0) {
        st = oom(why);
    } else if (!user) {
        st = fail(why, ANVIL_AUTH_UNAUTHORIZED, false, "missing",
                  "Missing trusted identity header %s", user_header);
    } else if (principal_fill(out, role ? role : or_default(pc->default_role, "operator"),
                              user, token_id, n_scopes ? scopes : pc->default_scopes,
                              n_scopes ? n_scopes : pc->n_default_scopes) != 0) {
        st = oom(why);
    }
    free(user);
    free(scopes_raw);
    free(role);
    free(token_id);
    anvil_strv_free(scopes, n_scopes);
    return st;
}

static anvil_auth_status authenticate(const anvil_auth_config *cfg,
                                      const anvil_token_store *store,
                                      const anvil_auth_request *req, int64_t now_ms,
                                      anvil_principal *out, anvil_auth_failure *why)
{
    if (why)
        memset(why, 0, sizeof *why);
    if (!out)
        return fail(why, ANVIL_AUTH_FAILED, false, "internal", "No principal destination");
    memset(out, 0, sizeof *out);
    if (!cfg || !req || !req->header)
        return fail(why, ANVIL_AUTH_FAILED, false, "internal", "Missing auth configuration or request");

    if (cfg->mode == ANVIL_AUTH_OPEN) {
        static char star[] = "*";
        char *all[] = { star };
        return principal_fill(out, "operator", NULL, NULL, all, 1) == 0 ? ANVIL_AUTH_OK
                                                                       : oom(why);
    }
    if (cfg->mode == ANVIL_AUTH_TRUSTED_PROXY)
        return auth_proxy(&cfg->proxy, req, out, why);
    if (cfg->mode != ANVIL_AUTH_TOKEN && cfg->mode != ANVIL_AUTH_JWT)
        return fail(why, ANVIL_AUTH_FAILED, false, "internal", "Unknown auth mode");

    char *token = NULL;
    if (presented_token(req, &token) != 0)
        return oom(why);
    if (!token)
        return fail(why, ANVIL_AUTH_UNAUTHORIZED, false, "missing", "Missing bearer token");
    anvil_auth_status st = cfg->mode == ANVIL_AUTH_TOKEN
                               ? auth_token(cfg, store, token, now_ms, out, why)
                               : auth_jwt(&cfg->jwt, token, now_ms, out, why);
    free_secret(token);
    return st;
}

/* Failures by reason (docs/metrics.md); any thread authenticates. */
static const char *const reasons[] = { "missing", "invalid", "expired", "revoked", "internal" };
static anvil_counter m_failures[sizeof reasons / sizeof reasons[0]];

anvil_auth_status anvil_auth_authenticate(const anvil_auth_config *cfg,
                                          const anvil_token_store *store,
                                          const anvil_auth_request *req,
                                          int64_t now_ms,
                                          anvil_principal *out,
                                          anvil_auth_failure *why)
{
    anvil_auth_failure own = { 0 };
    if (!why)
        why = &own;
    why->reason = NULL;
    anvil_auth_status st = authenticate(cfg, store, req, now_ms, out, why);
    if (st != ANVIL_AUTH_OK) {
        size_t i = sizeof reasons / sizeof reasons[0] - 1;   /* internal */
        for (size_t k = 0; why->reason && k < sizeof reasons / sizeof reasons[0]; k++)
            if (!strcmp(reasons[k], why->reason))
                i = k;
        anvil_counter_inc(&m_failures[i]);
    }
    return st;
}

void anvil_auth_metrics_render(anvil_metrics_out *o)
{
    anvil_metrics_family(o, "anvil_auth_failures_total", "counter",
                         "Requests and WebSocket connects refused by authentication, by reason.");
    for (size_t i = 0; i < sizeof reasons / sizeof reasons[0]; i++) {
        const char *labels[] = { "reason", reasons[i], NULL };
        anvil_metrics_sample(o, "anvil_auth_failures_total", labels,
                             (double)anvil_counter_get(&m_failures[i]));
    }
}
