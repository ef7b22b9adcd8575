/*
 * runtime/cli/cli_client.c — the client verbs' shared flags, client and
 * errors (cli_client.h). The exit status of a contract error comes from
 * the generated error map through its HTTP status, so a code added to the
 * contract gets its status without a change here.
 */
#include <errno.h>
#include <stdarg.h>
#include <stdlib.h>
#include <string.h>

#include "cli_client.h"

#define DEFAULT_URL "http://127.0.0.1:7331"

int anvil_cli_usage_error(const anvil_cli_ctx *ctx, const char *fmt, ...)
{
    va_list ap;
    fprintf(stderr, "anvil %s: ", ctx->verb);
    va_start(ap, fmt);
    vfprintf(stderr, fmt, ap);
    va_end(ap);
    fprintf(stderr, "\n%s", ctx->usage);
    return ANVIL_EXIT_USAGE;
}

/* The common flags; returns the slot or NULL. */
static bool common_flag(anvil_cli_ctx *ctx, const char *name, const char ***str, bool **flag)
{
    *str = NULL;
    *flag = NULL;
    if (!strcmp(name, "url"))
        *str = &ctx->url;
    else if (!strcmp(name, "token"))
        *str = &ctx->token;
    else if (!strcmp(name, "json"))
        *flag = &ctx->json;
    else if (!strcmp(name, "help"))
        *flag = &ctx->help;
    else
        return false;
    return true;
}

int anvil_cli_parse(anvil_cli_ctx *ctx, int argc, char **argv, const anvil_cli_opt *opts,
                    int min_pos, int max_pos)
{
    bool flags_done = false;
    for (int i = 1; i < argc; i++) {
        const char *a = argv[i];
        if (flags_done || a[0] != '-' || !a[1]) {
            if (ctx->n_pos >= max_pos || ctx->n_pos >= ANVIL_CLI_MAX_POS)
                return anvil_cli_usage_error(ctx, "unexpected argument %s", a);
            ctx->pos[ctx->n_pos++] = a;
            continue;
        }
        if (!strcmp(a, "--")) {
            flags_done = true;
            continue;
        }
        if (!strcmp(a, "-h")) {
            ctx->help = true;
            continue;
        }
        /* -u URL and -t T: the short forms `anvil rpc` always had. */
        if (!strcmp(a, "-u") || !strcmp(a, "-t")) {
            if (i + 1 >= argc)
                return anvil_cli_usage_error(ctx, "%s needs a value", a);
            *(a[1] == 'u' ? &ctx->url : &ctx->token) = argv[++i];
            continue;
        }
        if (a[1] != '-')
            return anvil_cli_usage_error(ctx, "unknown option %s", a);
        const char *name = a + 2, *eq = strchr(name, '=');
        char key[64];
        size_t len = eq ? (size_t)(eq - name) : strlen(name);
        if (len == 0 || len >= sizeof key)
            return anvil_cli_usage_error(ctx, "unknown option %s", a);
        memcpy(key, name, len);
        key[len] = '\0';
        const char **str = NULL;
        bool *flag = NULL;
        if (!common_flag(ctx, key, &str, &flag)) {
            for (const anvil_cli_opt *o = opts; o && o->name; o++)
                if (!strcmp(o->name, key)) {
                    str = o->str;
                    flag = o->flag;
                    break;
                }
        }
        if (!str && !flag)
            return anvil_cli_usage_error(ctx, "unknown option --%s", key);
        if (flag) {
            if (eq)
                return anvil_cli_usage_error(ctx, "--%s takes no value", key);
            *flag = true;
            continue;
        }
        const char *value = eq ? eq + 1 : (i + 1 < argc ? argv[++i] : NULL);
        if (!value)
            return anvil_cli_usage_error(ctx, "--%s needs a value", key);
        *str = value;
    }
    if (ctx->help) {
        fputs(ctx->usage, stdout);
        return ANVIL_EXIT_OK;
    }
    if (ctx->n_pos < min_pos)
        return anvil_cli_usage_error(ctx, "missing argument%s", min_pos - ctx->n_pos > 1 ? "s" : "");
    return -1;
}

int anvil_cli_connect(anvil_cli_ctx *ctx)
{
    const char *url = ctx->url;
    bool from_flag = url != NULL;
    if (!url)
        url = getenv("ANVIL_URL");
    if (!url || !*url)
        url = DEFAULT_URL;
    const char *token = ctx->token ? ctx->token : getenv("ANVIL_TOKEN");
    if (token && !*token)
        token = NULL;
    anvil_client_error err = { .code_id = -1 };
    if (anvil_client_new(url, token, NULL, &ctx->client, &err) != 0) {
        int rc = anvil_cli_usage_error(ctx, "%s: %s", from_flag ? "--url" : "ANVIL_URL", err.message);
        anvil_client_error_clear(&err);
        return rc;
    }
    return -1;
}

int anvil_cli_exit_code(const anvil_client_error *err)
{
    switch (err->kind) {
    case ANVIL_CLIENT_OK: return ANVIL_EXIT_OK;
    case ANVIL_CLIENT_ERR_USAGE: return ANVIL_EXIT_USAGE;
    case ANVIL_CLIENT_ERR_TRANSPORT:
    case ANVIL_CLIENT_ERR_PROTOCOL: return ANVIL_EXIT_UNREACHABLE;
    case ANVIL_CLIENT_ERR_SERVER: break;
    }
    int status = anvil_client_error_status_of(err->code);
    if (!status)
        status = err->http_status;
    switch (status) {
    case 400: return ANVIL_EXIT_INVALID;
    case 401: return ANVIL_EXIT_UNAUTHORIZED;
    case 403: return ANVIL_EXIT_FORBIDDEN;
    case 404: return ANVIL_EXIT_NOT_FOUND;
    case 409: return ANVIL_EXIT_CONFLICT;
    case 413:
    case 429: return ANVIL_EXIT_LIMITED;
    default: return ANVIL_EXIT_SERVER;
    }
}

int anvil_cli_fail(const anvil_cli_ctx *ctx, anvil_client_error *err)
{
    char text[1024];
    fprintf(stderr, "anvil %s: %s\n", ctx->verb, anvil_client_error_text(err, text, sizeof text));
    if (err->kind == ANVIL_CLIENT_ERR_SERVER && err->refresh)
        fprintf(stderr, "anvil %s: the token expired or was revoked; get a new one\n", ctx->verb);
    int rc = anvil_cli_exit_code(err);
    anvil_client_error_clear(err);
    return rc;
}

void anvil_cli_done(anvil_cli_ctx *ctx)
{
    anvil_client_free(ctx->client);
    ctx->client = NULL;
}

cJSON *anvil_cli_json_arg(const anvil_cli_ctx *ctx, const char *flag, const char *text, bool object_only)
{
    cJSON *v = cJSON_Parse(text);
    if (!v || (object_only && !cJSON_IsObject(v))) {
        cJSON_Delete(v);
        anvil_cli_usage_error(ctx, "%s must be %s, got: %s", flag, object_only ? "a JSON object" : "JSON", text);
        return NULL;
    }
    return v;
}

bool anvil_cli_count_arg(const anvil_cli_ctx *ctx, const char *flag, const char *text, bool *has,
                         int64_t *out)
{
    if (!text)
        return true;
    char *end = NULL;
    errno = 0;
    long long v = strtoll(text, &end, 10);
    if (!*text || *end || errno || v < 0) {
        anvil_cli_usage_error(ctx, "%s must be a non-negative integer, got: %s", flag, text);
        return false;
    }
    *has = true;
    *out = v;
    return true;
}

int anvil_cli_dispatch(const char *group, int argc, char **argv, const char *usage,
                       const anvil_cli_verb *verbs, size_t n_verbs)
{
    if (argc < 2) {
        fputs(usage, stderr);
        return ANVIL_EXIT_USAGE;
    }
    const char *v = argv[1];
    if (!strcmp(v, "-h") || !strcmp(v, "--help") || !strcmp(v, "help")) {
        fputs(usage, stdout);
        return 0;
    }
    for (size_t i = 0; i < n_verbs; i++)
        if (!strcmp(v, verbs[i].name))
            return verbs[i].run(argc - 1, argv + 1);
    fprintf(stderr, "anvil %s: unknown verb \"%s\"\n%s", group, v, usage);
    return ANVIL_EXIT_USAGE;
}
