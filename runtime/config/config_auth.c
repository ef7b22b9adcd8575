/*
 * runtime/config/config_auth.c — the `auth:` section of anvil.yaml.
 *
 * Owns the auth defaults and turning the section into anvil_auth_config:
 * mode, static tokens, JWT options (nested under `jwt:` or flat inside
 * `auth:`, as users of the upstream gateway write both) and trusted-proxy
 * options. Checking credentials at request time is auth.c's job, not this
 * file's.
 *
 * Token strings are secrets that double as map keys, so diagnostics show
 * only a prefix of them (anvil_cfg_key_display).
 */
#include "anvil_contract.h"
#include "config_auth.h"
#include "config_yaml.h"
#include "scope.h"

#include <ctype.h>
#include <stdlib.h>
#include <string.h>

int anvil_config_auth_defaults(anvil_auth_config *a)
{
    memset(a, 0, sizeof *a);
    a->mode = ANVIL_AUTH_OPEN;
    a->jwt.scopes_claim = strdup("scope");
    a->jwt.role_claim = strdup("role");
    a->jwt.user_claim = strdup("sub");
    a->jwt.default_role = strdup("operator");
    a->jwt.clock_skew_seconds = 60;
    a->proxy.user_header = strdup("x-user-id");
    a->proxy.scopes_header = strdup("x-user-scopes");
    a->proxy.role_header = strdup("x-user-role");
    a->proxy.default_role = strdup("operator");
    if (!a->jwt.scopes_claim || !a->jwt.role_claim || !a->jwt.user_claim ||
        !a->jwt.default_role || !a->proxy.user_header || !a->proxy.scopes_header ||
        !a->proxy.role_header || !a->proxy.default_role)
        return -1;
    return 0;
}


/* Every grant in a scopes list must be one that can match something. */
static void check_grants(anvil_cfg_ctx *c, yaml_node_t *list, const char *path,
                         char **scopes, size_t n)
{
    if (!list || list->type != YAML_SEQUENCE_NODE)
        return;
    for (size_t i = 0; i < n; i++) {
        if (anvil_scope_grant_known(&anvil_scopes, scopes[i]))
            continue;
        yaml_node_t *item = NULL;
        if ((size_t)(list->data.sequence.items.top - list->data.sequence.items.start) > i)
            item = anvil_cfg_node(c, list->data.sequence.items.start[i]);
        anvil_cfg_error(c, item ? item : list,
                        "%s[%zu]: unknown scope \"%s\" (use a scope such as run:read, a legacy "
                        "grant such as execute, a method name, \"prefix.*\" or \"*\")",
                        path, i, scopes[i]);
    }
}

static size_t map_size(const yaml_node_t *n)
{
    return (size_t)(n->data.mapping.pairs.top - n->data.mapping.pairs.start);
}

static void parse_token(anvil_cfg_ctx *c, yaml_node_t *n, const char *path,
                        anvil_auth_config *a, anvil_token_grant *g)
{
    static const char *const keys[] = {
        "role", "scopes", "userId", "tokenId", "expiresAtMs", "revokedAtMs", NULL,
    };
    char p[ANVIL_CFG_PATH_MAX];
    if (!anvil_cfg_check_map(c, n, path, keys, false))
        return;
    yaml_node_t *v;
    if (!(v = anvil_cfg_get(c, n, "role"))) {
        anvil_cfg_path(p, path, "role");
        anvil_cfg_error(c, n, "%s: missing (every token needs a role)", p);
    } else {
        anvil_cfg_path(p, path, "role");
        anvil_cfg_string(c, v, p, false, &g->role);
    }
    if ((v = anvil_cfg_get(c, n, "scopes"))) {
        anvil_cfg_path(p, path, "scopes");
        if (anvil_cfg_strlist(c, v, p, &g->scopes, &g->n_scopes))
            check_grants(c, v, p, g->scopes, g->n_scopes);
    }
    if ((v = anvil_cfg_get(c, n, "userId"))) {
        anvil_cfg_path(p, path, "userId");
        anvil_cfg_string(c, v, p, false, &g->user_id);
    }
    if ((v = anvil_cfg_get(c, n, "tokenId"))) {
        anvil_cfg_path(p, path, "tokenId");
        char *id = NULL;
        if (anvil_cfg_string(c, v, p, false, &id)) {
            for (size_t i = 0; i < a->n_tokens; i++) {
                if (a->tokens[i].token_id && !strcmp(a->tokens[i].token_id, id)) {
                    anvil_cfg_error(c, v, "%s: token id \"%.64s\" is used by another token", p, id);
                    break;
                }
            }
            free(g->token_id);
            g->token_id = id;
        }
    }
    if ((v = anvil_cfg_get(c, n, "expiresAtMs"))) {
        anvil_cfg_path(p, path, "expiresAtMs");
        g->has_expires_at = anvil_cfg_int(c, v, p, 1, INT64_MAX, &g->expires_at_ms);
    }
    if ((v = anvil_cfg_get(c, n, "revokedAtMs"))) {
        anvil_cfg_path(p, path, "revokedAtMs");
        g->has_revoked_at = anvil_cfg_int(c, v, p, 1, INT64_MAX, &g->revoked_at_ms);
    }
}

static void parse_tokens(anvil_cfg_ctx *c, yaml_node_t *n, anvil_auth_config *a)
{
    if (anvil_cfg_is_null(n))
        return;
    if (!anvil_cfg_check_map(c, n, "auth.tokens", NULL, true))
        return;
    size_t count = map_size(n);
    anvil_token_grant *tokens = calloc(count ? count : 1, sizeof *tokens);
    if (!tokens) {
        anvil_cfg_oom(c);
        return;
    }
    a->tokens = tokens;
    for (size_t i = 0; i < count; i++) {
        yaml_node_t *k = anvil_cfg_node(c, n->data.mapping.pairs.start[i].key);
        if (!anvil_cfg_first_key(c, n, i) || k->type != YAML_SCALAR_NODE ||
            !k->data.scalar.length || anvil_cfg_is_null(k))
            continue;
        const char *token = (const char *)k->data.scalar.value;
        char path[ANVIL_CFG_PATH_MAX], buf[16];
        anvil_cfg_path(path, "auth.tokens", anvil_cfg_key_display(token, true, buf));
        anvil_token_grant *g = &a->tokens[a->n_tokens];
        if (!(g->token = strdup(token))) {
            anvil_cfg_oom(c);
            continue;
        }
        parse_token(c, anvil_cfg_node(c, n->data.mapping.pairs.start[i].value), path, a, g);
        a->n_tokens++;
    }
}

static void header_name(anvil_cfg_ctx *c, yaml_node_t *n, const char *path, char **out)
{
    anvil_cfg_header_name(c, n, path, false, out);
}

static void parse_trusted_headers(anvil_cfg_ctx *c, yaml_node_t *n, anvil_proxy_config *p)
{
    static const char *const keys[] = {"user", "scopes", "role", NULL};
    char **slots[] = {&p->user_header, &p->scopes_header, &p->role_header};
    char path[ANVIL_CFG_PATH_MAX];
    if (n->type == YAML_SEQUENCE_NODE) {
        size_t count = (size_t)(n->data.sequence.items.top - n->data.sequence.items.start);
        if (count < 1 || count > 3) {
            anvil_cfg_error(c, n, "auth.trustedHeaders: expected 1 to 3 header names "
                            "[user, scopes, role], got %zu", count);
            return;
        }
        for (size_t i = 0; i < count; i++) {
            snprintf(path, sizeof path, "auth.trustedHeaders[%zu]", i);
            header_name(c, anvil_cfg_node(c, n->data.sequence.items.start[i]), path, slots[i]);
        }
        return;
    }
    if (!anvil_cfg_check_map(c, n, "auth.trustedHeaders", keys, false))
        return;
    for (size_t i = 0; keys[i]; i++) {
        yaml_node_t *v = anvil_cfg_get(c, n, keys[i]);
        if (v) {
            anvil_cfg_path(path, "auth.trustedHeaders", keys[i]);
            header_name(c, v, path, slots[i]);
        }
    }
}

/*
 * One JWT option, nested (auth.jwt.KEY) or flat (auth.KEY). Setting both is
 * reported rather than silently picking one. Returns the node to read and
 * writes its key path into path.
 */
static yaml_node_t *jwt_option(anvil_cfg_ctx *c, yaml_node_t *auth, yaml_node_t *jwt,
                               const char *key, char *path)
{
    yaml_node_t *flat = anvil_cfg_get(c, auth, key);
    yaml_node_t *nested = anvil_cfg_get(c, jwt, key);
    if (flat && nested)
        anvil_cfg_error(c, nested, "auth.jwt.%s: also set as auth.%s at line %d; keep one",
                        key, key, (int)flat->start_mark.line + 1);
    anvil_cfg_path(path, nested ? "auth.jwt" : "auth", key);
    return nested ? nested : flat;
}

/* Returns whether a secret key was written at all, so a mistyped secret is
 * reported once (as a type problem) rather than also as missing. */
static bool parse_jwt(anvil_cfg_ctx *c, yaml_node_t *auth, anvil_jwt_config *j)
{
    static const char *const keys[] = {
        "issuer", "audience", "secret", "scopesClaim", "roleClaim", "userClaim",
        "defaultRole", "defaultScopes", "clockSkewSeconds", NULL,
    };
    char **strings[] = {
        &j->issuer, &j->audience, &j->secret, &j->scopes_claim, &j->role_claim,
        &j->user_claim, &j->default_role,
    };
    yaml_node_t *jwt = anvil_cfg_get(c, auth, "jwt");
    if (jwt && !anvil_cfg_check_map(c, jwt, "auth.jwt", keys, false))
        jwt = NULL;
    char path[ANVIL_CFG_PATH_MAX];
    yaml_node_t *v;
    for (size_t i = 0; i < sizeof strings / sizeof strings[0]; i++) {
        if ((v = jwt_option(c, auth, jwt, keys[i], path)))
            anvil_cfg_string(c, v, path, false, strings[i]);
    }
    if ((v = jwt_option(c, auth, jwt, "defaultScopes", path)))
        if (anvil_cfg_strlist(c, v, path, &j->default_scopes, &j->n_default_scopes))
            check_grants(c, v, path, j->default_scopes, j->n_default_scopes);
    if ((v = jwt_option(c, auth, jwt, "clockSkewSeconds", path)))
        anvil_cfg_int(c, v, path, 0, 86400, &j->clock_skew_seconds);
    return anvil_cfg_get(c, auth, "secret") || anvil_cfg_get(c, jwt, "secret");
}

void anvil_config_parse_auth(anvil_cfg_ctx *c, yaml_node_t *n, anvil_auth_config *a)
{
    static const char *const keys[] = {
        "mode", "tokens", "jwt", "issuer", "audience", "secret", "scopesClaim",
        "roleClaim", "userClaim", "defaultRole", "defaultScopes", "clockSkewSeconds",
        "trustedHeaders", "allowedOrigins", NULL,
    };
    if (!anvil_cfg_check_map(c, n, "auth", keys, false))
        return;
    yaml_node_t *mode = anvil_cfg_get(c, n, "mode"), *v;
    char *m = NULL;
    if (!mode) {
        anvil_cfg_error(c, n, "auth.mode: missing (expected token, jwt or trusted-proxy)");
    } else if (anvil_cfg_string(c, mode, "auth.mode", false, &m)) {
        if (!strcmp(m, "token"))
            a->mode = ANVIL_AUTH_TOKEN;
        else if (!strcmp(m, "jwt"))
            a->mode = ANVIL_AUTH_JWT;
        else if (!strcmp(m, "trusted-proxy"))
            a->mode = ANVIL_AUTH_TRUSTED_PROXY;
        else
            anvil_cfg_error(c, mode, "auth.mode: expected token, jwt or trusted-proxy, got \"%.40s\"", m);
    }
    free(m);
    if ((v = anvil_cfg_get(c, n, "tokens")))
        parse_tokens(c, v, a);
    bool secret_given = parse_jwt(c, n, &a->jwt);
    /* Flat defaultRole/defaultScopes serve trusted-proxy mode as well. */
    if ((v = anvil_cfg_get(c, n, "defaultRole")))
        anvil_cfg_string(c, v, "auth.defaultRole", false, &a->proxy.default_role);
    if ((v = anvil_cfg_get(c, n, "defaultScopes")))
        if (anvil_cfg_strlist(c, v, "auth.defaultScopes", &a->proxy.default_scopes,
                              &a->proxy.n_default_scopes))
            check_grants(c, v, "auth.defaultScopes", a->proxy.default_scopes,
                         a->proxy.n_default_scopes);
    if ((v = anvil_cfg_get(c, n, "trustedHeaders")))
        parse_trusted_headers(c, v, &a->proxy);
    if ((v = anvil_cfg_get(c, n, "allowedOrigins")))
        anvil_cfg_origins(c, v, "auth.allowedOrigins", &a->proxy.allowed_origins,
                                   &a->proxy.n_allowed_origins);
    if (a->mode == ANVIL_AUTH_JWT && !secret_given)
        anvil_cfg_error(c, mode, "auth.jwt.secret: required when auth.mode is jwt "
                        "(set auth.jwt.secret or auth.secret)");
}
