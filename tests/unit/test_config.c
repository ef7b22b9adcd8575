/*
 * tests/unit/test_config.c — anvil.yaml loading: every key parsed into the
 * right field, defaults, path resolution, and the exact diagnostics (line,
 * column, key path) for broken configs; plus listen and duration parsing.
 *
 * Fixtures live in tests/unit/fixtures/config/. Their directory comes from
 * argv[1], else the compile-time FIXTURES_DIR, else "fixtures/config"
 * relative to the working directory (i.e. run from tests/unit).
 */
#include "config.h"
#include "unit.h"

#include <stdlib.h>
#include <string.h>
#include <unistd.h>

#ifndef FIXTURES_DIR
#define FIXTURES_DIR "fixtures/config"
#endif

static const char *fixtures = FIXTURES_DIR;

/* Fixture path; a few rotating buffers so two can be live in one CHECK. */
static const char *fx(const char *name)
{
    static char bufs[4][1024];
    static int next;
    char *b = bufs[next++ % 4];
    snprintf(b, sizeof bufs[0], "%s/%s", fixtures, name);
    return b;
}

static bool ends_with(const char *s, const char *suffix)
{
    size_t ls = strlen(s), lx = strlen(suffix);
    return ls >= lx && !strcmp(s + ls - lx, suffix);
}

/* Whether d holds a problem in a file ending with file_suffix, at line:col
 * (col 0 = any, for generated files whose columns depend on a temp path),
 * whose message contains text. */
static bool has_diag(const anvil_diags *d, const char *file_suffix, int line, int col,
                     const char *text)
{
    for (size_t i = 0; i < d->n; i++) {
        const anvil_diag *g = &d->items[i];
        if (g->file && ends_with(g->file, file_suffix) && g->line == line &&
            (col == 0 || g->column == col) && strstr(g->message, text))
            return true;
    }
    return false;
}

#define CHECK_DIAG(d, file, line, col, text) do { \
    bool found_ = has_diag((d), (file), (line), (col), (text)); \
    CHECK(found_); \
    if (!found_) { \
        fprintf(stderr, "  wanted %s:%d:%d: ...%s...; got:\n", (file), (line), (col), (text)); \
        anvil_diags_print((d), stderr); \
    } \
} while (0)

/* Load a fixture that must be invalid; returns its diagnostics. */
static anvil_diags load_bad(const char *name)
{
    anvil_config cfg;
    anvil_diags d = {0};
    CHECK_INT(anvil_config_load(fx(name), &cfg, &d), -1);
    CHECK(d.n > 0);
    anvil_config_clear(&cfg);
    return d;
}

static void test_valid_full(void)
{
    anvil_config cfg;
    anvil_diags d = {0};
    CHECK_INT(anvil_config_load(fx("valid_full.yaml"), &cfg, &d), 0);
    CHECK_INT(d.n, 0);
    anvil_diags_print(&d, stderr);
    CHECK_STR(cfg.path, fx("valid_full.yaml"));
    CHECK_STR(cfg.listen_host, "0.0.0.0");
    CHECK_INT(cfg.listen_port, 8080);
    CHECK_STR(cfg.database, fx("data/anvil.db"));
    CHECK_INT(cfg.protocol, 2);
    CHECK_INT(cfg.n_features, 3);
    if (cfg.n_features == 3) {
        CHECK_STR(cfg.features[0], "streaming");
        CHECK_STR(cfg.features[2], "devtools");
    }
    CHECK_INT(cfg.heartbeat_ms, 5000);
    CHECK_INT(cfg.max_body_bytes, 2048);
    CHECK_INT(cfg.max_payload, 4096);
    CHECK_INT(cfg.max_connections, 50);
    CHECK_INT(cfg.max_http_connections, 64);
    CHECK_INT(cfg.event_window_size, 500);
    CHECK_INT(cfg.headers_timeout_ms, 10000);
    CHECK_INT(cfg.request_timeout_ms, 20000);
    CHECK_INT(cfg.n_allowed_origins, 2);
    if (cfg.n_allowed_origins == 2) {
        CHECK_STR(cfg.allowed_origins[0], "https://console.example.com");
        CHECK_STR(cfg.allowed_origins[1], "http://localhost:3000");
    }
    CHECK(!cfg.console_enabled);
    CHECK_STR(cfg.console_path, "/ops");

    const anvil_auth_config *a = &cfg.auth;
    CHECK_INT(a->mode, ANVIL_AUTH_TOKEN);
    CHECK_INT(a->n_tokens, 2);
    if (a->n_tokens == 2) {
        const anvil_token_grant *op = &a->tokens[0], *rd = &a->tokens[1];
        CHECK_STR(op->token, "operator-token");
        CHECK_STR(op->role, "operator");
        CHECK_INT(op->n_scopes, 1);
        if (op->n_scopes == 1)
            CHECK_STR(op->scopes[0], "*");
        CHECK_STR(op->user_id, "user:op");
        CHECK(op->token_id == NULL);
        CHECK(!op->has_expires_at && !op->has_revoked_at);
        CHECK_STR(rd->token, "reader-token-0123456789");
        CHECK_STR(rd->role, "viewer");
        CHECK_INT(rd->n_scopes, 2);
        if (rd->n_scopes == 2)
            CHECK_STR(rd->scopes[1], "cron:read");
        CHECK(rd->user_id == NULL);
        CHECK_STR(rd->token_id, "reader");
        CHECK(rd->has_expires_at);
        CHECK_INT(rd->expires_at_ms, 1900000000000LL);
        CHECK(rd->has_revoked_at);
        CHECK_INT(rd->revoked_at_ms, 1800000000000LL);
    }
    /* JWT and proxy options keep their defaults in token mode. */
    CHECK_STR(a->jwt.scopes_claim, "scope");
    CHECK_STR(a->jwt.role_claim, "role");
    CHECK_STR(a->jwt.user_claim, "sub");
    CHECK_STR(a->jwt.default_role, "operator");
    CHECK_INT(a->jwt.clock_skew_seconds, 60);
    CHECK(a->jwt.secret == NULL);
    CHECK_STR(a->proxy.user_header, "x-user-id");
    CHECK_STR(a->proxy.scopes_header, "x-user-scopes");
    CHECK_STR(a->proxy.role_header, "x-user-role");

    CHECK_INT(cfg.n_workflows, 2);
    if (cfg.n_workflows == 2) {
        const anvil_workflow_ref *w = &cfg.workflows[0];
        CHECK_STR(w->name, "deploy");
        CHECK_STR(w->file, fx("workflows/deploy.yaml"));
        CHECK_INT(w->line, 26);
        CHECK_STR(w->schedule, "0 8 * * 1-5");
        CHECK(w->has_webhook);
        CHECK_STR(w->webhook.secret, "hook-secret");
        CHECK_STR(w->webhook.signature_header, "x-signature");
        CHECK_STR(w->webhook.signature_prefix, "");
        CHECK_STR(w->webhook.delivery_id_header, "X-Request-Id");
        CHECK(!w->webhook.run_enabled);
        CHECK_STR(w->webhook.run_input_path, "payload");
        CHECK_STR(w->webhook.signal_name, "github.comment.created");
        CHECK_STR(w->webhook.signal_correlation_path, "issue.number");
        CHECK_STR(w->webhook.signal_run_id_path, "run.id");
        CHECK_STR(w->webhook.signal_payload_path, "comment");
        CHECK_STR(w->ui.path, "/ui/deploy");
        CHECK_STR(w->ui.props_json, "{}");
        CHECK_STR(w->readable_name, "Deploy service");
        CHECK_STR(w->description, "Build, approve, ship.");

        w = &cfg.workflows[1];
        CHECK_STR(w->name, "nightly.v2");
        CHECK_STR(w->file, fx("workflows/nightly.yaml"));
        CHECK(w->schedule == NULL);
        CHECK(w->has_webhook);
        CHECK(w->webhook.secret == NULL);
        CHECK_STR(w->webhook.signature_header, "x-hub-signature-256");
        CHECK_STR(w->webhook.signature_prefix, "sha256=");
        CHECK_STR(w->webhook.delivery_id_header, "x-github-delivery");   /* inactive: no secret */
        CHECK(w->webhook.run_enabled);
        CHECK(w->webhook.signal_name == NULL);
        CHECK(w->ui.path == NULL);
        CHECK(w->readable_name == NULL);
        CHECK(w->description == NULL);
    }
    anvil_config_clear(&cfg);
    anvil_diags_clear(&d);
}

static void test_defaults(void)
{
    anvil_config cfg;
    CHECK_INT(anvil_config_defaults(&cfg), 0);
    CHECK(cfg.path == NULL);
    CHECK_STR(cfg.listen_host, "127.0.0.1");
    CHECK_INT(cfg.listen_port, 7331);
    CHECK_STR(cfg.database, "anvil.db");
    CHECK_INT(cfg.protocol, 1);
    CHECK_INT(cfg.n_features, 2);
    if (cfg.n_features == 2) {
        CHECK_STR(cfg.features[0], "streaming");
        CHECK_STR(cfg.features[1], "runs");
    }
    CHECK_INT(cfg.heartbeat_ms, 15000);
    CHECK_INT(cfg.max_body_bytes, 1048576);
    CHECK_INT(cfg.max_payload, 1048576);
    CHECK_INT(cfg.max_connections, 1000);
    CHECK_INT(cfg.max_http_connections, 4096);   /* docs/config.md */
    CHECK_INT(cfg.event_window_size, 10000);
    CHECK_INT(cfg.headers_timeout_ms, 30000);
    CHECK_INT(cfg.request_timeout_ms, 60000);
    CHECK_INT(cfg.n_allowed_origins, 0);
    CHECK_INT(cfg.auth.mode, ANVIL_AUTH_OPEN);
    CHECK(cfg.console_enabled);
    CHECK_STR(cfg.console_path, "/console");
    CHECK_INT(cfg.n_workflows, 0);
    anvil_config_clear(&cfg);

    /* An empty file is valid; the default database sits beside it. */
    anvil_diags d = {0};
    CHECK_INT(anvil_config_load(fx("empty.yaml"), &cfg, &d), 0);
    CHECK_INT(d.n, 0);
    CHECK_STR(cfg.database, fx("anvil.db"));
    CHECK_INT(cfg.auth.mode, ANVIL_AUTH_OPEN);
    CHECK_INT(cfg.listen_port, 7331);
    anvil_config_clear(&cfg);
    anvil_diags_clear(&d);
}

static void test_valid_auth_modes(void)
{
    anvil_config cfg;
    anvil_diags d = {0};

    CHECK_INT(anvil_config_load(fx("valid_jwt.yaml"), &cfg, &d), 0);
    CHECK_INT(cfg.auth.mode, ANVIL_AUTH_JWT);
    CHECK_STR(cfg.auth.jwt.issuer, "https://issuer.example.com");
    CHECK_STR(cfg.auth.jwt.audience, "anvil");
    CHECK_STR(cfg.auth.jwt.secret, "s3cr3t");
    CHECK_STR(cfg.auth.jwt.scopes_claim, "scp");
    CHECK_STR(cfg.auth.jwt.role_claim, "r");
    CHECK_STR(cfg.auth.jwt.user_claim, "email");
    CHECK_STR(cfg.auth.jwt.default_role, "viewer");
    CHECK_INT(cfg.auth.jwt.n_default_scopes, 1);
    if (cfg.auth.jwt.n_default_scopes == 1)
        CHECK_STR(cfg.auth.jwt.default_scopes[0], "run:read");
    CHECK_INT(cfg.auth.jwt.clock_skew_seconds, 0);
    anvil_config_clear(&cfg);

    CHECK_INT(anvil_config_load(fx("valid_jwt_flat.yaml"), &cfg, &d), 0);
    CHECK_INT(cfg.auth.mode, ANVIL_AUTH_JWT);
    CHECK_STR(cfg.auth.jwt.secret, "flat-secret");
    CHECK_STR(cfg.auth.jwt.issuer, "iss");
    CHECK(cfg.auth.jwt.audience == NULL);
    CHECK_INT(cfg.auth.jwt.clock_skew_seconds, 30);
    CHECK_STR(cfg.auth.jwt.scopes_claim, "scope");
    anvil_config_clear(&cfg);

    CHECK_INT(anvil_config_load(fx("valid_proxy.yaml"), &cfg, &d), 0);
    CHECK_STR(cfg.listen_host, "::1");
    CHECK_INT(cfg.listen_port, 9000);
    CHECK_INT(cfg.auth.mode, ANVIL_AUTH_TRUSTED_PROXY);
    CHECK_STR(cfg.auth.proxy.user_header, "x-auth-user");
    CHECK_STR(cfg.auth.proxy.scopes_header, "x-auth-scopes");
    CHECK_STR(cfg.auth.proxy.role_header, "x-auth-role");
    CHECK_STR(cfg.auth.proxy.default_role, "viewer");
    CHECK_INT(cfg.auth.proxy.n_default_scopes, 2);
    CHECK_INT(cfg.auth.proxy.n_allowed_origins, 1);
    if (cfg.auth.proxy.n_allowed_origins == 1)
        CHECK_STR(cfg.auth.proxy.allowed_origins[0], "https://app.example.com");
    anvil_config_clear(&cfg);

    CHECK_INT(anvil_config_load(fx("valid_proxy_map.yaml"), &cfg, &d), 0);
    CHECK_STR(cfg.listen_host, "0.0.0.0");
    CHECK_INT(cfg.listen_port, 7000);
    CHECK_STR(cfg.auth.proxy.user_header, "cf-access-user");
    CHECK_STR(cfg.auth.proxy.scopes_header, "x-user-scopes");
    CHECK_STR(cfg.auth.proxy.role_header, "cf-access-role");
    CHECK_STR(cfg.auth.proxy.default_role, "operator");
    anvil_config_clear(&cfg);

    CHECK_INT(d.n, 0);
    anvil_diags_print(&d, stderr);
    anvil_diags_clear(&d);
}

static void test_unknown_key(void)
{
    anvil_diags d = load_bad("bad_unknown_key.yaml");
    CHECK_INT(d.n, 3);
    CHECK_DIAG(&d, "bad_unknown_key.yaml", 2, 1, "heartbeatMS: unknown key (did you mean 'heartbeatMs'?)");
    CHECK_DIAG(&d, "bad_unknown_key.yaml", 5, 3, "auth.tokns: unknown key (did you mean 'tokens'?)");
    CHECK_DIAG(&d, "bad_unknown_key.yaml", 6, 1, "colour: unknown key");
    /* Sorted top to bottom. */
    if (d.n == 3)
        CHECK(d.items[0].line == 2 && d.items[1].line == 5 && d.items[2].line == 6);
    anvil_diags_clear(&d);
}

static void test_wrong_types(void)
{
    anvil_diags d = load_bad("bad_types.yaml");
    CHECK_INT(d.n, 7);
    CHECK_DIAG(&d, "bad_types.yaml", 1, 13, "maxPayload: expected a positive integer, got the quoted string \"abc\"");
    CHECK_DIAG(&d, "bad_types.yaml", 2, 11, "features: expected a list of strings");
    CHECK_DIAG(&d, "bad_types.yaml", 3, 14, "heartbeatMs: must be a positive integer, got 0");
    CHECK_DIAG(&d, "bad_types.yaml", 4, 17, "maxConnections: must be a positive integer, got -5");
    CHECK_DIAG(&d, "bad_types.yaml", 5, 21, "console.enabled: expected true or false");
    CHECK_DIAG(&d, "bad_types.yaml", 9, 35, "auth.tokens.op.scopes: expected a list of strings");
    CHECK_DIAG(&d, "bad_types.yaml", 10, 21, "maxHttpConnections: must be a positive integer, got 0");
    anvil_diags_clear(&d);
}

static void test_bad_mode_and_jwt(void)
{
    anvil_diags d = load_bad("bad_mode.yaml");
    CHECK_INT(d.n, 1);
    CHECK_DIAG(&d, "bad_mode.yaml", 2, 9, "auth.mode: expected token, jwt or trusted-proxy, got \"basic\"");
    anvil_diags_clear(&d);

    d = load_bad("bad_jwt_nosecret.yaml");
    CHECK_INT(d.n, 1);
    CHECK_DIAG(&d, "bad_jwt_nosecret.yaml", 2, 9, "auth.jwt.secret: required when auth.mode is jwt");
    anvil_diags_clear(&d);
}

static void test_missing_workflow_file(void)
{
    anvil_diags d = load_bad("bad_missing_workflow.yaml");
    CHECK_INT(d.n, 1);
    CHECK_DIAG(&d, "bad_missing_workflow.yaml", 3, 11, "workflows.deploy.file: cannot use ");
    CHECK_DIAG(&d, "bad_missing_workflow.yaml", 3, 11, "workflows/does-not-exist.yaml: No such file");
    anvil_diags_clear(&d);
}

static void test_syntax_and_duplicate(void)
{
    anvil_diags d = load_bad("bad_syntax.yaml");
    CHECK_INT(d.n, 1);
    CHECK_DIAG(&d, "bad_syntax.yaml", 4, 11, "YAML syntax error: mapping values are not allowed");
    anvil_diags_clear(&d);

    d = load_bad("bad_duplicate.yaml");
    CHECK_INT(d.n, 1);
    CHECK_DIAG(&d, "bad_duplicate.yaml", 3, 1, "heartbeatMs: duplicate key (first defined at line 1)");
    anvil_diags_clear(&d);

    anvil_config cfg;
    d = (anvil_diags){0};
    CHECK_INT(anvil_config_load(fx("no-such-config.yaml"), &cfg, &d), -1);
    CHECK_DIAG(&d, "no-such-config.yaml", 0, 0, "cannot open: No such file");
    anvil_config_clear(&cfg);
    anvil_diags_clear(&d);
}

static void test_many_problems(void)
{
    anvil_diags d = load_bad("bad_many.yaml");
    CHECK_INT(d.n, 11);
    CHECK_DIAG(&d, "bad_many.yaml", 1, 9, "listen: expected host:port");
    CHECK_DIAG(&d, "bad_many.yaml", 2, 15, "maxBodyBytes: 99999999999999999999 is too large");
    CHECK_DIAG(&d, "bad_many.yaml", 3, 18, "allowedOrigins[0]: expected an origin");
    /* The token string is a secret: only its first characters are shown. */
    CHECK_DIAG(&d, "bad_many.yaml", 7, 27, "auth.tokens.no-r***.role: missing");
    CHECK_DIAG(&d, "bad_many.yaml", 9, 3, "workflows.bad name!: invalid workflow name");
    CHECK_DIAG(&d, "bad_many.yaml", 16, 5, "workflows.nofile.file: missing");
    CHECK_DIAG(&d, "bad_many.yaml", 19, 17, "workflows.uibad.ui.path: expected a URL path");
    CHECK_DIAG(&d, "bad_many.yaml", 23, 24, "workflows.hookbad.webhook.signatureHeader: \"bad header\" is not a valid HTTP header name");
    CHECK_DIAG(&d, "bad_many.yaml", 24, 25, "workflows.hookbad.webhook.deliveryIdHeader: needs webhook.secret");
    CHECK_DIAG(&d, "workflows/notmap.yaml", 1, 1, "workflows.listy.file: top level of a workflow file must be a mapping");
    CHECK_DIAG(&d, "workflows/broken.yaml", 3, 1, "workflows.broken.file: YAML syntax error: did not find expected ',' or ']'");
    for (size_t i = 0; i < d.n; i++)
        CHECK(strstr(d.items[i].message, "no-role-token-abcdef") == NULL);
    anvil_diags_clear(&d);
}

/* Configs written on the fly: absolute paths, :memory:, and checks that need
 * no fixture of their own. */
static void test_generated_configs(void)
{
    char dir[] = "/tmp/anvil-test-config-XXXXXX";
    CHECK(mkdtemp(dir) != NULL);
    char wf_abs[4096], path[4200];
    CHECK(realpath(fx("workflows/deploy.yaml"), wf_abs) != NULL);

    static const struct { const char *text; int want_n; int line, col; const char *msg; } cases[] = {
        {"database: \":memory:\"\nworkflows:\n  w1: { file: \"%s\" }\n", 0, 0, 0, NULL},
        {"- a\n- b\n", 1, 1, 1, "top level: expected a mapping, got a list"},
        {"listen: 127.0.0.1:1\n---\nlisten: 127.0.0.1:2\n", 1, 3, 1, "only one YAML document is allowed"},
        {"auth:\n  mode: jwt\n  secret: a\n  jwt: { secret: b }\n", 1, 4, 18, "auth.jwt.secret: also set as auth.secret at line 3"},
        {"auth:\n  mode: token\n  tokens:\n    t1: { role: r, tokenId: same }\n    t2: { role: r, tokenId: same }\n",
         1, 5, 29, "auth.tokens.t2.tokenId: token id \"same\" is used by another token"},
        {"auth:\n  tokens: {}\n", 1, 2, 3, "auth.mode: missing"},
        {"auth: ~\n", 1, 1, 7, "auth: expected a mapping, got null"},
        {"auth: { mode: trusted-proxy, trustedHeaders: [a, b, c, d] }\n", 1, 1, 46, "expected 1 to 3 header names"},
        {"auth: { mode: trusted-proxy, trustedHeaders: { user: \"bad header\" } }\n", 1, 1, 54, "not a valid HTTP header name"},
        {"workflows:\n  w1: { file: \"%s\", webhook: { signal: { runIdPath: x } } }\n", 1, 2, 0, "webhook.signal.name: missing"},
        {"workflows:\n  w1: { file: \"%s\", extra: 1 }\n", 1, 2, 0, "workflows.w1.extra: unknown key"},
        /* a delivery id header without a secret would let anyone claim ids */
        {"workflows:\n  w1: { file: \"%s\", webhook: { deliveryIdHeader: x-delivery } }\n", 1, 2, 0,
         "workflows.w1.webhook.deliveryIdHeader: needs webhook.secret"},
        {"workflows:\n  w1: { file: \"%s\", webhook: { secret: s, deliveryIdHeader: \"bad id\" } }\n", 1, 2, 0,
         "workflows.w1.webhook.deliveryIdHeader: \"bad id\" is not a valid HTTP header name"},
        {"workflows:\n  w1: { file: \"%s\", webhook: { secret: s, deliveryIdHeader: \"\" } }\n", 0, 0, 0, NULL},
        {"workflows:\n  w1: { file: \"%s\", webhook: { deliveryIdHeader: \"\" } }\n", 0, 0, 0, NULL},
        {"workflows:\n  w1: { file: \"%s\", webhook: { deliveryIdHeader: ~ } }\n", 1, 2, 0,
         "workflows.w1.webhook.deliveryIdHeader: expected a string, got null"},
        {"protocol: 1.5\n", 1, 1, 11, "protocol: expected a positive integer, got \"1.5\""},
        {"console: { path: ~ }\n", 1, 1, 18, "console.path: expected a string, got null"},
        {"features: [a, \"\", [x]]\n", 2, 1, 15, "features[1]: expected a non-empty string, got an empty string"},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        snprintf(path, sizeof path, "%s/c%zu.yaml", dir, i);
        FILE *f = fopen(path, "w");
        CHECK(f != NULL);
        if (!f)
            continue;
        /* The table's texts are printf templates with one %s (the workflow
         * path); they are literals in this file. */
#pragma GCC diagnostic push
#pragma GCC diagnostic ignored "-Wformat-nonliteral"
        fprintf(f, cases[i].text, wf_abs);
#pragma GCC diagnostic pop
        fclose(f);
        anvil_config cfg;
        anvil_diags d = {0};
        int rc = anvil_config_load(path, &cfg, &d);
        CHECK_INT(rc, cases[i].want_n ? -1 : 0);
        CHECK_INT(d.n, cases[i].want_n);
        if (cases[i].msg)
            CHECK_DIAG(&d, path, cases[i].line, cases[i].col, cases[i].msg);
        if (i == 0) {
            CHECK_STR(cfg.database, ":memory:");
            CHECK_INT(cfg.n_workflows, 1);
            if (cfg.n_workflows == 1) {
                CHECK_STR(cfg.workflows[0].file, wf_abs);
                CHECK_STR(cfg.workflows[0].readable_name, "Deploy service");
            }
        }
        if (!cases[i].want_n && strstr(cases[i].text, "deliveryIdHeader: \"\"")) {
            CHECK_INT(cfg.n_workflows, 1);
            if (cfg.n_workflows == 1)   /* "" turns it off */
                CHECK(cfg.workflows[0].webhook.delivery_id_header == NULL);
        }
        if (d.n != (size_t)cases[i].want_n)
            anvil_diags_print(&d, stderr);
        anvil_config_clear(&cfg);
        anvil_diags_clear(&d);
        unlink(path);
    }
    CHECK_INT(rmdir(dir), 0);
}

static void test_parse_listen(void)
{
    static const struct { const char *in; int ok; const char *host; int port; } cases[] = {
        {"127.0.0.1:7331", 1, "127.0.0.1", 7331},
        {"localhost:80", 1, "localhost", 80},
        {"[::1]:9000", 1, "::1", 9000},
        {"[fe80::1]:1", 1, "fe80::1", 1},
        {":8080", 1, "0.0.0.0", 8080},
        {"0.0.0.0:0", 1, "0.0.0.0", 0},
        {"host:65535", 1, "host", 65535},
        {"host:65536", 0, NULL, 0},
        {"host:", 0, NULL, 0},
        {"host", 0, NULL, 0},
        {"7331", 0, NULL, 0},
        {"::1:80", 0, NULL, 0},
        {"[::1]80", 0, NULL, 0},
        {"[]:80", 0, NULL, 0},
        {"[abc.example]:80", 0, NULL, 0},
        {"host:8x", 0, NULL, 0},
        {"host:-1", 0, NULL, 0},
        {"ho st:80", 0, NULL, 0},
        {"host:000080", 0, NULL, 0},
        {"", 0, NULL, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        char *host = NULL;
        int port = -1;
        int rc = anvil_parse_listen(cases[i].in, &host, &port);
        CHECK_INT(rc, cases[i].ok ? 0 : -1);
        if (rc != (cases[i].ok ? 0 : -1))
            fprintf(stderr, "  listen case \"%s\"\n", cases[i].in);
        if (cases[i].ok && rc == 0) {
            CHECK_STR(host, cases[i].host);
            CHECK_INT(port, cases[i].port);
        }
        free(host);
    }
    CHECK_INT(anvil_parse_listen(NULL, NULL, NULL), -1);
}

static void test_parse_duration(void)
{
    static const struct { const char *in; int ok; int64_t ms; } cases[] = {
        {"0", 1, 0},
        {"250", 1, 250},
        {"500ms", 1, 500},
        {"30s", 1, 30000},
        {"15m", 1, 900000},
        {"24h", 1, 86400000},
        {"7d", 1, 604800000},
        {"9223372036854775807", 1, INT64_MAX},
        {"9223372036854775807ms", 1, INT64_MAX},
        {"9223372036854775808", 0, 0},
        {"106751991167d", 1, 106751991167LL * 86400000},
        {"106751991168d", 0, 0},
        {"99999999999999999999h", 0, 0},
        {"", 0, 0},
        {"s", 0, 0},
        {"ms", 0, 0},
        {"-5s", 0, 0},
        {"+5s", 0, 0},
        {" 5s", 0, 0},
        {"5s ", 0, 0},
        {"1.5h", 0, 0},
        {"5S", 0, 0},
        {"5sec", 0, 0},
        {"1h30m", 0, 0},
        {"5x", 0, 0},
    };
    for (size_t i = 0; i < sizeof cases / sizeof cases[0]; i++) {
        int64_t ms = -1;
        int rc = anvil_parse_duration_ms(cases[i].in, &ms);
        CHECK_INT(rc, cases[i].ok ? 0 : -1);
        if (rc != (cases[i].ok ? 0 : -1))
            fprintf(stderr, "  duration case \"%s\"\n", cases[i].in);
        if (cases[i].ok)
            CHECK_INT(ms, cases[i].ms);
        else
            CHECK_INT(ms, -1);
    }
    int64_t ms;
    CHECK_INT(anvil_parse_duration_ms(NULL, &ms), -1);
}

static void test_retention(void)
{
    anvil_config cfg;
    anvil_diags d = {0};
    CHECK_INT(anvil_config_load(fx("valid_retention.yaml"), &cfg, &d), 0);
    CHECK_INT(d.n, 0);
    CHECK(cfg.retention.enabled);
    CHECK(cfg.retention.defaults.max_age_ms == 30LL * 86400000);
    CHECK(cfg.retention.defaults.max_runs == 1000);
    CHECK_INT(cfg.retention.n_workflows, 2);
    /* deploy overrides the count and inherits the age */
    anvil_retention_limits l = anvil_retention_for(&cfg.retention, "deploy");
    CHECK(l.max_age_ms == 30LL * 86400000 && l.max_runs == 50);
    /* 0 lifts both limits for nightly.v2 */
    l = anvil_retention_for(&cfg.retention, "nightly.v2");
    CHECK(l.max_age_ms == 0 && l.max_runs == 0);
    /* a workflow without an override gets the defaults */
    l = anvil_retention_for(&cfg.retention, "other");
    CHECK(l.max_age_ms == 30LL * 86400000 && l.max_runs == 1000);
    anvil_config_clear(&cfg);

    /* absent: no policy */
    CHECK_INT(anvil_config_load(fx("empty.yaml"), &cfg, &d), 0);
    CHECK(!cfg.retention.enabled);
    anvil_config_clear(&cfg);
    anvil_diags_clear(&d);

    d = load_bad("bad_retention.yaml");
    CHECK_INT(d.n, 6);
    CHECK_DIAG(&d, "bad_retention.yaml", 2, 11,
               "retention.maxAge: expected a duration such as 30d, 12h or 90s (or 0 for no limit), got \"30 days\"");
    CHECK_DIAG(&d, "bad_retention.yaml", 3, 12, "retention.maxRuns:");
    CHECK_DIAG(&d, "bad_retention.yaml", 4, 3, "retention.maxAgeDays: unknown key");
    CHECK_DIAG(&d, "bad_retention.yaml", 6, 23, "retention.workflows.deploy.maxAge: at least 1s (or 0 for no limit)");
    CHECK_DIAG(&d, "bad_retention.yaml", 6, 30, "retention.workflows.deploy.maxRun: unknown key (did you mean 'maxRuns'?)");
    CHECK_DIAG(&d, "bad_retention.yaml", 7, 5,
               "retention.workflows.nosuch: no workflow 'nosuch' is configured under workflows");
    anvil_diags_clear(&d);
}

int main(int argc, char **argv)
{
    if (argc > 1)
        fixtures = argv[1];
    test_defaults();
    test_valid_full();
    test_valid_auth_modes();
    test_unknown_key();
    test_wrong_types();
    test_bad_mode_and_jwt();
    test_missing_workflow_file();
    test_syntax_and_duplicate();
    test_many_problems();
    test_generated_configs();
    test_parse_listen();
    test_parse_duration();
    test_retention();
    UNIT_DONE();
}
