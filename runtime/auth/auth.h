/*
 * runtime/auth/auth.h — who is calling: the three auth modes and the principal.
 *
 * The auth module turns request credentials (a bearer token, a JWT, or the
 * identity headers of a trusted proxy) into an anvil_principal. It knows
 * nothing about HTTP or WebSocket: callers hand it a header accessor. It does
 * not decide what a principal may do; scope.h does that.
 *
 * Ownership: anvil_auth_config is filled by config.c and owned by the config;
 * anvil_principal is caller-owned storage filled by anvil_auth_authenticate()
 * and released with anvil_principal_clear().
 */
#ifndef ANVIL_AUTH_H
#define ANVIL_AUTH_H

#include "metrics.h"
#include <stdbool.h>
#include <stddef.h>
#include <stdint.h>

typedef enum anvil_auth_mode {
    ANVIL_AUTH_OPEN = 0,      /* no auth configured: role operator, scopes ["*"] */
    ANVIL_AUTH_TOKEN,
    ANVIL_AUTH_JWT,
    ANVIL_AUTH_TRUSTED_PROXY
} anvil_auth_mode;

/* A static token from the config file, or one issued into the database. */
typedef struct anvil_token_grant {
    char *token;          /* the secret itself (config tokens); NULL for DB rows */
    char *token_id;       /* NULL = first 16 hex chars of sha256(token) */
    char *role;
    char **scopes;
    size_t n_scopes;
    char *user_id;        /* may be NULL */
    bool has_expires_at;
    int64_t expires_at_ms;
    bool has_revoked_at;
    int64_t revoked_at_ms;
    /* sha256(token), filled once by anvil_auth_config_prepare so requests
     * hash only the presented token. */
    bool has_token_sha256;
    unsigned char token_sha256[32];
} anvil_token_grant;

typedef struct anvil_jwt_config {
    char *issuer;             /* NULL = not checked */
    char *audience;           /* NULL = not checked */
    char *secret;             /* HS256 key, required */
    char *scopes_claim;       /* default "scope" */
    char *role_claim;         /* default "role" */
    char *user_claim;         /* default "sub" */
    char *default_role;       /* default "operator" */
    char **default_scopes;
    size_t n_default_scopes;
    int64_t clock_skew_seconds; /* default 60 */
} anvil_jwt_config;

typedef struct anvil_proxy_config {
    char *user_header;        /* default "x-user-id" */
    char *scopes_header;      /* default "x-user-scopes" */
    char *role_header;        /* default "x-user-role" */
    char *default_role;       /* default "operator" */
    char **default_scopes;
    size_t n_default_scopes;
    char **allowed_origins;
    size_t n_allowed_origins;
} anvil_proxy_config;

typedef struct anvil_auth_config {
    anvil_auth_mode mode;
    anvil_token_grant *tokens;
    size_t n_tokens;
    anvil_jwt_config jwt;
    anvil_proxy_config proxy;
} anvil_auth_config;

/* The authenticated caller. Every string is owned by the principal. */
typedef struct anvil_principal {
    char *role;
    char *user_id;            /* may be NULL */
    char *token_id;           /* may be NULL */
    char **scopes;
    size_t n_scopes;
} anvil_principal;

typedef enum anvil_auth_status {
    ANVIL_AUTH_OK = 0,
    ANVIL_AUTH_UNAUTHORIZED,  /* bad, missing, expired or revoked credentials */
    ANVIL_AUTH_FAILED         /* internal failure (out of memory, store error) */
} anvil_auth_status;

/* Why authentication failed, for the error frame. */
typedef struct anvil_auth_failure {
    char message[160];
    bool refresh_hint;        /* expired or revoked: error carries refresh */
    const char *reason;       /* missing, invalid, expired, revoked or internal (static) */
} anvil_auth_failure;

/* Header lookup: case-insensitive name, returns NULL when absent. */
typedef const char *(*anvil_header_fn)(void *ctx, const char *name);

/*
 * Lookup of tokens kept in the database (token mode). Given the lowercase hex
 * sha256 of a presented token, fill *out (caller clears it with
 * anvil_token_grant_clear) and return 1; return 0 when unknown, -1 on error.
 * Also used to ask whether a token id was revoked: see revoked_fn.
 */
typedef int (*anvil_token_lookup_fn)(void *ctx, const char *sha256_hex,
                                     anvil_token_grant *out);
/* Return 1 and set *revoked_at_ms if token_id has a revocation row, 0 if not,
 * -1 on error. */
typedef int (*anvil_token_revoked_fn)(void *ctx, const char *token_id,
                                      int64_t *revoked_at_ms);

typedef struct anvil_auth_request {
    anvil_header_fn header;   /* required */
    void *header_ctx;
    const char *token;        /* explicit token (WebSocket connect auth.token),
                                 else taken from Authorization / x-smithers-key */
} anvil_auth_request;

typedef struct anvil_token_store {
    anvil_token_lookup_fn lookup;   /* may be NULL */
    anvil_token_revoked_fn revoked; /* may be NULL */
    void *ctx;
} anvil_token_store;

/*
 * Authenticate one request. On ANVIL_AUTH_OK *out is filled (clear it with
 * anvil_principal_clear). On failure *out is left empty and *why explains.
 */
anvil_auth_status anvil_auth_authenticate(const anvil_auth_config *cfg,
                                          const anvil_token_store *store,
                                          const anvil_auth_request *req,
                                          int64_t now_ms,
                                          anvil_principal *out,
                                          anvil_auth_failure *why);

/* anvil_auth_failures_total by reason (docs/metrics.md). */
void anvil_auth_metrics_render(anvil_metrics_out *o);

/* Bearer token from headers: "Authorization: Bearer t" (scheme
 * case-insensitive) or "x-smithers-key: t". NULL when neither is present. */
const char *anvil_auth_bearer_token(anvil_header_fn header, void *ctx);

/* Lowercase hex sha256 of s (65 bytes incl. NUL). */
void anvil_sha256_hex(const char *s, size_t len, char out[65]);

/* Default token id: first 16 hex chars of sha256(token). */
void anvil_token_default_id(const char *token, char out[17]);

/* Constant-time equality of two byte strings (length leak only). */
bool anvil_ct_equal(const void *a, size_t alen, const void *b, size_t blen);

/* Precompute the digests of configured tokens. Call once after the config
 * is loaded; authentication works without it, only slower. 0 or -1. */
int anvil_auth_config_prepare(anvil_auth_config *cfg);

void anvil_principal_clear(anvil_principal *p);
int anvil_principal_copy(anvil_principal *dst, const anvil_principal *src);
void anvil_token_grant_clear(anvil_token_grant *g);
void anvil_auth_config_clear(anvil_auth_config *cfg);

/* Split "a b,c" (space and/or comma separated) into a fresh array. Returns 0,
 * or -1 on allocation failure. */
int anvil_split_scopes(const char *s, char ***out, size_t *n_out);
void anvil_strv_free(char **v, size_t n);

/* Added with auth.c: the pieces the declarations above are built on. */

/* Like anvil_auth_bearer_token, but the token with surrounding whitespace
 * removed: returns its first byte and sets *len_out to its length (the token
 * is not NUL-terminated there when trailing whitespace follows it). NULL when
 * no non-blank token is present. anvil_auth_bearer_token returns the same
 * start, so its string still carries any trailing whitespace. */
const char *anvil_auth_bearer_span(anvil_header_fn header, void *ctx, size_t *len_out);

/* sha256 of len bytes at data. Returns 0, or -1 when OpenSSL fails (out of
 * memory); anvil_sha256_hex and anvil_token_default_id then write "". */
int anvil_sha256(const void *data, size_t len, unsigned char out[32]);

#endif
